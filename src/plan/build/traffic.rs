//! `shift_traffic`: the weights of each record set after every ramp increment.

use super::*;
use crate::playbook::{RecordSpec, Region, ShiftTo};
use crate::route53::{Health, answering};

/// Per set identifier of a record: what decides whether Route 53 answers with it (a
/// health check id, `target health`), and how it stood when read.
pub(super) type SetHealth = BTreeMap<String, (Option<String>, Health)>;

/// Each set of `weights` with its weight and how it stands in `health`: what
/// [`answering`] decides on.
pub(super) fn weighed<'w>(
    health: &SetHealth,
    weights: &'w BTreeMap<String, i64>,
) -> Vec<(&'w str, i64, Health)> {
    weights
        .iter()
        .map(|(id, w)| {
            let h = health.get(id).map_or(Health::Unchecked, |(_, h)| *h);
            (id.as_str(), *w, h)
        })
        .collect()
}

/// What Route 53 answers with if every set of non-zero weight in `weights` fails its
/// health check: said for records whose sets have health checks.
fn if_unhealthy(health: &SetHealth, weights: &BTreeMap<String, i64>) -> Option<String> {
    if health.values().all(|(check, _)| check.is_none()) {
        return None;
    }
    let sets: Vec<(&str, i64, Health)> = weights
        .iter()
        .map(|(id, w)| {
            let checked = health.get(id).is_some_and(|(check, _)| check.is_some());
            let h = if *w > 0 && checked {
                Health::Unhealthy
            } else {
                health.get(id).map_or(Health::Unchecked, |(_, h)| *h)
            };
            (id.as_str(), *w, h)
        })
        .collect();
    let unchecked_weighted = weights
        .iter()
        .any(|(id, w)| *w > 0 && health.get(id).is_none_or(|(check, _)| check.is_none()));
    if unchecked_weighted {
        // A set of non-zero weight without a check always answers.
        return None;
    }
    let answer = answering(&sets);
    Some(format!(
        "if every set of non-zero weight fails its health check, Route 53 answers with {} in equal shares{}",
        answer.sets.join(", "),
        if sets.iter().any(|s| s.1 == 0 && s.2 != Health::Unhealthy) {
            " (the healthy zero-weight sets)"
        } else {
            " (all sets, as if healthy)"
        }
    ))
}

impl Builder<'_> {
    pub(super) fn shift_traffic(&mut self, step: &str, s: &ShiftTraffic) -> Built {
        // Capacity as the steps before this one leave it.
        self.served.borrow_mut().clear();
        let mode = shift_mode(s);
        let mut changes = Vec::new();
        let mut unlinked: Vec<String> = Vec::new();
        // Per hosted zone: what an increment's DELETE and CREATE of each set cost against
        // Route 53's limits on one request, by record.
        type Item = ((String, String), crate::route53::Cost, ());
        let mut costs: BTreeMap<String, Vec<Item>> = BTreeMap::new();
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
                let has = match self.observed.record_types.get(name) {
                    Some(types) if !types.is_empty() => format!(
                        "; {} has {} record sets there: set `type: {}` under records.{name}",
                        spec.name,
                        types.join(", "),
                        types[0]
                    ),
                    _ => String::new(),
                };
                self.block(
                    Some(step),
                    resource,
                    format!(
                        "record {} {} not found in zone {}{has}",
                        spec.name, spec.record_type, spec.zone
                    ),
                );
                continue;
            }
            let mut missing = false;
            // What the name has, to say beside what it lacks.
            let present: Vec<&str> = observed.iter().map(|s| s.set_identifier.as_str()).collect();
            for (region, id) in &spec.set_identifiers {
                if !observed.iter().any(|s| &s.set_identifier == id) {
                    let close = crate::playbook::closest(id, present.iter().copied())
                        .map(|c| format!(" (did you mean {c}?)"))
                        .unwrap_or_default();
                    self.block(
                        Some(step),
                        Some(format!("record {name} ({id})")),
                        format!(
                            "set identifier {id} ({region}) of {} {} not found in zone {}; its set identifiers are {}{close}",
                            spec.name,
                            spec.record_type,
                            spec.zone,
                            present.join(", ")
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
                        "all weights of record `{name}` are zero, so Route 53 answers with every set in equal shares: there is no share to shift; give the sets weights first"
                    ),
                );
                continue;
            }
            let increments = match &mode {
                Some(Mode::Toward(to)) => self.toward(step, name, spec, s, to, &before, total),
                Some(Mode::Away { from, split }) => {
                    self.away(step, name, spec, s, from, split.as_deref(), &before, total)
                }
                None => continue,
            };
            let Some(increments) = increments else {
                continue;
            };
            if self.playbook.serving_groups(name).is_empty() {
                unlinked.push(name.clone());
            } else {
                self.capacity_follows(step, name, spec, &before, &increments);
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
            let health = self.set_health(&observed);
            self.check_answers(
                step,
                name,
                spec,
                &regions_by_id,
                &health,
                &before,
                &increments,
            );
            let if_unhealthy = increments
                .last()
                .and_then(|last| if_unhealthy(&health, last));
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
                    health_check: health.get(id).and_then(|h| h.0.clone()),
                    failing: health.get(id).is_some_and(|h| h.1 == Health::Unhealthy),
                })
                .collect();
            if let Some(last) = increments.last() {
                self.projection.weights.insert(name.clone(), last.clone());
            }
            costs
                .entry(zone_id.clone())
                .or_default()
                .extend(observed.iter().map(|set| {
                    (
                        (spec.name.clone(), spec.record_type.to_string()),
                        crate::route53::Cost::upsert(set.values, set.value_chars),
                        (),
                    )
                }));
            // An alias to a load balancer answers as a TTL of 60 s.
            let ttl_secs = observed
                .iter()
                .map(|s| s.ttl.map_or(60, |t| u64::try_from(t).unwrap_or(0)))
                .max()
                .unwrap_or(0);
            changes.push(Change::Weights {
                ttl_secs,
                if_unhealthy,
                record: name.clone(),
                name: spec.name.clone(),
                record_type: spec.record_type.to_string(),
                zone_id,
                ramp: s.ramp.clone(),
                sets,
                bake_secs: s.bake.0.as_secs(),
            });
        }
        if !unlinked.is_empty() {
            self.warn_unlinked(step, &unlinked);
        }
        let increments = s.ramp.len() as u64;
        // Per hosted zone per increment: as few requests as Route 53's limits allow.
        let batches: BTreeMap<String, usize> = costs
            .into_iter()
            .map(|(zone, items)| (zone, crate::route53::batches(items).len()))
            .collect();
        let requests: u64 = batches.values().map(|n| *n as u64).sum();
        self.count(
            "route53:ChangeResourceRecordSets",
            u32::try_from(requests * increments).unwrap_or(u32::MAX),
        );
        let split: Vec<String> = batches
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(zone, n)| format!("hosted zone {zone} in {n} change batches"))
            .collect();
        let ramp = s
            .ramp
            .iter()
            .map(|p| format!("{p}%"))
            .collect::<Vec<_>>()
            .join(" -> ");
        let plural = if increments == 1 { "" } else { "s" };
        let records = s.record.0.join(", ");
        let summary = match mode {
            Some(Mode::Away { from, split }) => format!(
                "shift {records} away from {from} to {} in {increments} increment{plural} ({ramp} of its weight), bake {} each",
                match split {
                    Some(split) => split
                        .iter()
                        .map(|(r, p)| format!("{r} {p}%"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => "the other regions in proportion to their weights".to_owned(),
                },
                s.bake
            ),
            Some(Mode::Toward(to)) => format!(
                "shift {records} to {to} in {increments} increment{plural} ({ramp}), bake {} each",
                s.bake
            ),
            None => format!("shift {records}"),
        };
        // Route 53 takes at most 1,000 values and 32,000 characters in one request.
        let summary = if split.is_empty() {
            summary
        } else {
            format!(
                "{summary}; each increment sends {} (Route 53 takes at most 1,000 values and 32,000 characters of them in one request)",
                split.join(", ")
            )
        };
        Built::new(StepKind::ShiftTraffic, summary, changes)
    }
}

/// What a `shift_traffic` step does.
enum Mode<'s> {
    /// The target's share of the total after each increment.
    Toward(&'s Region),
    /// The share of the source's weight moved away after each increment, to the
    /// other regions in proportion to their weights, or as split.
    Away {
        from: &'s Region,
        split: Option<Vec<(&'s Region, i64)>>,
    },
}

/// The mode of a step (validation makes sure there is one).
fn shift_mode(s: &ShiftTraffic) -> Option<Mode<'_>> {
    match (&s.from, &s.to) {
        (None, Some(ShiftTo::Region(to))) => Some(Mode::Toward(to)),
        (Some(from), None) => Some(Mode::Away { from, split: None }),
        (Some(from), Some(ShiftTo::Split(split))) => Some(Mode::Away {
            from,
            split: Some(split.iter().map(|(r, p)| (r, i64::from(p.get()))).collect()),
        }),
        // All of the moved weight to one region.
        (Some(from), Some(ShiftTo::Region(to))) => Some(Mode::Away {
            from,
            split: Some(vec![(to, 100)]),
        }),
        (None, _) => None,
    }
}

impl Builder<'_> {
    /// The weights after each increment of a ramp toward `to`.
    #[allow(clippy::too_many_arguments)]
    fn toward(
        &mut self,
        step: &str,
        name: &str,
        spec: &RecordSpec,
        s: &ShiftTraffic,
        to: &Region,
        before: &BTreeMap<String, i64>,
        total: i64,
    ) -> Option<Vec<BTreeMap<String, i64>>> {
        let resource = Some(format!("record {name}"));
        let target = spec.set_identifiers.get(to).cloned()?;
        // Route 53 weights go up to 255.
        let total = total.min(255);
        let increments: Vec<BTreeMap<String, i64>> = s
            .ramp
            .iter()
            .map(|pct| split_weights(before, &target, total, *pct))
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
                        "increment {} moves {} percent of the weight of `{name}` at once (from {share}% to {pct}% on {to}), more than max_increment {max}: add an increment or raise max_increment",
                        k + 1,
                        (pct - share).abs(),
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
                resource,
                format!(
                    "the first increment lowers the weight of {target} ({to}) from {before_target} to {first}: is the ramp meant for this direction?"
                ),
            );
        }
        Some(increments)
    }

    /// The weights after each increment of a ramp away from `from`.
    #[allow(clippy::too_many_arguments)]
    fn away(
        &mut self,
        step: &str,
        name: &str,
        spec: &RecordSpec,
        s: &ShiftTraffic,
        from: &Region,
        split: Option<&[(&Region, i64)]>,
        before: &BTreeMap<String, i64>,
        total: i64,
    ) -> Option<Vec<BTreeMap<String, i64>>> {
        let source = spec.set_identifiers.get(from)?;
        let targets: Vec<(&Region, &String, i64)> = match split {
            Some(split) => split
                .iter()
                .filter_map(|(region, pct)| {
                    Some((*region, spec.set_identifiers.get(*region)?, *pct))
                })
                .collect(),
            None => {
                let others: Vec<(&Region, &String, i64)> = spec
                    .set_identifiers
                    .iter()
                    .filter(|(region, _)| *region != from)
                    .map(|(region, id)| (region, id, before.get(id).copied().unwrap_or(0)))
                    .collect();
                if others.iter().all(|(_, _, w)| *w == 0) {
                    // Nothing to be in proportion to: evenly.
                    others.into_iter().map(|(r, id, _)| (r, id, 1)).collect()
                } else {
                    others
                }
            }
        };
        let shares: Vec<(String, i64)> = targets
            .iter()
            .map(|(_, id, share)| ((*id).clone(), *share))
            .collect();
        let source_before = before.get(source).copied().unwrap_or(0);
        let increments: Vec<BTreeMap<String, i64>> = s
            .ramp
            .iter()
            .map(|pct| move_weights(before, source, &shares, pct * source_before))
            .collect();
        let resource = Some(format!("record {name}"));
        let max = i64::from(self.playbook.max_increment.get());
        let mut was = source_before;
        for (k, weights) in increments.iter().enumerate() {
            let now = weights.get(source).copied().unwrap_or(0);
            let moved = (was - now) * 100 / total;
            if moved > max {
                self.block(
                    Some(step),
                    resource.clone(),
                    format!(
                        "increment {} moves {moved} percent of the weight of `{name}` at once (from {from}), more than max_increment {max}: add an increment or raise max_increment",
                        k + 1
                    ),
                );
            }
            was = now;
        }
        if let Some(last) = increments.last() {
            for (region, id, _) in &targets {
                if let Some(over) = last.get(*id).filter(|w| **w > 255) {
                    self.block(
                        Some(step),
                        Some(format!("record {name} ({region})")),
                        format!("the shift would give {id} weight {over}, above Route 53's largest weight 255: lower the weights first"),
                    );
                }
            }
        }
        Some(increments)
    }
}

/// The weights after moving `moved_x100 / 100` (rounded) of weight from `source` to
/// the `targets`, each in proportion to its share. Sets not named keep their weight.
pub fn move_weights(
    before: &BTreeMap<String, i64>,
    source: &str,
    targets: &[(String, i64)],
    moved_x100: i64,
) -> BTreeMap<String, i64> {
    let mut out = before.clone();
    let moved = (moved_x100 + 50) / 100;
    let shares: i64 = targets.iter().map(|(_, s)| s).sum();
    if shares <= 0 || moved <= 0 {
        return out;
    }
    if let Some(w) = out.get_mut(source) {
        *w -= moved;
    }
    let added = apportion(
        moved,
        targets.iter().map(|(id, share)| (id.as_str(), *share)),
    );
    for (id, add) in added {
        *out.entry(id).or_insert(0) += add;
    }
    out
}

/// The weights after one increment: the target gets `pct` percent of `total`, the
/// others share the rest in proportion to their weights before the step (evenly if
/// those were all zero).
pub fn split_weights(
    before: &BTreeMap<String, i64>,
    target: &str,
    total: i64,
    pct: i64,
) -> BTreeMap<String, i64> {
    let target_weight = (total * pct + 50) / 100;
    let rest = total - target_weight;
    let others: Vec<(&str, i64)> = before
        .iter()
        .filter(|(id, _)| id.as_str() != target)
        .map(|(id, w)| (id.as_str(), *w))
        .collect();
    let others_total: i64 = others.iter().map(|(_, w)| w).sum();
    let mut out = apportion(
        rest,
        others
            .iter()
            .map(|(id, w)| (*id, if others_total > 0 { *w } else { 1 })),
    );
    out.insert(target.to_owned(), target_weight);
    out
}

/// `amount` shared out in whole units in proportion to `shares`: each gets the whole
/// part of its share, and the units left over go to the largest remainders (ties to
/// the first id), so the parts add up to `amount` exactly. Empty when the shares
/// add up to nothing.
fn apportion<'i>(
    amount: i64,
    shares: impl IntoIterator<Item = (&'i str, i64)>,
) -> BTreeMap<String, i64> {
    let shares: Vec<(&str, i64)> = shares.into_iter().collect();
    let total: i64 = shares.iter().map(|(_, share)| share).sum();
    let mut out = BTreeMap::new();
    if total <= 0 {
        return out;
    }
    let mut assigned = 0;
    let mut remainders = Vec::new();
    for (id, share) in &shares {
        let part = amount * share;
        assigned += part / total;
        remainders.push((part % total, *id));
        out.insert((*id).to_owned(), part / total);
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    for (_, id) in remainders.into_iter().take((amount - assigned) as usize) {
        if let Some(w) = out.get_mut(id) {
            *w += 1;
        }
    }
    out
}

impl Builder<'_> {
    /// How each observed set of a record stands for Route 53's choice of answers.
    pub(super) fn set_health(&self, observed: &[crate::state::WeightedSet]) -> SetHealth {
        observed
            .iter()
            .map(|s| {
                let entry = match (&s.health_check_id, s.evaluate_target_health) {
                    (Some(id), _) => (
                        Some(id.clone()),
                        match self.observed.set_health.get(id) {
                            Some(false) => Health::Unhealthy,
                            _ => Health::Healthy,
                        },
                    ),
                    (None, true) => (Some("target health".to_owned()), Health::Healthy),
                    (None, false) => (None, Health::Unchecked),
                };
                (s.set_identifier.clone(), entry)
            })
            .collect()
    }

    /// Weight must not move onto sets whose health check fails (a blocker), and the
    /// plan says when Route 53 would answer with other sets than the weights say (a
    /// warning).
    #[allow(clippy::too_many_arguments)]
    fn check_answers(
        &mut self,
        step: &str,
        name: &str,
        spec: &RecordSpec,
        regions_by_id: &BTreeMap<&str, &str>,
        health: &SetHealth,
        before: &BTreeMap<String, i64>,
        increments: &[BTreeMap<String, i64>],
    ) {
        let mut blocked = BTreeSet::new();
        let mut warned = false;
        let mut previous = before;
        for (k, weights) in increments.iter().enumerate() {
            let sets = weighed(health, weights);
            let answer = answering(&sets);
            for (id, w, h) in &sets {
                let raised = *w > previous.get(*id).copied().unwrap_or(0);
                if raised && *h == Health::Unhealthy && blocked.insert(*id) {
                    let check = health
                        .get(*id)
                        .and_then(|(c, _)| c.clone())
                        .unwrap_or_default();
                    let region = regions_by_id
                        .get(id)
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    self.block(Some(step), Some(format!("record {name} ({id})")), format!(
                        "increment {} raises set {id}{region} of {} to weight {w}, but its health check {check} is failing: Route 53 skips the set and answers with {}; make the check pass before the drill, or leave this set out",
                        k + 1,
                        spec.name,
                        answer.sets.join(", ")
                    ));
                }
            }
            if !warned
                && let Some(why) = answer.why
                && sets.iter().any(|s| s.2 == Health::Unhealthy)
            {
                warned = true;
                self.warn(Some(step), Some(format!("record {name}")), format!(
                    "after increment {} Route 53 answers {} with {}, not as the weights say: {why}",
                    k + 1,
                    spec.name,
                    answer.sets.join(", ")
                ));
            }
            previous = weights;
        }
    }
}

/// A record's capacity in one region: the desired capacity of the Auto Scaling
/// groups that serve it there.
#[derive(Clone)]
pub(super) struct Served {
    region: String,
    groups: Vec<String>,
    capacity: u64,
}

impl Builder<'_> {
    /// The groups serving record `name` in `region` and their capacity: as observed
    /// before the drill, or (with `projected`) after the steps planned so far.
    fn served(&self, name: &str, region: &str, projected: bool) -> Served {
        let key = (
            self.playbook.serving_groups(name),
            region.to_owned(),
            projected,
        );
        if let Some(found) = self.served.borrow().get(&key) {
            return found.clone();
        }
        let served = self.served_now(&key.0, region, projected);
        self.served.borrow_mut().insert(key, served.clone());
        served
    }

    /// [`Builder::served`], worked out for the record's serving groups `serving`.
    fn served_now(&self, serving: &[String], region: &str, projected: bool) -> Served {
        let mut groups = Vec::new();
        // A group named twice counts once (a set: fleets have hundreds of groups).
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut capacity = 0;
        for named in serving {
            for asg in self.observed.resolved(region, named) {
                if !seen.insert(asg.as_str()) {
                    continue;
                }
                let desired = if projected {
                    self.projection.capacity(region, asg).map(|c| c.desired)
                } else {
                    self.observed.group(region, asg).map(|g| g.capacity.desired)
                };
                capacity += u64::from(desired.unwrap_or(0));
                groups.push(asg.clone());
            }
        }
        Served {
            region: region.to_owned(),
            groups,
            capacity,
        }
    }

    /// The most loaded region of record `name` before the drill: the largest share
    /// of its weight per unit of capacity, as weight w0 of total t0 on capacity c0
    /// (compared as fractions, w1 * t2 * c2 > w2 * t1 * c1); none when no region
    /// serving it has capacity.
    fn most_loaded(&self, name: &str, spec: &RecordSpec) -> Option<(i128, i128, i128, Served)> {
        let observed: BTreeMap<String, i64> = self
            .observed
            .records
            .get(name)
            .map(|sets| {
                sets.iter()
                    .map(|s| (s.set_identifier.clone(), s.weight.unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let total_now: i64 = observed.values().sum();
        let mut load: Option<(i128, i128, Served)> = None;
        for (region, id) in &spec.set_identifiers {
            let weight = observed.get(id).copied().unwrap_or(0);
            let served = self.served(name, region.as_str(), false);
            if weight <= 0 || served.capacity == 0 {
                continue;
            }
            let heavier = load
                .as_ref()
                .is_none_or(|(w, c, _)| i128::from(weight) * c > *w * i128::from(served.capacity));
            if heavier {
                load = Some((i128::from(weight), i128::from(served.capacity), served));
            }
        }
        load.map(|(w0, c0, base)| (w0, c0, i128::from(total_now.max(1)), base))
    }

    /// Capacity follows traffic when a zone's capacity goes without replacement
    /// (`keep_capacity: false`): each record served in `region` must still be
    /// carried there at no more per unit of capacity than the most loaded region
    /// carries before the drill (plus `capacity_margin`), at its weights as the
    /// steps before leave them. A shortfall is a blocker.
    pub(super) fn capacity_holds_without_zone(&mut self, step: &str, region: &str, zone: &str) {
        self.served.borrow_mut().clear();
        let margin = 100 + i128::from(self.playbook.capacity_margin);
        let records: Vec<(String, RecordSpec)> = self
            .playbook
            .records
            .iter()
            .filter(|(_, spec)| spec.set_identifiers.keys().any(|r| r.as_str() == region))
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        for (name, spec) in records {
            let Some(id) = spec
                .set_identifiers
                .iter()
                .find(|(r, _)| r.as_str() == region)
                .map(|(_, id)| id.clone())
            else {
                continue;
            };
            let weights = self
                .projection
                .weights
                .get(&name)
                .cloned()
                .unwrap_or_default();
            let weight = weights.get(&id).copied().unwrap_or(0);
            let total = i128::from(weights.values().sum::<i64>().max(1));
            let (before, after) = (
                self.served(&name, region, false),
                self.served(&name, region, true),
            );
            if weight <= 0 || after.capacity >= before.capacity {
                continue;
            }
            let Some((w0, c0, t0, base)) = self.most_loaded(&name, &spec) else {
                continue;
            };
            let num = i128::from(weight) * t0 * c0 * 100;
            let den = margin * w0 * total;
            let needed = (num + den - 1) / den;
            if i128::from(after.capacity) >= needed {
                continue;
            }
            let share = i128::from(weight) * 100 / total;
            let base_share = w0 * 100 / t0;
            self.block(
                Some(step),
                Some(format!("record {name} ({region})")),
                format!(
                    "leaving {zone} without replacing its capacity leaves {share}% of `{name}`'s traffic in {region} on a capacity of {} ({}); it needs at least {needed} to carry no more per instance than {} carries now ({base_share}% on {c0}): keep capacity, shift `{name}` away first, or raise capacity_margin",
                    after.capacity,
                    after.groups.join(", "),
                    base.region,
                ),
            );
        }
        self.served.borrow_mut().clear();
    }

    /// Capacity follows traffic: no increment of a shift may ask a region to carry
    /// more of record `name`'s traffic per unit of capacity than the most loaded
    /// region carries before the drill (plus `capacity_margin` percent). Capacity is
    /// the desired capacity of the groups serving the record there, after the steps
    /// before this one. Records with no group linked are named in one warning by the caller.
    pub(super) fn capacity_follows(
        &mut self,
        step: &str,
        name: &str,
        spec: &RecordSpec,
        before: &BTreeMap<String, i64>,
        increments: &[BTreeMap<String, i64>],
    ) {
        let resource = Some(format!("record {name}"));
        let Some((w0, c0, t0, base)) = self.most_loaded(name, spec) else {
            self.warn(
                Some(step),
                resource,
                format!(
                    "no region serving record `{name}` has capacity in its groups now, so its traffic is not checked against capacity"
                ),
            );
            return;
        };
        let margin = 100 + i128::from(self.playbook.capacity_margin);
        let mut blocked: BTreeSet<String> = BTreeSet::new();
        let mut prev = before;
        for (k, weights) in increments.iter().enumerate() {
            let total = i128::from(weights.values().sum::<i64>().max(1));
            for (region, id) in &spec.set_identifiers {
                let weight = weights.get(id).copied().unwrap_or(0);
                if weight <= prev.get(id).copied().unwrap_or(0) || blocked.contains(id) {
                    continue;
                }
                let served = self.served(name, region.as_str(), true);
                // weight / total on capacity c must not exceed margin% of w0 / t0 on c0:
                // c >= weight * t0 * c0 * 100 / (margin * w0 * total).
                let num = i128::from(weight) * t0 * c0 * 100;
                let den = margin * w0 * total;
                let needed = (num + den - 1) / den;
                if i128::from(served.capacity) >= needed {
                    continue;
                }
                blocked.insert(id.clone());
                let share = i128::from(weight) * 100 / total;
                let base_share = w0 * 100 / t0;
                let margin_note = if self.playbook.capacity_margin > 0 {
                    format!(" plus capacity_margin {}%", self.playbook.capacity_margin)
                } else {
                    String::new()
                };
                let groups = if served.groups.is_empty() {
                    format!(
                        "no group of {} there",
                        self.playbook.serving_groups(name).join(", ")
                    )
                } else {
                    served.groups.join(", ")
                };
                let fix = match self.later_scale_up(step, name, region.as_str()) {
                    Some(later) => {
                        format!("step `{later}` scales them up later: move it before this step")
                    }
                    None => format!(
                        "add a scale_up of {} in {region} before this step, ramp more slowly, or raise capacity_margin",
                        self.playbook.serving_groups(name).join(", ")
                    ),
                };
                self.block(
                    Some(step),
                    Some(format!("record {name} ({region})")),
                    format!(
                        "increment {} sends {share}% of `{name}`'s traffic to {region}, where its capacity is {} ({groups}); it needs at least {needed} to carry no more per instance than {} carries now ({base_share}% on {c0}){margin_note}: {fix}",
                        k + 1,
                        served.capacity,
                        base.region,
                    ),
                );
            }
            prev = weights;
        }
    }

    /// One warning for the records of a step with no group linked: their traffic is
    /// not checked against capacity. Each is named (up to ten, then a count).
    fn warn_unlinked(&mut self, step: &str, records: &[String]) {
        let shown: Vec<String> = records.iter().take(10).map(|r| format!("`{r}`")).collect();
        let more = records.len().saturating_sub(10);
        let names = if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        };
        let (first, resource) = match records {
            [one] => (one.as_str(), Some(format!("record {one}"))),
            _ => ("NAME", None),
        };
        let what = if records.len() == 1 {
            format!("record {names} has")
        } else {
            format!("records {names} have")
        };
        self.warn(
            Some(step),
            resource,
            format!(
                "{what} no group linked, so {} traffic is not checked against capacity: add `groups: [GROUP, ...]` under records.{first}, or name a group `{first}`",
                if records.len() == 1 { "its" } else { "their" }
            ),
        );
    }

    /// The first step after `step` that scales up a group serving `name` in `region`.
    fn later_scale_up(&self, step: &str, name: &str, region: &str) -> Option<String> {
        let serving = self.playbook.serving_groups(name);
        self.playbook
            .steps
            .iter()
            .skip_while(|s| s.id.as_str() != step)
            .skip(1)
            .find(|s| match &s.action {
                crate::playbook::Action::ScaleUp(up) => {
                    up.region.as_str() == region && up.group.iter().any(|g| serving.contains(g))
                }
                _ => false,
            })
            .map(|s| s.id.to_string())
    }
}
