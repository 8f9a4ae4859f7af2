//! The engine's only way to record and show what it does: journal entries (durable
//! before they count), the history they add up to, and the reporter.

use std::sync::Mutex;

use super::error::EngineError;
use super::reporter::{Progress, Reporter};
use crate::journal::history::History;
use crate::journal::{Event, Journal};

/// Writes journal entries, keeps the [`History`] they add up to, and shows them.
pub struct Recorder<'a> {
    journal: Mutex<&'a mut Journal>,
    history: Mutex<History>,
    reporter: &'a dyn Reporter,
    /// How long the run's waits took so far: when the next is due.
    pub timings: super::watch::Timings,
}

impl<'a> Recorder<'a> {
    /// Records to `journal`, whose entries so far add up to `history`, showing each
    /// new entry on `reporter`.
    pub fn new(journal: &'a mut Journal, history: History, reporter: &'a dyn Reporter) -> Self {
        reporter.recall(&history);
        Self {
            journal: Mutex::new(journal),
            history: Mutex::new(history),
            reporter,
            timings: super::watch::Timings::default(),
        }
    }

    /// Appends an event (fsync'ed), takes it into the history, and reports it.
    pub fn log(&self, event: Event) -> Result<(), EngineError> {
        self.log_all(vec![event])
    }

    /// Appends events with one fsync, takes them into the history, and reports them.
    pub fn log_all(&self, events: Vec<Event>) -> Result<(), EngineError> {
        if events.is_empty() {
            return Ok(());
        }
        let entries = {
            let mut journal = self
                .journal
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            journal.append_all(events)?
        };
        {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            for entry in &entries {
                history.apply(&entry.event);
            }
        }
        for entry in &entries {
            self.reporter.entry(entry);
        }
        Ok(())
    }

    /// Ok when this process may make an AWS call for the run (its lease, with state
    /// in S3, holds for a margin more): checked right before every write. Keep the
    /// guard while the call is out (see [`crate::journal::lease::Fence::busy`]).
    pub fn vouch(&self) -> Result<Option<crate::journal::lease::Busy>, EngineError> {
        self.journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .vouch()
            .map_err(EngineError::from)
    }

    /// Reads the history of the run so far.
    pub fn history<T>(&self, read: impl FnOnce(&History) -> T) -> T {
        read(&self.history.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Shows progress.
    pub fn progress(&self, progress: Progress) {
        self.reporter.progress(&progress);
    }

    /// The reporter, for questions to the human.
    pub fn reporter(&self) -> &dyn Reporter {
        self.reporter
    }
}
