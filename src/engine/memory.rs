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
}

#[derive(Default)]
struct World {
    groups: BTreeMap<(String, String), Group>,
    records: BTreeMap<String, Vec<RecordSetDef>>,
    changes: BTreeMap<String, Instant>,
    alarms: BTreeMap<(String, String), String>,
    /// Failures to answer, per operation: (how many, retryable).
    failures: BTreeMap<&'static str, (u32, bool)>,
    calls: BTreeMap<&'static str, u32>,
    next_change: u32,
    unhealthy: std::collections::BTreeSet<String>,
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
            },
        );
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

    /// The next `count` calls of `operation` fail.
    pub fn fail(&self, operation: &'static str, count: u32, retryable: bool) {
        self.world().failures.insert(operation, (count, retryable));
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
        if let Some((left, retryable)) = world.failures.get_mut(operation)
            && *left > 0
        {
            *left -= 1;
            let retryable = *retryable;
            return Err(CloudError {
                what: operation.to_owned(),
                message: if retryable {
                    "Throttling: Rate exceeded".into()
                } else {
                    "InternalFailure (500)".into()
                },
                retryable,
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
            out.insert(
                name.clone(),
                GroupState {
                    name: name.clone(),
                    capacity: group.capacity,
                    in_service: group.in_service,
                    instances_by_zone: BTreeMap::new(),
                    zones: vec![],
                    subnets: vec![],
                    suspended_processes: vec![],
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
                retryable: false,
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
}
