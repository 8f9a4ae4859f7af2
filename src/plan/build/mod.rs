//! Building a plan: a pure function of the playbook and the observed state, one
//! file per step kind (capacity, traffic, zone, gates) over a shared builder.
//!
//! Steps are simulated in order on a projected state, so each step sees what the
//! steps before it will have done (a drain after a full shift sees zero weight).

use std::collections::{BTreeMap, BTreeSet};

use crate::playbook::{
    Action, Check, Drain, EvacuateZone, Names, Playbook, ScaleUp, ShiftTraffic, StopCondition,
};
use crate::state::{Capacity, Observed, ZoneLookup};

use super::model::{
    Change, Estimate, Finding, PLAN_FORMAT, Plan, PlannedAccount, PlaybookRef, SetWeights,
    StepKind, StepPlan, StopRef,
};
use super::timing::Timing;

/// The state as it will be when a step starts.
struct Projection<'a> {
    observed: &'a Observed,
    capacity: BTreeMap<(String, String), Capacity>,
    weights: BTreeMap<String, BTreeMap<String, i64>>,
}

impl<'a> Projection<'a> {
    fn new(observed: &'a Observed) -> Self {
        let weights = observed
            .records
            .iter()
            .map(|(record, sets)| {
                (
                    record.clone(),
                    sets.iter()
                        .map(|s| (s.set_identifier.clone(), s.weight.unwrap_or(0)))
                        .collect(),
                )
            })
            .collect();
        Self {
            observed,
            capacity: BTreeMap::new(),
            weights,
        }
    }

    fn capacity(&self, region: &str, group: &str) -> Option<Capacity> {
        self.capacity
            .get(&(region.to_owned(), group.to_owned()))
            .copied()
            .or_else(|| self.observed.group(region, group).map(|g| g.capacity))
    }

    fn set_capacity(&mut self, region: &str, group: &str, capacity: Capacity) {
        self.capacity
            .insert((region.to_owned(), group.to_owned()), capacity);
    }
}

mod capacity;
mod down;
mod gates;
mod traffic;
mod zone;

pub use capacity::counterpart;
pub use traffic::split_weights;

/// What a step builder makes of one step.
struct Built {
    /// The step's kind.
    kind: StepKind,
    /// One line saying what it does.
    summary: String,
    /// Its changes, before -> after.
    changes: Vec<Change>,
}

impl Built {
    fn new(kind: StepKind, summary: String, changes: Vec<Change>) -> Self {
        Self {
            kind,
            summary,
            changes,
        }
    }
}

struct Builder<'a> {
    playbook: &'a Playbook,
    observed: &'a Observed,
    projection: Projection<'a>,
    blockers: Vec<Finding>,
    warnings: Vec<Finding>,
    calls: BTreeMap<String, u32>,
    /// Per region: the subnets of the groups scaled up so far, and how many more
    /// addresses their new instances take.
    addresses: BTreeMap<String, (BTreeSet<String>, u64)>,
    /// Per region, per vCPU quota code: how many more vCPUs the scale-ups so far
    /// take.
    vcpus: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Quotas and groups already warned of (as `region/name`): once each.
    warned: BTreeSet<String>,
    /// What a record's groups serve in a region (by serving groups, region, and
    /// whether projected), within one shift step: a fleet's records share
    /// hundreds of groups, and capacity does not change inside a shift.
    served: std::cell::RefCell<BTreeMap<ServedKey, traffic::Served>>,
}

/// A record's serving groups, a region, and whether capacity is projected.
type ServedKey = (Vec<String>, String, bool);

fn finding(step: Option<&str>, resource: Option<String>, message: String) -> Finding {
    Finding {
        step: step.map(str::to_owned),
        resource,
        message,
    }
}

/// Builds the plan of `playbook` (loaded from `file`) against `observed`, at time
/// `now` (for the drill window), estimating durations with AWS's usual timing.
pub fn build(playbook: &Playbook, observed: &Observed, file: &str, now: jiff::Timestamp) -> Plan {
    build_with(playbook, observed, file, now, &Timing::default())
}

/// [`build`], with the duration estimate made under `timing`.
pub fn build_with(
    playbook: &Playbook,
    observed: &Observed,
    file: &str,
    now: jiff::Timestamp,
    timing: &Timing,
) -> Plan {
    let mut b = Builder {
        playbook,
        observed,
        projection: Projection::new(observed),
        blockers: Vec::new(),
        warnings: Vec::new(),
        calls: BTreeMap::new(),
        addresses: BTreeMap::new(),
        vcpus: BTreeMap::new(),
        warned: BTreeSet::new(),
        served: Default::default(),
    };
    b.check_stop_conditions();
    b.check_unread(now);
    if let Some(window) = &playbook.window
        && let Err(local) = crate::playbook::window::inside(window, now)
    {
        let days: Vec<String> = window
            .days
            .iter()
            .map(|d| format!("{d:?}").to_lowercase())
            .collect();
        b.warn(
            None,
            None,
            format!(
                "now ({local}) is outside the drill window: {} {} {}",
                days.join(","),
                window.hours,
                window.tz
            ),
        );
    }
    let mut steps = Vec::new();
    for step in &playbook.steps {
        let id = step.id.as_str();
        let timeout_secs = match &step.action {
            Action::ScaleUp(s) if !matches!(s.wait, crate::playbook::WaitFor::None) => {
                s.timeout.0.as_secs()
            }
            Action::ScaleUp(_) | Action::Wait(_) | Action::Approve(_) => 0,
            Action::ShiftTraffic(s) => s.timeout.0.as_secs(),
            Action::Drain(d) => d.timeout.0.as_secs(),
            Action::EvacuateZone(z) => z.timeout.0.as_secs(),
            Action::Check(c) => c.timeout.0.as_secs(),
        };
        // A skipped step is still built, to show what it would have changed; its
        // blockers do not stop the run, and its calls are not made.
        let skipped = b.skipped_because(&step.action);
        let (blockers, calls) = (b.blockers.len(), b.calls.clone());
        let Built {
            kind,
            summary,
            changes,
        } = match &step.action {
            Action::ScaleUp(s) => b.scale_up(id, s),
            Action::ShiftTraffic(s) => b.shift_traffic(id, s),
            Action::Drain(d) => b.drain(id, d),
            Action::EvacuateZone(z) => b.evacuate_zone(id, z),
            Action::Wait(d) => Built::new(
                StepKind::Wait,
                format!("hold for {d}"),
                vec![Change::Wait {
                    secs: d.0.as_secs(),
                }],
            ),
            Action::Approve(message) => Built::new(
                StepKind::Approve,
                "a human approves before the run goes on".to_owned(),
                vec![Change::Approve {
                    message: message.clone(),
                }],
            ),
            Action::Check(c) => b.check(id, c),
        };
        if matches!(step.action, Action::ShiftTraffic(_)) {
            b.check_capacity_behind_traffic(id);
        }
        let balancers = timeout_secs > 0
            && match &step.action {
                Action::ScaleUp(s) => s.wait == crate::playbook::WaitFor::Healthy,
                Action::Drain(d) => d.wait == crate::playbook::DrainWait::Deregistered,
                _ => false,
            }
            && changes
                .iter()
                .any(|c| matches!(c, Change::Capacity { balancers, .. } if !balancers.is_empty()));
        if skipped.is_some() {
            b.blockers.truncate(blockers);
            b.calls = calls;
        }
        let mut plan = StepPlan {
            id: id.to_owned(),
            kind,
            summary,
            changes,
            estimate_secs: 0,
            timeout_secs,
            balancers,
            skipped,
        };
        plan.estimate_secs = timing.step(&plan).round() as u64;
        steps.push(plan);
    }
    let zones = observed
        .zones
        .values()
        .filter(|z| matches!(z, ZoneLookup::Found { .. }))
        .count();
    // The preflight reads one group's lifecycle hooks a call, the regions at once.
    let mut changed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for step in steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::ScaleUp | StepKind::Drain))
    {
        for change in &step.changes {
            if let Change::Capacity { region, group, .. } = change {
                changed.entry(region).or_default().insert(group);
            }
        }
    }
    let hooks = changed.values().map(BTreeSet::len).max().unwrap_or(0);
    // The run's steps one after another; traffic has left only once resolvers drop
    // the last shift's old answers, which may be after the run's last step.
    let mut elapsed = timing.observe(zones, hooks);
    let mut evacuated: Option<f64> = None;
    for step in &steps {
        elapsed += timing.step(step);
        if let Some(ttl) = step.ttl_secs() {
            evacuated = Some(elapsed + ttl as f64);
        }
    }
    let duration_secs = elapsed.round() as u64;
    let shifts = steps.iter().any(|s| {
        s.changes
            .iter()
            .any(|c| matches!(c, Change::ZonalShift { .. }))
    });
    // A zone step's shifts last the drill's estimate from that step on, plus a
    // margin: they expire by themselves if the drill's process dies.
    let mut after: f64 = steps.iter().map(|s| timing.step(s)).sum();
    for step in &mut steps {
        let from_here = after;
        after -= timing.step(step);
        for change in &mut step.changes {
            if let Change::ZonalShift { minutes, .. } = change {
                *minutes = crate::plan::shift::minutes_for(from_here.max(0.0).round() as u64);
            }
        }
    }
    let traffic_gone_secs = evacuated.map(|at| at.max(elapsed).round() as u64);
    // Scored against the recovery time objective: the time until traffic is gone
    // (the run's end when no shift moves it).
    let rto_secs = playbook.rto.map(|d| d.0.as_secs());
    if let Some(rto) = rto_secs {
        let evacuates = traffic_gone_secs.unwrap_or(duration_secs);
        if evacuates > rto {
            b.warn(
                None,
                None,
                format!(
                    "the estimate to evacuate, {}, is over the rto of {} by {}: speed the drill up (fewer or shorter bakes, capacity kept ready), or the rto is not met",
                    crate::plan::render::duration(evacuates),
                    crate::plan::render::duration(rto),
                    crate::plan::render::duration(evacuates - rto)
                ),
            );
        }
    }
    Plan {
        format: PLAN_FORMAT,
        playbook: PlaybookRef {
            name: playbook.name.clone(),
            file: file.to_owned(),
            params: playbook
                .params
                .iter()
                .map(|(k, v)| (k.clone(), scalar(v)))
                .collect(),
            sha256: String::new(),
            source: String::new(),
        },
        steps,
        blockers: b.blockers,
        warnings: b.warnings,
        rto_secs,
        estimate: Estimate {
            duration_secs,
            traffic_gone_secs,
            mutating_calls: b.calls,
            assumptions: timing.assumptions(shifts),
        },
        stop_conditions: playbook
            .stop_when
            .iter()
            .filter(|c| match c {
                // Not watched: its region is down (the plan warns).
                StopCondition::Alarm(a) => !observed.is_unread(a.region.as_str()),
                StopCondition::HealthCheck(_) => true,
            })
            .map(|c| match c {
                StopCondition::Alarm(a) => StopRef::Alarm {
                    region: a.region.to_string(),
                    name: a.name.clone(),
                },
                StopCondition::HealthCheck(h) => StopRef::HealthCheck { id: h.id.clone() },
            })
            .collect(),
        stop_live: playbook
            .stop_when
            .iter()
            .map(|c| match c {
                StopCondition::Alarm(a) if observed.is_unread(a.region.as_str()) => (
                    format!("alarm {} ({})", a.name, a.region),
                    format!("unreadable: {} is down", a.region),
                ),
                StopCondition::Alarm(a) => (
                    format!("alarm {} ({})", a.name, a.region),
                    observed
                        .alarms
                        .get(a.region.as_str())
                        .and_then(|m| m.get(&a.name))
                        .cloned()
                        .unwrap_or_else(|| "not found".to_owned()),
                ),
                StopCondition::HealthCheck(h) => (
                    format!("health check {}", h.id),
                    if observed.health_checks.get(&h.id) == Some(&true) {
                        "exists".to_owned()
                    } else {
                        "not found".to_owned()
                    },
                ),
            })
            .collect(),
        fingerprint: observed.fingerprint(),
        fingerprint_without_hooks: observed.fingerprint_without_hooks(),
        caller: observed.caller.clone(),
        accounts: playbook
            .accounts
            .iter()
            .map(|(name, spec)| {
                (
                    name.clone(),
                    PlannedAccount {
                        spec: spec.clone(),
                        caller: observed.callers.get(name).cloned(),
                    },
                )
            })
            .collect(),
        routes: observed.routes.clone(),
        unread: observed.unread.clone(),
        notify: playbook.notify.clone(),
        evac_version: String::new(),
        digest: String::new(),
    }
}

/// A parameter value as a plan records it.
pub fn scalar(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

impl Builder<'_> {
    pub(super) fn block(&mut self, step: Option<&str>, resource: Option<String>, message: String) {
        self.blockers.push(finding(step, resource, message));
    }

    pub(super) fn warn(&mut self, step: Option<&str>, resource: Option<String>, message: String) {
        self.warnings.push(finding(step, resource, message));
    }

    pub(super) fn count(&mut self, operation: &str, n: u32) {
        if n > 0 {
            *self.calls.entry(operation.to_owned()).or_default() += n;
        }
    }

    /// The Auto Scaling groups of the named groups in `region`, reporting those that
    /// resolve to nothing or miss explicit names.
    pub(super) fn members(
        &mut self,
        step: &str,
        names: &Names,
        region: &str,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for name in names.iter() {
            let found = self.observed.resolved(region, name).to_vec();
            let Some(spec) = self.playbook.groups.get(name) else {
                continue;
            };
            if let Some(crate::playbook::GroupNames::PerRegion(by_region)) = &spec.names
                && !by_region.keys().any(|r| r.as_str() == region)
            {
                self.block(
                    Some(step),
                    Some(format!("group {name} ({region})")),
                    format!(
                        "group `{name}` lists Auto Scaling group names per region, and none for {region}: add `{region}: [NAME, ...]` under groups.{name}.names"
                    ),
                );
            }
            let unread = self.observed.is_unread(region);
            if let Some(wanted) = spec.names_in(region) {
                for missing in wanted.iter().filter(|w| !found.contains(w)) {
                    let message = if unread {
                        format!(
                            "Auto Scaling group {missing} (group `{name}`) is not in the last known state of {region}, which {}: `evac plan` records each group it reads while its region answers",
                            self.unread_said(region)
                        )
                    } else {
                        format!(
                            "Auto Scaling group {missing} (group `{name}`) not found in {region}"
                        )
                    };
                    self.block(
                        Some(step),
                        Some(format!("asg {missing} ({region})")),
                        message,
                    );
                }
            } else if found.is_empty() && unread {
                self.block(
                    Some(step),
                    Some(format!("group {name} ({region})")),
                    format!(
                        "group `{name}` matches no Auto Scaling group in the last known state of {region}, which {}: `evac plan` records each group it reads while its region answers",
                        self.unread_said(region)
                    ),
                );
            } else if found.is_empty() {
                let selector = spec
                    .tags
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.block(
                    Some(step),
                    Some(format!("group {name} ({region})")),
                    format!(
                        "group `{name}` matches no Auto Scaling group in {region} (tags {selector})"
                    ),
                );
            }
            out.extend(found.into_iter().map(|g| (name.clone(), g)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn two_regions_ramp_moves_the_share_exactly() {
        let before = weights(&[("use1", 100), ("usw2", 0)]);
        assert_eq!(
            split_weights(&before, "usw2", 100, 25),
            weights(&[("use1", 75), ("usw2", 25)])
        );
        assert_eq!(
            split_weights(&before, "usw2", 100, 100),
            weights(&[("use1", 0), ("usw2", 100)])
        );
    }

    #[test]
    fn three_regions_share_the_rest_in_proportion() {
        let before = weights(&[("a", 60), ("b", 30), ("c", 10)]);
        let after = split_weights(&before, "c", 100, 50);
        assert_eq!(after, weights(&[("a", 33), ("b", 17), ("c", 50)]));
        assert_eq!(after.values().sum::<i64>(), 100);
    }

    #[test]
    fn others_at_zero_share_evenly() {
        let before = weights(&[("a", 0), ("b", 0), ("c", 100)]);
        assert_eq!(
            split_weights(&before, "c", 100, 25),
            weights(&[("a", 38), ("b", 37), ("c", 25)])
        );
    }

    #[test]
    fn a_plan_outside_the_drill_window_warns() {
        let text = "version: 1\nname: w\nwindow: { days: [tue, wed], hours: \"14:00-17:00\", tz: America/Los_Angeles }\nsteps:\n  - id: hold\n    wait: 1m\n";
        let playbook =
            crate::playbook::load_str("w.yaml", text, &BTreeMap::new()).expect("valid playbook");
        let at = |ts: &str| ts.parse::<jiff::Timestamp>().expect("timestamp");
        let inside = build(
            &playbook,
            &Observed::default(),
            "w.yaml",
            at("2026-11-24T23:00:00Z"),
        );
        assert!(inside.warnings.is_empty(), "{:?}", inside.warnings);
        let outside = build(
            &playbook,
            &Observed::default(),
            "w.yaml",
            at("2026-11-23T23:00:00Z"),
        );
        let messages: Vec<&str> = outside
            .warnings
            .iter()
            .map(|w| w.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "now (Mon 15:00 PST) is outside the drill window: tue,wed 14:00-17:00 America/Los_Angeles"
            ]
        );
        assert!(
            outside.blockers.is_empty(),
            "a window is a warning, not a blocker"
        );
    }

    #[test]
    fn counterparts_are_found_by_region_in_the_name() {
        let sources = vec!["api-us-east-1".to_owned(), "worker-us-east-1".to_owned()];
        assert_eq!(
            counterpart("worker-us-west-2", "us-west-2", "us-east-1", 2, &sources),
            Some("worker-us-east-1".to_owned())
        );
        let short = vec!["api-use1".to_owned(), "web-use1".to_owned()];
        assert_eq!(
            counterpart("api-usw2", "us-west-2", "us-east-1", 2, &short),
            Some("api-use1".to_owned())
        );
        assert_eq!(
            counterpart("edge", "us-west-2", "us-east-1", 2, &sources),
            None
        );
        assert_eq!(
            counterpart("anything", "us-west-2", "us-east-1", 1, &sources[..1]),
            Some("api-us-east-1".to_owned())
        );
    }
}
