//! What the engine tells the outside world: each journal entry as it is written,
//! live progress that is not journaled, and the questions of approval gates. The
//! reporters (terminal, JSON lines) are in `crate::progress`; notifications wrap one
//! (`crate::notify`); `evac watch` drives the same reporters from the journal.

use crate::journal::Entry;

/// Live progress that is not journaled.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "progress", rename_all = "snake_case")]
pub enum Progress {
    /// Instances in service against the target, summed over a wave's groups.
    InService {
        /// The step.
        step: String,
        /// In service now.
        current: u32,
        /// Wanted.
        wanted: u32,
        /// Of groups going down: what is still in service above what they keep
        /// (a drain waits for it to leave).
        #[serde(default, skip_serializing_if = "is_zero")]
        leaving: u32,
    },
    /// A ramp increment is being sent to every hosted zone of the step.
    Increment {
        /// The step.
        step: String,
        /// The increment, from 1.
        increment: usize,
        /// Increments in all.
        of: usize,
    },
    /// Waiting for the Route 53 changes of a wave to be in sync.
    Syncing {
        /// The step.
        step: String,
        /// Changes in sync so far.
        in_sync: usize,
        /// Changes in all.
        of: usize,
    },
    /// Waiting for the zonal shifts of a wave to take effect.
    Shifting {
        /// The step.
        step: String,
        /// Shifts applied so far.
        applied: usize,
        /// Shifts in all.
        of: usize,
    },
    /// Holding between increments, or a fixed wait.
    Holding {
        /// The step.
        step: String,
        /// Seconds left.
        remaining_secs: u64,
    },
    /// A rollback wave begins.
    RollbackWave {
        /// The wave, from 1.
        wave: usize,
        /// Waves in all.
        of: usize,
        /// The forward step it undoes (`all` for the fast rollback's waves).
        step: String,
        /// Resources it restores.
        restores: usize,
    },
    /// A check step watching an alarm or health check.
    Checking {
        /// The step.
        step: String,
        /// What is watched.
        watched: String,
        /// Its state now.
        live: String,
        /// How long it has held the wanted state.
        held_secs: u64,
        /// How long it must.
        hold_secs: u64,
    },
}

/// Receives the engine's journal entries and progress, and asks the human gates.
pub trait Reporter {
    /// A journal entry was written.
    fn entry(&self, entry: &Entry);
    /// Progress changed.
    fn progress(&self, progress: &Progress);
    /// Starts asking a yes/no question and returns the answer to come; `None` when
    /// there is nobody to ask (no terminal). The answer is read off the runtime, so
    /// the engine keeps watching its stop conditions meanwhile.
    fn ask(&self, question: &str) -> Option<tokio::sync::oneshot::Receiver<bool>>;
    /// The question is over, answered or not: the display comes back.
    fn asked(&self) {}
    /// What the journal held before this process attached (a resume, a rollback):
    /// the changes earlier processes recorded, so that answers about them are said
    /// in their words.
    fn recall(&self, _history: &crate::journal::history::History) {}
}

/// A reporter that shows nothing and has nobody to ask.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn entry(&self, _: &Entry) {}
    fn progress(&self, _: &Progress) {}
    fn ask(&self, _: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        None
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
