//! Running a plan: every change is journaled with its before value, then made, then
//! waited for. Steps run in order; the groups of a step are updated concurrently.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::cloud::{Cloud, CloudError};
use super::history::History;
use super::interrupt::{Interrupt, Reason};
use super::reporter::{Progress, Reporter};
use crate::journal::{Event, Journal, JournalError, RecordSetDef, Target, Value};
use crate::plan::{Change, Plan, StepPlan, StopRef};
use crate::state::Capacity;

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A step failed.
    #[error("step {step} failed: {message}")]
    Step {
        /// The step.
        step: String,
        /// Why.
        message: String,
    },
    /// Ctrl-C, or an approval declined.
    #[error("interrupted")]
    Interrupted,
    /// A resumed action is neither before nor after: someone else changed it.
    #[error(
        "drift on {target}: the journal recorded {before} before and {after} wanted, but live is {live}; look at it, then `evac resume --force` to accept the live value, or `evac rollback`"
    )]
    Drift {
        /// The action.
        action: String,
        /// The resource, readable.
        target: String,
        /// Recorded before.
        before: String,
        /// Wanted after.
        after: String,
        /// Live now.
        live: String,
    },
    /// The journal could not be written: nothing more is changed.
    #[error("cannot write the journal: {0}")]
    Journal(#[from] JournalError),
}

/// How the engine behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Answer approvals with yes.
    pub yes: bool,
    /// At most this many group updates at once.
    pub concurrency: usize,
    /// The longest pause between two polls of a wait (polls start at one second and
    /// back off to this).
    pub poll: Duration,
    /// Resume: accept drifted live values instead of stopping.
    pub force: bool,
    /// Conditions that halt the run.
    pub stops: Vec<StopRef>,
    /// How often stop conditions are polled while the run waits or bakes.
    pub stop_poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            yes: false,
            concurrency: 8,
            poll: Duration::from_secs(5),
            force: false,
            stops: Vec::new(),
            stop_poll: Duration::from_secs(5),
        }
    }
}

/// Evaluates every stop condition once. When one fires, journals it and stops the
/// run (which then halts after the call in flight); returns whether one fired.
pub async fn check_stops<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    stops: &[StopRef],
) -> Result<bool, EngineError> {
    for stop in stops {
        let state = match stop {
            StopRef::Alarm { region, name } => match cloud.alarm_state(region, name).await {
                Ok(Some(state)) if state == "ALARM" => Some(state),
                Ok(_) => None,
                // A stop condition that cannot be read is not silently ignored.
                Err(err) => Some(format!("unreadable ({err})")),
            },
            StopRef::HealthCheck { id } => match cloud.health_check_healthy(id).await {
                Ok(false) => Some("unhealthy".to_owned()),
                Ok(true) => None,
                Err(err) => Some(format!("unreadable ({err})")),
            },
        };
        if let Some(state) = state {
            recorder.log(Event::StopConditionFired {
                condition: stop.to_string(),
                state: state.clone(),
            })?;
            interrupt.stop(Reason::StopCondition {
                condition: stop.to_string(),
                state,
            });
            return Ok(true);
        }
    }
    Ok(false)
}

/// Polls the stop conditions every `stop_poll` until one fires or the run is stopped
/// otherwise; meant to run beside the executor, so it never completes.
pub async fn watch_stops<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    options: &Options,
) {
    if !options.stops.is_empty() {
        loop {
            if interrupt.sleep(options.stop_poll).await {
                break;
            }
            match check_stops(cloud, recorder, interrupt, &options.stops).await {
                Ok(false) => {}
                Ok(true) | Err(_) => break,
            }
        }
    }
    std::future::pending().await
}

/// Writes journal entries, keeps the [`History`] they add up to, and shows them.
pub struct Recorder<'a> {
    journal: Mutex<&'a mut Journal>,
    history: Mutex<History>,
    reporter: &'a dyn Reporter,
}

impl<'a> Recorder<'a> {
    /// Records to `journal`, whose entries so far add up to `history`, showing each
    /// new entry on `reporter`.
    pub fn new(journal: &'a mut Journal, history: History, reporter: &'a dyn Reporter) -> Self {
        Self {
            journal: Mutex::new(journal),
            history: Mutex::new(history),
            reporter,
        }
    }

    /// Appends an event (fsync'ed), takes it into the history, and reports it.
    pub fn log(&self, event: Event) -> Result<(), EngineError> {
        let entry = {
            let mut journal = self
                .journal
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            journal.append(event)?
        };
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&entry.event);
        self.reporter.entry(&entry);
        Ok(())
    }

    /// Reads the history of the run so far.
    pub fn history<T>(&self, read: impl FnOnce(&History) -> T) -> T {
        read(&self.history.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Shows progress.
    pub fn progress(&self, progress: Progress) {
        self.reporter.progress(&progress);
    }

    /// Asks the human.
    pub fn confirm(&self, question: &str) -> Option<bool> {
        self.reporter.confirm(question)
    }
}

/// The id of a capacity action: stable across resumes.
pub fn capacity_action(step: &str, region: &str, group: &str) -> String {
    format!("{step}:asg:{region}:{group}")
}

/// The id of one ramp increment in one hosted zone.
pub fn weights_action(step: &str, zone_id: &str, increment: usize) -> String {
    format!("{step}:dns:{zone_id}:{increment}")
}

/// Readable form of a value, for messages.
pub fn show(value: &Value) -> String {
    match value {
        Value::Capacity(c) => format!("min {} desired {} max {}", c.min, c.desired, c.max),
        Value::Weights(w) => w
            .iter()
            .map(|(k, v)| format!("{}={v}", k.rsplit(' ').next().unwrap_or(k)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Subnets { subnets } => format!("subnets [{}]", subnets.join(", ")),
        Value::Processes { suspended } if suspended.is_empty() => "no process suspended".to_owned(),
        Value::Processes { suspended } => format!("suspended [{}]", suspended.join(", ")),
        Value::Instance { instance_state } => instance_state.clone(),
    }
}

/// Readable form of a target.
pub fn show_target(target: &Target) -> String {
    match target {
        Target::Capacity { region, group } => format!("asg {group} ({region})"),
        Target::Weights { zone_id } => format!("weights in hosted zone {zone_id}"),
        Target::Subnets { region, group } => format!("subnets of asg {group} ({region})"),
        Target::Processes { region, group } => format!("processes of asg {group} ({region})"),
        Target::Instance {
            region,
            group,
            instance,
        } => format!("instance {instance} of asg {group} ({region})"),
    }
}

/// The id of a zone evacuation's change to a group: `part` is `subnets`,
/// `processes`, or `replace:INSTANCE`.
pub fn zone_action(step: &str, region: &str, group: &str, part: &str) -> String {
    format!("{step}:zone:{region}:{group}:{part}")
}

fn step_err(step: &str) -> impl Fn(CloudError) -> EngineError + '_ {
    move |err| EngineError::Step {
        step: step.to_owned(),
        message: err.to_string(),
    }
}

/// Which way a capacity change goes, for its wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Wait until InService >= desired.
    Up,
    /// Wait until InService <= desired.
    Down,
}

/// Runs a plan's steps (all of them; those the history shows finished are skipped).
pub struct Executor<'a, 'r, C: Cloud> {
    /// AWS.
    pub cloud: &'a C,
    /// Journal and reporter.
    pub recorder: &'a Recorder<'r>,
    /// Behaviour.
    pub options: &'a Options,
    /// Ctrl-C.
    pub interrupt: &'a Interrupt,
}

impl<C: Cloud> Executor<'_, '_, C> {
    /// Runs every step not yet finished, with the stop conditions watched beside it.
    pub async fn run(&self, plan: &Plan) -> Result<(), EngineError> {
        tokio::select! {
            result = self.run_steps(plan) => result,
            () = watch_stops(self.cloud, self.recorder, self.interrupt, self.options) => Err(EngineError::Interrupted),
        }
    }

    async fn run_steps(&self, plan: &Plan) -> Result<(), EngineError> {
        for step in &plan.steps {
            if self
                .recorder
                .history(|h| h.finished_steps.contains(&step.id))
            {
                continue;
            }
            if self.interrupt.is_set() {
                return Err(EngineError::Interrupted);
            }
            self.recorder.log(Event::StepStarted {
                step: step.id.clone(),
            })?;
            match self.run_step(step).await {
                Ok(()) => self.recorder.log(Event::StepFinished {
                    step: step.id.clone(),
                })?,
                Err(err @ EngineError::Step { .. }) => {
                    self.recorder.log(Event::StepFailed {
                        step: step.id.clone(),
                        error: err.to_string(),
                    })?;
                    return Err(err);
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    async fn run_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        let timeout = Duration::from_secs(step.timeout_secs);
        match step.kind.as_str() {
            "scale_up" | "drain" => {
                let direction = if step.kind == "scale_up" {
                    Direction::Up
                } else {
                    Direction::Down
                };
                self.capacity_step(step, direction, timeout).await
            }
            "shift_traffic" => self.weights_step(step, timeout).await,
            "wait" => {
                for change in &step.changes {
                    if let Change::Wait { secs } = change {
                        self.hold(&step.id, Duration::from_secs(*secs)).await?;
                    }
                }
                Ok(())
            }
            "approve" => self.approve(step),
            "check" => self.check(step, timeout).await,
            "evacuate_zone" => self.zone_step(step, timeout).await,
            other => Err(EngineError::Step {
                step: step.id.clone(),
                message: format!("`{other}` steps cannot be run by this version of evac"),
            }),
        }
    }

    fn approve(&self, step: &StepPlan) -> Result<(), EngineError> {
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
        let by = if self.options.yes {
            "--yes"
        } else {
            match self.recorder.confirm(&question) {
                Some(true) => "terminal",
                Some(false) => return Err(EngineError::Interrupted),
                None => {
                    return Err(EngineError::Step {
                        step: step.id.clone(),
                        message: "this step needs an approval and there is no terminal to ask on: rerun with --yes to approve it".into(),
                    });
                }
            }
        };
        self.recorder.log(Event::Approved {
            step: step.id.clone(),
            by: by.to_owned(),
        })
    }

    /// Holds for `duration`, showing the countdown; stops early on Ctrl-C.
    async fn hold(&self, step: &str, duration: Duration) -> Result<(), EngineError> {
        let end = Instant::now() + duration;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            self.recorder.progress(Progress::Holding {
                step: step.to_owned(),
                remaining_secs: left.as_secs(),
            });
            if left.is_zero() {
                return Ok(());
            }
            if self.interrupt.sleep(left.min(Duration::from_secs(1))).await {
                return Err(EngineError::Interrupted);
            }
        }
    }

    async fn capacity_step(
        &self,
        step: &StepPlan,
        direction: Direction,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let changes: Vec<(String, String, Capacity)> = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Capacity {
                    region,
                    group,
                    after,
                    ..
                } => Some((region.clone(), group.clone(), *after)),
                _ => None,
            })
            .collect();
        let pending: Vec<&(String, String, Capacity)> = changes
            .iter()
            .filter(|(region, group, _)| {
                let action = capacity_action(&step.id, region, group);
                !self.recorder.history(|h| h.converged.contains(&action))
            })
            .collect();
        // Apply: each group's intent is journaled before its call; up to
        // `concurrency` calls are in flight at once.
        let results: Vec<Result<(), EngineError>> = futures::stream::iter(pending.iter())
            .map(|(region, group, after)| self.apply_capacity(&step.id, region, group, *after))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        for result in results {
            result?;
        }
        if self.interrupt.is_set() {
            return Err(EngineError::Interrupted);
        }
        if step.timeout_secs > 0 {
            let waits: Vec<(String, String, u32)> = pending
                .iter()
                .map(|(r, g, after)| (r.clone(), g.clone(), after.desired))
                .collect();
            wait_capacity(
                self.cloud,
                self.recorder,
                self.interrupt,
                self.options,
                &step.id,
                &waits,
                direction,
                timeout,
            )
            .await?;
        }
        for (region, group, _) in pending {
            self.recorder.log(Event::Converged {
                action: capacity_action(&step.id, region, group),
            })?;
        }
        Ok(())
    }

    async fn apply_capacity(
        &self,
        step: &str,
        region: &str,
        group: &str,
        after: Capacity,
    ) -> Result<(), EngineError> {
        let action = capacity_action(step, region, group);
        if self.recorder.history(|h| h.applied.contains_key(&action)) {
            return Ok(());
        }
        if self.interrupt.is_set() {
            return Err(EngineError::Interrupted);
        }
        let live = self
            .cloud
            .groups(region, &[group.to_owned()])
            .await
            .map_err(step_err(step))?
            .remove(group)
            .map(|g| g.capacity)
            .ok_or_else(|| EngineError::Step {
                step: step.to_owned(),
                message: format!("Auto Scaling group {group} not found in {region}"),
            })?;
        let target = Target::Capacity {
            region: region.to_owned(),
            group: group.to_owned(),
        };
        if let Some(intent) = self.recorder.history(|h| h.intent(&action).cloned()) {
            // Resumed in flight: decide from live state what the call did.
            let Value::Capacity(before) = intent.before else {
                return Ok(());
            };
            if live == after {
                self.recorder.log(Event::Reconciled {
                    action: action.clone(),
                    decision: "live equals after: done".into(),
                })?;
                return Ok(());
            }
            if live != before {
                if self.options.force {
                    self.recorder.log(Event::Reconciled {
                        action: action.clone(),
                        decision: format!(
                            "--force: accepted live {}",
                            show(&Value::Capacity(live))
                        ),
                    })?;
                    return Ok(());
                }
                return Err(EngineError::Drift {
                    action,
                    target: show_target(&target),
                    before: show(&Value::Capacity(before)),
                    after: show(&Value::Capacity(after)),
                    live: show(&Value::Capacity(live)),
                });
            }
        }
        self.recorder.log(Event::Intent {
            action: action.clone(),
            step: step.to_owned(),
            target,
            before: Value::Capacity(live),
            after: Value::Capacity(after),
            record_sets: Vec::new(),
        })?;
        self.cloud
            .set_capacity(region, group, after)
            .await
            .map_err(step_err(step))?;
        self.recorder.log(Event::Applied {
            action,
            change_id: None,
        })
    }

    async fn weights_step(&self, step: &StepPlan, timeout: Duration) -> Result<(), EngineError> {
        // Per zone: the records with their planned weights per increment.
        let mut zones: BTreeMap<String, Vec<PlannedRecord>> = BTreeMap::new();
        let mut increments = 0;
        let mut bake = 0;
        for change in &step.changes {
            if let Change::Weights {
                name,
                record_type,
                zone_id,
                sets,
                ramp,
                bake_secs,
                ..
            } = change
            {
                increments = increments.max(ramp.len());
                bake = *bake_secs;
                let weights = sets
                    .iter()
                    .map(|s| (s.set_identifier.clone(), s.after.clone()))
                    .collect();
                zones
                    .entry(zone_id.clone())
                    .or_default()
                    .push(PlannedRecord {
                        name: name.clone(),
                        record_type: record_type.clone(),
                        weights,
                    });
            }
        }
        // The full record sets, read once at the start of the step: an UPSERT must
        // carry the whole set, not only its weight.
        let mut defs: BTreeMap<String, Vec<RecordSetDef>> = BTreeMap::new();
        for (zone_id, records) in &zones {
            let sets = self
                .cloud
                .zone_record_sets(zone_id, &pairs(records))
                .await
                .map_err(step_err(&step.id))?;
            defs.insert(zone_id.clone(), sets);
        }
        for increment in 1..=increments {
            if increment > 1
                && check_stops(
                    self.cloud,
                    self.recorder,
                    self.interrupt,
                    &self.options.stops,
                )
                .await?
            {
                return Err(EngineError::Interrupted);
            }
            for (zone_id, records) in &zones {
                let action = weights_action(&step.id, zone_id, increment);
                if self.recorder.history(|h| h.converged.contains(&action)) {
                    // Keep the in-memory sets at the weights this increment set.
                    apply_planned(defs.get_mut(zone_id), records, increment);
                    continue;
                }
                if self.interrupt.is_set() {
                    return Err(EngineError::Interrupted);
                }
                let zone_defs = defs
                    .get_mut(zone_id)
                    .map(std::mem::take)
                    .unwrap_or_default();
                let updated = self
                    .apply_weights(step, zone_id, zone_defs, records, increment, &action)
                    .await?;
                defs.insert(zone_id.clone(), updated);
                self.recorder.progress(Progress::Syncing {
                    step: step.id.clone(),
                    increment,
                    of: increments,
                });
                self.wait_in_sync(&step.id, &action, timeout).await?;
                self.recorder.log(Event::Converged { action })?;
            }
            let key = (step.id.clone(), increment);
            if !self.recorder.history(|h| h.baked.contains(&key)) {
                self.hold(&step.id, Duration::from_secs(bake)).await?;
                self.recorder.log(Event::Baked {
                    step: step.id.clone(),
                    increment,
                })?;
            }
        }
        Ok(())
    }

    /// Journals and sends one increment of one zone. Returns the record sets with the
    /// weights they now have.
    async fn apply_weights(
        &self,
        step: &StepPlan,
        zone_id: &str,
        defs: Vec<RecordSetDef>,
        records: &[PlannedRecord],
        increment: usize,
        action: &str,
    ) -> Result<Vec<RecordSetDef>, EngineError> {
        let weights = |defs: &[RecordSetDef]| -> BTreeMap<String, i64> {
            defs.iter().map(|d| (d.key(), d.weight)).collect()
        };
        let mut wanted = defs.clone();
        apply_planned(Some(&mut wanted), records, increment);
        let target = Target::Weights {
            zone_id: zone_id.to_owned(),
        };
        if self.recorder.history(|h| h.applied.contains_key(action)) {
            return Ok(wanted);
        }
        let mut live_defs = defs;
        if let Some(intent) = self.recorder.history(|h| h.intent(action).cloned()) {
            // Resumed in flight: read live weights and decide.
            let fresh = self
                .cloud
                .zone_record_sets(zone_id, &pairs(records))
                .await
                .map_err(step_err(&step.id))?;
            let live = weights(&fresh);
            let (Value::Weights(before), Value::Weights(after)) = (&intent.before, &intent.after)
            else {
                return Ok(wanted);
            };
            if &live == after {
                self.recorder.log(Event::Reconciled {
                    action: action.to_owned(),
                    decision: "live equals after: done".into(),
                })?;
                return Ok(wanted);
            }
            if &live != before {
                if self.options.force {
                    self.recorder.log(Event::Reconciled {
                        action: action.to_owned(),
                        decision: format!(
                            "--force: redo from live {}",
                            show(&Value::Weights(live))
                        ),
                    })?;
                } else {
                    return Err(EngineError::Drift {
                        action: action.to_owned(),
                        target: show_target(&target),
                        before: show(&Value::Weights(before.clone())),
                        after: show(&Value::Weights(after.clone())),
                        live: show(&Value::Weights(live)),
                    });
                }
            }
            live_defs = fresh;
        }
        self.recorder.log(Event::Intent {
            action: action.to_owned(),
            step: step.id.clone(),
            target,
            before: Value::Weights(weights(&live_defs)),
            after: Value::Weights(weights(&wanted)),
            record_sets: live_defs,
        })?;
        let change_id = self
            .cloud
            .upsert_weights(zone_id, &wanted)
            .await
            .map_err(step_err(&step.id))?;
        self.recorder.log(Event::Applied {
            action: action.to_owned(),
            change_id: Some(change_id),
        })?;
        Ok(wanted)
    }

    async fn wait_in_sync(
        &self,
        step: &str,
        action: &str,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let Some(Some(change_id)) = self.recorder.history(|h| h.applied.get(action).cloned())
        else {
            return Ok(());
        };
        wait_change(
            self.cloud,
            self.interrupt,
            self.options,
            step,
            &change_id,
            timeout,
        )
        .await
    }

    async fn zone_step(&self, step: &StepPlan, timeout: Duration) -> Result<(), EngineError> {
        let groups: Vec<&Change> = step
            .changes
            .iter()
            .filter(|c| matches!(c, Change::ZoneEvacuation { .. }))
            .collect();
        let deadline = Instant::now() + timeout;
        let results: Vec<Result<(), EngineError>> = futures::stream::iter(groups)
            .map(|change| self.evacuate_group(step, change, deadline, timeout))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Suspends AZRebalance, removes the zone's subnets, then replaces the zone's
    /// instances a batch at a time, each journaled before its call.
    async fn evacuate_group(
        &self,
        step: &StepPlan,
        change: &Change,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let Change::ZoneEvacuation {
            region,
            group,
            zone,
            subnets_after,
            suspend_processes,
            batch_size,
            instances_to_replace,
            ..
        } = change
        else {
            return Ok(());
        };
        let live = self
            .cloud
            .groups(region, std::slice::from_ref(group))
            .await
            .map_err(step_err(&step.id))?
            .remove(group)
            .ok_or_else(|| EngineError::Step {
                step: step.id.clone(),
                message: format!("Auto Scaling group {group} not found in {region}"),
            })?;
        // 1. Processes: the group must not move instances back into the zone.
        let mut before = live.suspended_processes.clone();
        before.sort();
        let mut after = before.clone();
        for p in suspend_processes {
            if !after.contains(p) {
                after.push(p.clone());
            }
        }
        after.sort();
        self.zone_change(
            step,
            zone_action(&step.id, region, group, "processes"),
            Target::Processes {
                region: region.clone(),
                group: group.clone(),
            },
            Value::Processes { suspended: before },
            Value::Processes { suspended: after },
            self.cloud
                .suspend_processes(region, group, suspend_processes),
        )
        .await?;
        // 2. Subnets: the zone's are removed.
        self.zone_change(
            step,
            zone_action(&step.id, region, group, "subnets"),
            Target::Subnets {
                region: region.clone(),
                group: group.clone(),
            },
            Value::Subnets {
                subnets: live.subnets.clone(),
            },
            Value::Subnets {
                subnets: subnets_after.clone(),
            },
            self.cloud.set_subnets(region, group, subnets_after),
        )
        .await?;
        if *instances_to_replace == 0 {
            return Ok(());
        }
        // 3. Instances: replace the zone's in batches, waiting for capacity between.
        let desired = live.capacity.desired;
        let mut pause = Duration::from_secs(1);
        loop {
            if self.interrupt.is_set() {
                return Err(EngineError::Interrupted);
            }
            let instances = self
                .cloud
                .instances(region, group)
                .await
                .map_err(step_err(&step.id))?;
            let in_zone: Vec<&super::cloud::Instance> =
                instances.iter().filter(|i| &i.zone == zone).collect();
            let in_service = instances.iter().filter(|i| i.in_service).count() as u32;
            let replacing = instances.len() as u32 > in_service || in_service < desired;
            self.recorder.progress(Progress::InService {
                step: step.id.clone(),
                current: in_service,
                wanted: desired,
            });
            if in_zone.is_empty() && in_service >= desired {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(EngineError::Step {
                    step: step.id.clone(),
                    message: format!(
                        "timed out after {}s: asg {group} ({region}) wanted no instance in {zone} and {desired} InService, last seen {} in {zone} and {in_service} InService",
                        timeout.as_secs(),
                        in_zone.len()
                    ),
                });
            }
            if !replacing {
                // Never more than `batch_size` out at once.
                for instance in in_zone
                    .iter()
                    .filter(|i| i.in_service)
                    .take(*batch_size as usize)
                {
                    let action =
                        zone_action(&step.id, region, group, &format!("replace:{}", instance.id));
                    if self.recorder.history(|h| h.applied.contains_key(&action)) {
                        continue;
                    }
                    self.recorder.log(Event::Intent {
                        action: action.clone(),
                        step: step.id.clone(),
                        target: Target::Instance {
                            region: region.clone(),
                            group: group.clone(),
                            instance: instance.id.clone(),
                        },
                        before: Value::Instance {
                            instance_state: format!("in service in {zone}"),
                        },
                        after: Value::Instance {
                            instance_state: "terminated for replacement".into(),
                        },
                        record_sets: Vec::new(),
                    })?;
                    self.cloud
                        .replace_instance(region, &instance.id)
                        .await
                        .map_err(step_err(&step.id))?;
                    self.recorder.log(Event::Applied {
                        action: action.clone(),
                        change_id: None,
                    })?;
                    self.recorder.log(Event::Converged { action })?;
                }
                pause = Duration::from_secs(1);
                continue;
            }
            if self.interrupt.sleep(pause).await {
                return Err(EngineError::Interrupted);
            }
            pause = (pause * 2).min(self.options.poll);
        }
    }

    /// One change of a zone evacuation to a group: skipped when done already;
    /// otherwise, when live differs from `after`, journaled with its before value,
    /// made by `call`, and recorded as applied; then converged.
    async fn zone_change(
        &self,
        step: &StepPlan,
        action: String,
        target: Target,
        before: Value,
        after: Value,
        call: impl std::future::Future<Output = Result<(), CloudError>>,
    ) -> Result<(), EngineError> {
        if self.recorder.history(|h| h.converged.contains(&action)) {
            return Ok(());
        }
        if before != after {
            self.recorder.log(Event::Intent {
                action: action.clone(),
                step: step.id.clone(),
                target,
                before,
                after,
                record_sets: Vec::new(),
            })?;
            call.await.map_err(step_err(&step.id))?;
            self.recorder.log(Event::Applied {
                action: action.clone(),
                change_id: None,
            })?;
        }
        self.recorder.log(Event::Converged { action })
    }

    async fn check(&self, step: &StepPlan, timeout: Duration) -> Result<(), EngineError> {
        let Some(Change::Check {
            target,
            state,
            hold_secs,
            ..
        }) = step.changes.first()
        else {
            return Ok(());
        };
        // `alarm NAME (REGION)` or `health check ID`
        let alarm = target
            .strip_prefix("alarm ")
            .and_then(|rest| rest.rsplit_once(" ("))
            .map(|(n, r)| (n.to_owned(), r.trim_end_matches(')').to_owned()));
        let health = target.strip_prefix("health check ").map(str::to_owned);
        let deadline = Instant::now() + timeout;
        let hold = Duration::from_secs(*hold_secs);
        let mut since: Option<Instant> = None;
        let mut pause = Duration::from_secs(1);
        loop {
            let live = match (&alarm, &health) {
                (Some((name, region)), _) => self
                    .cloud
                    .alarm_state(region, name)
                    .await
                    .map_err(step_err(&step.id))?
                    .unwrap_or_else(|| "missing".into()),
                (None, Some(id)) => {
                    let healthy = self
                        .cloud
                        .health_check_healthy(id)
                        .await
                        .map_err(step_err(&step.id))?;
                    (if healthy { "healthy" } else { "unhealthy" }).to_owned()
                }
                (None, None) => {
                    return Err(EngineError::Step {
                        step: step.id.clone(),
                        message: format!("cannot watch `{target}`"),
                    });
                }
            };
            if live == *state {
                let start = *since.get_or_insert_with(Instant::now);
                if Instant::now().duration_since(start) >= hold {
                    return Ok(());
                }
            } else {
                since = None;
            }
            if Instant::now() >= deadline {
                return Err(EngineError::Step {
                    step: step.id.clone(),
                    message: format!(
                        "timed out after {}s waiting for {target} to be {state} for {hold_secs}s; last seen {live}",
                        timeout.as_secs()
                    ),
                });
            }
            if self.interrupt.sleep(pause).await {
                return Err(EngineError::Interrupted);
            }
            pause = (pause * 2).min(self.options.poll);
        }
    }
}

/// One record of a shift step with its planned weights.
pub struct PlannedRecord {
    /// DNS name.
    pub name: String,
    /// Record type.
    pub record_type: String,
    /// Weight per set identifier after each increment.
    pub weights: BTreeMap<String, Vec<i64>>,
}

/// The (name, type) pairs of a zone's planned records.
fn pairs(records: &[PlannedRecord]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r.name.clone(), r.record_type.clone()))
        .collect()
}

/// Sets the planned weights of `increment` on the record sets of one zone.
fn apply_planned(
    defs: Option<&mut Vec<RecordSetDef>>,
    records: &[PlannedRecord],
    increment: usize,
) {
    let Some(defs) = defs else { return };
    for def in defs.iter_mut() {
        for record in records {
            if def.name.eq_ignore_ascii_case(&record.name)
                && def.record_type == record.record_type
                && let Some(weight) = record
                    .weights
                    .get(&def.set_identifier)
                    .and_then(|w| w.get(increment - 1))
            {
                def.weight = *weight;
            }
        }
    }
}

/// Polls until every group's InService count reaches its desired capacity (or falls
/// to it, for `Down`), or the timeout passes.
#[allow(clippy::too_many_arguments)]
pub async fn wait_capacity<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    options: &Options,
    step: &str,
    groups: &[(String, String, u32)],
    direction: Direction,
    timeout: Duration,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    let mut by_region: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (region, group, _) in groups {
        by_region
            .entry(region.as_str())
            .or_default()
            .push(group.clone());
    }
    let mut pause = Duration::from_secs(1);
    loop {
        let mut lagging: Vec<(String, String, u32, u32)> = Vec::new();
        let (mut current, mut wanted) = (0, 0);
        for (region, names) in &by_region {
            let states = cloud.groups(region, names).await.map_err(step_err(step))?;
            for (r, group, desired) in groups.iter().filter(|(r, _, _)| r == region) {
                let in_service = states.get(group).map_or(0, |g| g.in_service);
                current += in_service;
                wanted += desired;
                let done = match direction {
                    Direction::Up => in_service >= *desired,
                    Direction::Down => in_service <= *desired,
                };
                if !done {
                    lagging.push((r.clone(), group.clone(), *desired, in_service));
                }
            }
        }
        recorder.progress(Progress::InService {
            step: step.to_owned(),
            current,
            wanted,
        });
        let Some((region, group, desired, seen)) = lagging.first().cloned() else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(EngineError::Step {
                step: step.to_owned(),
                message: format!(
                    "timed out after {}s: asg {group} ({region}) wanted {desired} instances InService, last seen {seen}{}",
                    timeout.as_secs(),
                    if lagging.len() > 1 {
                        format!(" ({} more groups lagging)", lagging.len() - 1)
                    } else {
                        String::new()
                    }
                ),
            });
        }
        if interrupt
            .sleep(
                pause.min(
                    deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1)),
                ),
            )
            .await
        {
            return Err(EngineError::Interrupted);
        }
        pause = (pause * 2).min(options.poll);
    }
}

/// Polls a Route 53 change until it is in sync, or the timeout passes.
pub async fn wait_change<C: Cloud>(
    cloud: &C,
    interrupt: &Interrupt,
    options: &Options,
    step: &str,
    change_id: &str,
    timeout: Duration,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_secs(1);
    loop {
        if cloud
            .change_in_sync(change_id)
            .await
            .map_err(step_err(step))?
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(EngineError::Step {
                step: step.to_owned(),
                message: format!(
                    "timed out after {}s: Route 53 change {change_id} wanted INSYNC, last seen PENDING",
                    timeout.as_secs()
                ),
            });
        }
        if interrupt.sleep(pause).await {
            return Err(EngineError::Interrupted);
        }
        pause = (pause * 2).min(options.poll);
    }
}
