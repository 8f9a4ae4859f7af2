//! Progress on a terminal: one line per step (and one for a rollback) with its state
//! and elapsed time, and under it a bar of instances in service, of ramp increments
//! with the bake countdown, or of rollback waves. Run, resume and rollback share it.
//! Without a terminal, plain lines instead of bars. Messages go through the shell,
//! which prints them around the bars.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::reporter::{Progress, Reporter};
use crate::journal::{Entry, Event};
use crate::journal::{show, show_target};

/// The key of the rollback's line.
const ROLLBACK: &str = "rollback";

/// The bars of one step (or of the rollback).
struct Line {
    main: ProgressBar,
    detail: Option<ProgressBar>,
    /// The ramp increment (or rollback wave) in progress, and how many there are.
    stage: Option<(usize, usize)>,
}

#[derive(Default)]
struct State {
    lines: BTreeMap<String, Line>,
    /// A rollback is running: all progress belongs to its line.
    rolling_back: bool,
    /// Bakes already announced in plain mode: (step, stage).
    announced: BTreeSet<(String, usize)>,
    /// In plain mode, per action: its step, resource, value and increment, from its
    /// intent, so that its answer is said in those words.
    intents: std::collections::BTreeMap<String, (String, String, String, Option<usize>)>,
    /// Finished lines, kept alive: a dropped bar is wiped from the screen at the
    /// next message (indicatif's "zombie" lines), and a step's verdict must stay.
    finished: Vec<ProgressBar>,
}

/// The human reporter.
pub struct TerminalReporter {
    multi: MultiProgress,
    live: bool,
    state: Mutex<State>,
}

impl Default for TerminalReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalReporter {
    /// Bars on stderr when it is a terminal; plain lines otherwise.
    pub fn new() -> Self {
        let live = std::io::stderr().is_terminal();
        let target = if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        // Every message from now on is printed around the bars.
        if live {
            crate::shell::set_bars(Some(multi.clone()));
        }
        Self {
            multi,
            live,
            state: Mutex::new(State::default()),
        }
    }

    /// Prints a line above the bars (or plainly).
    pub fn line(&self, text: &str) {
        crate::say!("{text}");
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn step_style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn detail_style() -> ProgressStyle {
        ProgressStyle::with_template("    {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    /// Opens the line of a step (or of the rollback).
    fn open(&self, key: &str, message: &str) {
        if !self.live {
            crate::say!("{key}: {message}");
            return;
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(Self::step_style());
        bar.set_prefix(key.to_owned());
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.state().lines.insert(
            key.to_owned(),
            Line {
                main: bar,
                detail: None,
                stage: None,
            },
        );
    }

    /// Closes a line with its final text, which stays on the screen.
    fn close(&self, key: &str, text: String) {
        let line = self.state().lines.remove(key);
        match line {
            Some(line) => {
                if let Some(detail) = line.detail {
                    detail.finish_and_clear();
                }
                line.main.set_style(
                    ProgressStyle::with_template("{msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                line.main.finish_with_message(text);
                self.state().finished.push(line.main);
            }
            None => crate::say!("{text}"),
        }
    }

    /// Where a step's progress is shown: its own line, or the rollback's.
    fn key(&self, step: &str) -> String {
        if self.state().rolling_back {
            ROLLBACK.to_owned()
        } else {
            step.to_owned()
        }
    }

    fn main_message(&self, key: &str, msg: String) {
        if let Some(line) = self.state().lines.get(key) {
            line.main.set_message(msg);
        }
    }

    /// Sets the bar under a line: `pos` of `len`, with a message.
    fn detail(&self, key: &str, len: u64, pos: u64, msg: String) {
        let mut state = self.state();
        let Some(line) = state.lines.get_mut(key) else {
            return;
        };
        let bar = line.detail.get_or_insert_with(|| {
            let bar = self.multi.insert_after(&line.main, ProgressBar::new(len));
            bar.set_style(Self::detail_style());
            bar
        });
        bar.set_length(len);
        bar.set_position(pos);
        bar.set_message(msg);
    }

    /// The stage (increment or wave) of a line: sets it, or reads it.
    fn stage(&self, key: &str, set: Option<(usize, usize)>) -> Option<(usize, usize)> {
        let mut state = self.state();
        let line = state.lines.get_mut(key)?;
        if set.is_some() {
            line.stage = set;
        }
        line.stage
    }

    /// In plain mode, whether this is the first time this bake is seen.
    fn first_sight(&self, key: &str, stage: usize) -> bool {
        self.state().announced.insert((key.to_owned(), stage))
    }
}

impl Reporter for TerminalReporter {
    fn entry(&self, entry: &Entry) {
        match &entry.event {
            Event::StepStarted { step } => self.open(step, "running"),
            Event::StepFinished { step } => self.close(step, format!("✓ {step}: done")),
            Event::StepSkipped { step, reason } => {
                self.open(step, "skipped");
                self.close(step, format!("- {step}: skipped: {reason}"));
            }
            Event::StepFailed { step, error, .. } => self.close(step, format!("x {step}: {error}")),
            Event::RollbackStarted { fast } => {
                self.open(
                    ROLLBACK,
                    if *fast {
                        "restoring (--fast: three waves)"
                    } else {
                        "restoring, newest change first"
                    },
                );
                self.state().rolling_back = true;
            }
            Event::RollbackFinished {
                verified,
                differences,
                ..
            } => {
                self.state().rolling_back = false;
                self.close(
                    ROLLBACK,
                    if *verified {
                        "✓ rollback: live state matches the recorded originals".to_owned()
                    } else {
                        format!(
                            "x rollback: {} difference(s) from the recorded originals",
                            differences.len()
                        )
                    },
                );
            }
            Event::Intent {
                action,
                step,
                target,
                after,
                increment,
                ..
            } => {
                self.state().intents.insert(
                    action.clone(),
                    (step.clone(), show_target(target), show(after), *increment),
                );
            }
            Event::Applied { action, .. } if !self.live => {
                let known = self.state().intents.get(action).cloned();
                match known {
                    Some((step, target, after, increment)) => {
                        let at = increment
                            .map(|n| format!(" increment {n}"))
                            .unwrap_or_default();
                        crate::say!("  step {step}{at}: {target} -> {after}");
                    }
                    None => crate::say!("  applied {}", crate::text::one_line(action)),
                }
            }
            Event::RollbackIntent {
                target,
                before,
                after,
                ..
            } => {
                self.line(&format!(
                    "  restoring {}: {} -> {}",
                    show_target(target),
                    show(before),
                    show(after)
                ));
            }
            Event::Reconciled {
                action, decision, ..
            } => {
                let known = self.state().intents.get(action).cloned();
                let what = match known {
                    Some((step, target, _, _)) => format!("step {step}: {target}"),
                    None => crate::text::one_line(action).into_owned(),
                };
                self.line(&format!("  {what}: {}", crate::text::one_line(decision)));
            }
            Event::RunStarted { .. }
            | Event::Attached { .. }
            | Event::Applied { .. }
            | Event::Converged { .. }
            | Event::Baked { .. }
            | Event::ApprovalDeclined { .. }
            | Event::Approved { .. }
            | Event::Interrupted
            | Event::StopConditionFired { .. }
            | Event::RunFinished { .. }
            | Event::ScaledItself { .. }
            | Event::Closed { .. }
            | Event::RollbackApplied { .. }
            | Event::RollbackConverged { .. } => {}
        }
    }

    fn recall(&self, history: &crate::journal::history::History) {
        let mut state = self.state();
        for intent in &history.intents {
            state.intents.insert(
                intent.action.clone(),
                (
                    intent.step.clone(),
                    show_target(&intent.target),
                    show(&intent.after),
                    intent.increment,
                ),
            );
        }
    }

    fn progress(&self, progress: &Progress) {
        match progress {
            Progress::InService {
                step,
                current: _,
                wanted: _,
                leaving,
            } if *leaving > 0 => {
                // Going down: what is waited for is capacity leaving service.
                if self.live {
                    let key = self.key(step);
                    self.main_message(
                        &key,
                        format!("waiting for {leaving} unit(s) to leave service"),
                    );
                }
            }
            Progress::InService {
                step,
                current,
                wanted,
                ..
            } => {
                if self.live {
                    let key = self.key(step);
                    self.main_message(&key, "waiting for instances InService".into());
                    self.detail(
                        &key,
                        u64::from(*wanted).max(1),
                        u64::from(*current),
                        "instances InService".into(),
                    );
                }
            }
            Progress::Increment {
                step,
                increment,
                of,
            } => {
                let key = self.key(step);
                self.stage(&key, Some((*increment, *of)));
                if self.live {
                    self.main_message(&key, "shifting traffic".into());
                    self.detail(
                        &key,
                        *of as u64,
                        increment.saturating_sub(1) as u64,
                        format!("increment {increment}/{of}: sending"),
                    );
                } else {
                    crate::say!("  step {step}: increment {increment}/{of}");
                }
            }
            Progress::RollbackWave {
                wave,
                of,
                step,
                restores,
            } => {
                self.stage(ROLLBACK, Some((*wave, *of)));
                // A fast rollback's waves are not a step's: they say what they restore.
                let what = if step == ROLLBACK {
                    format!("wave {wave}/{of}: restoring {restores} resource(s)")
                } else {
                    format!("wave {wave}/{of}: restoring {restores} of step {step}")
                };
                if self.live {
                    self.main_message(ROLLBACK, "restoring".into());
                    self.detail(ROLLBACK, *of as u64, wave.saturating_sub(1) as u64, what);
                } else {
                    crate::say!("  rollback {what}");
                }
            }
            Progress::Shifting { step, applied, of } => {
                if self.live {
                    let key = self.key(step);
                    self.main_message(&key, "moving traffic out of the zone".into());
                    self.detail(
                        &key,
                        (*of as u64).max(1),
                        *applied as u64,
                        "zonal shifts applied".into(),
                    );
                }
            }
            Progress::Syncing { step, in_sync, of } => {
                if self.live {
                    let key = self.key(step);
                    let stage = self.stage(&key, None);
                    let what = format!("waiting for INSYNC ({in_sync}/{of} changes)");
                    match stage {
                        Some((n, all)) => {
                            let label = if key == ROLLBACK { "wave" } else { "increment" };
                            self.detail(
                                &key,
                                all as u64,
                                n.saturating_sub(1) as u64,
                                format!("{label} {n}/{all}: {what}"),
                            );
                        }
                        None => self.main_message(&key, what),
                    }
                }
            }
            Progress::Holding {
                step,
                remaining_secs,
            } => {
                let key = self.key(step);
                let stage = self.stage(&key, None);
                let label = if key == ROLLBACK { "wave" } else { "increment" };
                match stage {
                    // A bake: the stage is done, the countdown runs.
                    Some((n, all)) => {
                        let what =
                            format!("{label} {n}/{all} in sync; baking, {remaining_secs}s left");
                        if self.live {
                            self.main_message(&key, "baking".into());
                            self.detail(&key, all as u64, n as u64, what);
                        } else if self.first_sight(&key, n) {
                            crate::say!("  {key}: {what}");
                        }
                    }
                    // A wait step.
                    None => {
                        if self.live {
                            self.main_message(&key, format!("waiting, {remaining_secs}s left"));
                        } else if self.first_sight(&key, 0) {
                            crate::say!("  {key}: waiting {remaining_secs}s");
                        }
                    }
                }
            }
            Progress::Checking {
                step,
                watched,
                live,
                held_secs,
                hold_secs,
            } => {
                if self.live {
                    self.main_message(
                        step,
                        format!("watching {watched}: {live}, held {held_secs}s of {hold_secs}s"),
                    );
                }
            }
        }
    }

    fn ask(&self, question: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        // The bars stay hidden while the question waits, so they cannot draw over it.
        if self.live {
            let _ = self.multi.clear();
            self.multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        let answer = super::ask_terminal_async(question);
        if answer.is_none() {
            self.asked();
        }
        answer
    }

    fn asked(&self) {
        if self.live {
            // Whatever was typed (or not) ends the question's line.
            crate::say!("");
            self.multi.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}
