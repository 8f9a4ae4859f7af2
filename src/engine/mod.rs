//! The engine: runs a plan with a durable journal, resumes it, rolls it back.
//!
//! It talks to AWS only through [`cloud::Cloud`] and to people only through
//! [`reporter::Reporter`], so tests can drive it with an in-memory cloud on paused
//! time.

pub mod cloud;
pub mod execute;
pub mod history;
pub mod interrupt;
pub mod reporter;
pub mod rollback;

#[cfg(test)]
mod memory;
#[cfg(test)]
mod tests;
