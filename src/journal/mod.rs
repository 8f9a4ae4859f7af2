//! The run journal: an append-only JSON-lines event log per run, fsync'ed on every
//! append, the single source of truth for status, resume and rollback.
//!
//! Layout: `<state-dir>/runs/<run-id>/` holds `playbook.yaml` (as run), `plan.json`
//! and `journal.jsonl`; `<state-dir>/locks/<playbook>.lock` holds the lock.

mod event;
mod lock;
mod store;

pub use event::*;
pub use lock::{Lock, LockError, LockHolder, alive, host_name, user_name};
pub use store::{
    Journal, JournalError, RunDir, create_private_dir, list_runs, new_run_id, parse_time,
    read_nofollow, secs_between,
};
