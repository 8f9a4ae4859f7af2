//! Plans: what a run would do, built from a playbook and the observed AWS state.
//!
//! Reads go through the [`observe::Observe`] trait; building is pure
//! ([`build::build`]); the human, Markdown and JSON views all render the same
//! [`Plan`] value.

pub mod build;
pub mod iam;
mod model;
pub mod observe;
pub mod render;
pub mod shift;
pub mod timing;

#[cfg(test)]
mod tests;

pub use model::*;
