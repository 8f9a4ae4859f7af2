//! Plans: what a run would do, built from a playbook and the observed AWS state.
//!
//! Building is pure ([`build::build`]); the human, Markdown and JSON views all render
//! the same [`Plan`] value.

pub mod build;
mod model;
pub mod render;
pub mod timing;

pub use model::*;
