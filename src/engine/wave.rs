//! A wave: every change that may happen at once (all groups of a capacity step, all
//! hosted zones of one ramp increment, the zonal shifts of a zone step, one batch of
//! a zone evacuation), made the same way forward and in rollback:
//!
//! 1. the stop conditions are checked (forward only: a rollback is the remedy);
//! 2. the live state of every target is read in batched calls;
//! 3. each live value is reconciled with what the journal says (forward: the previous
//!    wave's result, or the plan before the first change; in flight after a crash:
//!    before or after); anything else is drift and nothing is changed;
//! 4. every intent, with the live value just read as its `before`, is written and
//!    fsync'ed together;
//! 5. the calls go out concurrently, bounded, each `applied` recorded as it returns.
//!
//! The caller then waits for the wave with one batched poller ([`super::converge`]).

use std::time::Duration;

use super::cloud::{Cloud, CloudError, WeightChange};
use super::converge::{Await, Direction, await_effect};
use super::error::{EngineError, step_err};
use super::execute::Executor;
use super::live::{Reads, Snapshot};
use super::write_ahead::write_ahead;
use crate::journal::{Event, RecordSetDef, Target, Value};
use crate::journal::{show, show_target};

/// One change of a wave.
#[derive(Clone, Debug)]
pub struct Item {
    /// Stable id of the action within the run.
    pub action: String,
    /// What is changed.
    pub target: Target,
    /// The value set.
    pub after: Value,
    /// The value the plan saw, compared with live before the run first touches the
    /// target; `None` where the plan does not know it exactly.
    pub planned_before: Option<Value>,
    /// For weights: the (name, type) pairs whose sets the change covers.
    pub records: Vec<(String, String)>,
    /// For weights: the ramp increment.
    pub increment: Option<usize>,
}

/// A change whose call is to be made.
struct Call {
    action: String,
    target: Target,
    after: Value,
    sets: Vec<RecordSetDef>,
    before: Value,
}

impl<C: Cloud> Executor<'_, '_, C> {
    /// Runs a wave of changes that take effect at once (processes, protection,
    /// subnets): nothing is waited for; they are recorded converged with one fsync.
    pub(crate) async fn instant_wave(
        &self,
        step: &str,
        items: Vec<Item>,
    ) -> Result<(), EngineError> {
        let actions: Vec<String> = items.iter().map(|i| i.action.clone()).collect();
        let awaits = self.wave(step, items).await?;
        self.await_wave(step, &awaits, actions, Duration::ZERO)
            .await
    }

    /// Waits until a wave's changes have taken effect (or `timeout` passes), then
    /// records them converged with one fsync.
    pub(crate) async fn await_wave(
        &self,
        step: &str,
        awaits: &[Await],
        actions: Vec<String>,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        await_effect(
            self.cloud,
            self.recorder,
            self.interrupt,
            step,
            awaits,
            timeout,
        )
        .await?;
        self.converged(actions)
    }

    /// Records every action not yet converged as converged, with one fsync.
    pub(crate) fn converged(&self, actions: Vec<String>) -> Result<(), EngineError> {
        let events = actions
            .into_iter()
            .filter(|a| {
                self.recorder
                    .history(|h| !h.converged.contains(a) && h.intent(a).is_some())
            })
            .map(|action| Event::Converged { action })
            .collect();
        self.recorder.log_all(events)
    }

    /// Stops the run when asked to, or when a stop condition fires now.
    pub async fn checkpoint(&self) -> Result<(), EngineError> {
        if super::watch::check_stops(
            self.cloud,
            self.recorder,
            self.interrupt,
            &self.options.stops,
        )
        .await?
        {
            return Err(EngineError::Interrupted);
        }
        Ok(())
    }

    /// Runs one wave forward (see the module doc) and returns what to wait for: every
    /// change of the wave that has not converged yet.
    pub async fn wave(&self, step: &str, items: Vec<Item>) -> Result<Vec<Await>, EngineError> {
        self.guarded_wave(step, items, async { Ok(false) }).await
    }

    /// [`Self::wave`], with `guard` (a check that must pass before anything is
    /// changed) run beside the stop conditions and the live read, so that it costs
    /// no time of its own. A guard that had to wait (returns `true`) makes the wave
    /// read live again: every `before` is a value just read.
    pub async fn guarded_wave(
        &self,
        step: &str,
        items: Vec<Item>,
        guard: impl std::future::Future<Output = Result<bool, EngineError>>,
    ) -> Result<Vec<Await>, EngineError> {
        let items: Vec<Item> = items
            .into_iter()
            .filter(|i| !self.recorder.history(|h| h.converged.contains(&i.action)))
            .collect();
        let mut reads = Reads::default();
        for item in &items {
            reads.add(&item.target, item.records.iter().cloned());
        }
        let checks = async {
            self.checkpoint().await?;
            guard.await
        };
        let read = async {
            if reads.is_empty() {
                return Ok(Snapshot::default());
            }
            reads.fetch(self.cloud).await.map_err(step_err(step))
        };
        let (waited, live) = futures::join!(checks, read);
        let mut live = live?;
        if waited? && !reads.is_empty() {
            self.checkpoint().await?;
            live = reads.fetch(self.cloud).await.map_err(step_err(step))?;
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        let mut sends = Vec::new();
        let mut awaits = Vec::new();
        // Groups whose desired moved by itself since the run last knew it. A change
        // recorded in flight is the run's own, reconciled as such below.
        let own: Vec<(String, String, u32, u32)> = items
            .iter()
            .filter_map(|item| {
                let Target::Capacity { region, group } = &item.target else {
                    return None;
                };
                if self.recorder.history(|h| h.intent(&item.action).is_some()) {
                    return None;
                }
                let Some(Value::Capacity(expected)) = self.expected(item).value else {
                    return None;
                };
                let Some(Value::Capacity(now)) = live.value(&item.target, &item.after) else {
                    return None;
                };
                (now.desired != expected.desired
                    && now.min == expected.min
                    && now.max == expected.max)
                    .then(|| (region.clone(), group.clone(), expected.desired, now.desired))
            })
            .collect();
        self.note_own_scaling(own).await?;
        for item in items {
            let now = live
                .value(&item.target, &item.after)
                .ok_or_else(|| missing(step, &item.target))?;
            match self.reconcile(&item, &now)? {
                Decision::Send { note } => {
                    events.extend(note);
                    let sets = match &item.target {
                        Target::Weights { zone_id } => live.sets(zone_id, &item.after),
                        _ => Vec::new(),
                    };
                    events.push(Event::Intent {
                        action: item.action.clone(),
                        step: step.to_owned(),
                        target: item.target.clone(),
                        before: now.clone(),
                        after: item.after.clone(),
                        record_sets: sets,
                        increment: item.increment,
                    });
                    sends.push(Call {
                        sets: upsert(&live, &item),
                        action: item.action,
                        target: item.target,
                        after: item.after,
                        before: now,
                    });
                }
                Decision::Done {
                    note,
                    change_id,
                    outcome,
                } => {
                    events.extend(note);
                    awaits.extend(await_of(&item.target, &outcome, &now, change_id));
                }
            }
        }
        // Every intent of the wave is durable before its first call.
        let sent = write_ahead(
            self.recorder,
            self.interrupt,
            self.options.concurrency,
            events,
            sends,
            |s| async move {
                let change_id = send(self.cloud, &s.target, &s.after, &s.sets, Some(&s.before))
                    .await
                    .map_err(step_err(step))?;
                let applied = Event::Applied {
                    action: s.action.clone(),
                    change_id: change_id.clone(),
                };
                Ok((
                    vec![applied],
                    await_of(&s.target, &s.after, &s.before, change_id),
                ))
            },
        )
        .await?;
        awaits.extend(sent.into_iter().flatten());
        Ok(awaits)
    }

    /// Decides what to do with one change given its live value.
    fn reconcile(&self, item: &Item, live: &Value) -> Result<Decision, EngineError> {
        let force = self.options.force;
        let in_flight = self.recorder.history(|h| {
            h.intent(&item.action)
                .map(|i| (i.before.clone(), h.applied.get(&item.action).cloned()))
        });
        if let Some((before, applied)) = in_flight {
            // Resumed after a crash or a failure in the middle of this change.
            match in_flight_state(live, &before, &item.after) {
                Some(InFlight::Done) => {
                    let change_id = applied.clone().flatten();
                    let note = applied
                        .is_none()
                        .then(|| Event::Reconciled {
                            action: item.action.clone(),
                            decision: "live equals after: done".into(),
                            accepted: None,
                        })
                        .into_iter()
                        .collect();
                    return Ok(Decision::Done {
                        note,
                        change_id,
                        outcome: item.after.clone(),
                    });
                }
                Some(InFlight::Redo) => return Ok(Decision::Send { note: Vec::new() }),
                None => {}
            }
            if force {
                return Ok(Decision::Done {
                    note: vec![Event::Reconciled {
                        action: item.action.clone(),
                        decision: format!("--force: accepted live {} as the outcome", show(live)),
                        accepted: Some(live.clone()),
                    }],
                    change_id: None,
                    outcome: live.clone(),
                });
            }
            return Err(EngineError::Drift {
                action: item.action.clone(),
                target: show_target(&item.target),
                expected: format!(
                    "{} (before) or {} (after)",
                    show(&before),
                    show(&item.after)
                ),
                after: show(&item.after),
                live: show(live),
            });
        }
        let expected = self.expected(item);
        let drifted = expected
            .value
            .as_ref()
            .is_some_and(|expected| differs(live, expected));
        match expected.value {
            Some(expected_value) if drifted => {
                if force {
                    // The live value becomes what the earlier changes left.
                    let notes = expected
                        .left
                        .into_iter()
                        .map(|(action, outcome)| Event::Reconciled {
                            action,
                            decision: format!(
                                "--force: accepted live {} as the outcome",
                                show(live)
                            ),
                            accepted: Some(overlay(&outcome, live)),
                        })
                        .collect();
                    Ok(Decision::Send { note: notes })
                } else {
                    Err(EngineError::Drift {
                        action: item.action.clone(),
                        target: show_target(&item.target),
                        expected: show(&expected_value),
                        after: show(&item.after),
                        live: show(&restrict(live, &expected_value)),
                    })
                }
            }
            // Already there and nobody else touched it: nothing to change.
            _ if live == &item.after => Ok(Decision::Done {
                note: Vec::new(),
                change_id: None,
                outcome: item.after.clone(),
            }),
            _ => Ok(Decision::Send { note: Vec::new() }),
        }
    }

    /// What the live value of `item`'s target must be before the run changes it:
    /// what the journal says the run last left there, else what the plan saw before
    /// the run first touched it. Weights are compared record set by record set: a
    /// set's expected weight is what the last change to that set left, whichever
    /// step or increment made it, so changes to other sets of the same hosted zone
    /// say nothing of it.
    fn expected(&self, item: &Item) -> Expected {
        match (&item.target, &item.after) {
            (Target::Weights { zone_id }, Value::Weights(after)) => {
                let left = self
                    .recorder
                    .history(|h| h.weights_left(zone_id, after.keys()));
                let planned = match &item.planned_before {
                    Some(Value::Weights(planned)) => planned.clone(),
                    _ => Default::default(),
                };
                let mut expected = std::collections::BTreeMap::new();
                let mut by_action: std::collections::BTreeMap<String, Value> = Default::default();
                for key in after.keys() {
                    if let Some((action, weight)) = left.get(key) {
                        expected.insert(key.clone(), *weight);
                        if !by_action.contains_key(action) {
                            let outcome = self
                                .recorder
                                .history(|h| h.intent(action).map(|i| h.outcome(i)));
                            if let Some(outcome) = outcome {
                                by_action.insert(action.clone(), outcome);
                            }
                        }
                    } else if let Some(weight) = planned.get(key) {
                        expected.insert(key.clone(), *weight);
                    }
                }
                Expected {
                    value: (!expected.is_empty()).then_some(Value::Weights(expected)),
                    left: by_action.into_iter().collect(),
                }
            }
            _ => {
                let left = self.recorder.history(|h| h.left_on(&item.target));
                Expected {
                    value: left
                        .as_ref()
                        .map(|(_, value)| value.clone())
                        .or_else(|| item.planned_before.clone()),
                    left: left.into_iter().collect(),
                }
            }
        }
    }
}

/// What a target must be found at before a change, and the earlier changes (with
/// the values they left) that say so.
struct Expected {
    value: Option<Value>,
    left: Vec<(String, Value)>,
}

/// Where a change recorded as in flight stands, given its live value.
enum InFlight {
    /// Live has the change's `after`.
    Done,
    /// Live still has (at least partly) the change's `before`: send it again.
    Redo,
}

/// Whether a change recorded with `before` and `after` is done, to be sent again, or
/// neither (drift). Weights are judged record set by record set: a change that
/// reached some sets and not others is sent again.
fn in_flight_state(live: &Value, before: &Value, after: &Value) -> Option<InFlight> {
    if live == after {
        return Some(InFlight::Done);
    }
    match (live, before, after) {
        (Value::Weights(live), Value::Weights(before), Value::Weights(after)) => after
            .iter()
            .all(|(key, weight)| {
                let now = live.get(key);
                now == Some(weight) || now.is_some() && now == before.get(key)
            })
            .then_some(InFlight::Redo),
        // Desired moves by itself (the group's scaling policies) between the min
        // and max evac set: the bounds say whether the change took.
        (Value::Capacity(live), Value::Capacity(before), Value::Capacity(after)) => {
            let bounds = |c: &crate::state::Capacity| (c.min, c.max);
            if bounds(before) != bounds(after) {
                if bounds(live) == bounds(after) {
                    Some(InFlight::Done)
                } else {
                    (bounds(live) == bounds(before)).then_some(InFlight::Redo)
                }
            } else if bounds(live) == bounds(after) {
                // Only desired changes: set it again, absolute and harmless.
                Some(InFlight::Redo)
            } else {
                None
            }
        }
        _ if live == before => Some(InFlight::Redo),
        _ => None,
    }
}

/// Whether `live` differs from `expected` (weights: on a set `expected` names).
/// Capacity keeps floors, not exact values: a group's own scaling moves desired
/// between its min and max during a drill (the target scales out as traffic
/// arrives, the source in as it leaves), and that is not drift; min or max changed
/// by someone else, or desired below the min evac expects, is.
fn differs(live: &Value, expected: &Value) -> bool {
    match (live, expected) {
        (Value::Weights(live), Value::Weights(expected)) => expected
            .iter()
            .any(|(key, weight)| live.get(key) != Some(weight)),
        (Value::Capacity(live), Value::Capacity(expected)) => {
            live.min != expected.min || live.max != expected.max || live.desired < expected.min
        }
        _ => live != expected,
    }
}

/// `live` cut to the record sets `like` names (other values as they are).
fn restrict(live: &Value, like: &Value) -> Value {
    match (live, like) {
        (Value::Weights(live), Value::Weights(like)) => Value::Weights(
            live.iter()
                .filter(|(k, _)| like.contains_key(*k))
                .map(|(k, w)| (k.clone(), *w))
                .collect(),
        ),
        _ => live.clone(),
    }
}

/// `outcome` with the live values of the record sets it names (other values: live).
fn overlay(outcome: &Value, live: &Value) -> Value {
    match (outcome, live) {
        (Value::Weights(outcome), Value::Weights(live)) => Value::Weights(
            outcome
                .iter()
                .map(|(k, w)| (k.clone(), live.get(k).copied().unwrap_or(*w)))
                .collect(),
        ),
        _ => live.clone(),
    }
}

/// What reconciliation decided for one change.
enum Decision {
    /// Journal the intent and make the call (after journaling `note`).
    Send { note: Vec<Event> },
    /// Nothing to call: wait for `outcome` (after journaling `note`).
    Done {
        note: Vec<Event>,
        change_id: Option<String>,
        outcome: Value,
    },
}

fn missing(step: &str, target: &Target) -> EngineError {
    EngineError::Step {
        step: step.to_owned(),
        message: format!("{} not found", show_target(target)),
    }
}

/// The record sets `item` changes its zone's sets into: the live sets with its
/// weights (each sent as a DELETE of the live set and a CREATE of this one).
fn upsert(live: &Snapshot, item: &Item) -> Vec<RecordSetDef> {
    match &item.target {
        Target::Weights { zone_id } => live.with_weights(zone_id, &item.after),
        _ => Vec::new(),
    }
}

/// What a change that set `after` over `before` must be waited for with.
pub fn await_of(
    target: &Target,
    after: &Value,
    before: &Value,
    change_id: Option<String>,
) -> Option<Await> {
    match (target, after) {
        (Target::Capacity { region, group }, Value::Capacity(wanted)) => {
            let direction = match before {
                Value::Capacity(was) if was.desired > wanted.desired => Direction::Down,
                _ => Direction::Up,
            };
            Some(Await::Capacity {
                region: region.clone(),
                group: group.clone(),
                desired: wanted.desired,
                direction,
                balancers: false,
            })
        }
        (Target::Weights { .. }, _) => change_id
            .filter(|id| !id.is_empty())
            .map(|id| Await::Change { id }),
        (
            Target::ZonalShift { region, resource },
            Value::ZonalShift {
                zonal_shift: Some(shift),
            },
        ) => Some(Await::Shift {
            region: region.clone(),
            resource: resource.clone(),
            comment: shift.comment.clone(),
        }),
        _ => None,
    }
}

/// Makes the call that sets `target` to `value` (`live`, for processes: what is
/// suspended now, so that only the difference is resumed or suspended).
pub async fn send<C: Cloud>(
    cloud: &C,
    target: &Target,
    value: &Value,
    sets: &[RecordSetDef],
    live: Option<&Value>,
) -> Result<Option<String>, CloudError> {
    let unfit = || {
        CloudError::new(
            format!("change {}", show_target(target)),
            format!("the value {} does not fit it", show(value)),
        )
    };
    match (target, value) {
        (Target::Capacity { region, group }, Value::Capacity(capacity)) => {
            cloud.set_capacity(region, group, *capacity).await?;
            Ok(None)
        }
        (Target::Subnets { region, group }, Value::Subnets { subnets }) => {
            cloud.set_subnets(region, group, subnets).await?;
            Ok(None)
        }
        (Target::Processes { region, group }, Value::Processes { suspended }) => {
            let now: &[String] = match live {
                Some(Value::Processes { suspended }) => suspended,
                _ => &[],
            };
            let resume: Vec<String> = now
                .iter()
                .filter(|p| !suspended.contains(p))
                .cloned()
                .collect();
            let suspend: Vec<String> = suspended
                .iter()
                .filter(|p| !now.contains(p))
                .cloned()
                .collect();
            if !resume.is_empty() {
                cloud.resume_processes(region, group, &resume).await?;
            }
            if !suspend.is_empty() {
                cloud.suspend_processes(region, group, &suspend).await?;
            }
            Ok(None)
        }
        (Target::Protection { region, group }, Value::Protection { protected }) => {
            let now: &[String] = match live {
                Some(Value::Protection { protected }) => protected,
                _ => &[],
            };
            let unprotect: Vec<String> = now
                .iter()
                .filter(|i| !protected.contains(i))
                .cloned()
                .collect();
            if !unprotect.is_empty() {
                cloud
                    .set_protection(region, group, &unprotect, false)
                    .await?;
            }
            // Protection goes back only on instances still in the group: those a
            // drain terminated are gone.
            let wanted: Vec<&String> = protected.iter().filter(|i| !now.contains(i)).collect();
            if !wanted.is_empty() {
                let members = cloud.instances(region, std::slice::from_ref(group)).await?;
                let present: Vec<String> = wanted
                    .into_iter()
                    .filter(|i| {
                        members
                            .get(group)
                            .is_some_and(|m| m.instances.iter().any(|x| &x.id == *i))
                    })
                    .cloned()
                    .collect();
                if !present.is_empty() {
                    cloud.set_protection(region, group, &present, true).await?;
                }
            }
            Ok(None)
        }
        (Target::Weights { zone_id }, Value::Weights(_)) => {
            if sets.is_empty() {
                return Err(unfit());
            }
            // Compare-and-swap: each set is deleted as it was read just before the
            // intent and created with its new weight, so a set someone changed
            // since makes Route 53 refuse the batch instead of it landing.
            let Some(Value::Weights(now)) = live else {
                return Err(CloudError::new(
                    format!("change {}", show_target(target)),
                    "the weights read before the change are missing: a weight change is only sent against what it replaces".to_owned(),
                ));
            };
            let mut changes = Vec::new();
            for to in sets {
                let Some(was) = now.get(&to.key()).copied() else {
                    return Err(CloudError::new(
                        format!("change {}", show_target(target)),
                        format!("record set {} was not read before the change", to.key()),
                    ));
                };
                if was != to.weight {
                    changes.push(WeightChange {
                        from: RecordSetDef {
                            weight: was,
                            ..to.clone()
                        },
                        to: to.clone(),
                    });
                }
            }
            if changes.is_empty() {
                return Ok(None);
            }
            // Within Route 53's limits on one request: as few as they allow, sent
            // together and waited for together (their ids, space-separated).
            let batches = crate::route53::change_batches(&changes);
            let ids = futures::future::try_join_all(
                batches
                    .iter()
                    .map(|batch| cloud.change_weights(zone_id, batch)),
            )
            .await?;
            Ok(Some(ids.join(" ")))
        }
        (
            Target::Instance {
                region, instance, ..
            },
            Value::Instance { .. },
        ) => {
            cloud.replace_instance(region, instance).await?;
            Ok(None)
        }
        (
            Target::ZonalShift { region, resource },
            Value::ZonalShift {
                zonal_shift: Some(shift),
            },
        ) => {
            let now = jiff::Timestamp::now().as_second();
            let secs = shift.expires.map_or(0, |at| at.saturating_sub(now));
            let minutes = u32::try_from((secs.max(0) as u64).div_ceil(60))
                .unwrap_or(crate::plan::shift::MAX_MINUTES)
                .clamp(
                    crate::plan::shift::MIN_MINUTES,
                    crate::plan::shift::MAX_MINUTES,
                );
            let id = cloud
                .start_shift(region, resource, &shift.away_from, &shift.comment, minutes)
                .await?;
            Ok(Some(id))
        }
        (Target::ZonalShift { region, resource }, Value::ZonalShift { zonal_shift: None }) => {
            // Only the shift read live is cancelled, found by its comment: never
            // another that took its place since.
            let Some(Value::ZonalShift {
                zonal_shift: Some(live),
            }) = live
            else {
                return Ok(None);
            };
            let active = cloud.zonal_shifts(region, resource).await?;
            for shift in active.iter().filter(|s| s.comment == live.comment) {
                cloud.cancel_shift(region, resource, &shift.id).await?;
            }
            Ok(None)
        }
        _ => Err(unfit()),
    }
}
