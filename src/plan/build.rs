//! Building a plan: a pure function of the playbook and the observed state.
//!
//! Steps are simulated in order on a projected state, so each step sees what the
//! steps before it will have done (a drain after a full shift sees zero weight).

use std::collections::{BTreeMap, BTreeSet};

use crate::playbook::{
    Action, Check, Drain, EvacuateZone, Names, Playbook, ScaleUp, ShiftTraffic, StopCondition,
};
use crate::state::{Capacity, Observed, ZoneLookup};

use super::model::{
    Change, Estimate, Finding, PLAN_FORMAT, Plan, PlaybookRef, SetWeights, StepKind, StepPlan,
    StopRef,
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

struct Builder<'a> {
    playbook: &'a Playbook,
    observed: &'a Observed,
    projection: Projection<'a>,
    blockers: Vec<Finding>,
    warnings: Vec<Finding>,
    calls: BTreeMap<String, u32>,
}

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
    };
    b.check_stop_conditions();
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
            Action::ScaleUp(s) if matches!(s.wait, crate::playbook::WaitFor::InService) => {
                s.timeout.0.as_secs()
            }
            Action::ScaleUp(_) | Action::Wait(_) | Action::Approve(_) => 0,
            Action::ShiftTraffic(s) => s.timeout.0.as_secs(),
            Action::Drain(d) => d.timeout.0.as_secs(),
            Action::EvacuateZone(z) => z.timeout.0.as_secs(),
            Action::Check(c) => c.timeout.0.as_secs(),
        };
        let (kind, summary, changes) = match &step.action {
            Action::ScaleUp(s) => b.scale_up(id, s),
            Action::ShiftTraffic(s) => b.shift_traffic(id, s),
            Action::Drain(d) => b.drain(id, d),
            Action::EvacuateZone(z) => b.evacuate_zone(id, z),
            Action::Wait(d) => (
                StepKind::Wait,
                format!("hold for {d}"),
                vec![Change::Wait {
                    secs: d.0.as_secs(),
                }],
            ),
            Action::Approve(message) => (
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
        let mut plan = StepPlan {
            id: id.to_owned(),
            kind,
            summary,
            changes,
            estimate_secs: 0,
            timeout_secs,
        };
        plan.estimate_secs = timing.step(&plan).round() as u64;
        steps.push(plan);
    }
    let zones = observed
        .zones
        .values()
        .filter(|z| matches!(z, ZoneLookup::Found { .. }))
        .count();
    let duration = timing.observe(zones) + steps.iter().map(|s| timing.step(s)).sum::<f64>();
    let duration_secs = duration.round() as u64;
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
        estimate: Estimate {
            duration_secs,
            mutating_calls: b.calls,
            assumptions: timing.assumptions(),
        },
        stop_conditions: playbook
            .stop_when
            .iter()
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
    fn block(&mut self, step: Option<&str>, resource: Option<String>, message: String) {
        self.blockers.push(finding(step, resource, message));
    }

    fn warn(&mut self, step: Option<&str>, resource: Option<String>, message: String) {
        self.warnings.push(finding(step, resource, message));
    }

    fn count(&mut self, operation: &str, n: u32) {
        if n > 0 {
            *self.calls.entry(operation.to_owned()).or_default() += n;
        }
    }

    /// After a step: a region that still gets traffic must still have capacity.
    fn check_capacity_behind_traffic(&mut self, step: &str) {
        let mut regions: BTreeMap<String, Vec<(String, i64, i64)>> = BTreeMap::new();
        for (record, spec) in &self.playbook.records {
            let Some(weights) = self.projection.weights.get(record) else {
                continue;
            };
            let total: i64 = weights.values().sum();
            for (region, set_id) in &spec.set_identifiers {
                let weight = weights.get(set_id).copied().unwrap_or(0);
                if weight > 0 {
                    regions.entry(region.to_string()).or_default().push((
                        record.clone(),
                        weight,
                        total,
                    ));
                }
            }
        }
        for (region, records) in regions {
            let Some(named) = self.observed.resolved_groups.get(&region) else {
                continue;
            };
            let groups: BTreeSet<&String> = named.values().flatten().collect();
            if groups.is_empty() {
                continue;
            }
            let capacity: u32 = groups
                .iter()
                .filter_map(|g| self.projection.capacity(&region, g))
                .map(|c| c.desired)
                .sum();
            if capacity == 0 {
                for (record, weight, total) in records {
                    self.block(
                        Some(step),
                        Some(format!("record {record} ({region})")),
                        format!(
                            "after this step {region} still gets weight {weight} of {total} of `{record}` but its groups ({}) have desired 0: give it capacity first or move its traffic away",
                            groups.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
    }

    fn check_stop_conditions(&mut self) {
        for condition in &self.playbook.stop_when {
            match condition {
                StopCondition::Alarm(a) => {
                    let resource = Some(format!("alarm {} ({})", a.name, a.region));
                    match self.observed.alarms.get(a.region.as_str()).and_then(|m| m.get(&a.name)) {
                        None => self.block(
                            None,
                            resource,
                            format!(
                                "stop-condition alarm {} not found in {}: create it, or fix its name or region",
                                a.name, a.region
                            ),
                        ),
                        Some(state) if state == "ALARM" => self.block(
                            None,
                            resource,
                            format!(
                                "stop-condition alarm {} in {} is already in ALARM: the run would halt at once; start when it is OK",
                                a.name, a.region
                            ),
                        ),
                        Some(_) => {}
                    }
                }
                StopCondition::HealthCheck(h) => {
                    if self.observed.health_checks.get(&h.id) != Some(&true) {
                        self.block(
                            None,
                            Some(format!("health check {}", h.id)),
                            format!("stop-condition health check {} not found", h.id),
                        );
                    }
                }
            }
        }
    }

    /// The Auto Scaling groups of the named groups in `region`, reporting those that
    /// resolve to nothing or miss explicit names.
    fn members(&mut self, step: &str, names: &Names, region: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for name in names.iter() {
            let found = self.observed.resolved(region, name).to_vec();
            let Some(spec) = self.playbook.groups.get(name) else {
                continue;
            };
            if let Some(wanted) = &spec.names {
                for missing in wanted.iter().filter(|w| !found.contains(w)) {
                    self.block(
                        Some(step),
                        Some(format!("asg {missing} ({region})")),
                        format!(
                            "Auto Scaling group {missing} (group `{name}`) not found in {region}"
                        ),
                    );
                }
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

    fn scale_up(&mut self, step: &str, s: &ScaleUp) -> (StepKind, String, Vec<Change>) {
        let region = s.region.as_str();
        let targets = self.members(step, &s.group, region);
        let sources: BTreeMap<String, Vec<String>> = match &s.absorb {
            Some(a) => s
                .group
                .iter()
                .map(|g| {
                    (
                        g.clone(),
                        self.observed.resolved(a.from.as_str(), g).to_vec(),
                    )
                })
                .collect(),
            None => BTreeMap::new(),
        };
        let mut changes = Vec::new();
        for (named, target) in &targets {
            let Some(before) = self.projection.capacity(region, target) else {
                continue;
            };
            let resource = Some(format!("asg {target} ({region})"));
            let (desired, mut reason) = match (&s.absorb, s.desired) {
                (Some(absorb), _) => {
                    let from = absorb.from.as_str();
                    let same_group: Vec<&String> = targets
                        .iter()
                        .filter(|(n, _)| n == named)
                        .map(|(_, t)| t)
                        .collect();
                    let candidates = sources.get(named).map(Vec::as_slice).unwrap_or(&[]);
                    let Some(source) =
                        counterpart(target, region, from, same_group.len(), candidates)
                    else {
                        self.block(
                            Some(step),
                            resource,
                            format!(
                                "no matching source group in {from} for {target}: group `{named}` has {} there ({}); name the groups alike with the region in the name (api-{from} / api-{region})",
                                candidates.len(),
                                if candidates.is_empty() { "none".to_owned() } else { candidates.join(", ") }
                            ),
                        );
                        continue;
                    };
                    let source_desired = self
                        .projection
                        .capacity(from, &source)
                        .map_or(0, |c| c.desired);
                    let pct = u32::from(absorb.percent.get());
                    let add =
                        u32::try_from((u64::from(source_desired) * u64::from(pct)).div_ceil(100))
                            .unwrap_or(u32::MAX);
                    (
                        before.desired.saturating_add(add),
                        format!(
                            "absorb {pct}% of {source} desired {source_desired}: {} + {add}",
                            before.desired
                        ),
                    )
                }
                (None, Some(n)) => {
                    if n < before.desired {
                        self.warn(
                            Some(step),
                            resource.clone(),
                            format!(
                                "scale_up lowers desired of {target} from {} to {n}",
                                before.desired
                            ),
                        );
                    }
                    (n, format!("desired set to {n}"))
                }
                (None, None) => continue,
            };
            let mut after = Capacity {
                min: before.min.max(desired),
                desired,
                max: before.max,
            };
            if desired > before.max {
                if s.raise_max {
                    after.max = desired;
                    reason.push_str(&format!("; max raised from {}", before.max));
                } else {
                    self.block(
                        Some(step),
                        resource,
                        format!(
                            "desired {desired} of {target} would exceed its max {}: set `raise_max: true` or lower the share",
                            before.max
                        ),
                    );
                    continue;
                }
            }
            if after.min > before.min {
                reason.push_str("; min pinned to desired for the drill");
            }
            self.projection.set_capacity(region, target, after);
            if after != before {
                self.count("autoscaling:UpdateAutoScalingGroup", 1);
            }
            changes.push(Change::Capacity {
                region: region.to_owned(),
                group: target.clone(),
                before,
                after,
                reason,
            });
        }
        let waits = matches!(s.wait, crate::playbook::WaitFor::InService)
            && changes.iter().any(|c| matches!(c, Change::Capacity { before, after, .. } if after.desired > before.desired));
        let summary = format!(
            "scale up {} in {region}{}",
            s.group.0.join(", "),
            if waits {
                format!(", wait until InService (timeout {})", s.timeout)
            } else {
                String::new()
            }
        );
        (StepKind::ScaleUp, summary, changes)
    }

    fn drain(&mut self, step: &str, d: &Drain) -> (StepKind, String, Vec<Change>) {
        let region = d.region.as_str();
        for (name, spec) in &self.playbook.records {
            let Some(set_id) = spec.set_identifiers.get(&d.region) else {
                continue;
            };
            let Some(weights) = self.projection.weights.get(name) else {
                continue;
            };
            let total: i64 = weights.values().sum();
            let weight = weights.get(set_id).copied().unwrap_or(0);
            if weight > 0 {
                self.block(
                    Some(step),
                    Some(format!("record {name} ({set_id})")),
                    format!(
                        "drain of {region} while record `{name}` still sends it weight {weight} of {total} ({}%): shift the traffic away first",
                        weight * 100 / total.max(1)
                    ),
                );
            }
        }
        let mut changes = Vec::new();
        for (_, group) in self.members(step, &d.group, region) {
            let Some(before) = self.projection.capacity(region, &group) else {
                continue;
            };
            let after = Capacity {
                min: before.min.min(d.to),
                desired: d.to,
                max: before.max,
            };
            let reason = if after.min < before.min {
                format!("drain to {}; min lowered to match", d.to)
            } else {
                format!("drain to {}", d.to)
            };
            self.projection.set_capacity(region, &group, after);
            if after != before {
                self.count("autoscaling:UpdateAutoScalingGroup", 1);
            }
            changes.push(Change::Capacity {
                region: region.to_owned(),
                group,
                before,
                after,
                reason,
            });
        }
        let summary = format!(
            "drain {} in {region} to {} (timeout {})",
            d.group.0.join(", "),
            d.to,
            d.timeout
        );
        (StepKind::Drain, summary, changes)
    }

    fn shift_traffic(&mut self, step: &str, s: &ShiftTraffic) -> (StepKind, String, Vec<Change>) {
        let mut changes = Vec::new();
        let mut zones: BTreeSet<String> = BTreeSet::new();
        for name in s.record.iter() {
            let Some(spec) = self.playbook.records.get(name) else {
                continue;
            };
            let resource = Some(format!("record {name}"));
            let zone_id = match self.observed.zones.get(&spec.zone) {
                Some(ZoneLookup::Found { id, .. }) => id.clone(),
                Some(ZoneLookup::Ambiguous { ids }) => {
                    self.block(
                        Some(step),
                        resource,
                        format!(
                            "{} hosted zones are named {} ({}): write the zone id instead",
                            ids.len(),
                            spec.zone,
                            ids.join(", ")
                        ),
                    );
                    continue;
                }
                _ => {
                    self.block(
                        Some(step),
                        resource,
                        format!("hosted zone {} not found", spec.zone),
                    );
                    continue;
                }
            };
            let observed = self.observed.records.get(name).cloned().unwrap_or_default();
            let regions_by_id: BTreeMap<&str, &str> = spec
                .set_identifiers
                .iter()
                .map(|(r, id)| (id.as_str(), r.as_str()))
                .collect();
            if observed.is_empty() {
                self.block(
                    Some(step),
                    resource,
                    format!(
                        "record {} {} not found in zone {}",
                        spec.name, spec.record_type, spec.zone
                    ),
                );
                continue;
            }
            let mut missing = false;
            for (region, id) in &spec.set_identifiers {
                if !observed.iter().any(|s| &s.set_identifier == id) {
                    self.block(
                        Some(step),
                        Some(format!("record {name} ({id})")),
                        format!(
                            "set identifier {id} ({region}) of {} {} not found in zone {}",
                            spec.name, spec.record_type, spec.zone
                        ),
                    );
                    missing = true;
                }
            }
            if let Some(unweighted) = observed.iter().find(|s| s.weight.is_none()) {
                self.block(
                    Some(step),
                    resource.clone(),
                    format!(
                        "record set {} of {} is not weighted",
                        unweighted.set_identifier, spec.name
                    ),
                );
                missing = true;
            }
            if missing {
                continue;
            }
            let Some(target) = spec.set_identifiers.get(&s.to).cloned() else {
                continue;
            };
            let before: BTreeMap<String, i64> = self
                .projection
                .weights
                .get(name)
                .cloned()
                .unwrap_or_default();
            let total: i64 = before.values().sum();
            if total == 0 {
                self.block(
                    Some(step),
                    resource,
                    format!(
                        "all weights of record `{name}` are zero: it serves no traffic to shift"
                    ),
                );
                continue;
            }
            // Route 53 weights go up to 255.
            let total = total.min(255);
            let increments: Vec<BTreeMap<String, i64>> = s
                .ramp
                .iter()
                .map(|pct| split_weights(&before, &target, total, *pct))
                .collect();
            let before_target = before.get(&target).copied().unwrap_or(0);
            let max = i64::from(self.playbook.max_increment.get());
            let mut share = before_target * 100 / total.max(1);
            for (k, pct) in s.ramp.iter().enumerate() {
                if (pct - share).abs() > max {
                    self.block(
                        Some(step),
                        resource.clone(),
                        format!(
                            "increment {} moves {} percent of the weight of `{name}` at once (from {share}% to {pct}% on {}), more than max_increment {max}: add an increment or raise max_increment",
                            k + 1,
                            (pct - share).abs(),
                            s.to
                        ),
                    );
                }
                share = *pct;
            }
            if let Some(first) = increments.first().and_then(|inc| inc.get(&target))
                && *first < before_target
            {
                self.warn(
                        Some(step),
                        resource.clone(),
                        format!(
                            "the first increment lowers the weight of {} ({}) from {before_target} to {first}: is the ramp meant for this direction?",
                            target, s.to
                        ),
                    );
            }
            let max_ttl = observed.iter().filter_map(|s| s.ttl).max();
            if let Some(ttl) = max_ttl
                && (s.bake.0.as_secs() as i64) < ttl
            {
                self.warn(
                        Some(step),
                        resource.clone(),
                        format!(
                            "bake {} is shorter than the TTL {ttl}s of {}: resolvers may still use the old weights when the next increment starts",
                            s.bake, spec.name
                        ),
                    );
            }
            let sets = before
                .iter()
                .map(|(id, weight)| SetWeights {
                    set_identifier: id.clone(),
                    region: regions_by_id.get(id.as_str()).map(|r| (*r).to_owned()),
                    before: *weight,
                    after: increments
                        .iter()
                        .map(|inc| inc.get(id).copied().unwrap_or(0))
                        .collect(),
                })
                .collect();
            if let Some(last) = increments.last() {
                self.projection.weights.insert(name.clone(), last.clone());
            }
            zones.insert(zone_id.clone());
            changes.push(Change::Weights {
                record: name.clone(),
                name: spec.name.clone(),
                record_type: spec.record_type.to_string(),
                zone_id,
                ramp: s.ramp.clone(),
                sets,
                bake_secs: s.bake.0.as_secs(),
            });
        }
        let increments = s.ramp.len() as u64;
        // One change batch per hosted zone per increment.
        self.count(
            "route53:ChangeResourceRecordSets",
            (zones.len() as u64 * increments) as u32,
        );
        let summary = format!(
            "shift {} to {} in {} increment{} ({}), bake {} each",
            s.record.0.join(", "),
            s.to,
            increments,
            if increments == 1 { "" } else { "s" },
            s.ramp
                .iter()
                .map(|p| format!("{p}%"))
                .collect::<Vec<_>>()
                .join(" -> "),
            s.bake
        );
        (StepKind::ShiftTraffic, summary, changes)
    }

    fn evacuate_zone(&mut self, step: &str, z: &EvacuateZone) -> (StepKind, String, Vec<Change>) {
        let region = z.region.as_str();
        let zone = z.zone.as_str();
        let mut changes = Vec::new();
        for (_, group) in self.members(step, &z.group, region) {
            let Some(state) = self.observed.group(region, &group) else {
                continue;
            };
            let resource = Some(format!("asg {group} ({region})"));
            let zone_of =
                |subnet: &String| self.observed.subnet_zones.get(subnet).map(String::as_str);
            let (removed, kept): (Vec<String>, Vec<String>) = state
                .subnets
                .iter()
                .cloned()
                .partition(|s| zone_of(s) == Some(zone));
            let remaining_zones: BTreeSet<String> = if state.subnets.is_empty() {
                state
                    .zones
                    .iter()
                    .filter(|z2| z2.as_str() != zone)
                    .cloned()
                    .collect()
            } else {
                kept.iter()
                    .filter_map(|s| zone_of(s).map(str::to_owned))
                    .collect()
            };
            if remaining_zones.is_empty() {
                self.block(
                    Some(step),
                    resource,
                    format!("{group} would have no availability zone left without {zone}: add a subnet in another zone first"),
                );
                continue;
            }
            let in_zone = state.instances_by_zone.get(zone).copied().unwrap_or(0);
            if removed.is_empty() && in_zone == 0 {
                self.warn(
                    Some(step),
                    resource.clone(),
                    format!("{group} does not use {zone}: nothing to evacuate"),
                );
            }
            let replace = if z.keep_capacity { in_zone } else { 0 };
            let batch_size = u32::try_from(
                u64::from(state.capacity.desired) * u64::from(z.max_out_percent.get()) / 100,
            )
            .unwrap_or(u32::MAX)
            .max(1);
            let mut after: BTreeMap<String, u32> = remaining_zones
                .iter()
                .map(|z2| {
                    (
                        z2.clone(),
                        state.instances_by_zone.get(z2).copied().unwrap_or(0),
                    )
                })
                .collect();
            // The group rebalances into the emptiest zones first.
            for _ in 0..replace {
                if let Some((_, count)) = after.iter_mut().min_by_key(|(_, c)| **c) {
                    *count += 1;
                }
            }
            let suspend: Vec<String> =
                if state.suspended_processes.iter().any(|p| p == "AZRebalance") {
                    Vec::new()
                } else {
                    vec!["AZRebalance".to_owned()]
                };
            self.count(
                "autoscaling:SuspendProcesses",
                u32::from(!suspend.is_empty()),
            );
            self.count(
                "autoscaling:UpdateAutoScalingGroup",
                u32::from(!removed.is_empty()),
            );
            self.count("autoscaling:TerminateInstanceInAutoScalingGroup", replace);
            changes.push(Change::ZoneEvacuation {
                region: region.to_owned(),
                group,
                zone: zone.to_owned(),
                subnets_removed: removed,
                subnets_after: kept,
                suspend_processes: suspend,
                instances_to_replace: replace,
                batch_size,
                instances_before: state.instances_by_zone.clone(),
                instances_after: after,
            });
        }
        let summary = format!(
            "move {} in {region} out of {zone}{}",
            z.group.0.join(", "),
            if z.keep_capacity {
                ", keeping capacity"
            } else {
                ""
            }
        );
        (StepKind::EvacuateZone, summary, changes)
    }

    fn check(&mut self, step: &str, c: &Check) -> (StepKind, String, Vec<Change>) {
        let state = serde_json::to_value(c.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let target = match (&c.alarm, &c.health_check) {
            (Some(a), _) => {
                if self
                    .observed
                    .alarms
                    .get(a.region.as_str())
                    .and_then(|m| m.get(&a.name))
                    .is_none()
                {
                    self.block(
                        Some(step),
                        Some(format!("alarm {} ({})", a.name, a.region)),
                        format!("alarm {} not found in {}", a.name, a.region),
                    );
                }
                StopRef::Alarm {
                    region: a.region.to_string(),
                    name: a.name.clone(),
                }
            }
            (None, Some(h)) => {
                if self.observed.health_checks.get(&h.id) != Some(&true) {
                    self.block(
                        Some(step),
                        Some(format!("health check {}", h.id)),
                        format!("health check {} not found", h.id),
                    );
                }
                StopRef::HealthCheck { id: h.id.clone() }
            }
            (None, None) => {
                // Validation refuses such a check; a plan still says why it cannot run.
                self.block(
                    Some(step),
                    None,
                    "a check needs an alarm or a health check to watch".to_owned(),
                );
                StopRef::HealthCheck { id: String::new() }
            }
        };
        let summary = format!(
            "wait until {target} is {state} for {} (timeout {})",
            c.hold, c.timeout
        );
        let change = Change::Check {
            target,
            state,
            hold_secs: c.hold.0.as_secs(),
            timeout_secs: c.timeout.0.as_secs(),
        };
        (StepKind::Check, summary, vec![change])
    }
}

/// Finds the source-region group that `target` absorbs: the only one when each
/// region has exactly one, else the one whose name is the target's with the region
/// (or its short form, `usw2` / `use1`) swapped.
pub fn counterpart(
    target: &str,
    region: &str,
    from: &str,
    targets: usize,
    sources: &[String],
) -> Option<String> {
    if targets == 1 && sources.len() == 1 {
        return sources.first().cloned();
    }
    let region_parsed = crate::playbook::Region::parse(region).ok()?;
    let from_parsed = crate::playbook::Region::parse(from).ok()?;
    let swaps = [
        (region.to_owned(), from.to_owned()),
        (region_parsed.short(), from_parsed.short()),
    ];
    swaps
        .iter()
        .filter(|(r, _)| target.contains(r.as_str()))
        .map(|(r, f)| target.replace(r.as_str(), f))
        .find(|candidate| sources.contains(candidate))
}

/// The weights after one increment: the target gets `pct` percent of `total`, the
/// others share the rest in proportion to their weights before the step (evenly if
/// those were all zero). Largest remainders keep the sum exact.
pub fn split_weights(
    before: &BTreeMap<String, i64>,
    target: &str,
    total: i64,
    pct: i64,
) -> BTreeMap<String, i64> {
    let target_weight = (total * pct + 50) / 100;
    let rest = total - target_weight;
    let others: Vec<(&String, i64)> = before
        .iter()
        .filter(|(id, _)| id.as_str() != target)
        .map(|(id, w)| (id, *w))
        .collect();
    let others_total: i64 = others.iter().map(|(_, w)| w).sum();
    let mut out = BTreeMap::new();
    out.insert(target.to_owned(), target_weight);
    if others.is_empty() {
        return out;
    }
    let share = |w: i64| {
        if others_total > 0 {
            (rest * w, others_total)
        } else {
            (rest, others.len() as i64)
        }
    };
    let mut assigned = 0;
    let mut remainders = Vec::new();
    for (id, w) in &others {
        let (num, den) = share(*w);
        let base = num / den;
        assigned += base;
        remainders.push((num % den, (*id).clone()));
        out.insert((*id).clone(), base);
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, id) in remainders.into_iter().take((rest - assigned) as usize) {
        if let Some(w) = out.get_mut(&id) {
            *w += 1;
        }
    }
    out
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
