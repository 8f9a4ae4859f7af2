//! `evac status`: every run, or one run's steps and changes, from the journals.

use std::collections::BTreeMap;

use serde::Serialize;

use super::run::read_run;
use super::session::StateArgs;
use crate::exit::Exit;
use crate::journal::history::History;
use crate::journal::{Entry, Event, Outcome, RunDir, StateDir};
use crate::journal::{show, show_target};

/// Output of `evac status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusOutput {
    /// A table.
    Human,
    /// A JSON document.
    Json,
}

/// Arguments of `evac status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// One run to show in detail; without it, every run.
    #[arg(value_name = "RUN_ID", add = super::complete::run_id())]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub latest: super::session::LatestArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusOutput::Human)]
    pub output: StatusOutput,
}

#[derive(Serialize)]
struct RunSummary {
    run_id: String,
    playbook: String,
    state: String,
    started: String,
    duration_secs: u64,
}

#[derive(Serialize)]
struct StepStatus {
    id: String,
    kind: String,
    state: String,
    duration_secs: Option<u64>,
    changes: Vec<String>,
}

fn secs(from: &str, to: &str) -> u64 {
    crate::journal::secs_between(from, to) as u64
}

/// The state of a run in one word or two.
fn state_of(state_dir: &StateDir, run_id: &str, playbook: &str, history: &History) -> String {
    use crate::journal::history::Standing;
    match history.standing() {
        Standing::Closed => "closed".into(),
        Standing::RolledBack => "rolled back".into(),
        Standing::RollbackIncomplete => "rollback incomplete".into(),
        Standing::RollbackStopped => "rollback stopped".into(),
        Standing::Ended(Outcome::Succeeded) => "succeeded".into(),
        Standing::Ended(Outcome::Failed) => "failed".into(),
        Standing::Ended(Outcome::Interrupted) => "interrupted".into(),
        Standing::Ended(Outcome::Halted) => "halted (stop condition)".into(),
        Standing::Ended(Outcome::Declined) => "stopped (approval declined)".into(),
        Standing::Unended if state_dir.is_running(playbook, run_id) => "running".into(),
        Standing::Unended => "stopped (process gone)".into(),
    }
}

fn summary(state_dir: &StateDir, run: &RunDir, entries: &[Entry]) -> RunSummary {
    let history = History::from_entries(entries);
    let playbook = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted { playbook, .. } => Some(playbook.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let started = entries.first().map(|e| e.at.clone()).unwrap_or_default();
    let ended = entries.last().map(|e| e.at.clone()).unwrap_or_default();
    RunSummary {
        run_id: run.id.clone(),
        state: state_of(state_dir, &run.id, &playbook, &history),
        playbook,
        duration_secs: secs(&started, &ended),
        started,
    }
}

/// Shows runs: exit 0, or 2 for an unknown run id.
pub fn run(args: &StatusArgs) -> Exit {
    let state_dir = match args.state.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    match &args.run_id {
        None => list(&state_dir, args.output),
        Some(id) => one(&state_dir, id, args.output),
    }
}

fn list(state_dir: &StateDir, output: StatusOutput) -> Exit {
    let runs = match state_dir.runs() {
        Ok(runs) => runs,
        Err(err) => {
            crate::say_error!("{err}");
            return Exit::StepFailed;
        }
    };
    let mut rows = Vec::new();
    for run in &runs {
        match run.read() {
            Ok(entries) => rows.push(summary(state_dir, run, &entries)),
            Err(err) => crate::say_warning!("skipping run {}: {err}", run.id),
        }
    }
    match output {
        StatusOutput::Json => crate::out!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ),
        StatusOutput::Human if rows.is_empty() => {
            crate::out!("no runs in {}", state_dir.location())
        }
        StatusOutput::Human => {
            // Each column as wide as its widest cell: names and states vary.
            let cells: Vec<[String; 5]> = rows
                .iter()
                .map(|r| {
                    [
                        r.run_id.clone(),
                        r.playbook.clone(),
                        r.state.clone(),
                        r.started.clone(),
                        format!("{}s", r.duration_secs),
                    ]
                })
                .collect();
            for line in crate::text::columns(
                ["RUN", "PLAYBOOK", "STATE", "STARTED", "DURATION"],
                &cells,
                &[],
            ) {
                crate::out!("{line}");
            }
        }
    }
    Exit::Success
}

fn one(state_dir: &StateDir, id: &str, output: StatusOutput) -> Exit {
    let run = match state_dir.open_run(id) {
        Ok(run) => run,
        Err(err) => {
            crate::say_error!("{err}");
            return super::session::journal_exit(&err);
        }
    };
    let (history, plan) = match read_run(&run) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let entries = run.read().unwrap_or_default();
    let head = summary(state_dir, &run, &entries);
    let mut started: BTreeMap<&str, &str> = BTreeMap::new();
    let mut ended: BTreeMap<&str, (&str, bool)> = BTreeMap::new();
    for e in &entries {
        match &e.event {
            Event::StepStarted { step } => {
                started.entry(step.as_str()).or_insert(e.at.as_str());
            }
            Event::StepFinished { step } => {
                ended.insert(step.as_str(), (e.at.as_str(), true));
            }
            Event::StepFailed { step, .. } => {
                ended.insert(step.as_str(), (e.at.as_str(), false));
            }
            Event::RunStarted { .. }
            | Event::Attached { .. }
            | Event::Intent { .. }
            | Event::Applied { .. }
            | Event::Converged { .. }
            | Event::Reconciled { .. }
            | Event::Baked { .. }
            | Event::ApprovalDeclined { .. }
            | Event::Approved { .. }
            | Event::StepSkipped { .. }
            | Event::Interrupted
            | Event::StopConditionFired { .. }
            | Event::RunFinished { .. }
            | Event::ScaledItself { .. }
            | Event::Closed { .. }
            | Event::RollbackStarted { .. }
            | Event::RollbackIntent { .. }
            | Event::RollbackApplied { .. }
            | Event::RollbackConverged { .. }
            | Event::RollbackFinished { .. } => {}
        }
    }
    let steps: Vec<StepStatus> = plan
        .steps
        .iter()
        .map(|s| {
            let state = match (started.get(s.id.as_str()), ended.get(s.id.as_str())) {
                (_, Some((_, true))) => "done",
                (_, Some((_, false))) => "failed",
                // Skipped because its region was down (until `resume --skipped`).
                _ if history.skipped_steps.contains_key(&s.id) => "skipped",
                (Some(_), None) => "started",
                (None, None) => "pending",
            };
            let duration_secs = match (started.get(s.id.as_str()), ended.get(s.id.as_str())) {
                (Some(a), Some((b, _))) => Some(secs(a, b)),
                _ => None,
            };
            let changes = history
                .intents
                .iter()
                .filter(|i| i.step == s.id)
                .map(|i| {
                    let mark = if history.rolled_back.contains(&i.action) {
                        " (rolled back)"
                    } else {
                        ""
                    };
                    format!(
                        "{}: {} -> {}{mark}",
                        show_target(&i.target),
                        show(&i.before),
                        show(&i.after)
                    )
                })
                .collect();
            StepStatus {
                id: s.id.clone(),
                kind: s.kind.to_string(),
                state: state.into(),
                duration_secs,
                changes,
            }
        })
        .collect();
    match output {
        StatusOutput::Json => {
            let doc = serde_json::json!({ "run": head, "steps": steps });
            crate::out!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        StatusOutput::Human => {
            crate::out!(
                "run {}  playbook {}  {}  started {}  {}s",
                head.run_id,
                head.playbook,
                head.state,
                head.started,
                head.duration_secs
            );
            for s in &steps {
                let took = s
                    .duration_secs
                    .map(|d| format!(" ({d}s)"))
                    .unwrap_or_default();
                crate::out!("  {:8} {} [{}]{took}", s.state, s.id, s.kind);
                for c in &s.changes {
                    crate::out!("           {c}");
                }
            }
            if history.rollback_unfinished() {
                crate::out!(
                    "the rollback has not finished: run `evac rollback {id}` again to finish it"
                );
            }
        }
    }
    Exit::Success
}
