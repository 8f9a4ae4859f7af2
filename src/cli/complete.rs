//! Completion of what clap cannot know by itself: run ids, from the state dir.
//!
//! The shell asks evac while it completes (`evac completions SHELL` prints the
//! script that does so; clap_complete answers): commands and options come from the
//! parser, run ids from the folder `EVAC_STATE_DIR` names (default `.evac`). A state
//! dir in S3 is not listed while a key is pressed: only `latest` is offered there.

use std::ffi::OsStr;

use clap_complete::engine::CompletionCandidate;

/// The run ids that begin with what is typed, newest first, and `latest`.
pub fn run_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    let mut out = Vec::new();
    if crate::journal::state_dir::LATEST.starts_with(typed.as_ref()) {
        out.push(
            CompletionCandidate::new(crate::journal::state_dir::LATEST)
                .help(Some("the newest run (of --playbook NAME)".into())),
        );
    }
    let dir = std::env::var("EVAC_STATE_DIR").unwrap_or_else(|_| ".evac".to_owned());
    if let Ok(crate::journal::Location::Local(path)) = crate::journal::parse_location(&dir)
        && let Ok(runs) = crate::journal::list_runs(&path)
    {
        out.extend(
            runs.into_iter()
                .rev()
                .filter(|run| run.id.starts_with(typed.as_ref()))
                .map(|run| CompletionCandidate::new(run.id)),
        );
    }
    out
}

/// What completes a `RUN_ID` argument.
pub fn run_id() -> clap_complete::engine::ArgValueCompleter {
    clap_complete::engine::ArgValueCompleter::new(run_ids)
}
