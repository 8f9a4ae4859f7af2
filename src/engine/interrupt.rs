//! Ctrl-C as the engine sees it: a flag checked between calls and a wake-up for
//! waits, so the run stops after the call in flight, never in the middle of one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Set once when the user asks the run to stop.
#[derive(Debug, Default)]
pub struct Interrupt {
    set: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    /// Asks the run to stop.
    pub fn trigger(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
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
