//! Running a plan: steps in order, each made of waves ([`super::wave`]); stop
//! conditions checked at every step's start and before every wave, and watched
//! beside the run the whole time.

use std::time::Duration;

use tokio::time::Instant;

use super::cloud::Cloud;
use super::error::EngineError;
use super::interrupt::Interrupt;
use super::live::Reads;
use super::recorder::Recorder;
use super::watch::{CAPACITY_POLL_CAP, Poll, poll_until, watch_stops};
use crate::journal::{Event, Value, show};
use crate::plan::{Plan, StepKind, StepPlan, StopRef};

/// How the engine behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// The run: named in the comment of each zonal shift it starts.
    pub run_id: String,
    /// Answer approvals with yes.
    pub yes: bool,
    /// At most this many calls of one wave in flight at once.
    pub concurrency: usize,
    /// Resume: accept drifted live values instead of stopping.
    pub force: bool,
    /// Conditions that halt the run.
    pub stops: Vec<StopRef>,
    /// How often stop conditions are polled while the run waits, bakes or asks.
    pub stop_poll: Duration,
    /// Who answers approvals on the terminal, for the journal.
    pub operator: String,
    /// Resume `--skipped`: run the steps skipped because a region was down.
    pub finish_skipped: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            run_id: String::new(),
            yes: false,
            concurrency: 8,
            force: false,
            stops: Vec::new(),
            stop_poll: Duration::from_secs(5),
            operator: "terminal".to_owned(),
            finish_skipped: false,
        }
    }
}

/// The id of a zone step's zonal shift of one resource.
pub fn shift_action(step: &str, region: &str, resource: &str) -> String {
    format!("{step}:shift:{region}:{resource}")
}

/// The id of a capacity action: stable across resumes.
pub fn capacity_action(step: &str, region: &str, group: &str) -> String {
    format!("{step}:asg:{region}:{group}")
}

/// The id of one ramp increment in one hosted zone.
pub fn weights_action(step: &str, zone_id: &str, increment: usize) -> String {
    format!("{step}:dns:{zone_id}:{increment}")
}

/// The id of a zone evacuation's change to a group: `part` is `subnets`,
/// `processes`, or `replace:INSTANCE`.
pub fn zone_action(step: &str, region: &str, group: &str, part: &str) -> String {
    format!("{step}:zone:{region}:{group}:{part}")
}

/// Runs a plan's steps (all of them; those the history shows finished are skipped).
pub struct Executor<'a, 'r, C: Cloud> {
    /// AWS.
    pub cloud: &'a C,
    /// Journal and reporter.
    pub recorder: &'a Recorder<'r>,
    /// Behaviour.
    pub options: &'a Options,
    /// Ctrl-C and stop conditions.
    pub interrupt: &'a Interrupt,
}

impl<C: Cloud> Executor<'_, '_, C> {
    /// Runs every step not yet finished, with the stop conditions watched beside it:
    /// a condition that fires stops the run through the interrupt, so the steps end
    /// (the watcher itself never does).
    pub async fn run(&self, plan: &Plan) -> Result<(), EngineError> {
        tokio::select! {
            result = self.run_steps(plan) => result,
            never = watch_stops(self.cloud, self.recorder, self.interrupt, &self.options.stops, self.options.stop_poll) => match never {},
        }
    }

    async fn run_steps(&self, plan: &Plan) -> Result<(), EngineError> {
        let mut first = true;
        for (index, step) in plan.steps.iter().enumerate() {
            let finish = self.options.finish_skipped;
            if self.recorder.history(|h| {
                h.finished_steps.contains(&step.id)
                    && !(finish && h.skipped_steps.contains_key(&step.id))
            }) {
                continue;
            }
            // A condition that fired while the previous step held, however long the
            // poll interval, stops the run before this step changes anything.
            self.checkpoint().await?;
            // The run's zonal shifts last until the drill ends.
            self.keep_shifts(plan, index, first).await?;
            first = false;
            if let Some(reason) = &step.skipped
                && !self.options.finish_skipped
            {
                // The operator said the region is down: nothing is sent to it.
                self.recorder.log(Event::StepSkipped {
                    step: step.id.clone(),
                    reason: reason.clone(),
                })?;
                continue;
            }
            self.recorder.log(Event::StepStarted {
                step: step.id.clone(),
            })?;
            match self.run_step(step).await {
                Ok(()) => self.recorder.log(Event::StepFinished {
                    step: step.id.clone(),
                })?,
                Err(err @ (EngineError::Step { .. } | EngineError::Aws { .. })) => {
                    let (code, kind) = match &err {
                        EngineError::Aws { error, .. } => {
                            (error.code.clone(), Some(error.kind.name().to_owned()))
                        }
                        _ => (None, None),
                    };
                    self.recorder.log(Event::StepFailed {
                        step: step.id.clone(),
                        error: err.to_string(),
                        code,
                        kind,
                    })?;
                    return Err(err);
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    async fn run_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        match step.kind {
            StepKind::ScaleUp => self.capacity_step(step).await,
            StepKind::Drain => self.capacity_step(step).await,
            StepKind::ShiftTraffic => self.traffic_step(step).await,
            StepKind::EvacuateZone => self.zone_step(step).await,
            StepKind::Wait => self.wait_step(step).await,
            StepKind::Approve => self.approve_step(step).await,
            StepKind::Check => self.check_step(step).await,
        }
    }

    /// Checks that every group whose capacity this run raised still has it: desired
    /// as the run left it, and as many InService. Traffic must not move onto a
    /// region, and a source must not drain away, when that capacity is not there now.
    /// A desired capacity someone changed stops the run at once; instances not (or no
    /// longer) in service are waited for, up to `timeout`. Returns whether it waited.
    /// Records the groups of `seen` (region, group, desired expected, desired live)
    /// that scaled themselves since last recorded, each with the cause of its newest
    /// successful scaling activity. Reading the cause is best effort: a failure to
    /// read it is said in its place, never a reason to stop.
    pub async fn note_own_scaling(
        &self,
        seen: Vec<(String, String, u32, u32)>,
    ) -> Result<(), EngineError> {
        let fresh: Vec<(String, String, u32, u32)> = seen
            .into_iter()
            .filter_map(|(region, group, expected, live)| {
                let from = self
                    .recorder
                    .history(|h| {
                        h.scaled_itself
                            .get(&(region.clone(), group.clone()))
                            .copied()
                    })
                    .unwrap_or(expected);
                (from != live).then_some((region, group, from, live))
            })
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let events = futures::future::join_all(fresh.into_iter().map(
            |(region, group, from, to)| async move {
                let cause = match self.cloud.activities(&region, &group).await {
                    Ok(activities) => activities
                        .iter()
                        .find(|a| a.status == "Successful")
                        .map(|a| {
                            if a.cause.is_empty() {
                                a.description.clone()
                            } else {
                                a.cause.clone()
                            }
                        })
                        .unwrap_or_else(|| "no scaling activity says why".to_owned()),
                    Err(err) => format!("unknown ({err})"),
                };
                Event::ScaledItself {
                    region,
                    group,
                    from,
                    to,
                    cause,
                }
            },
        ))
        .await;
        self.recorder.log_all(events)?;
        Ok(())
    }

    pub async fn check_capacity(&self, step: &str, timeout: Duration) -> Result<bool, EngineError> {
        let raised = self.recorder.history(|h| h.raised_capacity());
        if raised.is_empty() {
            return Ok(false);
        }
        let rounds = std::cell::Cell::new(0u32);
        let mut reads = Reads::default();
        for r in &raised {
            reads.group(&r.region, &r.group);
        }
        let deadline = crate::engine::watch::deadline(timeout);
        let accepted = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let probe = || async {
            rounds.set(rounds.get() + 1);
            let live = reads
                .fetch(self.cloud)
                .await
                .map_err(super::error::step_err(step))?;
            let mut short = None;
            let grown: Vec<(String, String, u32, u32)> = raised
                .iter()
                .filter_map(|r| {
                    let g = live.group(&r.region, &r.group)?;
                    (g.capacity.desired > r.left.desired).then(|| {
                        (
                            r.region.clone(),
                            r.group.clone(),
                            r.left.desired,
                            g.capacity.desired,
                        )
                    })
                })
                .collect();
            self.note_own_scaling(grown).await?;
            for r in &raised {
                let state = live.group(&r.region, &r.group);
                let (desired, in_service) =
                    state.map_or((0, 0), |g| (g.capacity.desired, g.in_service));
                // A floor: the group may have scaled out by itself since.
                let ok = desired >= r.left.desired && in_service >= r.left.desired;
                if ok || accepted.borrow().contains(&r.action) {
                    continue;
                }
                if self.options.force
                    && let Some(state) = state
                {
                    accepted.borrow_mut().insert(r.action.clone());
                    self.recorder.log(Event::Reconciled {
                        action: r.action.clone(),
                        decision: format!(
                            "--force: accepted live {} with {in_service} InService as the outcome",
                            show(&Value::Capacity(state.capacity))
                        ),
                        accepted: Some(Value::Capacity(state.capacity)),
                    })?;
                    continue;
                }
                let lost = EngineError::CapacityLost {
                    step: r.step.clone(),
                    region: r.region.clone(),
                    group: r.group.clone(),
                    wanted: r.left.desired,
                    desired,
                    in_service,
                };
                if desired < r.left.desired || Instant::now() >= deadline {
                    return Err(lost);
                }
                short.get_or_insert(lost);
            }
            Ok(match short {
                None => Poll::Done(()),
                Some(lost) => Poll::Waiting(lost.to_string()),
            })
        };
        poll_until(
            self.interrupt,
            step,
            timeout,
            deadline,
            CAPACITY_POLL_CAP,
            probe,
        )
        .await?;
        Ok(rounds.get() > 1)
    }
}

#[cfg(test)]
mod show_tests {
    use super::*;

    #[test]
    fn set_identifiers_with_spaces_are_shown_whole() {
        let weights = Value::Weights(
            [
                ("api.example.com. A api use1".to_owned(), 10),
                ("api.example.com. A api-usw2".to_owned(), 90),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(show(&weights), "\"api use1\"=10 api-usw2=90");
    }
}
