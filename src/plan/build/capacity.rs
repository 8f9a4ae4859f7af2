//! `scale_up` and `drain`: capacity, projected step by step; and the check that
//! traffic never moves to a region without the capacity to serve it.

use super::*;

impl Builder<'_> {
    pub(super) fn scale_up(&mut self, step: &str, s: &ScaleUp) -> Built {
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
        let mut suspends = Vec::new();
        for (named, target) in &targets {
            let Some(before) = self.projection.capacity(region, target) else {
                continue;
            };
            suspends.extend(self.preflight(step, region, target, Direction::Up, &s.suspend, false));
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
                    let paired = self.pair(Pairing {
                        named,
                        target,
                        region,
                        from,
                        targets: same_group.len(),
                        candidates,
                        by_tag: absorb.pair_by_tag.as_deref(),
                    });
                    let source = match paired {
                        Ok(source) => source,
                        Err(_) if candidates.is_empty() && self.observed.is_unread(from) => {
                            self.block(
                                Some(step),
                                resource,
                                format!(
                                    "{target} absorbs the capacity of group `{named}` in {from}, which {}, and the last known state of {from} holds none of its groups: `evac plan` records each group it reads while its region answers; give this step `desired:` instead of `absorb` to go on without it",
                                    self.unread_said(from)
                                ),
                            );
                            continue;
                        }
                        Err(message) => {
                            self.block(Some(step), resource, message);
                            continue;
                        }
                    };
                    let unit_of = |region: &str, group: &str| {
                        self.observed
                            .group(region, group)
                            .map(|g| g.unit)
                            .unwrap_or_default()
                    };
                    let (source_unit, target_unit) =
                        (unit_of(from, &source), unit_of(region, target));
                    if source_unit != target_unit {
                        self.block(Some(step), resource, format!(
                            "{target} counts its desired capacity in {target_unit} and {source} in {source_unit}: a share of one is no count of the other; give this step `desired:` in {target_unit} instead of `absorb`"
                        ));
                        continue;
                    }
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
            if let Some(g) = self.observed.group(region, target)
                && !g.unit.is_instances()
            {
                reason.push_str(&format!("; desired counts {}", g.unit));
            }
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
            if after.desired > before.desired {
                let (subnets, weights) = self
                    .observed
                    .group(region, target)
                    .map(|g| (g.subnets.clone(), g.weights))
                    .unwrap_or_default();
                let room = self.addresses.entry(region.to_owned()).or_default();
                room.0.extend(subnets);
                // Units come as instances: at most one per unit of the smallest.
                room.1 += u64::from(weights.instances_for(after.desired - before.desired));
                self.count_vcpus(step, region, target, after.desired - before.desired);
            }
            changes.push(Change::Capacity {
                region: region.to_owned(),
                group: target.clone(),
                before,
                after,
                reason,
                balancers: self.observed.balancers_of(region, target).to_vec(),
            });
        }
        suspends.extend(changes);
        let changes = suspends;
        self.check_addresses(step, region);
        self.check_vcpus(step, region);
        let raised = |c: &&Change| matches!(c, Change::Capacity { before, after, .. } if after.desired > before.desired);
        let balanced = changes
            .iter()
            .filter(raised)
            .any(|c| matches!(c, Change::Capacity { balancers, .. } if !balancers.is_empty()));
        let until = match s.wait {
            crate::playbook::WaitFor::None => None,
            crate::playbook::WaitFor::Healthy if balanced => {
                Some("InService and healthy in their load balancers")
            }
            _ => Some("InService"),
        };
        let summary = format!(
            "scale up {} in {region}{}",
            s.group.0.join(", "),
            match until {
                Some(until) if changes.iter().any(|c| raised(&c)) =>
                    format!(", wait until {until} (timeout {})", s.timeout),
                _ => String::new(),
            }
        );
        Built::new(StepKind::ScaleUp, summary, changes)
    }

    pub(super) fn drain(&mut self, step: &str, d: &Drain) -> Built {
        let region = d.region.as_str();
        let drained: BTreeSet<String> = d
            .group
            .iter()
            .flat_map(|g| self.observed.resolved(region, g).iter().cloned())
            .collect();
        for (name, spec) in &self.playbook.records {
            // A record served by other groups does not hold this drain back; one with
            // no group linked might be served by any, so it does.
            let serving = self.playbook.serving_groups(name);
            let served_here = serving.is_empty()
                || serving.iter().any(|g| {
                    self.observed
                        .resolved(region, g)
                        .iter()
                        .any(|asg| drained.contains(asg))
                });
            if !served_here {
                continue;
            }
            let Some(set_id) = spec.set_identifiers.get(&d.region) else {
                continue;
            };
            let Some(weights) = self.projection.weights.get(name) else {
                continue;
            };
            let total: i64 = weights.values().sum();
            let weight = weights.get(set_id).copied().unwrap_or(0);
            // The sets Route 53 answers with, given their health checks: when every
            // set of non-zero weight fails, the zero-weight ones answer.
            let observed_sets = self.observed.records.get(name).cloned().unwrap_or_default();
            let health = self.set_health(&observed_sets);
            let answer = crate::route53::answering(&super::traffic::weighed(&health, weights));
            if weight == 0 && answer.sets.iter().any(|s| s == set_id) {
                self.block(
                    Some(step),
                    Some(format!("record {name} ({set_id})")),
                    format!(
                        "drain of {region} while Route 53 still answers `{name}` with its set {set_id} at weight 0: {}; give the other sets weight, with health checks that pass, first",
                        answer.why.unwrap_or("it is one of the sets answered with")
                    ),
                );
                continue;
            }
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
        let mut suspends = Vec::new();
        for (_, group) in self.members(step, &d.group, region) {
            let Some(before) = self.projection.capacity(region, &group) else {
                continue;
            };
            suspends.extend(self.preflight(
                step,
                region,
                &group,
                Direction::Down,
                &d.suspend,
                d.force_protected,
            ));
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
                balancers: self.observed.balancers_of(region, &group).to_vec(),
                group,
                before,
                after,
                reason,
            });
        }
        suspends.extend(changes);
        let changes = suspends;
        let balanced = changes
            .iter()
            .any(|c| matches!(c, Change::Capacity { balancers, .. } if !balancers.is_empty()));
        let summary = format!(
            "drain {} in {region} to {}{} (timeout {})",
            d.group.0.join(", "),
            d.to,
            if balanced && d.wait == crate::playbook::DrainWait::Deregistered {
                ", wait until out of their load balancers"
            } else {
                ""
            },
            d.timeout
        );
        Built::new(StepKind::Drain, summary, changes)
    }

    /// What can keep a group from scaling as the step wants, or change its desired
    /// during the drill: blockers for a suspended Launch (up) or Terminate (down)
    /// and for instances protected from scale-in (down); warnings for lifecycle
    /// hooks, a warm pool, and scaling policies or scheduled actions the step does
    /// not suspend. Returns the changes made before the group's capacity: the
    /// step's `suspend:`, and for a drain with `force_protected`, removing the
    /// instances' scale-in protection.
    fn preflight(
        &mut self,
        step: &str,
        region: &str,
        group: &str,
        direction: Direction,
        suspend: &[crate::playbook::ScalingProcess],
        force_protected: bool,
    ) -> Vec<Change> {
        let mut before = Vec::new();
        use crate::playbook::ScalingProcess;
        let resource = || Some(format!("asg {group} ({region})"));
        // A copy of the reference: what is read of it does not borrow `self`, which
        // the findings below change.
        let observed = self.observed;
        let Some(state) = observed.group(region, group) else {
            return before;
        };
        let (needed, what) = match direction {
            Direction::Up => ("Launch", "scale-up would never launch an instance"),
            Direction::Down => ("Terminate", "drain would never terminate an instance"),
        };
        if state.suspended_processes.iter().any(|p| p == needed) {
            self.block(Some(step), resource(), format!(
                "{group} has {needed} suspended: the {what}; resume it (aws autoscaling resume-processes --auto-scaling-group-name {group} --scaling-processes {needed}) or leave the group out"
            ));
        }
        if direction == Direction::Down && !state.protected.is_empty() {
            let count = state.protected.len();
            if force_protected {
                self.warn(Some(step), resource(), format!(
                    "{count} instance(s) of {group} are protected from scale-in ({}): `force_protected` removes the protection and the drain may terminate them; rollback protects again only those still running",
                    state.protected.join(", ")
                ));
                self.count(
                    "autoscaling:SetInstanceProtection",
                    count.div_ceil(50) as u32,
                );
                before.push(Change::Unprotect {
                    region: region.to_owned(),
                    group: group.to_owned(),
                    instances: state.protected.clone(),
                });
            } else {
                self.block(Some(step), resource(), format!(
                    "{count} instance(s) of {group} are protected from scale-in: the drain would wait for them until its timeout; remove the protection (aws autoscaling set-instance-protection --no-protected-from-scale-in), set `force_protected: true` on the step (rollback protects again those still running), or leave the group out"
                ));
            }
        }
        let none = crate::state::Preflight::default();
        let preflight = observed
            .preflight
            .get(region)
            .and_then(|g| g.get(group))
            .unwrap_or(&none);
        let hooks: Vec<&crate::state::Hook> = preflight
            .hooks
            .iter()
            .filter(|h| h.launching == (direction == Direction::Up))
            .collect();
        if let Some(longest) = hooks.iter().map(|h| h.heartbeat_secs).max() {
            let listed: Vec<String> = hooks
                .iter()
                .map(|h| format!("{} (heartbeat {}s)", h.name, h.heartbeat_secs))
                .collect();
            self.warn(Some(step), resource(), format!(
                "{group} has {} lifecycle hook(s): {}; each instance may wait up to {longest}s in it, which the estimate does not include",
                if direction == Direction::Up { "launch" } else { "termination" },
                listed.join(", ")
            ));
        }
        if let (Direction::Up, Some(size)) = (direction, state.warm_pool) {
            self.warn(Some(step), resource(), format!(
                "{group} has a warm pool (min size {size}): instances come from it first and launch faster than the estimate assumes"
            ));
        }
        let suspended = |p: ScalingProcess| suspend.contains(&p);
        if !preflight.policies.is_empty() && !suspended(ScalingProcess::AlarmNotification) {
            self.warn(Some(step), resource(), format!(
                "{group} has scaling policies ({}): they keep working during the drill, and evac keeps floors, not exact values: desired may move between the min and max evac sets (out as traffic arrives, in as it leaves) and is left there; only min or max changed by someone else, or desired below evac's min, stops the run as drift; rollback restores min, desired and max as recorded",
                preflight.policies.join(", ")
            ));
        }
        if !preflight.scheduled.is_empty() && !suspended(ScalingProcess::ScheduledActions) {
            self.warn(Some(step), resource(), format!(
                "{group} has scheduled actions ({}) that can change its desired capacity during the drill: add `suspend: [ScheduledActions]` to the step (resumed by rollback)",
                preflight.scheduled.join(", ")
            ));
        }
        let mut processes: Vec<String> = suspend.iter().map(|p| p.as_str().to_owned()).collect();
        processes.sort();
        processes.dedup();
        if processes
            .iter()
            .any(|p| !state.suspended_processes.contains(p))
        {
            self.count("autoscaling:SuspendProcesses", 1);
            before.insert(
                0,
                Change::Suspend {
                    region: region.to_owned(),
                    group: group.to_owned(),
                    processes,
                },
            );
        }
        before
    }

    /// The subnets of the groups scaled up in `region` so far must have a free
    /// address for every instance added (when all of them are known).
    fn check_addresses(&mut self, step: &str, region: &str) {
        let Some((subnets, need)) = self.addresses.get(region) else {
            return;
        };
        let free: Option<u64> = subnets
            .iter()
            .map(|s| self.observed.subnet_free.get(s).map(|f| u64::from(*f)))
            .sum();
        if let Some(free) = free
            && *need > free
            && !subnets.is_empty()
        {
            let message = format!(
                "the scale-ups in {region} add {need} instance(s) to subnets {} which have {free} free address(es): add subnets (or larger ones) to the groups, or scale up less",
                subnets.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            self.block(Some(step), Some(format!("subnets ({region})")), message);
        }
    }

    /// Adds the vCPUs of `added` more units of `group`'s desired capacity to its
    /// region's need: one instance of its type for each of the type's units, rounded
    /// up.
    fn count_vcpus(&mut self, step: &str, region: &str, group: &str, added: u32) {
        let observed = self.observed;
        let Some(vcpus) = observed.vcpus.get(region) else {
            return;
        };
        if let Some(why) = vcpus.unknown.get(group) {
            if self.warned.insert(format!("{region}/{group}")) {
                self.warn(Some(step), Some(format!("asg {group} ({region})")), format!(
                    "the instance type of {group} could not be told ({why}): its new instances are not counted against the region's vCPU quotas"
                ));
            }
            return;
        }
        let Some(shape) = vcpus.groups.get(group) else {
            return;
        };
        let Some((code, _)) = crate::state::vcpu_quota(&shape.instance_type) else {
            if self.warned.insert(format!("{region}/{group}")) {
                self.warn(Some(step), Some(format!("asg {group} ({region})")), format!(
                    "{group} launches {}, which falls under no On-Demand vCPU quota evac knows: its new instances are not checked against one",
                    shape.instance_type
                ));
            }
            return;
        };
        *self
            .vcpus
            .entry(region.to_owned())
            .or_default()
            .entry(code)
            .or_default() += shape.vcpus_for(added);
    }

    /// The scale-ups of `region` so far must fit in its On-Demand vCPU quotas, with
    /// what its running instances use of them.
    fn check_vcpus(&mut self, step: &str, region: &str) {
        let Some(needs) = self.vcpus.get(region).cloned() else {
            return;
        };
        let observed = self.observed;
        for (code, need) in needs {
            let name = crate::state::vcpu_quota_name(code);
            let resource = Some(format!("quota {code} ({region})"));
            let Some(quota) = observed.vcpus.get(region).and_then(|v| v.quotas.get(code)) else {
                continue;
            };
            let Some(limit) = quota.limit else {
                if self.warned.insert(format!("{region}/{code}")) {
                    self.warn(Some(step), resource, format!(
                        "the vCPU quota {code} ({name}) of {region} could not be read ({}): the scale-ups' {need} more vCPUs are not checked against it",
                        quota.error.as_deref().unwrap_or("no value")
                    ));
                }
                continue;
            };
            let total = quota.used.saturating_add(need);
            if total > limit {
                self.block(Some(step), resource, format!(
                    "the scale-ups in {region} need {need} more vCPUs under quota {code} ({name}): {} in use + {need} = {total}, over its value {limit}; request at least {total} (aws service-quotas request-service-quota-increase --region {region} --service-code ec2 --quota-code {code} --desired-value {total}) or scale up less",
                    quota.used
                ));
            }
        }
    }

    /// After a step: a region that still gets traffic must still have capacity.
    pub(super) fn check_capacity_behind_traffic(&mut self, step: &str) {
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
}

/// One target group of an `absorb`, to pair with its source group.
struct Pairing<'p> {
    /// The playbook's group name.
    named: &'p str,
    /// The target Auto Scaling group.
    target: &'p str,
    region: &'p str,
    from: &'p str,
    /// How many Auto Scaling groups the named group has in the target region.
    targets: usize,
    /// Its Auto Scaling groups in the source region.
    candidates: &'p [String],
    /// `pair_by_tag`.
    by_tag: Option<&'p str>,
}

impl Builder<'_> {
    /// The source group `p.target` absorbs: the one with the same value of the
    /// `pair_by_tag` tag; or the one at the same position in per-region `names`; or
    /// the one named alike (see [`counterpart`]). None, or two, is an error naming
    /// them.
    fn pair(&self, p: Pairing<'_>) -> Result<String, String> {
        let Pairing {
            named,
            target,
            region,
            from,
            targets,
            candidates,
            by_tag,
        } = p;
        let listed = || {
            if candidates.is_empty() {
                "none".to_owned()
            } else {
                candidates.join(", ")
            }
        };
        if let Some(key) = by_tag {
            let tag = |r: &str, g: &str| {
                self.observed
                    .group(r, g)
                    .and_then(|state| state.tags.get(key))
                    .cloned()
            };
            let Some(value) = tag(region, target) else {
                return Err(format!(
                    "{target} has no tag `{key}` to pair it with a source group in {from} (pair_by_tag): tag it, or pair another way"
                ));
            };
            let matching: Vec<&String> = candidates
                .iter()
                .filter(|c| tag(from, c).as_deref() == Some(value.as_str()))
                .collect();
            return match matching.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(format!(
                    "no source group in {from} for {target}: none of group `{named}`'s groups there ({}) has {key}={value}",
                    listed()
                )),
                two_or_more => Err(format!(
                    "{} source groups in {from} have {key}={value} for {target}: {}; a group absorbs exactly one, so give each pair its own value",
                    two_or_more.len(),
                    two_or_more
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        }
        let spec = self.playbook.groups.get(named);
        if let Some(crate::playbook::GroupNames::PerRegion(_)) = spec.and_then(|s| s.names.as_ref())
        {
            let in_region = spec.and_then(|s| s.names_in(region)).unwrap_or_default();
            let in_from = spec.and_then(|s| s.names_in(from)).unwrap_or_default();
            let position = in_region.iter().position(|n| n == target);
            return match position.and_then(|i| in_from.get(i)) {
                Some(source) if candidates.contains(source) => Ok(source.clone()),
                Some(source) => Err(format!(
                    "source group {source} of {target} (group `{named}`) not found in {from}"
                )),
                None => Err(format!(
                    "no source group in {from} for {target}: group `{named}` lists {} name(s) in {region} and {} in {from}, and per-region names pair by position",
                    in_region.len(),
                    in_from.len()
                )),
            };
        }
        counterpart(target, region, from, targets, candidates).ok_or_else(|| {
            format!(
                "no matching source group in {from} for {target}: group `{named}` has {} there ({}); name the groups alike with the region in the name (api-{from} / api-{region}), list names per region, or set `pair_by_tag`",
                candidates.len(),
                listed()
            )
        })
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

/// Which way a step moves a group's capacity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}
