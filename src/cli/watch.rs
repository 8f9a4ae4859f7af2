//! `evac watch`: follows a run from its state dir, local or S3, from any machine.
//!
//! The watcher reads; it never takes the lock. Each poll it reads the journal's new
//! entries and shows them with the runner's own reporter: step lines, increments
//! (from the intents), the bake countdown (from the plan's bake and the time the
//! increment converged), stop conditions, the rollback. It ends when the process
//! holding the run is gone (the run ended, or was killed), after one last read, and
//! exits as the run did: its recorded exit code, 5 for a rollback that left a
//! difference, 4 for a run whose process is gone without an end.
//!
//! What is shown is what the journal says: with state in S3 an entry reaches S3 at
//! most a second after it is written, and the watcher sees it at its next poll.
//! Counts of instances in service are not journaled, so they are not shown.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::session::{LatestArgs, Out, RunOutput, StateArgs};
use crate::engine::reporter::{Progress, Reporter};
use crate::exit::Exit;
use crate::journal::history::{History, Standing};
use crate::journal::{Entry, Event, Outcome, StateDir};
use crate::plan::{Change, Plan};
use crate::playbook::HumanDuration;

/// Arguments of `evac watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The run to follow: its id, or `latest`.
    #[arg(value_name = "RUN_ID", add = super::complete::run_id())]
    pub run_id: String,
    #[command(flatten)]
    pub latest: LatestArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Progress bars on stderr, or the journal's entries and progress as JSON lines
    /// on stdout (as `run --output json` prints them).
    #[arg(long, value_enum, default_value_t = RunOutput::Human)]
    pub output: RunOutput,
    /// How often the journal is read.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_every)]
    pub every: HumanDuration,
}

fn parse_every(text: &str) -> Result<HumanDuration, String> {
    HumanDuration::parse(text).and_then(|d| {
        if d.0 < Duration::from_millis(100) || d.0 > Duration::from_secs(60) {
            Err(format!("`{text}`: read the journal every 100ms to 60s"))
        } else {
            Ok(d)
        }
    })
}

/// Follows the run to its end.
pub fn run(args: &WatchArgs) -> Exit {
    let state = match args.state.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    let out = Out::new(args.output);
    out.say(&format!(
        "watching run {} in {} (read every {}; Ctrl-C stops watching, not the run)",
        args.run_id,
        state.location(),
        args.every
    ));
    let mut follower = Follower::default();
    let mut plan: Option<Plan> = None;
    // The journal as last read.
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        // Whether the run's process held the run before this read: when it did not,
        // this read is the last, and holds everything the run wrote.
        let holding = holds(&state, &args.run_id);
        match read(&state, &args.run_id, &mut plan) {
            Ok((read, plan)) => {
                follower.show(&read, plan, out.reporter());
                entries = read;
            }
            // A run being created has no plan or no entry yet.
            Err(Unready::Young) if holding => {}
            Err(Unready::Young) => {
                crate::say_error!(
                    "run {} has no journal entry, and no process holds it: it never started",
                    args.run_id
                );
                return Exit::NeedsHuman;
            }
            Err(Unready::Failed(exit)) => return exit,
        }
        if !holding {
            let history = History::from_entries(&entries);
            let exit = exit_of(&history);
            out.say(&ending(&args.run_id, &history, exit));
            return exit;
        }
        std::thread::sleep(args.every.0);
    }
}

/// Why a read shows nothing.
enum Unready {
    /// The run's plan or first entry is not written yet.
    Young,
    /// It cannot be read: said, with the exit to end with.
    Failed(Exit),
}

/// The run's journal as the state dir holds it now, and its plan (read once).
fn read<'p>(
    state: &StateDir,
    run_id: &str,
    plan: &'p mut Option<Plan>,
) -> Result<(Vec<Entry>, &'p Plan), Unready> {
    let failed = |err: crate::journal::JournalError| {
        if let crate::journal::JournalError::Missing { .. } = err {
            return Unready::Young;
        }
        crate::say_error!("{err}");
        Unready::Failed(super::session::journal_exit(&err))
    };
    let run = state.open_run(run_id).map_err(failed)?;
    if plan.is_none() {
        let read: Plan = crate::journal::read_nofollow(&run.plan_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(Unready::Young)?;
        if !read.is_intact() {
            crate::say_error!(
                "{}: the plan of run {run_id} was edited after the run started (its digest does not match its content): a human must look",
                run.plan_path().display()
            );
            return Err(Unready::Failed(Exit::NeedsHuman));
        }
        *plan = Some(read);
    }
    let entries = run.read().map_err(failed)?;
    let plan = plan.as_ref().ok_or(Unready::Young)?;
    Ok((entries, plan))
}

/// Whether the run's own process holds the run and is alive.
fn holds(state: &StateDir, run_id: &str) -> bool {
    crate::journal::state_dir::playbook_of(run_id)
        .is_some_and(|playbook| state.is_running(playbook, run_id))
}

/// How the watched run ended, as an exit code: the one its process recorded, else
/// the one its outcome stands for.
pub fn exit_of(history: &History) -> Exit {
    let recorded = || {
        history
            .exit
            .and_then(Exit::from_code)
            .or_else(|| history.outcome.map(exit_of_outcome))
    };
    match history.standing() {
        Standing::Ended(_) | Standing::RolledBack | Standing::Closed => {
            recorded().unwrap_or(Exit::Interrupted)
        }
        Standing::RollbackIncomplete => Exit::NeedsHuman,
        Standing::RollbackStopped | Standing::Unended => Exit::Interrupted,
    }
}

fn exit_of_outcome(outcome: Outcome) -> Exit {
    match outcome {
        Outcome::Succeeded => Exit::Success,
        Outcome::Failed => Exit::StepFailed,
        Outcome::Interrupted | Outcome::Declined => Exit::Interrupted,
        Outcome::Halted => Exit::StopCondition,
    }
}

/// The watcher's last line.
fn ending(run_id: &str, history: &History, exit: Exit) -> String {
    let how = match history.standing() {
        Standing::Ended(Outcome::Succeeded) => "succeeded".to_owned(),
        Standing::Ended(Outcome::Failed) => "failed".to_owned(),
        Standing::Ended(Outcome::Interrupted) => "was interrupted".to_owned(),
        Standing::Ended(Outcome::Halted) => "was halted by a stop condition".to_owned(),
        Standing::Ended(Outcome::Declined) => "stopped at a declined approval".to_owned(),
        Standing::RolledBack => "was rolled back".to_owned(),
        Standing::RollbackIncomplete => {
            "was rolled back, but live state differs from the originals".to_owned()
        }
        Standing::RollbackStopped => "stopped while rolling back".to_owned(),
        Standing::Closed => "was closed".to_owned(),
        Standing::Unended => {
            "stopped without an end: its process is gone (killed, or its machine lost)".to_owned()
        }
    };
    format!("run {run_id} {how} (exit {})", exit.code())
}

/// What the watcher has shown so far.
#[derive(Default)]
struct Follower {
    /// How many entries are shown.
    seen: usize,
    /// Increments announced: (step, increment).
    increments: BTreeSet<(String, usize)>,
    /// Per action of a ramp: its step.
    ramp: BTreeMap<String, String>,
    /// The bake under way: its step, and when it ends (seconds since the epoch).
    baking: Option<(String, i64)>,
}

impl Follower {
    /// Shows the entries not shown yet, and the progress they imply.
    fn show(&mut self, entries: &[Entry], plan: &Plan, reporter: &dyn Reporter) {
        for entry in entries.iter().skip(self.seen) {
            reporter.entry(entry);
            if let Some(line) = said(&entry.event) {
                crate::say!("{line}");
            }
            if let Some(progress) = self.progress(entry, plan) {
                reporter.progress(&progress);
            }
        }
        self.seen = self.seen.max(entries.len());
        if let Some((step, ends)) = &self.baking {
            let now = jiff::Timestamp::now().as_second();
            let remaining_secs = u64::try_from(ends - now).unwrap_or(0);
            reporter.progress(&Progress::Holding {
                step: step.clone(),
                remaining_secs,
            });
        }
    }

    /// The progress the runner showed when it wrote `entry`, if any.
    fn progress(&mut self, entry: &Entry, plan: &Plan) -> Option<Progress> {
        match &entry.event {
            Event::Intent {
                action,
                step,
                increment: Some(increment),
                ..
            } => {
                self.ramp.insert(action.clone(), step.clone());
                if self.increments.insert((step.clone(), *increment)) {
                    self.baking = None;
                    return Some(Progress::Increment {
                        step: step.clone(),
                        increment: *increment,
                        of: increments_of(plan, step),
                    });
                }
            }
            Event::Converged { action, .. } => {
                if let Some(step) = self.ramp.get(action).cloned() {
                    let bake = bake_of(plan, &step);
                    let at = crate::journal::parse_time(&entry.at)
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs() as i64);
                    if bake > 0 {
                        self.baking = Some((step, at + bake as i64));
                    }
                }
            }
            Event::Baked { .. }
            | Event::StepFinished { .. }
            | Event::StepFailed { .. }
            | Event::RunFinished { .. }
            | Event::StopConditionFired { .. }
            | Event::Interrupted => self.baking = None,
            Event::RunStarted { .. }
            | Event::Attached { .. }
            | Event::StepStarted { .. }
            | Event::Intent { .. }
            | Event::Applied { .. }
            | Event::Reconciled { .. }
            | Event::ApprovalDeclined { .. }
            | Event::Approved { .. }
            | Event::StepSkipped { .. }
            | Event::ScaledItself { .. }
            | Event::Closed { .. }
            | Event::RollbackStarted { .. }
            | Event::RollbackIntent { .. }
            | Event::RollbackApplied { .. }
            | Event::RollbackConverged { .. }
            | Event::RollbackFinished { .. } => {}
        }
        None
    }
}

/// What the runner's process says of an entry beside its display (the display
/// itself shows steps, increments and the rollback).
fn said(event: &Event) -> Option<String> {
    match event {
        Event::StopConditionFired { condition, state } => Some(format!(
            "stop condition fired: {condition} is {state}; the run halts"
        )),
        Event::Interrupted => Some("the run was interrupted (Ctrl-C or a stop signal)".into()),
        Event::ApprovalDeclined { step, .. } => Some(format!("approval of step {step} declined")),
        Event::Attached { command, user, pid } if command != "run" => Some(format!(
            "`evac {command}` took the run over (pid {pid}{})",
            if user.is_empty() {
                String::new()
            } else {
                format!(", by {user}")
            }
        )),
        Event::RunStarted { .. }
        | Event::Attached { .. }
        | Event::StepStarted { .. }
        | Event::Intent { .. }
        | Event::Applied { .. }
        | Event::Converged { .. }
        | Event::Reconciled { .. }
        | Event::Baked { .. }
        | Event::Approved { .. }
        | Event::StepFinished { .. }
        | Event::StepSkipped { .. }
        | Event::StepFailed { .. }
        | Event::RunFinished { .. }
        | Event::ScaledItself { .. }
        | Event::Closed { .. }
        | Event::RollbackStarted { .. }
        | Event::RollbackIntent { .. }
        | Event::RollbackApplied { .. }
        | Event::RollbackConverged { .. }
        | Event::RollbackFinished { .. } => None,
    }
}

/// How many ramp increments a step has in the plan.
fn increments_of(plan: &Plan, step: &str) -> usize {
    changes_of(plan, step)
        .filter_map(|c| match c {
            Change::Weights { ramp, .. } => Some(ramp.len()),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// The bake of a step's increments, in seconds.
fn bake_of(plan: &Plan, step: &str) -> u64 {
    changes_of(plan, step)
        .filter_map(|c| match c {
            Change::Weights { bake_secs, .. } => Some(*bake_secs),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn changes_of<'a>(plan: &'a Plan, step: &str) -> impl Iterator<Item = &'a Change> {
    plan.steps
        .iter()
        .filter(move |s| s.id == step)
        .flat_map(|s| &s.changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(events: Vec<Event>) -> History {
        let entries: Vec<Entry> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                Entry::new(
                    i as u64 + 1,
                    "2026-12-05T00:00:00Z".into(),
                    String::new(),
                    event,
                )
            })
            .collect();
        History::from_entries(&entries)
    }

    #[test]
    fn the_watcher_ends_with_the_exit_the_run_recorded() {
        let finished = |outcome, exit| Event::RunFinished { outcome, exit };
        assert_eq!(
            exit_of(&history(vec![finished(Outcome::Succeeded, Some(0))])),
            Exit::Success
        );
        // Drift fails a run with 5, not 1: the recorded code wins over the outcome.
        assert_eq!(
            exit_of(&history(vec![finished(Outcome::Failed, Some(5))])),
            Exit::NeedsHuman
        );
        // A journal written before exit codes were recorded: the outcome's code.
        assert_eq!(
            exit_of(&history(vec![finished(Outcome::Halted, None)])),
            Exit::StopCondition
        );
        // A process gone without an end is resumable: 4.
        assert_eq!(exit_of(&history(vec![])), Exit::Interrupted);
        // Rolled back after a failure: the run's own code; a rollback that left a
        // difference: 5.
        let rolled = |verified| {
            history(vec![
                finished(Outcome::Failed, Some(1)),
                Event::RollbackStarted { fast: false },
                Event::RollbackFinished {
                    outcome: Outcome::Succeeded,
                    verified,
                    differences: vec![],
                    gone: vec![],
                },
            ])
        };
        assert_eq!(exit_of(&rolled(true)), Exit::StepFailed);
        assert_eq!(exit_of(&rolled(false)), Exit::NeedsHuman);
    }
}
