//! Reading live AWS for a wave: every target in batched calls (one
//! DescribeAutoScalingGroups per region per 100 groups, one listing per hosted zone,
//! one GetManagedResource per shifted resource), all regions, zones and resources at
//! once.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use super::cloud::{ActiveShift, Cloud, CloudError};
use crate::journal::{RecordSetDef, Shift, Target, Value};
use crate::state::GroupState;

/// The live state of a set of targets, read at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Per (region, group): its state.
    pub groups: BTreeMap<(String, String), GroupState>,
    /// Per hosted zone: the weighted record sets read.
    pub zones: BTreeMap<String, Vec<RecordSetDef>>,
    /// Per (region, resource): its active customer zonal shifts.
    pub shifts: BTreeMap<(String, String), Vec<ActiveShift>>,
}

/// What to read.
#[derive(Debug, Default)]
pub struct Reads {
    groups: BTreeMap<String, BTreeSet<String>>,
    zones: BTreeMap<String, BTreeSet<(String, String)>>,
    shifts: BTreeSet<(String, String)>,
}

impl Reads {
    /// Reads `target`; for weights, the (name, type) pairs whose sets matter.
    pub fn add(&mut self, target: &Target, records: impl IntoIterator<Item = (String, String)>) {
        match target {
            Target::Capacity { region, group }
            | Target::Subnets { region, group }
            | Target::Processes { region, group }
            | Target::Protection { region, group }
            | Target::Instance { region, group, .. } => {
                self.groups
                    .entry(region.clone())
                    .or_default()
                    .insert(group.clone());
            }
            Target::Weights { zone_id } => {
                self.zones
                    .entry(zone_id.clone())
                    .or_default()
                    .extend(records);
            }
            Target::ZonalShift { region, resource } => {
                self.shifts.insert((region.clone(), resource.clone()));
            }
        }
    }

    /// Reads a group.
    pub fn group(&mut self, region: &str, group: &str) {
        self.groups
            .entry(region.to_owned())
            .or_default()
            .insert(group.to_owned());
    }

    /// Whether there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.zones.is_empty() && self.shifts.is_empty()
    }

    /// Reads everything at once.
    pub async fn fetch<C: Cloud>(&self, cloud: &C) -> Result<Snapshot, CloudError> {
        let groups = try_join_all(self.groups.iter().map(|(region, names)| async move {
            let names: Vec<String> = names.iter().cloned().collect();
            let states = cloud.groups(region, &names).await?;
            Ok::<_, CloudError>(
                states
                    .into_iter()
                    .map(|(name, state)| ((region.clone(), name), state))
                    .collect::<Vec<_>>(),
            )
        }));
        let zones = try_join_all(self.zones.iter().map(|(zone_id, pairs)| async move {
            let pairs: Vec<(String, String)> = pairs.iter().cloned().collect();
            let sets = cloud.zone_record_sets(zone_id, &pairs).await?;
            Ok::<_, CloudError>((zone_id.clone(), sets))
        }));
        let shifts = try_join_all(self.shifts.iter().map(|(region, resource)| async move {
            let active = cloud.zonal_shifts(region, resource).await?;
            Ok::<_, CloudError>(((region.clone(), resource.clone()), active))
        }));
        let (groups, zones, shifts) = futures::try_join!(groups, zones, shifts)?;
        Ok(Snapshot {
            groups: groups.into_iter().flatten().collect(),
            zones: zones.into_iter().collect(),
            shifts: shifts.into_iter().collect(),
        })
    }
}

impl Snapshot {
    /// The state of a group, if it exists.
    pub fn group(&self, region: &str, group: &str) -> Option<&GroupState> {
        self.groups.get(&(region.to_owned(), group.to_owned()))
    }

    /// The live value of `target`, shaped like `like` (for weights: the same record
    /// sets). `None` when the resource does not exist.
    pub fn value(&self, target: &Target, like: &Value) -> Option<Value> {
        match target {
            Target::Capacity { region, group } => self
                .group(region, group)
                .map(|g| Value::Capacity(g.capacity)),
            Target::Subnets { region, group } => {
                self.group(region, group).map(|g| Value::Subnets {
                    subnets: g.subnets.clone(),
                })
            }
            Target::Processes { region, group } => self.group(region, group).map(|g| {
                let mut suspended = g.suspended_processes.clone();
                suspended.sort();
                Value::Processes { suspended }
            }),
            // An instance's value is what the engine recorded; nothing to compare.
            Target::Protection { region, group } => {
                self.group(region, group).map(|g| Value::Protection {
                    protected: g.protected.clone(),
                })
            }
            Target::Instance { .. } => Some(like.clone()),
            Target::ZonalShift { region, resource } => {
                let active = self.shifts.get(&(region.clone(), resource.clone()))?;
                Some(Value::ZonalShift {
                    zonal_shift: active.first().map(|s| Shift {
                        away_from: s.away_from.clone(),
                        comment: s.comment.clone(),
                        expires: Some(s.expires),
                    }),
                })
            }
            Target::Weights { zone_id } => {
                let sets = self.zones.get(zone_id)?;
                let Value::Weights(wanted) = like else {
                    return None;
                };
                Some(Value::Weights(
                    sets.iter()
                        .filter(|d| wanted.contains_key(&d.key()))
                        .map(|d| (d.key(), d.weight))
                        .collect(),
                ))
            }
        }
    }

    /// The full record sets of `zone_id` with the weights of `weights`: what an UPSERT
    /// setting those weights sends.
    pub fn with_weights(&self, zone_id: &str, weights: &Value) -> Vec<RecordSetDef> {
        let Value::Weights(weights) = weights else {
            return Vec::new();
        };
        self.zones
            .get(zone_id)
            .map(|sets| {
                sets.iter()
                    .filter_map(|d| {
                        weights.get(&d.key()).map(|w| RecordSetDef {
                            weight: *w,
                            ..d.clone()
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The record sets of `zone_id` whose weights `like` names, as they are now.
    pub fn sets(&self, zone_id: &str, like: &Value) -> Vec<RecordSetDef> {
        let Value::Weights(wanted) = like else {
            return Vec::new();
        };
        self.zones
            .get(zone_id)
            .map(|sets| {
                sets.iter()
                    .filter(|d| wanted.contains_key(&d.key()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The (name, type) pairs of record sets.
pub fn record_pairs(sets: &[RecordSetDef]) -> BTreeSet<(String, String)> {
    sets.iter()
        .map(|d| (d.name.clone(), d.record_type.clone()))
        .collect()
}
