//! The last known state of each region: what `plan` and `run` read there, kept in
//! the state dir (`known/REGION.json`, local or in S3) with the time each value was
//! read, so that a region that does not answer can still be evacuated: planned from
//! its newest record (`--region-down`).
//!
//! A record holds the Auto Scaling groups read there (capacity, zones, subnets,
//! tags, processes), its subnets' zones and free addresses, its alarms' states and
//! the weights of the weighted sets that serve it. Nothing secret: no credentials,
//! no instance data.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::observe::{HostedZone, Observe, ObserveError, RecordKey};
use crate::playbook::{Playbook, Region};
use crate::state::{BalancerView, GroupState, Observed, Preflight, Subnet, Vcpus, WeightedSet};

/// The format of a record.
pub const FORMAT: u32 = 1;

/// One value with when it was read, and in which of the playbook's named accounts
/// (none: the ambient one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known<T> {
    /// When it was read (RFC 3339).
    pub read_at: String,
    /// The named account it was read in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The value.
    pub value: T,
}

/// What is known of one region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The region.
    pub region: String,
    /// Per Auto Scaling group name: its state.
    #[serde(default)]
    pub groups: BTreeMap<String, Known<GroupState>>,
    /// Per subnet id: its zone and free addresses.
    #[serde(default)]
    pub subnets: BTreeMap<String, Known<Subnet>>,
    /// Per alarm name: its state.
    #[serde(default)]
    pub alarms: BTreeMap<String, Known<String>>,
    /// Per weighted set that serves the region (`ZONE_ID NAME TYPE SET`): its weight.
    #[serde(default)]
    pub weights: BTreeMap<String, Known<i64>>,
}

fn known<T>(at: &str, account: Option<&str>, value: T) -> Known<T> {
    Known {
        read_at: at.to_owned(),
        account: account.map(str::to_owned),
        value,
    }
}

/// Where a region's record is kept in the state dir.
pub fn key(region: &str) -> String {
    format!("known/{region}.json")
}

impl RegionRecord {
    /// What `observed` read live in `region`, as read at `at`.
    pub fn of(observed: &Observed, playbook: &Playbook, region: &str, at: &str) -> Self {
        let mut record = RegionRecord {
            format: FORMAT,
            region: region.to_owned(),
            ..Self::default()
        };
        let groups = observed.groups.get(region);
        for (name, state) in groups.into_iter().flatten() {
            let account = observed.routes.group(region, name);
            record
                .groups
                .insert(name.clone(), known(at, account, state.clone()));
            for id in &state.subnets {
                let (zone, free) = (observed.subnet_zones.get(id), observed.subnet_free.get(id));
                if zone.is_none() && free.is_none() {
                    continue;
                }
                let subnet = Subnet {
                    zone: zone.cloned().unwrap_or_default(),
                    zone_id: observed.subnet_zone_ids.get(id).cloned(),
                    free: free.copied().unwrap_or(0),
                };
                record
                    .subnets
                    .insert(id.clone(), known(at, account, subnet));
            }
        }
        for (name, state) in observed.alarms.get(region).into_iter().flatten() {
            let account = observed.routes.alarm(region, name);
            record
                .alarms
                .insert(name.clone(), known(at, account, state.clone()));
        }
        for (name, spec) in &playbook.records {
            let Some(set_id) = spec
                .set_identifiers
                .iter()
                .find_map(|(r, id)| (r.as_str() == region).then_some(id))
            else {
                continue;
            };
            let Some(crate::state::ZoneLookup::Found { id: zone_id, .. }) =
                observed.zones.get(&spec.zone)
            else {
                continue;
            };
            let set = observed
                .records
                .get(name)
                .into_iter()
                .flatten()
                .find(|s| &s.set_identifier == set_id);
            if let Some(weight) = set.and_then(|s| s.weight) {
                record.weights.insert(
                    format!("{zone_id} {} {} {set_id}", spec.name, spec.record_type),
                    known(at, observed.routes.zone(zone_id), weight),
                );
            }
        }
        record
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
            && self.subnets.is_empty()
            && self.alarms.is_empty()
            && self.weights.is_empty()
    }

    /// This record with what `newer` holds put in: the newer value of each.
    pub fn merge(&mut self, newer: RegionRecord) {
        self.format = FORMAT;
        self.region = newer.region;
        self.groups.extend(newer.groups);
        self.subnets.extend(newer.subnets);
        self.alarms.extend(newer.alarms);
        self.weights.extend(newer.weights);
    }

    /// Reads a record's text; a record this evac cannot read is said so.
    pub fn parse(region: &str, body: &[u8]) -> Result<Self, String> {
        let record: RegionRecord = serde_json::from_slice(body)
            .map_err(|e| format!("the last known state of {region} cannot be read: {e}"))?;
        if record.format > FORMAT {
            return Err(format!(
                "the last known state of {region} was written by a newer evac (format {}): use that version",
                record.format
            ));
        }
        Ok(record)
    }
}

/// Reads the record of `region` from the state dir: `None` when there is none.
pub fn load(
    state: &crate::journal::StateDir,
    region: &str,
) -> Result<Option<RegionRecord>, String> {
    match state.read_doc(&key(region))? {
        None => Ok(None),
        Some(body) => RegionRecord::parse(region, &body).map(Some),
    }
}

/// Adds to the state dir's record of every region `observed` read live what it
/// read there, as read at `at`. Regions not read live keep their records as they
/// are.
pub fn save(
    state: &crate::journal::StateDir,
    playbook: &Playbook,
    observed: &Observed,
    at: jiff::Timestamp,
) -> Result<(), String> {
    let at = at.round(jiff::Unit::Second).unwrap_or(at).to_string();
    let mut regions: BTreeSet<String> = observed.groups.keys().cloned().collect();
    regions.extend(observed.alarms.keys().cloned());
    for spec in playbook.records.values() {
        regions.extend(spec.set_identifiers.keys().map(ToString::to_string));
    }
    for region in &regions {
        if observed.is_unread(region) {
            continue;
        }
        let newer = RegionRecord::of(observed, playbook, region, &at);
        if newer.is_empty() {
            continue;
        }
        state.update_doc(&key(region), |now| {
            let mut record = now
                .and_then(|body| RegionRecord::parse(region, body).ok())
                .unwrap_or_default();
            record.merge(newer.clone());
            let mut json = serde_json::to_vec_pretty(&record).unwrap_or_default();
            json.push(b'\n');
            json
        })?;
    }
    Ok(())
}

/// How old a value read at `read_at` is at `now`, said for people: `3h`, `8d`.
pub fn age(read_at: &str, now: jiff::Timestamp) -> Option<(Duration, String)> {
    let at: jiff::Timestamp = read_at.parse().ok()?;
    let secs = now.as_second().saturating_sub(at.as_second()).max(0);
    let secs = u64::try_from(secs).unwrap_or(0);
    let said = match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    };
    Some((Duration::from_secs(secs), said))
}

/// A region's record, read as the plan reads a region: what one account's reads
/// there would have found when the record was made. Remembers the oldest value it
/// gave.
pub struct Recorded<'a> {
    record: &'a RegionRecord,
    account: Option<&'a str>,
    oldest: std::cell::RefCell<Option<String>>,
}

impl<'a> Recorded<'a> {
    /// `record` as read in `account` (none: the ambient one).
    pub fn new(record: &'a RegionRecord, account: Option<&'a str>) -> Self {
        Self {
            record,
            account,
            oldest: Default::default(),
        }
    }

    /// When the oldest value given was read.
    pub fn oldest(&self) -> Option<String> {
        self.oldest.borrow().clone()
    }

    fn give<T: Clone>(&self, known: &Known<T>) -> Option<T> {
        if known.account.as_deref() != self.account {
            return None;
        }
        let mut oldest = self.oldest.borrow_mut();
        if oldest.as_ref().is_none_or(|o| known.read_at < *o) {
            *oldest = Some(known.read_at.clone());
        }
        Some(known.value.clone())
    }

    fn not_regional(what: &str) -> ObserveError {
        ObserveError::new(
            what,
            "a region's last known state holds only what was read in that region",
        )
    }
}

impl Observe for Recorded<'_> {
    async fn groups_named(
        &self,
        _region: &Region,
        names: &[String],
    ) -> Result<Vec<GroupState>, ObserveError> {
        Ok(names
            .iter()
            .filter_map(|n| self.record.groups.get(n))
            .filter_map(|k| self.give(k))
            .collect())
    }

    async fn groups_tagged(
        &self,
        _region: &Region,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Vec<GroupState>, ObserveError> {
        Ok(self
            .record
            .groups
            .values()
            .filter(|k| {
                tags.iter()
                    .all(|(key, values)| k.value.tags.get(key).is_some_and(|v| values.contains(v)))
            })
            .filter_map(|k| self.give(k))
            .collect())
    }

    async fn subnets(
        &self,
        _region: &Region,
        ids: &[String],
    ) -> Result<BTreeMap<String, Subnet>, ObserveError> {
        Ok(ids
            .iter()
            .filter_map(|id| {
                let known = self.record.subnets.get(id)?;
                self.give(known).map(|s| (id.clone(), s))
            })
            .collect())
    }

    async fn alarm_states(
        &self,
        _region: &Region,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, ObserveError> {
        Ok(names
            .iter()
            .filter_map(|name| {
                let known = self.record.alarms.get(name)?;
                self.give(known).map(|s| (name.clone(), s))
            })
            .collect())
    }

    async fn health_check_exists(&self, _id: &str) -> Result<bool, ObserveError> {
        Err(Self::not_regional("read a health check"))
    }

    async fn health_check_passes(&self, _id: &str) -> Result<bool, ObserveError> {
        Err(Self::not_regional("read a health check"))
    }

    /// Hooks, policies and scheduled actions are not kept: a region that is down
    /// changes nothing, so they only ever warned.
    async fn preflight(
        &self,
        _region: &Region,
        _groups: &[String],
        _hooks: bool,
    ) -> Result<BTreeMap<String, Preflight>, ObserveError> {
        Ok(BTreeMap::new())
    }

    async fn balancers(
        &self,
        _region: &Region,
        _groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<BalancerView>>, ObserveError> {
        Ok(BTreeMap::new())
    }

    async fn vcpus(
        &self,
        _region: &Region,
        _groups: &[&GroupState],
    ) -> Result<Vcpus, ObserveError> {
        Ok(Vcpus::default())
    }

    async fn hosted_zones(
        &self,
        _written: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, HostedZone>, ObserveError> {
        Err(Self::not_regional("look up hosted zones"))
    }

    async fn weighted_sets(
        &self,
        _zone_id: &str,
        _record_count: Option<i64>,
        _wanted: &BTreeSet<RecordKey>,
    ) -> Result<BTreeMap<RecordKey, Vec<WeightedSet>>, ObserveError> {
        Err(Self::not_regional("list record sets"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_said_in_the_largest_unit_that_reads_well() {
        let now: jiff::Timestamp = "2026-12-04T12:00:00Z".parse().expect("time");
        let said = |at: &str| age(at, now).map(|(_, s)| s);
        assert_eq!(said("2026-12-04T11:59:30Z").as_deref(), Some("30s"));
        assert_eq!(said("2026-12-04T11:00:00Z").as_deref(), Some("60m"));
        assert_eq!(said("2026-12-04T06:00:00Z").as_deref(), Some("6h"));
        assert_eq!(said("2026-11-26T12:00:00Z").as_deref(), Some("8d"));
        assert_eq!(said("not a time"), None);
    }

    #[test]
    fn a_newer_read_replaces_what_it_read_and_keeps_the_rest() {
        let group = |desired| GroupState {
            name: "api".into(),
            capacity: crate::state::Capacity {
                min: 0,
                desired,
                max: 10,
            },
            in_service: desired,
            instances_by_zone: BTreeMap::new(),
            unit: Default::default(),
            weights: Default::default(),
            zones: vec![],
            subnets: vec![],
            suspended_processes: vec![],
            tags: BTreeMap::new(),
            protected: vec![],
            warm_pool: None,
            balancers: vec![],
            launch: None,
            members: vec![],
            arn: None,
            zonal_shift: None,
        };
        let known = |at: &str, value| Known {
            read_at: at.to_owned(),
            account: None,
            value,
        };
        let mut record = RegionRecord::default();
        record
            .groups
            .insert("api".into(), known("2026-12-01T00:00:00Z", group(4)));
        record
            .groups
            .insert("web".into(), known("2026-12-01T00:00:00Z", group(2)));
        let mut newer = RegionRecord::default();
        newer
            .groups
            .insert("api".into(), known("2026-12-04T00:00:00Z", group(6)));
        record.merge(newer);
        assert_eq!(record.groups["api"].value.capacity.desired, 6);
        assert_eq!(record.groups["api"].read_at, "2026-12-04T00:00:00Z");
        assert_eq!(record.groups["web"].value.capacity.desired, 2);
    }
}
