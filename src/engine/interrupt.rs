//! Stopping a run: Ctrl-C, a stop signal (SIGTERM, SIGHUP, SIGQUIT) or a stop
//! condition. A flag is checked between calls and
//! wakes every wait, so the run stops after the call in flight; a call that has not
//! answered [`IN_FLIGHT_GRACE`] after the stop is given up, its outcome unknown
//! (its intent is journaled: resume and rollback read it live). The reason says
//! which exit code the stop gets.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How long a call in flight is given to answer once the run is stopped.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(5);

/// Why a run was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A person stopped it: Ctrl-C, or a stop signal. (A declined approval is not
    /// an interrupt: the engine ends with `EngineError::Declined`.)
    User,
    /// A stop condition fired.
    StopCondition {
        /// Which one, readable.
        condition: String,
        /// The state it was found in.
        state: String,
    },
}

/// Set once when the run must stop.
#[derive(Debug, Default)]
pub struct Interrupt {
    set: AtomicBool,
    reason: Mutex<Option<Reason>>,
    notify: Notify,
}

impl Interrupt {
    /// Asks the run to stop (Ctrl-C or a stop signal).
    pub fn trigger(&self) {
        self.stop(Reason::User);
    }

    /// Asks the run to stop for `reason`; the first reason given is kept.
    pub fn stop(&self, reason: Reason) {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Why the run was stopped, if it was.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Completes once a stop is asked for.
    pub async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// Completes `grace` after a stop is asked for: how long a call in flight is
    /// given to answer once the run is stopped.
    pub async fn stopped_for(&self, grace: Duration) {
        self.stopped().await;
        tokio::time::sleep(grace).await;
    }

    /// Sleeps for `duration`; returns `true` if a stop was asked for meanwhile.
    pub async fn sleep(&self, duration: Duration) -> bool {
        if self.is_set() {
            return true;
        }
        let notified = self.notify.notified();
        tokio::select! {
            () = tokio::time::sleep(duration) => self.is_set(),
            () = notified => true,
        }
    }
}
