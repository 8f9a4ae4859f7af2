//! The engine: runs a plan in waves with a durable journal, resumes it, rolls it back.
//!
//! It talks to AWS only through [`cloud::Cloud`] and to people only through
//! [`reporter::Reporter`], so tests can drive it with an in-memory cloud on paused
//! time.
//!
//! - [`execute`]: the executor, its options, the step loop;
//! - [`wave`]: one wave forward (stops, batched live read, reconcile, intents, calls);
//! - [`write_ahead`]: the one loop every AWS write goes through (intents, fence,
//!   calls, answers), with one policy for errors and interrupts;
//! - [`converge`]: waiting for a wave with one batched poller;
//! - [`steps`]: one file per step kind;
//! - [`rollback`]: the journal reversed as waves;
//! - [`watch`]: stop conditions, holds and the poll loop;
//! - [`route`]: calls sent to the account of their resource;
//! - [`live`], [`recorder`], [`history`], [`interrupt`], [`error`].

pub mod cloud;
pub mod converge;
pub mod error;
pub mod execute;
pub mod interrupt;
pub mod live;
pub mod recorder;
pub mod reporter;
pub mod rollback;
pub mod route;
mod steps;
pub mod watch;
pub mod wave;
pub mod write_ahead;

#[cfg(test)]
mod shapes_tests;
#[cfg(test)]
mod tests;
