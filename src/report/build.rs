//! Reading a run's journal into a [`DrillReport`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::journal::history::History;
use crate::journal::{Entry, Event, JournalError, Outcome, RunDir, Target, list_runs};
use crate::journal::{show, show_target};
use crate::plan::{Plan, StepKind};

/// One bar of the timeline, in seconds from the start of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Span {
    /// `step`, `increment`, `bake`, `rollback`, `stopped`.
    pub kind: String,
    /// What it was.
    pub label: String,
    /// Start, seconds after the run started.
    pub start_secs: f64,
    /// End, seconds after the run started.
    pub end_secs: f64,
    /// Of that, how long the run was stopped (a step that was halted and resumed).
    pub stopped_secs: f64,
    /// `done`, `failed`, `stopped`.
    pub status: String,
}

/// Something that happened to the run as a whole: it started, a stop condition
/// fired, it was halted, interrupted, resumed, approved, declined, rolled back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Moment {
    /// Seconds after the run started.
    pub at_secs: f64,
    /// `started`, `stop_condition`, `halted`, `interrupted`, `declined`, `approved`,
    /// `failed`, `ended`, `resumed`, `succeeded`, `rollback`, `rolled_back`.
    pub kind: String,
    /// What, said for people.
    pub text: String,
}

/// What rollback did with a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterRollback {
    /// Put back to its before value.
    Restored,
    /// Not (yet) put back.
    NotRestored,
    /// An instance replaced in another zone: rollback leaves it where it is (the
    /// group keeps its capacity and rebalances once its subnets are restored).
    Replaced,
}

/// One change the run made.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangeRow {
    /// When it was recorded, seconds after the start.
    pub at_secs: f64,
    /// The step.
    pub step: String,
    /// The resource.
    pub resource: String,
    /// Before.
    pub before: String,
    /// After.
    pub after: String,
    /// Whether a rollback restored it.
    pub rolled_back: bool,
    /// What rollback did with it.
    pub rollback: AfterRollback,
}

/// This run against the previous run of the same playbook.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The previous run.
    pub run_id: String,
    /// Its time to evacuate.
    pub time_to_evacuate_secs: f64,
    /// This run's minus the previous one's (negative: faster).
    pub delta_secs: f64,
    /// How that run differs from this one (playbook content, params); empty when
    /// it ran the same playbook with the same params.
    pub differences: Vec<String>,
}

/// A drill's record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillReport {
    /// Document format version.
    pub format: u32,
    /// The run.
    pub run_id: String,
    /// The playbook's name.
    pub playbook: String,
    /// The playbook file as given.
    pub file: String,
    /// SHA-256 of the playbook as run.
    pub playbook_sha256: String,
    /// Parameters.
    pub params: BTreeMap<String, String>,
    /// Who ran it.
    pub user: String,
    /// Where.
    pub host: String,
    /// Who AWS said the run's calls were made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<crate::state::Caller>,
    /// Who the calls in each named account of the playbook were made as.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callers: BTreeMap<String, crate::state::Caller>,
    /// evac's version.
    pub version: String,
    /// First journal entry.
    pub started_at: String,
    /// Last journal entry.
    pub ended_at: String,
    /// What happened, in order: `halted by alarm X (us-west-2) in ALARM, resumed,
    /// succeeded, rolled back`.
    pub result: String,
    /// From the first change until traffic was moved and the source drained (or the
    /// zone emptied), without the time the run was stopped; absent when the run did
    /// not get there.
    pub time_to_evacuate_secs: Option<f64>,
    /// How long the run was stopped (halted, interrupted, declined, failed, or its
    /// process gone) before a resume or rollback took it over.
    pub time_stopped_secs: f64,
    /// How long approval steps waited for their answer, apart (a wait inside the
    /// evacuation is also counted in its time to evacuate); absent when the run has
    /// no approval step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_wait_secs: Option<f64>,
    /// From the start of the rollback until it was verified.
    pub time_to_fail_back_secs: Option<f64>,
    /// Steps, increments, bakes, stops and rollback.
    pub timeline: Vec<Span>,
    /// What happened to the run as a whole, in order.
    pub moments: Vec<Moment>,
    /// Stop conditions that fired: what, and when (seconds after the start).
    pub stop_conditions: Vec<(String, f64)>,
    /// Every change, before -> after.
    pub changes: Vec<ChangeRow>,
    /// The previous run of the same playbook that evacuated.
    pub previous: Option<Comparison>,
    /// The regions the run was made with down (`--region-down`): planned from
    /// their last known state, read when said, and sent nothing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regions_down: BTreeMap<String, String>,
    /// The steps left out because a region was down, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<(String, String)>,
    /// The time to evacuate scored against the playbook's `rto:`, when it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<RtoScore>,
    /// Where the time went, by phase: `capacity` (scale-ups, until healthy),
    /// `traffic` (the shifts, the last one's TTL included), `drain`, `zone`,
    /// `checks and waits`; each without the time the run was stopped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
}

/// A drill's time to evacuate against its recovery time objective.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RtoScore {
    /// The objective, in seconds.
    pub rto_secs: f64,
    /// Whether the time to evacuate was within it; false when the run did not
    /// evacuate.
    pub met: bool,
    /// By how much: time to spare when met, time over when missed (absent when the
    /// run did not evacuate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_secs: Option<f64>,
}

/// How long one phase of a drill took.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phase {
    /// `capacity`, `traffic`, `drain`, `zone` or `checks and waits`.
    pub phase: String,
    /// Seconds, without the time the run was stopped.
    pub duration_secs: f64,
}

/// The phases of a drill from its step spans (see [`DrillReport::phases`]).
fn phases(timeline: &[Span], plan: &Plan) -> Vec<Phase> {
    use crate::plan::StepKind;
    let mut by: BTreeMap<&str, f64> = BTreeMap::new();
    let mut last_shift: Option<(f64, &crate::plan::StepPlan)> = None;
    for span in timeline.iter().filter(|s| s.kind == "step") {
        let Some(step) = plan.steps.iter().find(|s| s.id == span.label) else {
            continue;
        };
        let phase = match step.kind {
            StepKind::ScaleUp => "capacity",
            StepKind::ShiftTraffic => "traffic",
            StepKind::Drain => "drain",
            StepKind::EvacuateZone => "zone",
            StepKind::Check | StepKind::Wait => "checks and waits",
            StepKind::Approve => continue,
        };
        *by.entry(phase).or_default() +=
            (span.end_secs - span.start_secs - span.stopped_secs).max(0.0);
        if step.kind == StepKind::ShiftTraffic
            && last_shift.is_none_or(|(end, _)| span.end_secs >= end)
        {
            last_shift = Some((span.end_secs, step));
        }
    }
    // Resolvers keep the last shift's old answers for its TTL: traffic moves then.
    if let Some((_, step)) = last_shift {
        *by.entry("traffic").or_default() += step.ttl_secs().unwrap_or(0) as f64;
    }
    ["capacity", "traffic", "drain", "zone", "checks and waits"]
        .into_iter()
        .filter_map(|phase| {
            by.get(phase).map(|secs| Phase {
                phase: phase.to_owned(),
                duration_secs: *secs,
            })
        })
        .collect()
}

/// `time` scored against `rto_secs`.
fn score(rto_secs: Option<u64>, time: Option<f64>) -> Option<RtoScore> {
    let rto = rto_secs? as f64;
    Some(match time {
        Some(t) => RtoScore {
            rto_secs: rto,
            met: t <= rto,
            by_secs: Some((rto - t).abs()),
        },
        None => RtoScore {
            rto_secs: rto,
            met: false,
            by_secs: None,
        },
    })
}

use crate::journal::{parse_time as time, secs_between};

/// The time to evacuate of a run: first applied change until the last change of the
/// evacuating steps (shift_traffic, drain, evacuate_zone) took effect, provided every
/// one of those steps finished, without the time the run was stopped meanwhile.
/// Traffic has left only once resolvers drop the old answers: the last weight change
/// counts from its INSYNC plus the record's TTL ([`dns_tail`]).
fn time_to_evacuate(entries: &[Entry], plan: &Plan, stops: &[Stop]) -> Option<f64> {
    let evacuating: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::ShiftTraffic | StepKind::Drain | StepKind::EvacuateZone
            )
        })
        .map(|s| s.id.as_str())
        .collect();
    if evacuating.is_empty() {
        return None;
    }
    // A step skipped because its region was down is over too.
    let finished = |step: &str| {
        entries.iter().any(|e| {
            matches!(&e.event, Event::StepFinished { step: s } | Event::StepSkipped { step: s, .. } if s == step)
        })
    };
    if !evacuating.iter().all(|s| finished(s)) {
        return None;
    }
    let first = entries
        .iter()
        .find(|e| matches!(e.event, Event::Applied { .. }))?;
    let steps = steps_of(entries);
    let last = entries.iter().rev().find(|e| match &e.event {
        Event::Converged { action } => steps
            .get(action)
            .is_some_and(|(step, _)| evacuating.contains(&step.as_str())),
        _ => false,
    })?;
    let (from, mut to) = (time(&first.at)?, time(&last.at)?);
    if let Some(after_ttl) = dns_tail(entries, plan) {
        to = to.max(after_ttl);
    }
    let whole = to.duration_since(from).map(|d| d.as_secs_f64()).ok()?;
    let stopped: f64 = stops.iter().map(|s| s.overlap(from, to)).sum();
    Some((whole - stopped).max(0.0))
}

/// The approval steps of a plan.
fn approvals(plan: &Plan) -> Vec<&str> {
    plan.steps
        .iter()
        .filter(|s| s.kind == StepKind::Approve)
        .map(|s| s.id.as_str())
        .collect()
}

/// How long the approval steps `approvals` waited: each time it was asked, from its
/// start until it was answered.
fn approval_waits(entries: &[Entry], approvals: &[&str]) -> f64 {
    let mut started: BTreeMap<&str, SystemTime> = BTreeMap::new();
    let mut total = 0.0;
    for e in entries {
        match &e.event {
            Event::StepStarted { step } if approvals.contains(&step.as_str()) => {
                if let Some(at) = time(&e.at) {
                    started.insert(step.as_str(), at);
                }
            }
            Event::Approved { step, .. } | Event::ApprovalDeclined { step, .. }
                if approvals.contains(&step.as_str()) =>
            {
                if let (Some(from), Some(to)) = (started.remove(step.as_str()), time(&e.at)) {
                    total += to.duration_since(from).map_or(0.0, |d| d.as_secs_f64());
                }
            }
            _ => {}
        }
    }
    total
}

/// When the run's traffic had really left: the last weight change's INSYNC plus the
/// largest TTL of its record sets (resolvers keep old answers that long; an alias to a
/// load balancer counts as 60 s, as Route 53 answers it).
fn dns_tail(entries: &[Entry], plan: &Plan) -> Option<SystemTime> {
    let shifts: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::ShiftTraffic)
        .map(|s| s.id.as_str())
        .collect();
    let steps = steps_of(entries);
    let (synced, action) = entries.iter().rev().find_map(|e| match &e.event {
        Event::Converged { action }
            if steps
                .get(action)
                .is_some_and(|(step, _)| shifts.contains(&step.as_str())) =>
        {
            Some((e, action))
        }
        _ => None,
    })?;
    let ttl = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Intent {
                action: a,
                record_sets,
                ..
            } if a == action => Some(record_sets),
            _ => None,
        })
        .next_back()?
        .iter()
        .map(|d| d.ttl.unwrap_or(if d.alias.is_some() { 60 } else { 0 }))
        .max()
        .unwrap_or(0);
    Some(time(&synced.at)? + std::time::Duration::from_secs(u64::try_from(ttl).unwrap_or(0)))
}

/// A time the run was stopped, from the moment it stopped until a process took it
/// over again.
#[derive(Clone, Debug)]
struct Stop {
    from: String,
    to: String,
    why: String,
}

impl Stop {
    /// Seconds of this stop inside `[from, to]`.
    fn overlap(&self, from: SystemTime, to: SystemTime) -> f64 {
        let (Some(a), Some(b)) = (time(&self.from), time(&self.to)) else {
            return 0.0;
        };
        let (start, end) = (a.max(from), b.min(to));
        end.duration_since(start)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// Where a run is, read entry by entry.
enum State {
    /// A process is working on it (or was, until it disappeared).
    Running,
    /// It stopped at this time, for this reason; a resume or rollback may follow.
    Stopped(String, String),
    /// It finished, or a rollback ended: what follows is not a stop.
    Done,
}

/// The run as a whole, read from its journal: the moments worth telling, the times
/// it was stopped, and its result in a few words.
struct Story {
    moments: Vec<(String, String, String)>,
    stops: Vec<Stop>,
    result: String,
}

fn story(entries: &[Entry]) -> Story {
    let mut moments = Vec::new();
    let mut stops = Vec::new();
    let mut said: Vec<String> = Vec::new();
    let mut state = State::Running;
    let mut attached = false;
    let mut rollback_open = false;
    let (mut fired, mut failed, mut declined) = (None, None, None);
    let mut previous_at = entries.first().map(|e| e.at.clone()).unwrap_or_default();
    for e in entries {
        let mut moment = |kind: &str, text: String| {
            moments.push((e.at.clone(), kind.to_owned(), text));
        };
        match &e.event {
            Event::RunStarted { user, host, .. } => {
                moment("started", format!("started by {user} on {host}"));
            }
            Event::Attached { command, user, pid } => {
                let by = if user.is_empty() {
                    format!("pid {pid}")
                } else {
                    format!("{user}, pid {pid}")
                };
                if attached {
                    match std::mem::replace(&mut state, State::Running) {
                        State::Stopped(from, why) => stops.push(Stop {
                            from,
                            to: e.at.clone(),
                            why,
                        }),
                        State::Running => {
                            // The last process ended without a word: killed, or its
                            // machine went down.
                            let why = "its process ended without finishing".to_owned();
                            said.push(why.clone());
                            moments.push((previous_at.clone(), "ended".into(), why.clone()));
                            stops.push(Stop {
                                from: previous_at.clone(),
                                to: e.at.clone(),
                                why,
                            });
                        }
                        State::Done => {}
                    }
                    if command == "resume" {
                        said.push("resumed".into());
                        moments.push((e.at.clone(), "resumed".into(), format!("resumed ({by})")));
                    }
                }
                attached = true;
            }
            Event::StopConditionFired { condition, state } => {
                let what = format!("{condition} in {state}");
                moment("stop_condition", format!("stop condition: {what}"));
                fired = Some(what);
            }
            Event::StepFailed { step, error, .. } => {
                moment("failed", error.clone());
                failed = Some(format!("at step {step}"));
            }
            Event::Approved { step, by } => {
                moment("approved", format!("step {step} approved by {by}"));
            }
            Event::ApprovalDeclined { step, by } => {
                moment("declined", format!("step {step} declined by {by}"));
                declined = Some(format!("approval of step {step} declined by {by}"));
            }
            Event::Interrupted => moment("interrupted", "interrupted (Ctrl-C)".into()),
            Event::RunFinished { outcome, .. } => {
                let (kind, what) = match outcome {
                    Outcome::Succeeded => ("succeeded", "succeeded".to_owned()),
                    Outcome::Failed => (
                        "failed",
                        failed
                            .take()
                            .map_or("failed".to_owned(), |f| format!("failed {f}")),
                    ),
                    Outcome::Interrupted => ("interrupted", "interrupted".to_owned()),
                    Outcome::Halted => (
                        "halted",
                        fired
                            .take()
                            .map_or("halted by a stop condition".to_owned(), |f| {
                                format!("halted by {f}")
                            }),
                    ),
                    Outcome::Declined => (
                        "declined",
                        format!(
                            "stopped: {}",
                            declined
                                .take()
                                .unwrap_or_else(|| "an approval was declined".into())
                        ),
                    ),
                };
                // Interruptions and failures have their moment already.
                if !matches!(outcome, Outcome::Interrupted | Outcome::Failed) {
                    moment(kind, what.clone());
                }
                said.push(what.clone());
                state = if *outcome == Outcome::Succeeded {
                    State::Done
                } else {
                    State::Stopped(e.at.clone(), what)
                };
            }
            Event::RollbackStarted { fast } => {
                rollback_open = true;
                moment(
                    "rollback",
                    format!("rollback started{}", if *fast { " (--fast)" } else { "" }),
                );
            }
            Event::RollbackFinished {
                verified, outcome, ..
            } => {
                rollback_open = false;
                let what = if *verified {
                    "rolled back"
                } else if *outcome == Outcome::Interrupted {
                    "rollback interrupted (run `evac rollback` again to finish it)"
                } else {
                    "rollback incomplete (run `evac rollback` again to finish it)"
                };
                moment(
                    if *verified { "rolled_back" } else { "rollback" },
                    what.to_owned(),
                );
                said.push(what.to_owned());
                state = State::Done;
            }
            Event::ScaledItself {
                region,
                group,
                from,
                to,
                cause,
            } => moment(
                "scaled_itself",
                format!("{group} ({region}) scaled itself {from} -> {to}: {cause}"),
            ),
            Event::Closed { by, reason } => {
                let what = if reason.is_empty() {
                    format!("closed by {by}, AWS left as it was")
                } else {
                    format!("closed by {by} ({reason}), AWS left as it was")
                };
                moment("closed", what.clone());
                said.push(what);
                rollback_open = false;
                state = State::Done;
            }
            Event::StepStarted { .. }
            | Event::Intent { .. }
            | Event::Applied { .. }
            | Event::Converged { .. }
            | Event::Reconciled { .. }
            | Event::Baked { .. }
            | Event::StepFinished { .. }
            | Event::StepSkipped { .. }
            | Event::RollbackIntent { .. }
            | Event::RollbackApplied { .. }
            | Event::RollbackConverged { .. } => {}
        }
        previous_at = e.at.clone();
    }
    if rollback_open {
        said.push("rollback stopped (run `evac rollback` again to finish it)".into());
    } else if matches!(state, State::Running) {
        said.push("not finished (still running, or its process ended)".into());
    }
    Story {
        moments,
        stops,
        result: said.join(", "),
    }
}

struct Read {
    entries: Vec<Entry>,
    plan: Plan,
    playbook_text: String,
}

fn read(run: &RunDir) -> Result<Read, JournalError> {
    let entries = run.read()?;
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| JournalError::Io { path: p, source }
    };
    let plan_text =
        crate::journal::read_nofollow(&run.plan_path()).map_err(io(&run.plan_path()))?;
    let plan: Plan = serde_json::from_slice(&plan_text).map_err(|e| JournalError::Corrupt {
        path: run.plan_path().display().to_string(),
        line: 1,
        message: e.to_string(),
    })?;
    let playbook_text = crate::journal::read_nofollow(&run.playbook_path())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(Read {
        entries,
        plan,
        playbook_text,
    })
}

/// Builds the report of `run_id`, compared with the previous run of its playbook.
pub fn report(state_dir: &Path, run_id: &str) -> Result<DrillReport, JournalError> {
    let run = RunDir::open(state_dir, run_id)?;
    let mut report = build(&run, &read(&run)?);
    report.previous = previous(state_dir, &report)?;
    Ok(report)
}

fn build(run: &RunDir, read: &Read) -> DrillReport {
    use sha2::{Digest, Sha256};
    let entries = &read.entries;
    let history = History::from_entries(entries);
    let start = entries.first().map(|e| e.at.clone()).unwrap_or_default();
    let end = entries.last().map(|e| e.at.clone()).unwrap_or_default();
    let offset = |at: &str| secs_between(&start, at);
    let story = story(entries);
    let steps = steps_of(entries);
    // The end of the last stop before `at`: a bake or an increment that spans a
    // stop is counted from the resume, not from before the stop.
    let resumed_before = |from: &str, to: &str| -> String {
        story
            .stops
            .iter()
            .filter(|s| time(&s.to) <= time(to) && time(&s.to) > time(from))
            .map(|s| s.to.clone())
            .max_by(|a, b| time(a).cmp(&time(b)))
            .unwrap_or_else(|| from.to_owned())
    };
    let stopped_within = |from: &str, to: &str| -> f64 {
        match (time(from), time(to)) {
            (Some(a), Some(b)) => story.stops.iter().map(|s| s.overlap(a, b)).sum(),
            _ => 0.0,
        }
    };
    let (mut playbook, mut file, mut params, mut user, mut host, mut version) = Default::default();
    let mut caller = None;
    let mut timeline = Vec::new();
    let mut span = |kind: &str, label: String, from: &str, to: &str, status: &str| {
        timeline.push(Span {
            kind: kind.into(),
            label,
            start_secs: offset(from),
            end_secs: offset(to),
            stopped_secs: if kind == "stopped" {
                0.0
            } else {
                stopped_within(from, to)
            },
            status: status.into(),
        });
    };
    let mut step_start: BTreeMap<String, String> = BTreeMap::new();
    let mut step_ended: BTreeMap<String, bool> = BTreeMap::new();
    let mut increment_start: BTreeMap<(String, usize), String> = BTreeMap::new();
    let mut increment_end: BTreeMap<(String, usize), String> = BTreeMap::new();
    let mut stop_conditions = Vec::new();
    let mut rollback_start: Option<String> = None;
    let mut time_to_fail_back = None;
    for e in entries {
        match &e.event {
            Event::RunStarted {
                playbook: p,
                file: f,
                params: ps,
                user: u,
                host: h,
                version: v,
                caller: c,
                ..
            } => {
                caller = c.clone();
                (playbook, file, params, user, host, version) = (
                    p.clone(),
                    f.clone(),
                    ps.clone(),
                    u.clone(),
                    h.clone(),
                    v.clone(),
                );
            }
            Event::StepStarted { step } => {
                step_start
                    .entry(step.clone())
                    .or_insert_with(|| e.at.clone());
            }
            Event::StepFinished { step } | Event::StepFailed { step, .. } => {
                let status = if matches!(e.event, Event::StepFinished { .. }) {
                    "done"
                } else {
                    "failed"
                };
                if let Some(s) = step_start.get(step) {
                    span("step", step.clone(), s, &e.at, status);
                    step_ended.insert(step.clone(), true);
                }
            }
            Event::Intent {
                step,
                increment: Some(n),
                ..
            } => {
                increment_start
                    .entry((step.clone(), *n))
                    .or_insert_with(|| e.at.clone());
            }
            Event::Converged { action } => {
                if let Some((step, Some(n))) = steps.get(action) {
                    increment_end.insert((step.clone(), *n), e.at.clone());
                }
            }
            Event::Baked { step, increment } => {
                if let Some(from) = increment_end.get(&(step.clone(), *increment)) {
                    let from = resumed_before(from, &e.at);
                    span(
                        "bake",
                        format!("{step} bake {increment}"),
                        &from,
                        &e.at,
                        "done",
                    );
                }
            }
            Event::StopConditionFired { condition, state } => {
                stop_conditions.push((format!("{condition} is {state}"), offset(&e.at)));
            }
            Event::RollbackStarted { .. } => rollback_start = Some(e.at.clone()),
            Event::RollbackFinished { verified, .. } => {
                if let Some(s) = &rollback_start {
                    span(
                        "rollback",
                        "rollback".into(),
                        s,
                        &e.at,
                        if *verified { "done" } else { "failed" },
                    );
                    if *verified {
                        time_to_fail_back = Some(secs_between(s, &e.at));
                    }
                }
            }
            Event::Attached { .. }
            | Event::Intent { .. }
            | Event::Applied { .. }
            | Event::Reconciled { .. }
            | Event::ApprovalDeclined { .. }
            | Event::Approved { .. }
            | Event::StepSkipped { .. }
            | Event::Interrupted
            | Event::RunFinished { .. }
            | Event::ScaledItself { .. }
            | Event::Closed { .. }
            | Event::RollbackIntent { .. }
            | Event::RollbackApplied { .. }
            | Event::RollbackConverged { .. } => {}
        }
    }
    for ((step, n), from) in &increment_start {
        if let Some(to) = increment_end.get(&(step.clone(), *n)) {
            let from = resumed_before(from, to);
            span(
                "increment",
                format!("{step} increment {n}"),
                &from,
                to,
                "done",
            );
        }
    }
    // Steps that started and never ended (a kill, a Ctrl-C, a halt not resumed).
    for (step, s) in &step_start {
        if !step_ended.contains_key(step) {
            span("step", step.clone(), s, &end, "stopped");
        }
    }
    for stop in &story.stops {
        span(
            "stopped",
            format!("stopped: {}", stop.why),
            &stop.from,
            &stop.to,
            "stopped",
        );
    }
    timeline.sort_by(|a, b| {
        a.start_secs
            .total_cmp(&b.start_secs)
            .then(a.kind.cmp(&b.kind))
    });
    let changes = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Intent {
                action,
                step,
                target,
                before,
                after,
                ..
            } => {
                let restored = history.rolled_back.contains(action);
                Some(ChangeRow {
                    at_secs: offset(&e.at),
                    step: step.clone(),
                    resource: show_target(target),
                    before: show(before),
                    after: show(after),
                    rolled_back: restored && !matches!(target, Target::Instance { .. }),
                    rollback: match target {
                        Target::Instance { .. } => AfterRollback::Replaced,
                        _ if restored => AfterRollback::Restored,
                        _ => AfterRollback::NotRestored,
                    },
                })
            }
            _ => None,
        })
        .collect();
    let digest = Sha256::digest(read.playbook_text.as_bytes());
    let time_stopped_secs = story
        .stops
        .iter()
        .map(|s| secs_between(&s.from, &s.to))
        .sum();
    let time_to_evacuate_secs = time_to_evacuate(entries, &read.plan, &story.stops);
    DrillReport {
        format: 2,
        run_id: run.id.clone(),
        playbook,
        file,
        playbook_sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        params,
        user,
        host,
        caller,
        callers: read
            .plan
            .accounts
            .iter()
            .filter_map(|(name, a)| Some((name.clone(), a.caller.clone()?)))
            .collect(),
        version,
        started_at: start.clone(),
        ended_at: end,
        result: story.result.clone(),
        time_to_evacuate_secs,
        rto: score(read.plan.rto_secs, time_to_evacuate_secs),
        phases: phases(&timeline, &read.plan),
        time_stopped_secs,
        approval_wait_secs: {
            let approvals = approvals(&read.plan);
            (!approvals.is_empty()).then(|| approval_waits(entries, &approvals))
        },
        time_to_fail_back_secs: time_to_fail_back,
        timeline,
        moments: story
            .moments
            .iter()
            .map(|(at, kind, text)| Moment {
                at_secs: secs_between(&start, at),
                kind: kind.clone(),
                text: text.clone(),
            })
            .collect(),
        stop_conditions,
        changes,
        previous: None,
        regions_down: read
            .plan
            .unread
            .iter()
            .map(|(region, unread)| {
                let known = match &unread.read_at {
                    Some(at) => format!("planned from its last known state, read {at}"),
                    None => "no last known state".to_owned(),
                };
                (region.clone(), known)
            })
            .collect(),
        skipped: entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::StepSkipped { step, reason } => Some((step.clone(), reason.clone())),
                _ => None,
            })
            .collect(),
    }
}

/// Each action's step and ramp increment, as its intent recorded them: actions are
/// ids to look up, never text to take apart.
fn steps_of(entries: &[Entry]) -> BTreeMap<String, (String, Option<usize>)> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Intent {
                action,
                step,
                increment,
                ..
            } => Some((action.clone(), (step.clone(), *increment))),
            _ => None,
        })
        .collect()
}

/// How `other` differs from `report` in what decides its time to evacuate: the
/// playbook's content and its params. Empty when it ran the same.
fn differences(report: &DrillReport, other: &DrillReport) -> Vec<String> {
    let mut out = Vec::new();
    if other.playbook_sha256 != report.playbook_sha256 {
        out.push(format!(
            "its playbook file differs (sha256 {} there, {} here)",
            other.playbook_sha256.get(..12).unwrap_or_default(),
            report.playbook_sha256.get(..12).unwrap_or_default()
        ));
    }
    let names: std::collections::BTreeSet<&String> =
        other.params.keys().chain(report.params.keys()).collect();
    for name in names {
        let (there, here) = (other.params.get(name), report.params.get(name));
        if there != here {
            out.push(format!(
                "{name}={} there, {name}={} here",
                there.map_or("(unset)", String::as_str),
                here.map_or("(unset)", String::as_str)
            ));
        }
    }
    out
}

/// The latest earlier run of the same playbook, with the same content and params,
/// that has a time to evacuate; failing that, the latest one of the same playbook
/// name, with how it differs.
fn previous(state_dir: &Path, report: &DrillReport) -> Result<Option<Comparison>, JournalError> {
    let Some(mine) = report.time_to_evacuate_secs else {
        return Ok(None);
    };
    let (mut same, mut other) = (None, None);
    for run in list_runs(state_dir)? {
        if run.id >= report.run_id {
            break;
        }
        let Ok(read) = read(&run) else { continue };
        let earlier = build(&run, &read);
        if earlier.playbook != report.playbook {
            continue;
        }
        let Some(t) = earlier.time_to_evacuate_secs else {
            continue;
        };
        let comparison = Comparison {
            run_id: earlier.run_id.clone(),
            time_to_evacuate_secs: t,
            delta_secs: mine - t,
            differences: differences(report, &earlier),
        };
        if comparison.differences.is_empty() {
            same = Some(comparison);
        } else {
            other = Some(comparison);
        }
    }
    Ok(same.or(other))
}

/// One line of `evac history`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryRow {
    /// The run.
    pub run_id: String,
    /// When it started.
    pub started_at: String,
    /// The playbook.
    pub playbook: String,
    /// How it ended.
    pub result: String,
    /// Its time to evacuate.
    pub time_to_evacuate_secs: Option<f64>,
    /// Against the previous run of the same playbook, content and params that
    /// evacuated.
    pub delta_secs: Option<f64>,
    /// Its time to evacuate against the playbook's `rto:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<RtoScore>,
}

/// Every run in `state_dir`, oldest first, optionally of one playbook.
pub fn history(state_dir: &Path, playbook: Option<&str>) -> Result<Vec<HistoryRow>, JournalError> {
    let mut rows = Vec::new();
    // Deltas only between runs of the same playbook content with the same params.
    let mut last: BTreeMap<(String, String, BTreeMap<String, String>), f64> = BTreeMap::new();
    for run in list_runs(state_dir)? {
        let Ok(read) = read(&run) else { continue };
        let report = build(&run, &read);
        let key = (
            report.playbook.clone(),
            report.playbook_sha256.clone(),
            report.params.clone(),
        );
        let delta = match (report.time_to_evacuate_secs, last.get(&key)) {
            (Some(now), Some(before)) => Some(now - before),
            _ => None,
        };
        if let Some(t) = report.time_to_evacuate_secs {
            last.insert(key, t);
        }
        if playbook.is_none_or(|p| p == report.playbook) {
            rows.push(HistoryRow {
                run_id: report.run_id,
                started_at: report.started_at,
                playbook: report.playbook,
                result: report.result,
                time_to_evacuate_secs: report.time_to_evacuate_secs,
                delta_secs: delta,
                rto: report.rto,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::approval_waits;
    use crate::journal::{Entry, Event};

    fn entry(at: &str, event: Event) -> Entry {
        Entry {
            seq: 0,
            at: at.to_owned(),
            prev: String::new(),
            digest: String::new(),
            event,
        }
    }

    #[test]
    fn approval_waits_are_counted_apart_from_start_to_answer() {
        let started = |at: &str| {
            entry(
                at,
                Event::StepStarted {
                    step: "gate".into(),
                },
            )
        };
        let entries = [
            started("2026-12-04T12:00:00Z"),
            entry(
                "2026-12-04T12:02:00Z",
                Event::ApprovalDeclined {
                    step: "gate".into(),
                    by: "sre".into(),
                },
            ),
            // Resumed later: asked again, and approved 30 s after.
            started("2026-12-04T13:00:00Z"),
            entry(
                "2026-12-04T13:00:30Z",
                Event::Approved {
                    step: "gate".into(),
                    by: "sre".into(),
                },
            ),
        ];
        assert_eq!(approval_waits(&entries, &["gate"]), 150.0);
        assert_eq!(approval_waits(&entries, &["other"]), 0.0);
    }
}
