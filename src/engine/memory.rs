//! An in-memory [`Cloud`] for engine tests: instances that take time to come into
//! service, Route 53 changes that take time to sync, and failures on demand. Time is
//! tokio's, so tests run it paused.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::cloud::{Cloud, CloudError};
use crate::journal::RecordSetDef;
use crate::state::{Capacity, GroupState};

struct Group {
    capacity: Capacity,
    in_service: u32,
    /// When the last capacity change was made, and what InService was then.
    changed: Option<(Instant, u32)>,
    /// Instances, for zone evacuations: id, zone, and when it is (or was) in service.
    instances: Vec<(String, String, Instant)>,
    /// Subnets; in memory a subnet is named after its zone.
    subnets: Vec<String>,
    suspended: Vec<String>,
}

#[derive(Default)]
struct World {
    groups: BTreeMap<(String, String), Group>,
    records: BTreeMap<String, Vec<RecordSetDef>>,
    changes: BTreeMap<String, Instant>,
    alarms: BTreeMap<(String, String), String>,
    /// Failures to answer, per operation: how many more.
    failures: BTreeMap<&'static str, u32>,
    calls: BTreeMap<&'static str, u32>,
    next_change: u32,
    unhealthy: std::collections::BTreeSet<String>,
    max_out: u32,
    next_instance: u32,
}

/// The in-memory cloud.
pub struct MemoryCloud {
    world: Mutex<World>,
    /// How long new capacity takes to come into (or go out of) service.
    pub launch: Duration,
    /// How long a Route 53 change takes to be in sync.
    pub sync: Duration,
}

impl MemoryCloud {
    pub fn new(launch: Duration, sync: Duration) -> Self {
        Self {
            world: Mutex::new(World::default()),
            launch,
            sync,
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_group(&self, region: &str, name: &str, capacity: Capacity) {
        self.world().groups.insert(
            (region.into(), name.into()),
            Group {
                capacity,
                in_service: capacity.desired,
                changed: None,
                instances: Vec::new(),
                subnets: Vec::new(),
                suspended: Vec::new(),
            },
        );
    }

    /// Adds a group whose instances sit in zones (`per_zone`: zone and count); its
    /// subnets are named after the zones.
    pub fn add_zoned_group(
        &self,
        region: &str,
        name: &str,
        capacity: Capacity,
        per_zone: &[(&str, u32)],
    ) {
        let now = Instant::now();
        let mut instances = Vec::new();
        for (zone, count) in per_zone {
            for i in 0..*count {
                instances.push((format!("i-{zone}-{i}"), (*zone).to_owned(), now));
            }
        }
        self.world().groups.insert(
            (region.into(), name.into()),
            Group {
                capacity,
                in_service: capacity.desired,
                changed: None,
                instances,
                subnets: per_zone.iter().map(|(z, _)| (*z).to_owned()).collect(),
                suspended: Vec::new(),
            },
        );
    }

    /// The most instances of one group that were out of service at once.
    pub fn max_out(&self) -> u32 {
        self.world().max_out
    }

    /// Instances per zone of a group.
    pub fn zones(&self, region: &str, name: &str) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        if let Some(g) = self
            .world()
            .groups
            .get(&(region.to_owned(), name.to_owned()))
        {
            for (_, zone, _) in &g.instances {
                *out.entry(zone.clone()).or_default() += 1;
            }
        }
        out
    }

    pub fn add_record(&self, zone: &str, name: &str, set_identifier: &str, weight: i64) {
        self.world()
            .records
            .entry(zone.into())
            .or_default()
            .push(RecordSetDef {
                name: name.into(),
                record_type: "A".into(),
                set_identifier: set_identifier.into(),
                weight,
                ttl: Some(60),
                values: vec!["10.0.0.1".into()],
                alias: None,
                health_check_id: None,
            });
    }

    /// Sets an alarm's state.
    pub fn set_alarm(&self, region: &str, name: &str, state: &str) {
        self.world()
            .alarms
            .insert((region.into(), name.into()), state.into());
    }

    /// The next `count` calls of `operation` fail (as they would once the SDK's
    /// retries are spent).
    pub fn fail(&self, operation: &'static str, count: u32) {
        self.world().failures.insert(operation, count);
    }

    /// Someone else sets a record set's weight.
    pub fn set_weight(&self, zone: &str, set_identifier: &str, weight: i64) {
        if let Some(sets) = self.world().records.get_mut(zone) {
            for set in sets
                .iter_mut()
                .filter(|s| s.set_identifier == set_identifier)
            {
                set.weight = weight;
            }
        }
    }

    /// Someone else sets a group's capacity (instances follow at once).
    pub fn set_capacity_now(&self, region: &str, name: &str, capacity: Capacity) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            g.capacity = capacity;
            g.in_service = capacity.desired;
            g.changed = None;
        }
    }

    pub fn calls(&self, operation: &str) -> u32 {
        self.world().calls.get(operation).copied().unwrap_or(0)
    }

    pub fn capacity(&self, region: &str, name: &str) -> Option<Capacity> {
        self.world()
            .groups
            .get(&(region.to_owned(), name.to_owned()))
            .map(|g| g.capacity)
    }

    pub fn weights(&self, zone: &str) -> BTreeMap<String, i64> {
        self.world()
            .records
            .get(zone)
            .map(|sets| {
                sets.iter()
                    .map(|s| (s.set_identifier.clone(), s.weight))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn enter(&self, operation: &'static str) -> Result<(), CloudError> {
        let mut world = self.world();
        *world.calls.entry(operation).or_default() += 1;
        if let Some(left) = world.failures.get_mut(operation)
            && *left > 0
        {
            *left -= 1;
            return Err(CloudError {
                what: operation.to_owned(),
                message: "InternalFailure (500)".into(),
            });
        }
        Ok(())
    }
}

impl Cloud for MemoryCloud {
    async fn groups(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, GroupState>, CloudError> {
        self.enter("groups")?;
        let now = Instant::now();
        let launch = self.launch;
        let mut world = self.world();
        let mut out = BTreeMap::new();
        for name in names {
            let Some(group) = world.groups.get_mut(&(region.to_owned(), name.clone())) else {
                continue;
            };
            if let Some((at, _)) = group.changed
                && now.duration_since(at) >= launch
            {
                group.in_service = group.capacity.desired;
                group.changed = None;
            }
            if !group.instances.is_empty() {
                group.in_service = group
                    .instances
                    .iter()
                    .filter(|(_, _, ready)| *ready <= now)
                    .count() as u32;
            }
            out.insert(
                name.clone(),
                GroupState {
                    name: name.clone(),
                    capacity: group.capacity,
                    in_service: group.in_service,
                    instances_by_zone: BTreeMap::new(),
                    zones: vec![],
                    subnets: group.subnets.clone(),
                    suspended_processes: group.suspended.clone(),
                    tags: BTreeMap::new(),
                },
            );
        }
        Ok(out)
    }

    async fn set_capacity(
        &self,
        region: &str,
        group: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        self.enter("set_capacity")?;
        let mut world = self.world();
        let entry = world
            .groups
            .get_mut(&(region.to_owned(), group.to_owned()))
            .ok_or_else(|| CloudError {
                what: format!("update {group}"),
                message: "ValidationError: group not found".into(),
            })?;
        entry.capacity = capacity;
        entry.changed = Some((Instant::now(), entry.in_service));
        Ok(())
    }

    async fn record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        self.enter("record_sets")?;
        Ok(self
            .world()
            .records
            .get(zone_id)
            .map(|sets| {
                sets.iter()
                    .filter(|s| s.name == name && s.record_type == record_type)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn upsert_weights(
        &self,
        zone_id: &str,
        sets: &[RecordSetDef],
    ) -> Result<String, CloudError> {
        self.enter("upsert_weights")?;
        let ready = Instant::now() + self.sync;
        let mut world = self.world();
        let zone = world.records.entry(zone_id.to_owned()).or_default();
        for set in sets {
            zone.retain(|s| s.key() != set.key());
            zone.push(set.clone());
        }
        world.next_change += 1;
        let id = format!("C{}", world.next_change);
        world.changes.insert(id.clone(), ready);
        Ok(id)
    }

    async fn change_in_sync(&self, change_id: &str) -> Result<bool, CloudError> {
        self.enter("change_in_sync")?;
        Ok(self
            .world()
            .changes
            .get(change_id)
            .is_none_or(|ready| Instant::now() >= *ready))
    }

    async fn alarm_state(&self, region: &str, name: &str) -> Result<Option<String>, CloudError> {
        self.enter("alarm_state")?;
        Ok(self
            .world()
            .alarms
            .get(&(region.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn health_check_healthy(&self, id: &str) -> Result<bool, CloudError> {
        self.enter("health_check_healthy")?;
        Ok(!self.world().unhealthy.contains(id))
    }

    async fn instances(
        &self,
        region: &str,
        groups: &[String],
    ) -> Result<BTreeMap<String, super::cloud::Members>, CloudError> {
        self.enter("instances")?;
        let now = Instant::now();
        let world = self.world();
        Ok(groups
            .iter()
            .filter_map(|name| {
                let g = world.groups.get(&(region.to_owned(), name.clone()))?;
                let instances = g
                    .instances
                    .iter()
                    .map(|(id, zone, ready)| super::cloud::Instance {
                        id: id.clone(),
                        zone: zone.clone(),
                        in_service: *ready <= now,
                    })
                    .collect();
                Some((
                    name.clone(),
                    super::cloud::Members {
                        desired: g.capacity.desired,
                        instances,
                    },
                ))
            })
            .collect())
    }

    async fn set_subnets(
        &self,
        region: &str,
        group: &str,
        subnets: &[String],
    ) -> Result<(), CloudError> {
        self.enter("set_subnets")?;
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), group.to_owned()))
        {
            g.subnets = subnets.to_vec();
        }
        Ok(())
    }

    async fn suspend_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.enter("suspend_processes")?;
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), group.to_owned()))
        {
            for p in processes {
                if !g.suspended.contains(p) {
                    g.suspended.push(p.clone());
                }
            }
        }
        Ok(())
    }

    async fn resume_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.enter("resume_processes")?;
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), group.to_owned()))
        {
            g.suspended.retain(|p| !processes.contains(p));
        }
        Ok(())
    }

    async fn replace_instance(&self, region: &str, instance: &str) -> Result<(), CloudError> {
        self.enter("replace_instance")?;
        let now = Instant::now();
        let ready = now + self.launch;
        let mut world = self.world();
        world.next_instance += 1;
        let id = format!("i-new-{}", world.next_instance);
        let mut out_now = 0;
        for ((r, _), g) in world.groups.iter_mut() {
            if r != region {
                continue;
            }
            if let Some(pos) = g.instances.iter().position(|(i, _, _)| i == instance) {
                g.instances.remove(pos);
                // The replacement goes to the allowed zone with the fewest instances.
                let zone = g
                    .subnets
                    .iter()
                    .min_by_key(|z| g.instances.iter().filter(|(_, iz, _)| iz == *z).count())
                    .cloned()
                    .unwrap_or_default();
                g.instances.push((id.clone(), zone, ready));
                out_now = g.instances.iter().filter(|(_, _, r)| *r > now).count() as u32;
            }
        }
        world.max_out = world.max_out.max(out_now);
        Ok(())
    }
}
