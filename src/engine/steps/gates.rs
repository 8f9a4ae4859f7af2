//! `wait`, `approve` and `check`: steps that change nothing and hold the run. None of
//! them blocks the runtime, so the stop conditions stay watched throughout.

use std::time::Duration;

use tokio::time::Instant;

use crate::engine::cloud::Cloud;
use crate::engine::error::{EngineError, step_err};
use crate::engine::execute::Executor;
use crate::engine::reporter::Progress;
use crate::engine::watch::{CAPACITY_POLL_CAP, Poll, hold, poll_until};
use crate::journal::Event;
use crate::plan::{Change, StepPlan, StopRef};

impl<C: Cloud> Executor<'_, '_, C> {
    /// Holds for the step's time.
    pub(crate) async fn wait_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        for change in &step.changes {
            if let Change::Wait { secs } = change {
                hold(
                    self.recorder,
                    self.interrupt,
                    &step.id,
                    Duration::from_secs(*secs),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Asks the human (or takes `--yes`). The question waits on its own thread: the
    /// stop conditions keep being polled, and one that fires, or Ctrl-C, ends it.
    pub(crate) async fn approve_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        if self.recorder.history(|h| h.approved.contains(&step.id)) {
            return Ok(());
        }
        let question = step
            .changes
            .iter()
            .find_map(|c| match c {
                Change::Approve { message } => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_else(|| format!("Continue after step {}?", step.id));
        if self.options.yes {
            return self.recorder.log(Event::Approved {
                step: step.id.clone(),
                by: format!("{} with --yes", self.options.operator),
            });
        }
        let reporter = self.recorder.reporter();
        let Some(answer) = reporter.ask(&question) else {
            return Err(EngineError::Step {
                step: step.id.clone(),
                message: "this step needs an approval and there is no terminal to ask on: rerun with --yes to approve it".into(),
            });
        };
        // Whatever ends the wait, the display comes back.
        struct DisplayBack<'a>(&'a dyn crate::engine::reporter::Reporter);
        impl Drop for DisplayBack<'_> {
            fn drop(&mut self) {
                self.0.asked();
            }
        }
        let _display_back = DisplayBack(reporter);
        let yes = tokio::select! {
            answer = answer => answer.unwrap_or(false),
            () = self.interrupt.stopped() => return Err(EngineError::Interrupted),
        };
        let by = self.options.operator.clone();
        if yes {
            self.recorder.log(Event::Approved {
                step: step.id.clone(),
                by,
            })
        } else {
            self.recorder.log(Event::ApprovalDeclined {
                step: step.id.clone(),
                by,
            })?;
            Err(EngineError::Declined {
                step: step.id.clone(),
            })
        }
    }

    /// Waits until the watched alarm or health check is in the wanted state, or the
    /// metric past its threshold, and has held it for the step's hold time.
    pub(crate) async fn check_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        // What is watched, as the progress shows it, and what the step waits for,
        // as its timeout says it.
        let (watched, awaited, hold_secs) = match step.changes.first() {
            Some(Change::Check {
                target,
                state,
                hold_secs,
                ..
            }) => (
                target.to_string(),
                format!("for {target} to be {state}"),
                *hold_secs,
            ),
            Some(Change::MetricCheck {
                metric,
                among,
                above,
                below,
                hold_secs,
                ..
            }) => (
                if among.is_empty() {
                    metric.to_string()
                } else {
                    format!("the share of {metric}")
                },
                format!(
                    "until {}",
                    crate::plan::metric_condition(metric, among, *above, *below)
                ),
                *hold_secs,
            ),
            // A check with nothing to watch would pass without looking: refused.
            other => {
                return Err(EngineError::Step {
                    step: step.id.clone(),
                    message: format!(
                        "the plan gives this check step {} to watch, not one alarm, health check or metric: the plan was edited or made by another evac; make a new plan",
                        match other {
                            None => "nothing".to_owned(),
                            Some(change) => format!(
                                "a `{}` change",
                                serde_json::to_value(change)
                                    .ok()
                                    .and_then(|v| v["type"].as_str().map(str::to_owned))
                                    .unwrap_or_default()
                            ),
                        }
                    ),
                });
            }
        };
        let timeout = Duration::from_secs(step.timeout_secs);
        let hold_for = Duration::from_secs(hold_secs);
        let since: std::cell::Cell<Option<Instant>> = std::cell::Cell::new(None);
        poll_until(
            self.interrupt,
            &step.id,
            timeout,
            crate::engine::watch::deadline(timeout),
            CAPACITY_POLL_CAP,
            || {
                let (since, watched, awaited) = (&since, &watched, &awaited);
                async move {
                    let (live, holds) = self.read_check(step).await?;
                    let held = if holds {
                        let start = since.get().unwrap_or_else(Instant::now);
                        since.set(Some(start));
                        start.elapsed()
                    } else {
                        since.set(None);
                        Duration::ZERO
                    };
                    self.recorder.progress(Progress::Checking {
                        step: step.id.clone(),
                        watched: watched.clone(),
                        live: live.clone(),
                        held_secs: held.as_secs(),
                        hold_secs,
                    });
                    if holds && held >= hold_for {
                        return Ok(Poll::Done(()));
                    }
                    Ok(Poll::Waiting(format!(
                        "waiting {awaited} for {hold_secs}s; last seen {live}"
                    )))
                }
            },
        )
        .await
    }

    /// What a check step watches, read now: as shown, and whether it is as wanted.
    async fn read_check(&self, step: &StepPlan) -> Result<(String, bool), EngineError> {
        match step.changes.first() {
            Some(Change::Check { target, state, .. }) => {
                let live = match target {
                    StopRef::Alarm { region, name } => self
                        .cloud
                        .alarm_state(region, name)
                        .await
                        .map_err(step_err(&step.id))?
                        .unwrap_or_else(|| "missing".into()),
                    StopRef::HealthCheck { id } => {
                        let healthy = self
                            .cloud
                            .health_check_healthy(id)
                            .await
                            .map_err(step_err(&step.id))?;
                        (if healthy { "healthy" } else { "unhealthy" }).to_owned()
                    }
                };
                let holds = live == *state;
                Ok((live, holds))
            }
            Some(Change::MetricCheck {
                metric,
                among,
                above,
                below,
                ..
            }) => {
                let values = futures::future::try_join_all(
                    std::iter::once(metric)
                        .chain(among)
                        .map(|q| self.cloud.metric(q)),
                )
                .await
                .map_err(step_err(&step.id))?;
                let part = values.first().copied().flatten();
                let value = if among.is_empty() {
                    part
                } else {
                    // A metric with no datapoint adds nothing to the total.
                    let total: f64 = values.iter().flatten().sum();
                    part.filter(|_| total > 0.0).map(|p| p * 100.0 / total)
                };
                let Some(value) = value else {
                    return Ok(("no datapoint".to_owned(), false));
                };
                let holds = above.is_none_or(|a| value > a) && below.is_none_or(|b| value < b);
                let shown = if among.is_empty() {
                    format!("{value}")
                } else {
                    format!("{value:.1}%")
                };
                Ok((shown, holds))
            }
            _ => Ok((String::new(), true)),
        }
    }
}
