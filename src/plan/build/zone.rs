//! `evacuate_zone`: subnets, suspended processes and the instances to replace.

use super::*;

impl Builder<'_> {
    pub(super) fn evacuate_zone(&mut self, step: &str, z: &EvacuateZone) -> Built {
        let region = z.region.as_str();
        let written = z.zone.as_str();
        let mut changes = Vec::new();
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
            });
        }
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
