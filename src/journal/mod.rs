//! The run journal: an append-only JSON-lines event log per run, fsync'ed on every
//! append, the single source of truth for status, resume and rollback.
//!
//! Layout: `<state-dir>/runs/<run-id>/` holds `playbook.yaml` (as run), `plan.json`
//! and `journal.jsonl`; `<state-dir>/locks/<playbook>.lock` holds the lock. In S3
//! ([`state_dir`]) the journal is one object per wave under
//! `runs/<run-id>/journal/`, and the lock is a lease ([`lease`]).

mod event;
pub mod history;
pub mod lease;
mod lock;
mod order;
pub mod remote;
mod show;
pub mod state_dir;
mod store;
mod upload;

pub use state_dir::{Location, StateDir, parse_location, parse_s3_url};

pub use event::*;
pub use lock::{Lock, LockError, LockHolder, alive, host_name, user_name};
pub use show::{show, show_target};
pub use store::{
    Journal, JournalError, RunDir, create_private_dir, list_runs, new_run_id, parse_time,
    read_nofollow, replace_file, secs_between,
};
