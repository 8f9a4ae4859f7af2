//! What the engine tells the outside world. Only the terminal reporter knows about
//! progress bars.

use crate::journal::Entry;

/// Live progress that is not journaled.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "progress", rename_all = "snake_case")]
pub enum Progress {
    /// Instances in service against the target, summed over a step's groups.
    InService {
        /// The step.
        step: String,
        /// In service now.
        current: u32,
        /// Wanted.
        wanted: u32,
    },
    /// Waiting for a Route 53 change of a ramp increment to be in sync.
    Syncing {
        /// The step.
        step: String,
        /// The increment, from 1.
        increment: usize,
        /// Increments in all.
        of: usize,
    },
    /// Holding between increments, or a fixed wait.
    Holding {
        /// The step.
        step: String,
        /// Seconds left.
        remaining_secs: u64,
    },
}

/// Receives the engine's journal entries and progress, and asks the human gates.
pub trait Reporter {
    /// A journal entry was written.
    fn entry(&self, entry: &Entry);
    /// Progress changed.
    fn progress(&self, progress: &Progress);
    /// Asks a yes/no question; `None` when there is nobody to ask (no terminal).
    fn confirm(&self, question: &str) -> Option<bool>;
}

/// A reporter that shows nothing and has nobody to ask.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn entry(&self, _: &Entry) {}
    fn progress(&self, _: &Progress) {}
    fn confirm(&self, _: &str) -> Option<bool> {
        None
    }
}
