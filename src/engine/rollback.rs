//! Rollback: restore every recorded `before` value in the reverse order of
//! application, journaled, idempotent and resumable; then check the live state
//! against the recorded originals.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::cloud::Cloud;
use super::execute::{
    Direction, EngineError, Options, Recorder, show, show_target, wait_capacity, wait_change,
};
use super::history::{History, Intent};
use super::interrupt::Interrupt;
use super::reporter::Progress;
use crate::journal::{Event, Outcome, RecordSetDef, Target, Value};
use crate::plan::{Change, Plan};

/// How long a rollback waits for one change to take effect.
pub const ROLLBACK_WAIT: Duration = Duration::from_secs(15 * 60);

/// One restore: a target back to a value, covering one or more forward actions.
struct Restore<'a> {
    covers: Vec<String>,
    intent: &'a Intent,
    value: Value,
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
}

/// Rolls back every change `history` records that is not rolled back yet.
pub async fn rollback<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    options: &Options,
    plan: &Plan,
    fast: bool,
) -> Result<RollbackReport, EngineError> {
    recorder.log(Event::RollbackStarted { fast })?;
    let history = recorder.history(History::clone);
    let history = &history;
    let (replaced, pending): (Vec<&Intent>, Vec<&Intent>) = history
        .intents
        .iter()
        .filter(|i| !history.rolled_back.contains(&i.action))
        .partition(|i| matches!(i.target, Target::Instance { .. }));
    // Replaced instances are not brought back: the group kept its capacity, and its
    // restored subnets and processes let it rebalance.
    for intent in &replaced {
        recorder.log(Event::RollbackConverged {
            action: intent.action.clone(),
        })?;
    }
    let restores = if fast {
        collapse(&pending)
    } else {
        each(&pending)
    };
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
    let mut report = RollbackReport {
        replaced: replaced.len(),
        ..RollbackReport::default()
    };
    for (i, restore) in restores.iter().enumerate() {
        if interrupt.is_set() {
            return Err(EngineError::Interrupted);
        }
        let changed = restore_one(cloud, recorder, interrupt, options, restore).await?;
        if changed {
            report.restored += 1;
        } else {
            report.already += 1;
        }
        // Ramped: hold between weight restores as the forward run did.
        let next_is_weights = restores
            .get(i + 1)
            .is_some_and(|r| matches!(r.intent.target, Target::Weights { .. }));
        if changed
            && !fast
            && matches!(restore.intent.target, Target::Weights { .. })
            && next_is_weights
        {
            let secs = bakes
                .get(restore.intent.step.as_str())
                .copied()
                .unwrap_or(0);
            hold(
                recorder,
                interrupt,
                &restore.intent.step,
                Duration::from_secs(secs),
            )
            .await?;
        }
    }
    report.differences = verify(cloud, history).await?;
    recorder.log(Event::RollbackFinished {
        outcome: if report.differences.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        verified: report.differences.is_empty(),
        differences: report.differences.clone(),
    })?;
    Ok(report)
}

/// Every intent, newest first, back to its own `before`: a ramped rollback.
fn each<'a>(pending: &[&'a Intent]) -> Vec<Restore<'a>> {
    pending
        .iter()
        .rev()
        .map(|intent| Restore {
            covers: vec![intent.action.clone()],
            intent,
            value: intent.before.clone(),
        })
        .collect()
}

/// One restore per resource, straight to its earliest recorded `before`, in the
/// reverse order of the resources' last change: `--fast`.
fn collapse<'a>(pending: &[&'a Intent]) -> Vec<Restore<'a>> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for intent in pending.iter().rev() {
        let key = show_target(&intent.target);
        if !seen.insert(key.clone()) {
            continue;
        }
        let all: Vec<&&Intent> = pending
            .iter()
            .filter(|i| show_target(&i.target) == key)
            .collect();
        let Some(first) = all.first() else { continue };
        out.push(Restore {
            covers: all.iter().map(|i| i.action.clone()).collect(),
            intent: first,
            value: first.before.clone(),
        });
    }
    out
}

async fn live_value<C: Cloud>(cloud: &C, intent: &Intent) -> Result<Value, EngineError> {
    let fail = |err: super::cloud::CloudError| EngineError::Step {
        step: "rollback".into(),
        message: err.to_string(),
    };
    match &intent.target {
        Target::Subnets { region, group } | Target::Processes { region, group } => {
            let states = cloud
                .groups(region, std::slice::from_ref(group))
                .await
                .map_err(fail)?;
            let state = states.get(group).ok_or_else(|| EngineError::Step {
                step: "rollback".into(),
                message: format!("Auto Scaling group {group} not found in {region}"),
            })?;
            Ok(if matches!(intent.target, Target::Subnets { .. }) {
                Value::Subnets {
                    subnets: state.subnets.clone(),
                }
            } else {
                let mut suspended = state.suspended_processes.clone();
                suspended.sort();
                Value::Processes { suspended }
            })
        }
        // Replaced instances are not brought back; nothing to read.
        Target::Instance { .. } => Ok(intent.before.clone()),
        Target::Capacity { region, group } => {
            let states = cloud
                .groups(region, std::slice::from_ref(group))
                .await
                .map_err(fail)?;
            states
                .get(group)
                .map(|g| Value::Capacity(g.capacity))
                .ok_or_else(|| EngineError::Step {
                    step: "rollback".into(),
                    message: format!("Auto Scaling group {group} not found in {region}"),
                })
        }
        Target::Weights { zone_id } => {
            let pairs: BTreeSet<(String, String)> = intent
                .record_sets
                .iter()
                .map(|d| (d.name.clone(), d.record_type.clone()))
                .collect();
            let pairs: Vec<(String, String)> = pairs.into_iter().collect();
            let sets = cloud
                .zone_record_sets(zone_id, &pairs)
                .await
                .map_err(fail)?;
            Ok(Value::Weights(
                sets.iter().map(|d| (d.key(), d.weight)).collect(),
            ))
        }
    }
}

/// Restores one resource. Returns whether a call was needed.
async fn restore_one<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    options: &Options,
    restore: &Restore<'_>,
) -> Result<bool, EngineError> {
    let intent = restore.intent;
    let action = restore
        .covers
        .last()
        .cloned()
        .unwrap_or_else(|| intent.action.clone());
    let live = live_value(cloud, intent).await?;
    let fail = |err: super::cloud::CloudError| EngineError::Step {
        step: "rollback".into(),
        message: err.to_string(),
    };
    let matches = match (&live, &restore.value) {
        (Value::Weights(live), Value::Weights(wanted)) => {
            wanted.iter().all(|(k, w)| live.get(k) == Some(w))
        }
        (live, wanted) => live == wanted,
    };
    if matches {
        for covered in &restore.covers {
            recorder.log(Event::RollbackConverged {
                action: covered.clone(),
            })?;
        }
        return Ok(false);
    }
    recorder.log(Event::RollbackIntent {
        action: action.clone(),
        target: intent.target.clone(),
        before: live.clone(),
        after: restore.value.clone(),
    })?;
    match (&intent.target, &restore.value) {
        (Target::Capacity { region, group }, Value::Capacity(wanted)) => {
            cloud
                .set_capacity(region, group, *wanted)
                .await
                .map_err(fail)?;
            recorder.log(Event::RollbackApplied {
                action: action.clone(),
            })?;
            let direction = match live {
                Value::Capacity(now) if now.desired > wanted.desired => Direction::Down,
                _ => Direction::Up,
            };
            let groups = [(region.clone(), group.clone(), wanted.desired)];
            wait_capacity(
                cloud,
                recorder,
                interrupt,
                options,
                "rollback",
                &groups,
                direction,
                ROLLBACK_WAIT,
            )
            .await?;
        }
        (Target::Subnets { region, group }, Value::Subnets { subnets }) => {
            cloud
                .set_subnets(region, group, subnets)
                .await
                .map_err(fail)?;
            recorder.log(Event::RollbackApplied {
                action: action.clone(),
            })?;
        }
        (Target::Processes { region, group }, Value::Processes { suspended }) => {
            let Value::Processes { suspended: now } = &live else {
                return Ok(false);
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
                cloud
                    .resume_processes(region, group, &resume)
                    .await
                    .map_err(fail)?;
            }
            if !suspend.is_empty() {
                cloud
                    .suspend_processes(region, group, &suspend)
                    .await
                    .map_err(fail)?;
            }
            recorder.log(Event::RollbackApplied {
                action: action.clone(),
            })?;
        }
        (Target::Weights { zone_id }, Value::Weights(wanted)) => {
            let sets: Vec<RecordSetDef> = intent
                .record_sets
                .iter()
                .map(|d| RecordSetDef {
                    weight: wanted.get(&d.key()).copied().unwrap_or(d.weight),
                    ..d.clone()
                })
                .collect();
            let change_id = cloud.upsert_weights(zone_id, &sets).await.map_err(fail)?;
            recorder.log(Event::RollbackApplied {
                action: action.clone(),
            })?;
            wait_change(
                cloud,
                interrupt,
                options,
                "rollback",
                &change_id,
                ROLLBACK_WAIT,
            )
            .await?;
        }
        _ => {
            return Err(EngineError::Step {
                step: "rollback".into(),
                message: format!(
                    "the journal's value for {} does not fit it",
                    show_target(&intent.target)
                ),
            });
        }
    }
    for covered in &restore.covers {
        recorder.log(Event::RollbackConverged {
            action: covered.clone(),
        })?;
    }
    Ok(true)
}

async fn hold(
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    step: &str,
    duration: Duration,
) -> Result<(), EngineError> {
    recorder.progress(Progress::Holding {
        step: step.to_owned(),
        remaining_secs: duration.as_secs(),
    });
    if interrupt.sleep(duration).await {
        return Err(EngineError::Interrupted);
    }
    Ok(())
}

/// Compares the live state of every resource the run touched with its earliest
/// recorded `before`.
async fn verify<C: Cloud>(cloud: &C, history: &History) -> Result<Vec<String>, EngineError> {
    let mut seen = BTreeSet::new();
    let mut differences = Vec::new();
    for intent in &history.intents {
        let key = show_target(&intent.target);
        if !seen.insert(key.clone()) {
            continue;
        }
        let live = live_value(cloud, intent).await?;
        let same = match (&live, &intent.before) {
            (Value::Weights(live), Value::Weights(original)) => {
                original.iter().all(|(k, w)| live.get(k) == Some(w))
            }
            (live, original) => live == original,
        };
        if !same {
            differences.push(format!(
                "{key}: original {}, live {}",
                show(&intent.before),
                show(&live)
            ));
        }
    }
    Ok(differences)
}
