//! One file per step kind, each an `impl Executor` block built from waves.

mod capacity;
mod gates;
pub(crate) mod processes;
mod traffic;
mod zone;
