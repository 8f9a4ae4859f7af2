//! Progress on a terminal: one line per step with its state and elapsed time, and
//! under a running step a bar of instances in service or of ramp increments with a
//! bake countdown. Without a terminal, plain lines instead of bars.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::execute::{show, show_target};
use crate::engine::reporter::{Progress, Reporter};
use crate::journal::{Entry, Event};

/// Prints lines for people on stderr, above the progress bars while they are drawn.
#[derive(Clone, Debug)]
pub enum Printer {
    /// Above these bars.
    Bars(MultiProgress),
    /// Plainly: no bars are drawn.
    Plain,
}

impl Printer {
    /// Prints one line (or several).
    pub fn say(&self, text: &str) {
        match self {
            Printer::Bars(multi) => {
                let _ = multi.println(text);
            }
            Printer::Plain => eprintln!("{text}"),
        }
    }
}

/// The human reporter.
pub struct TerminalReporter {
    multi: MultiProgress,
    live: bool,
    bars: Mutex<BTreeMap<String, (ProgressBar, Option<ProgressBar>)>>,
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
        Self {
            multi: MultiProgress::with_draw_target(target),
            live,
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    /// Prints a line above the bars (or plainly).
    pub fn line(&self, text: &str) {
        self.printer().say(text);
    }

    /// A handle that prints lines above the bars from anywhere (a signal handler's
    /// task included), so that no message is drawn over.
    pub fn printer(&self) -> Printer {
        if self.live {
            Printer::Bars(self.multi.clone())
        } else {
            Printer::Plain
        }
    }

    fn step_style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn detail_style() -> ProgressStyle {
        ProgressStyle::with_template("    {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    fn main_message(&self, step: &str, msg: String) {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((main, _)) = bars.get(step) {
            main.set_message(msg);
        }
    }

    fn detail(&self, step: &str, len: u64, pos: u64, msg: String) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let Some((main, detail)) = bars.get_mut(step) else {
            return;
        };
        let bar = detail.get_or_insert_with(|| {
            let bar = self.multi.insert_after(main, ProgressBar::new(len));
            bar.set_style(Self::detail_style());
            bar
        });
        bar.set_length(len);
        bar.set_position(pos);
        bar.set_message(msg);
    }
}

impl Reporter for TerminalReporter {
    fn entry(&self, entry: &Entry) {
        match &entry.event {
            Event::StepStarted { step } => {
                if self.live {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(Self::step_style());
                    bar.set_prefix(step.clone());
                    bar.set_message("running");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.bars
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(step.clone(), (bar, None));
                } else {
                    eprintln!("step {step}: started");
                }
            }
            Event::StepFinished { step } | Event::StepFailed { step, .. } => {
                let failed = matches!(entry.event, Event::StepFailed { .. });
                let bars = self
                    .bars
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(step);
                let text = if let Event::StepFailed { error, .. } = &entry.event {
                    format!("x {step}: {error}")
                } else {
                    format!("✓ {step}: done")
                };
                match bars {
                    Some((main, detail)) => {
                        if let Some(detail) = detail {
                            detail.finish_and_clear();
                        }
                        main.set_style(
                            ProgressStyle::with_template("{msg} [{elapsed}]")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        main.finish_with_message(text);
                    }
                    None => eprintln!(
                        "{}",
                        if failed {
                            text
                        } else {
                            format!("step {step}: done")
                        }
                    ),
                }
            }
            Event::Applied { action, .. } if !self.live => eprintln!("  applied {action}"),
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
            } => self.line(&format!("  {action}: {decision}")),
            _ => {}
        }
    }

    fn progress(&self, progress: &Progress) {
        match progress {
            Progress::InService {
                step,
                current,
                wanted,
            } => {
                if self.live {
                    self.detail(
                        step,
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
                if self.live {
                    self.detail(
                        step,
                        *of as u64,
                        increment.saturating_sub(1) as u64,
                        format!("increment {increment}/{of}: sending"),
                    );
                } else {
                    eprintln!("  step {step}: increment {increment}/{of}");
                }
            }
            Progress::Syncing { step, in_sync, of } => {
                if self.live {
                    self.main_message(step, format!("waiting for INSYNC ({in_sync}/{of} changes)"));
                }
            }
            Progress::Holding {
                step,
                remaining_secs,
            } => {
                if self.live {
                    self.main_message(step, format!("holding, {remaining_secs}s left"));
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
                        format!("{watched} is {live}, held {held_secs}s of {hold_secs}s"),
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
            eprintln!();
            self.multi.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}
