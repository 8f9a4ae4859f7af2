//! `shift_traffic`: the weights of each record set after every ramp increment.

use super::*;

impl Builder<'_> {
    pub(super) fn shift_traffic(&mut self, step: &str, s: &ShiftTraffic) -> Built {
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
        Built::new(StepKind::ShiftTraffic, summary, changes)
    }
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
