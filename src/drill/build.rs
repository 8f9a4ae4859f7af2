//! Reading a run's journal into a [`DrillReport`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::engine::execute::{show, show_target};
use crate::engine::history::History;
use crate::journal::{Entry, Event, JournalError, Outcome, RunDir, list_runs};
use crate::plan::{Plan, StepKind};

/// One bar of the timeline, in seconds from the start of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Span {
    /// `step`, `increment`, `bake`, `rollback`.
    pub kind: String,
    /// What it was.
    pub label: String,
    /// Start, seconds after the run started.
    pub start_secs: f64,
    /// End, seconds after the run started.
    pub end_secs: f64,
    /// `done`, `failed`, `stopped`.
    pub status: String,
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
    /// evac's version.
    pub version: String,
    /// First journal entry.
    pub started_at: String,
    /// Last journal entry.
    pub ended_at: String,
    /// How it ended (`succeeded`, `failed`, `halted`, `interrupted`, `rolled back`, ...).
    pub result: String,
    /// From the first change until traffic was moved and the source drained (or the
    /// zone emptied); absent when the run did not get there.
    pub time_to_evacuate_secs: Option<f64>,
    /// From the start of the rollback until it was verified.
    pub time_to_fail_back_secs: Option<f64>,
    /// Steps, increments, bakes and rollback.
    pub timeline: Vec<Span>,
    /// Stop conditions that fired: what, and when (seconds after the start).
    pub stop_conditions: Vec<(String, f64)>,
    /// Every change, before -> after.
    pub changes: Vec<ChangeRow>,
    /// The previous run of the same playbook that evacuated.
    pub previous: Option<Comparison>,
}

fn time(at: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(at).ok()
}

fn secs_between(a: &str, b: &str) -> f64 {
    match (time(a), time(b)) {
        (Some(a), Some(b)) => b.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The result of a run, in a few words: how the run ended, then what the rollback
/// did, if there was one (`failed, rolled back`).
pub fn result_of(history: &History) -> String {
    let run = match history.outcome {
        Some(Outcome::Succeeded) => "succeeded",
        Some(Outcome::Failed) => "failed",
        Some(Outcome::Interrupted) => "interrupted",
        Some(Outcome::Halted) => "halted (stop condition)",
        Some(Outcome::Declined) => "stopped (approval declined)",
        None => "stopped",
    };
    match (history.rollback_verified, history.rollback_started) {
        (Some(true), _) => format!("{run}, rolled back"),
        (Some(false), _) => {
            format!("{run}, rollback incomplete (run `evac rollback` again to finish it)")
        }
        (None, true) => format!("{run}, rollback stopped (run `evac rollback` again to finish it)"),
        (None, false) => run.to_owned(),
    }
}

/// The time to evacuate of a run: first applied change until the last change of the
/// evacuating steps (shift_traffic, drain, evacuate_zone) took effect, provided every
/// one of those steps finished.
fn time_to_evacuate(entries: &[Entry], plan: &Plan) -> Option<f64> {
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
    let finished = |step: &str| {
        entries
            .iter()
            .any(|e| matches!(&e.event, Event::StepFinished { step: s } if s == step))
    };
    if !evacuating.iter().all(|s| finished(s)) {
        return None;
    }
    let first = entries
        .iter()
        .find(|e| matches!(e.event, Event::Applied { .. }))?;
    let last = entries.iter().rev().find(|e| match &e.event {
        Event::Converged { action } => evacuating
            .iter()
            .any(|s| action.starts_with(&format!("{s}:"))),
        _ => false,
    })?;
    Some(secs_between(&first.at, &last.at))
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
    let (mut playbook, mut file, mut params, mut user, mut host, mut version) = Default::default();
    let mut timeline = Vec::new();
    let mut step_start: BTreeMap<String, String> = BTreeMap::new();
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
                ..
            } => {
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
                    timeline.push(Span {
                        kind: "step".into(),
                        label: step.clone(),
                        start_secs: offset(s),
                        end_secs: offset(&e.at),
                        status: status.into(),
                    });
                }
            }
            Event::Intent { action, step, .. } => {
                if let Some(n) = increment_of(action) {
                    increment_start
                        .entry((step.clone(), n))
                        .or_insert_with(|| e.at.clone());
                }
            }
            Event::Converged { action } => {
                if let (Some(n), Some(step)) = (increment_of(action), action.split(':').next()) {
                    increment_end.insert((step.to_owned(), n), e.at.clone());
                }
            }
            Event::Baked { step, increment } => {
                if let Some(from) = increment_end.get(&(step.clone(), *increment)) {
                    timeline.push(Span {
                        kind: "bake".into(),
                        label: format!("{step} bake {increment}"),
                        start_secs: offset(from),
                        end_secs: offset(&e.at),
                        status: "done".into(),
                    });
                }
            }
            Event::StopConditionFired { condition, state } => {
                stop_conditions.push((format!("{condition} is {state}"), offset(&e.at)));
            }
            Event::RollbackStarted { .. } => rollback_start = Some(e.at.clone()),
            Event::RollbackFinished { verified, .. } => {
                if let Some(s) = &rollback_start {
                    timeline.push(Span {
                        kind: "rollback".into(),
                        label: "rollback".into(),
                        start_secs: offset(s),
                        end_secs: offset(&e.at),
                        status: if *verified { "done" } else { "failed" }.into(),
                    });
                    if *verified {
                        time_to_fail_back = Some(secs_between(s, &e.at));
                    }
                }
            }
            _ => {}
        }
    }
    for ((step, n), from) in &increment_start {
        if let Some(to) = increment_end.get(&(step.clone(), *n)) {
            timeline.push(Span {
                kind: "increment".into(),
                label: format!("{step} increment {n}"),
                start_secs: offset(from),
                end_secs: offset(to),
                status: "done".into(),
            });
        }
    }
    // Steps that started and never ended (a kill, a Ctrl-C).
    for (step, s) in &step_start {
        if !timeline
            .iter()
            .any(|t| t.kind == "step" && &t.label == step)
        {
            timeline.push(Span {
                kind: "step".into(),
                label: step.clone(),
                start_secs: offset(s),
                end_secs: offset(&end),
                status: "stopped".into(),
            });
        }
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
            } => Some(ChangeRow {
                at_secs: offset(&e.at),
                step: step.clone(),
                resource: show_target(target),
                before: show(before),
                after: show(after),
                rolled_back: history.rolled_back.contains(action),
            }),
            _ => None,
        })
        .collect();
    let digest = Sha256::digest(read.playbook_text.as_bytes());
    DrillReport {
        format: 1,
        run_id: run.id.clone(),
        playbook,
        file,
        playbook_sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        params,
        user,
        host,
        version,
        started_at: start,
        ended_at: end,
        result: result_of(&history),
        time_to_evacuate_secs: time_to_evacuate(entries, &read.plan),
        time_to_fail_back_secs: time_to_fail_back,
        timeline,
        stop_conditions,
        changes,
        previous: None,
    }
}

fn increment_of(action: &str) -> Option<usize> {
    let parts: Vec<&str> = action.split(':').collect();
    match parts.as_slice() {
        [_, "dns", _, n] => n.parse().ok(),
        _ => None,
    }
}

/// The latest earlier run of the same playbook that has a time to evacuate.
fn previous(state_dir: &Path, report: &DrillReport) -> Result<Option<Comparison>, JournalError> {
    let Some(mine) = report.time_to_evacuate_secs else {
        return Ok(None);
    };
    let mut best = None;
    for run in list_runs(state_dir)? {
        if run.id >= report.run_id {
            break;
        }
        let Ok(read) = read(&run) else { continue };
        let other = build(&run, &read);
        if other.playbook == report.playbook
            && let Some(t) = other.time_to_evacuate_secs
        {
            best = Some(Comparison {
                run_id: other.run_id,
                time_to_evacuate_secs: t,
                delta_secs: mine - t,
            });
        }
    }
    Ok(best)
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
    /// Against the previous run of the same playbook that evacuated.
    pub delta_secs: Option<f64>,
}

/// Every run in `state_dir`, oldest first, optionally of one playbook.
pub fn history(state_dir: &Path, playbook: Option<&str>) -> Result<Vec<HistoryRow>, JournalError> {
    let mut rows = Vec::new();
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    for run in list_runs(state_dir)? {
        let Ok(read) = read(&run) else { continue };
        let report = build(&run, &read);
        let delta = match (report.time_to_evacuate_secs, last.get(&report.playbook)) {
            (Some(now), Some(before)) => Some(now - before),
            _ => None,
        };
        if let Some(t) = report.time_to_evacuate_secs {
            last.insert(report.playbook.clone(), t);
        }
        if playbook.is_none_or(|p| p == report.playbook) {
            rows.push(HistoryRow {
                run_id: report.run_id,
                started_at: report.started_at,
                playbook: report.playbook,
                result: report.result,
                time_to_evacuate_secs: report.time_to_evacuate_secs,
                delta_secs: delta,
            });
        }
    }
    Ok(rows)
}
