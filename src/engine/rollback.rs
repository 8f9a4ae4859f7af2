//! Rollback: the journal's changes reversed, run as waves like the run itself,
//! journaled, idempotent and resumable; then the live state is checked against the
//! recorded originals.
//!
//! Ramped (the default), the waves mirror the run backwards: step by step, newest
//! first, each step's restores at once; a ramp goes back increment by increment
//! across all its hosted zones, with the run's bakes between. `--fast` restores in
//! the order that keeps traffic safe, each as one wave: the capacity the run took
//! away (and a zone's subnets and processes) back and InService, then every weight
//! in one change per hosted zone, then the capacity the run added taken back.

use std::collections::BTreeMap;
use std::time::Duration;

use super::cloud::Cloud;
use super::converge::{Await, Direction, await_effect};
use super::error::{EngineError, step_err};
use super::execute::Options;
use super::interrupt::Interrupt;
use super::live::{Reads, Snapshot, record_pairs};
use super::recorder::Recorder;
use super::watch::hold;
use super::wave::{await_of, send};
use super::write_ahead::write_ahead;
use crate::journal::history::{History, Intent};
use crate::journal::{Event, Outcome, RecordSetDef, Target, Value};
use crate::journal::{show, show_target};
use crate::plan::{Change, Plan};

/// How long a rollback wave waits for its changes to take effect.
pub const ROLLBACK_WAIT: Duration = Duration::from_secs(15 * 60);

/// One restore: a target back to a value, covering one or more forward actions.
struct Undo<'a> {
    covers: Vec<String>,
    /// The first intent on the target.
    intent: &'a Intent,
    value: Value,
    /// For weights: the full record sets to write back.
    record_sets: Vec<RecordSetDef>,
}

/// Restores made together, and the bake after them (ramped weights).
struct Wave<'a> {
    step: String,
    restores: Vec<Undo<'a>>,
    bake: Duration,
}

/// What a finished rollback found.
#[derive(Debug, Default)]
pub struct RollbackReport {
    /// Restores that needed a call.
    pub restored: usize,
    /// Restores skipped because live state already had the value.
    pub already: usize,
    /// Instances a zone evacuation replaced, which rollback leaves as they are.
    pub replaced: usize,
    /// Differences between live state and the recorded originals afterwards.
    pub differences: Vec<String>,
    /// What cannot come back because it no longer exists: instances that were
    /// protected from scale-in and were terminated (a `force_protected` drain).
    pub gone: Vec<String>,
}

impl<C: Cloud> super::execute::Executor<'_, '_, C> {
    /// Rolls back every change the journal records that is not rolled back yet.
    pub async fn rollback(&self, plan: &Plan, fast: bool) -> Result<RollbackReport, EngineError> {
        rollback(
            self.cloud,
            self.recorder,
            self.interrupt,
            self.options,
            plan,
            fast,
        )
        .await
    }
}

/// [`Executor::rollback`](super::execute::Executor::rollback), its parts spelled out.
async fn rollback<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    options: &Options,
    plan: &Plan,
    fast: bool,
) -> Result<RollbackReport, EngineError> {
    recorder.log(Event::RollbackStarted { fast })?;
    let history = recorder.history(History::clone);
    let (replaced, pending): (Vec<&Intent>, Vec<&Intent>) = history
        .intents
        .iter()
        .filter(|i| !history.rolled_back.contains(&i.action))
        .partition(|i| matches!(i.target, Target::Instance { .. }));
    // Replaced instances are not brought back: the group kept its capacity, and its
    // restored subnets and processes let it rebalance.
    recorder.log_all(
        replaced
            .iter()
            .map(|i| Event::RollbackConverged {
                action: i.action.clone(),
            })
            .collect(),
    )?;
    let bakes: BTreeMap<&str, u64> = plan
        .steps
        .iter()
        .filter_map(|s| {
            s.changes.iter().find_map(|c| match c {
                Change::Weights { bake_secs, .. } => Some((s.id.as_str(), *bake_secs)),
                _ => None,
            })
        })
        .collect();
    let waves = if fast {
        fast_waves(&pending)
    } else {
        ramped_waves(&pending, &bakes)
    };
    let mut report = RollbackReport {
        replaced: replaced.len(),
        ..RollbackReport::default()
    };
    let count = waves.len();
    for (i, wave) in waves.iter().enumerate() {
        if interrupt.is_set() {
            return Err(EngineError::Interrupted);
        }
        recorder.progress(crate::engine::reporter::Progress::RollbackWave {
            wave: i + 1,
            of: count,
            step: wave.step.clone(),
            restores: wave.restores.len(),
        });
        let changed = restore(cloud, recorder, interrupt, options, wave).await?;
        report.restored += changed;
        report.already += wave.restores.len() - changed;
        if changed > 0 && !wave.bake.is_zero() && i + 1 < count {
            hold(recorder, interrupt, &wave.step, wave.bake).await?;
        }
    }
    (report.differences, report.gone) = verify(cloud, &history).await?;
    recorder.log(Event::RollbackFinished {
        outcome: if report.differences.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        verified: report.differences.is_empty(),
        differences: report.differences.clone(),
        gone: report.gone.clone(),
    })?;
    Ok(report)
}

/// The wave a forward intent belongs to: its step, for weights its increment, and
/// whether it is a zonal shift. A zone step's shifts went first, so, backwards, they
/// are cancelled last: traffic returns to the zone once its capacity is back.
fn wave_key(intent: &Intent) -> (String, Option<usize>, bool) {
    (
        intent.step.clone(),
        intent.increment,
        matches!(intent.target, Target::ZonalShift { .. }),
    )
}

/// The run backwards: waves newest first, each restoring its intents to their
/// `before`.
fn ramped_waves<'a>(pending: &[&'a Intent], bakes: &BTreeMap<&str, u64>) -> Vec<Wave<'a>> {
    let mut order: Vec<(String, Option<usize>, bool)> = Vec::new();
    let mut members: BTreeMap<(String, Option<usize>, bool), Vec<&'a Intent>> = BTreeMap::new();
    for intent in pending {
        let key = wave_key(intent);
        if !members.contains_key(&key) {
            order.push(key.clone());
        }
        members.entry(key).or_default().push(intent);
    }
    order
        .into_iter()
        .rev()
        .filter_map(|key| {
            let intents = members.remove(&key)?;
            let weights = intents
                .iter()
                .any(|i| matches!(i.target, Target::Weights { .. }));
            let bake = if weights {
                Duration::from_secs(bakes.get(key.0.as_str()).copied().unwrap_or(0))
            } else {
                Duration::ZERO
            };
            Some(Wave {
                step: key.0,
                restores: collapse(&intents),
                bake,
            })
        })
        .collect()
}

/// Three waves, traffic kept safe: capacity the run took away comes back first (with
/// subnets and processes), then every weight and zonal shift, then capacity the run
/// added goes.
fn fast_waves<'a>(pending: &[&'a Intent]) -> Vec<Wave<'a>> {
    let restores = collapse(pending);
    let mut back: Vec<Undo> = Vec::new();
    let mut weights: Vec<Undo> = Vec::new();
    let mut down: Vec<Undo> = Vec::new();
    for r in restores {
        let raises = match (&r.value, &r.intent.after) {
            (Value::Capacity(original), Value::Capacity(set)) => original.desired > set.desired,
            _ => true,
        };
        match (&r.intent.target, raises) {
            (Target::Weights { .. } | Target::ZonalShift { .. }, _) => weights.push(r),
            (Target::Capacity { .. }, false) => down.push(r),
            _ => back.push(r),
        }
    }
    [back, weights, down]
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|restores| Wave {
            step: "rollback".to_owned(),
            restores,
            bake: Duration::ZERO,
        })
        .collect()
}

/// One restore per target, to its earliest recorded `before`, covering every
/// intent on it. Weights are restored record set by record set: each set to the
/// `before` of the first intent that changed it, so that two steps (or two
/// increments) over sets of one hosted zone restore every set each touched.
fn collapse<'a>(intents: &[&'a Intent]) -> Vec<Undo<'a>> {
    let mut order: Vec<&Target> = Vec::new();
    let mut by_target: BTreeMap<&Target, Vec<&'a Intent>> = BTreeMap::new();
    for intent in intents {
        if !by_target.contains_key(&intent.target) {
            order.push(&intent.target);
        }
        by_target.entry(&intent.target).or_default().push(intent);
    }
    order
        .into_iter()
        .filter_map(|target| {
            let all = by_target.get(target)?;
            let first = all.first()?;
            let (value, record_sets) = match &first.before {
                Value::Weights(_) => first_weights(all),
                before => (before.clone(), first.record_sets.clone()),
            };
            Some(Undo {
                covers: all.iter().map(|i| i.action.clone()).collect(),
                intent: first,
                value,
                record_sets,
            })
        })
        .collect()
}

/// Every record set the weight intents `all` changed, at the weight the first of
/// them found, with its full definition as that intent recorded it.
fn first_weights(all: &[&Intent]) -> (Value, Vec<RecordSetDef>) {
    let mut weights = BTreeMap::new();
    let mut sets: Vec<RecordSetDef> = Vec::new();
    for intent in all {
        let Value::Weights(before) = &intent.before else {
            continue;
        };
        for (key, weight) in before {
            if weights.contains_key(key) {
                continue;
            }
            weights.insert(key.clone(), *weight);
            if let Some(set) = intent.record_sets.iter().find(|d| &d.key() == key) {
                sets.push(set.clone());
            }
        }
    }
    (Value::Weights(weights), sets)
}

/// One resource a rollback would restore, as `evac rollback` lists it.
#[derive(Debug)]
pub struct Pending {
    /// The resource.
    pub target: Target,
    /// The step of the newest change to it.
    pub step: String,
    /// The value the run left there (or `--force` accepted).
    pub left: Value,
    /// The original: each part's `before` of the run's first change to it.
    pub original: Value,
}

/// What a rollback of `history` has left to restore, newest change first, one per
/// resource (weights record set by record set, as [`rollback`] restores them).
pub fn pending(history: &History) -> Vec<Pending> {
    let intents: Vec<&Intent> = history
        .intents
        .iter()
        .filter(|i| !history.rolled_back.contains(&i.action))
        .collect();
    let newest = |r: &Undo<'_>| {
        r.covers
            .iter()
            .filter_map(|a| intents.iter().position(|i| &i.action == a))
            .max()
            .unwrap_or(0)
    };
    let mut restores = collapse(&intents);
    restores.sort_by_key(|r| std::cmp::Reverse(newest(r)));
    restores
        .into_iter()
        .map(|r| {
            let covered: Vec<&Intent> = intents
                .iter()
                .filter(|i| r.covers.contains(&i.action))
                .copied()
                .collect();
            let left = covered.iter().fold(r.intent.after.clone(), |left, i| {
                match (left, history.outcome(i)) {
                    (Value::Weights(mut so_far), Value::Weights(set)) => {
                        so_far.extend(set);
                        Value::Weights(so_far)
                    }
                    (_, set) => set,
                }
            });
            let step = covered
                .last()
                .map_or_else(|| r.intent.step.clone(), |i| i.step.clone());
            Pending {
                target: r.intent.target.clone(),
                step,
                left,
                original: r.value,
            }
        })
        .collect()
}

/// Reads every target of `restores` at once.
async fn read<C: Cloud>(cloud: &C, restores: &[Undo<'_>]) -> Result<Snapshot, EngineError> {
    let mut reads = Reads::default();
    for r in restores {
        reads.add(&r.intent.target, record_pairs(&r.record_sets));
    }
    reads.fetch(cloud).await.map_err(step_err("rollback"))
}

/// Whether `live` has every value of `wanted` (weights: the sets the run changed;
/// protection: the instances that were protected, others may be too).
fn matches(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (Value::Weights(live), Value::Weights(wanted)) => {
            wanted.iter().all(|(k, w)| live.get(k) == Some(w))
        }
        (Value::Protection { protected: live }, Value::Protection { protected: wanted }) => {
            wanted.iter().all(|id| live.contains(id))
        }
        (live, wanted) => live == wanted,
    }
}

/// Whether `live` is a zonal shift the run did not start (another took the place of
/// the run's since): rollback never cancels it; the check afterwards reports it.
fn someone_elses_shift(live: &Value, r: &Undo<'_>) -> bool {
    match (live, &r.intent.after) {
        (
            Value::ZonalShift {
                zonal_shift: Some(live),
            },
            Value::ZonalShift {
                zonal_shift: Some(ours),
            },
        ) => live.comment != ours.comment,
        _ => false,
    }
}

/// Runs one rollback wave: live read at once, intents journaled together, calls
/// concurrently, one wait for all. Returns how many restores needed a call.
async fn restore<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    options: &Options,
    wave: &Wave<'_>,
) -> Result<usize, EngineError> {
    let live = read(cloud, &wave.restores).await?;
    let mut done = Vec::new();
    let mut intents_out = Vec::new();
    let mut calls = Vec::new();
    for r in &wave.restores {
        let now = live
            .value(&r.intent.target, &r.value)
            .ok_or_else(|| EngineError::Step {
                step: "rollback".into(),
                message: format!("{} not found", show_target(&r.intent.target)),
            })?;
        if matches(&now, &r.value) || someone_elses_shift(&now, r) {
            done.extend(r.covers.iter().cloned());
            continue;
        }
        let action = r
            .covers
            .last()
            .cloned()
            .unwrap_or_else(|| r.intent.action.clone());
        intents_out.push(Event::RollbackIntent {
            action: action.clone(),
            target: r.intent.target.clone(),
            before: now.clone(),
            after: r.value.clone(),
        });
        calls.push((r, action, now));
    }
    recorder.log_all(
        done.into_iter()
            .map(|action| Event::RollbackConverged { action })
            .collect(),
    )?;
    if calls.is_empty() {
        return Ok(0);
    }
    let sent = write_ahead(
        recorder,
        interrupt,
        options.concurrency,
        intents_out,
        calls.iter().collect(),
        |(r, action, now)| async move {
            let sets: Vec<RecordSetDef> = match &r.value {
                Value::Weights(wanted) => r
                    .record_sets
                    .iter()
                    .map(|d| RecordSetDef {
                        weight: wanted.get(&d.key()).copied().unwrap_or(d.weight),
                        ..d.clone()
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let change_id = send(cloud, &r.intent.target, &r.value, &sets, Some(now))
                .await
                .map_err(step_err("rollback"))?;
            Ok((
                vec![Event::RollbackApplied {
                    action: action.clone(),
                }],
                await_of(&r.intent.target, &r.value, now, change_id),
            ))
        },
    )
    .await?;
    let mut awaits: Vec<Await> = sent.into_iter().flatten().collect();
    // Restored capacity is waited for until healthy in its load balancers: traffic
    // comes back to it next. (Capacity taken away needs no deregistration wait:
    // traffic left it before.)
    for wait in &mut awaits {
        if let Await::Capacity {
            direction: Direction::Up,
            balancers,
            ..
        } = wait
        {
            *balancers = true;
        }
    }
    await_effect(
        cloud,
        recorder,
        interrupt,
        &wave.step,
        &awaits,
        ROLLBACK_WAIT,
    )
    .await?;
    recorder.log_all(
        calls
            .iter()
            .flat_map(|(r, _, _)| r.covers.iter().cloned())
            .map(|action| Event::RollbackConverged { action })
            .collect(),
    )?;
    Ok(calls.len())
}

/// Compares the live state of every resource the run touched with its earliest
/// recorded `before` (weights: each record set's). Scale-in protection is compared
/// on the instances still in their group; those gone are returned apart.
async fn verify<C: Cloud>(
    cloud: &C,
    history: &History,
) -> Result<(Vec<String>, Vec<String>), EngineError> {
    let touched: Vec<&Intent> = history
        .intents
        .iter()
        .filter(|i| !matches!(i.target, Target::Instance { .. }))
        .collect();
    let originals = collapse(&touched);
    let live = read(cloud, &originals).await?;
    let mut differences = Vec::new();
    let mut gone = Vec::new();
    for r in originals {
        let target = &r.intent.target;
        let mut original = r.value;
        if let (Target::Protection { region, group }, Value::Protection { protected }) =
            (target, &mut original)
        {
            let members = cloud
                .instances(region, std::slice::from_ref(group))
                .await
                .map_err(step_err("rollback"))?;
            let present = |id: &String| {
                members
                    .get(group)
                    .is_some_and(|m| m.instances.iter().any(|i| &i.id == id))
            };
            let (kept, lost): (Vec<String>, Vec<String>) =
                protected.drain(..).partition(|id| present(id));
            *protected = kept;
            if !lost.is_empty() {
                gone.push(format!(
                    "asg {group} ({region}): {} protected from scale-in before the run, no longer running: their protection cannot come back",
                    lost.join(", ")
                ));
            }
        }
        let now = live.value(target, &original);
        if !now.as_ref().is_some_and(|now| matches(now, &original)) {
            differences.push(format!(
                "{}: original {}, live {}",
                show_target(target),
                show(&original),
                now.as_ref().map_or_else(|| "missing".to_owned(), show)
            ));
        }
    }
    Ok((differences, gone))
}
