//! `evacuate_zone`: subnets, suspended processes and the instances to replace.

use super::*;

impl Builder<'_> {
    pub(super) fn evacuate_zone(&mut self, step: &str, z: &EvacuateZone) -> Built {
        let region = z.region.as_str();
        let written = z.zone.as_str();
        let mut changes = Vec::new();
        // Per resource to shift: its groups in the step, and the zone (name, id).
        let mut shifts: BTreeMap<String, (Vec<String>, String, Option<String>)> = BTreeMap::new();
        for (_, group) in self.members(step, &z.group, region) {
            let Some(state) = self.observed.group(region, &group) else {
                continue;
            };
            let resource = Some(format!("asg {group} ({region})"));
            let zone_of =
                |subnet: &String| self.observed.subnet_zones.get(subnet).map(String::as_str);
            let id_of = |subnet: &String| {
                self.observed
                    .subnet_zone_ids
                    .get(subnet)
                    .map(String::as_str)
            };
            // A zone id is the same physical zone in every account; its name in this
            // group's account is read from the group's subnets in it.
            let (removed, kept): (Vec<String>, Vec<String>) =
                state.subnets.iter().cloned().partition(|s| {
                    if z.zone.is_id() {
                        id_of(s) == Some(written)
                    } else {
                        zone_of(s) == Some(written)
                    }
                });
            // A group with zonal shift enabled is kept out of the zone by its own
            // shift: its subnets stay.
            let by_shift = z.zonal_shift && state.zonal_shift.is_some() && state.arn.is_some();
            let (zone, zone_id) = if z.zone.is_id() {
                match removed.first().and_then(zone_of) {
                    Some(name) => (name, Some(written.to_owned())),
                    None => {
                        self.warn(
                            Some(step),
                            resource.clone(),
                            format!("{group} has no subnet in zone {written}: nothing to evacuate"),
                        );
                        continue;
                    }
                }
            } else {
                (written, removed.first().and_then(id_of).map(str::to_owned))
            };
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
            let (removed, kept) = if by_shift {
                (Vec::new(), state.subnets.clone())
            } else {
                (removed, kept)
            };
            if z.zonal_shift {
                let zone_id = zone_id.clone();
                let mut resources: Vec<String> = self
                    .observed
                    .shift_balancers
                    .get(region)
                    .and_then(|g| g.get(&group))
                    .cloned()
                    .unwrap_or_default();
                if by_shift {
                    resources.extend(state.arn.clone());
                }
                for resource in resources {
                    let entry = shifts
                        .entry(resource)
                        .or_insert_with(|| (Vec::new(), zone.to_owned(), zone_id.clone()));
                    entry.0.push(group.clone());
                }
                for classic in state.balancers.iter().filter_map(|b| match b {
                    crate::state::Balancer::Classic { name } => Some(name),
                    crate::state::Balancer::TargetGroup { .. } => None,
                }) {
                    self.warn(
                        Some(step),
                        Some(format!("load balancer {classic} ({region})")),
                        format!("{classic} is a Classic Load Balancer, which zonal shift cannot move: it sends {zone} traffic until {group}'s instances there go"),
                    );
                }
            }
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
            // Without keeping capacity, the zone's instances go and desired falls by
            // them (in the group's unit, as desired counts).
            let capacity_before = self.projection.capacity(region, &group);
            let capacity_after = if z.keep_capacity {
                None
            } else {
                let before = self
                    .projection
                    .capacity(region, &group)
                    .unwrap_or(state.capacity);
                let desired = before.desired.saturating_sub(in_zone);
                if desired < before.min {
                    self.block(
                        Some(step),
                        resource.clone(),
                        format!(
                            "leaving {zone} without replacing its {in_zone} of {group}'s capacity takes desired from {} to {desired}, below its min {}: lower min first, or keep capacity",
                            before.desired, before.min
                        ),
                    );
                    continue;
                }
                let after = Capacity { desired, ..before };
                self.projection.set_capacity(region, &group, after);
                Some(after)
            };
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
            self.count("autoscaling:TerminateInstanceInAutoScalingGroup", in_zone);
            changes.push(Change::ZoneEvacuation {
                region: region.to_owned(),
                group,
                zone: zone.to_owned(),
                zone_id,
                subnets_removed: removed,
                subnets_after: kept,
                suspend_processes: suspend,
                instances_to_replace: replace,
                batch_size,
                instances_before: state.instances_by_zone.clone(),
                instances_after: after,
                capacity_before: capacity_after.and(capacity_before),
                capacity_after,
                by_shift,
                impaired_zone: state.zonal_shift.clone().filter(|_| by_shift),
            });
        }
        for resource in &z.load_balancers {
            shifts
                .entry(resource.clone())
                .or_insert_with(|| (Vec::new(), String::new(), None));
        }
        let first = changes.iter().find_map(|c| match c {
            Change::ZoneEvacuation { zone, zone_id, .. } => Some((zone.clone(), zone_id.clone())),
            _ => None,
        });
        let mut shift_changes = Vec::new();
        for (resource, (groups, zone, zone_id)) in shifts {
            // A named load balancer leaves the zone the step's groups leave.
            let (zone, zone_id) = match (&zone_id, &first) {
                (None, Some((z2, id2))) if zone.is_empty() => (z2.clone(), id2.clone()),
                _ => (zone, zone_id),
            };
            if let Some(change) = self.zonal_shift(step, region, resource, groups, zone, zone_id) {
                shift_changes.push(change);
            }
        }
        if !z.zonal_shift {
            self.warn(
                Some(step),
                None,
                format!("zonal_shift: false: the load balancers keep sending {written} traffic until the zone's instances go; without it, serving capacity and traffic leave the zone together"),
            );
        }
        if !z.keep_capacity {
            self.capacity_holds_without_zone(step, region, written);
        }
        self.count(
            "arc-zonal-shift:StartZonalShift",
            shift_changes.len() as u32,
        );
        let changes: Vec<Change> = shift_changes.into_iter().chain(changes).collect();
        let summary = format!(
            "move {} in {region} out of {written}{}",
            z.group.0.join(", "),
            if z.keep_capacity {
                ", keeping capacity"
            } else {
                ", without replacing its capacity"
            }
        );
        Built::new(StepKind::EvacuateZone, summary, changes)
    }
}

impl Builder<'_> {
    /// One resource's zonal shift, with what ARC says of it: none when it cannot be
    /// shifted (said as a warning); a blocker when another shift holds it.
    fn zonal_shift(
        &mut self,
        step: &str,
        region: &str,
        resource: String,
        groups: Vec<String>,
        zone: String,
        zone_id: Option<String>,
    ) -> Option<Change> {
        use crate::state::ManagedRead;
        let at = Some(format!("{resource} ({region})"));
        let name = match self.observed.managed.get(&resource) {
            Some(ManagedRead::Unshiftable(why)) => {
                self.warn(
                    Some(step),
                    at,
                    format!("zonal shift cannot move it ({why}): it sends {zone} traffic until the zone's instances go"),
                );
                return None;
            }
            Some(ManagedRead::Found(managed)) => {
                for other in &managed.shifts {
                    let until = jiff::Timestamp::from_second(other.expires)
                        .map_or_else(|_| other.expires.to_string(), |t| t.to_string());
                    self.block(
                        Some(step),
                        at.clone(),
                        format!(
                            "{} already has zonal shift {} away from {} ({:?}) until {until}; ARC allows one active shift per resource: wait for it to end or cancel it (aws arc-zonal-shift cancel-zonal-shift --zonal-shift-id {}), or set zonal_shift: false",
                            managed.name,
                            other.id,
                            other.away_from,
                            crate::text::one_line(&other.comment),
                            other.id
                        ),
                    );
                }
                if !managed.autoshifts.is_empty() {
                    self.warn(
                        Some(step),
                        at.clone(),
                        format!(
                            "a zonal autoshift moves {}'s traffic away from {} now; the drill's shift overrides it while it lasts",
                            managed.name,
                            managed.autoshifts.join(", ")
                        ),
                    );
                }
                if managed.practice_runs {
                    self.warn(
                        Some(step),
                        at.clone(),
                        format!(
                            "{} has zonal autoshift practice runs configured: the drill's shift overrides one that starts meanwhile, and its outcome alarm may fire; block a window for the drill",
                            managed.name
                        ),
                    );
                }
                managed.name.clone()
            }
            // Not read: its region is down (the step is skipped) or no reads were made.
            None => resource.clone(),
        };
        let Some(zone_id) = zone_id else {
            self.block(
                Some(step),
                at,
                format!("the zone id of {zone} is not known, and a zonal shift moves traffic away from a zone id: name the zone by its id (use1-az1)"),
            );
            return None;
        };
        Some(Change::ZonalShift {
            region: region.to_owned(),
            resource,
            name,
            zone,
            zone_id,
            minutes: 0,
            groups,
        })
    }
}
