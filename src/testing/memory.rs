//! An in-memory [`Cloud`] (and [`Observe`], for plans) for engine and plan tests: instances that take time to come into
//! service, Route 53 changes that take time to sync, and failures on demand. Time is
//! tokio's, so tests run it paused.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::cloud::{Cloud, CloudError};
use crate::journal::RecordSetDef;
use crate::plan::observe::{HostedZone, Observe, ObserveError, RecordKey};
use crate::playbook::Region;
use crate::state::{Capacity, GroupState, WeightedSet, ZoneLookup};

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
    tags: BTreeMap<String, String>,
    protected: u32,
    warm_pool: Option<u32>,
    preflight: crate::state::Preflight,
    balancer: Option<MemoryBalancer>,
    /// The instance type it launches (and runs).
    instance_type: String,
    /// When desired last changed, and what it was before: how the load balancer
    /// sees the change.
    moved: Option<(Instant, u32)>,
    /// Why its launches fail (`InsufficientInstanceCapacity ...`): new capacity never
    /// comes, and each launch attempt is a failed scaling activity.
    launch_failure: Option<String>,
    /// The scaling activities of its own scaling, newest first.
    own: Vec<crate::engine::cloud::Activity>,
    /// What its desired capacity counts, and the units each of its instances counts:
    /// desired D brings ceil(D / weight) instances, so InService (in units) may pass
    /// desired by less than one weight, as AWS's may.
    unit: crate::state::Unit,
    weight: u32,
    /// When a zoned group was added: its instances from then are serving, in its
    /// load balancer too.
    seeded_at: Option<Instant>,
    /// With zonal shift enabled: its impaired-zone health check behaviour.
    zonal_shift: Option<String>,
}

/// A load balancer a group is attached to: new instances pass its health checks
/// `healthy` after they are InService; instances going out stay registered
/// (draining) for `drain` after they leave service.
struct MemoryBalancer {
    balancer: crate::state::Balancer,
    healthy: Duration,
    drain: Duration,
}

/// What [`MemoryCloud::shape`] may change of a group.
pub struct GroupExtras<'g> {
    pub protected: &'g mut u32,
    pub warm_pool: &'g mut Option<u32>,
    pub preflight: &'g mut crate::state::Preflight,
    pub suspended: &'g mut Vec<String>,
}

impl Group {
    fn new(capacity: Capacity) -> Self {
        Group {
            capacity,
            in_service: capacity.desired,
            changed: None,
            instances: Vec::new(),
            subnets: Vec::new(),
            suspended: Vec::new(),
            tags: BTreeMap::new(),
            protected: 0,
            warm_pool: None,
            preflight: crate::state::Preflight::default(),
            balancer: None,
            instance_type: "m5.large".into(),
            moved: None,
            launch_failure: None,
            own: Vec::new(),
            unit: crate::state::Unit::Instances,
            weight: 1,
            seeded_at: None,
            zonal_shift: None,
        }
    }

    /// The units in service once `desired` units have come: whole instances.
    fn whole(&self, desired: u32) -> u32 {
        let weight = self.weight.max(1);
        desired.div_ceil(weight).saturating_mul(weight)
    }

    /// How its instances stand in its load balancer at `now`, if it has one.
    fn balancer_view(&self, now: Instant, launch: Duration) -> Option<crate::state::BalancerView> {
        let lb = self.balancer.as_ref()?;
        let desired = self.capacity.desired;
        // A zoned group's instances each pass its health checks `healthy` after
        // they are InService.
        if !self.instances.is_empty() && self.moved.is_none() {
            let count = |f: &dyn Fn(Instant) -> bool| {
                u32::try_from(
                    self.instances
                        .iter()
                        .filter(|(_, _, ready)| f(*ready))
                        .count(),
                )
                .unwrap_or(u32::MAX)
            };
            let seeded = |ready: Instant| self.seeded_at.is_some_and(|at| ready <= at);
            return Some(crate::state::BalancerView {
                balancer: lb.balancer.clone(),
                healthy: count(&|ready| seeded(ready) || ready + lb.healthy <= now),
                registered: count(&|ready| ready <= now),
                leaving: 0,
            });
        }
        let (healthy, registered, leaving) = match self.moved {
            None => (desired, desired, 0),
            Some((at, before)) => {
                let since = now.duration_since(at);
                let in_service = if since >= launch { desired } else { before };
                if desired >= before {
                    let healthy = if since >= launch + lb.healthy {
                        desired
                    } else {
                        before
                    };
                    (healthy, in_service, 0)
                } else {
                    let leaving = if since >= launch && since < launch + lb.drain {
                        before - desired
                    } else {
                        0
                    };
                    (in_service, in_service, leaving)
                }
            }
        };
        Some(crate::state::BalancerView {
            balancer: lb.balancer.clone(),
            healthy,
            registered,
            leaving,
        })
    }

    /// Its state at `now`, once launches that had time to finish have finished.
    fn state(&mut self, name: &str, now: Instant, launch: Duration) -> GroupState {
        // Launches that fail never bring the new capacity.
        let failing = self.launch_failure.is_some() && self.capacity.desired > self.in_service;
        if let Some((at, _)) = self.changed
            && now.duration_since(at) >= launch
            && !failing
        {
            // Scale-in never takes an instance protected from it.
            self.in_service = self.whole(self.capacity.desired).max(
                self.protected
                    .saturating_mul(self.weight)
                    .min(self.in_service),
            );
            self.changed = None;
        }
        let mut instances_by_zone: BTreeMap<String, u32> = BTreeMap::new();
        if !self.instances.is_empty() {
            self.in_service = 0;
            for (_, zone, ready) in &self.instances {
                if *ready <= now {
                    self.in_service += self.weight;
                    *instances_by_zone.entry(zone.clone()).or_default() += self.weight;
                }
            }
        }
        let mut zones = self.subnets.clone();
        zones.dedup();
        GroupState {
            name: name.to_owned(),
            capacity: self.capacity,
            in_service: self.in_service,
            instances_by_zone,
            unit: self.unit,
            weights: if self.unit.is_instances() {
                crate::state::Weights::default()
            } else {
                crate::state::Weights::of([self.weight])
            },
            zones,
            subnets: self.subnets.clone(),
            suspended_processes: self.suspended.clone(),
            tags: self.tags.clone(),
            protected: (0..self.protected)
                .map(|n| format!("i-{name}-protected-{n}"))
                .collect(),
            warm_pool: self.warm_pool,
            balancers: self.balancer.iter().map(|b| b.balancer.clone()).collect(),
            launch: Some(crate::state::Launch::Types {
                types: vec![self.instance_type.clone()],
                weights: if self.unit == crate::state::Unit::Weighted {
                    BTreeMap::from([(self.instance_type.clone(), self.weight)])
                } else {
                    BTreeMap::new()
                },
            }),
            members: Vec::new(),
            arn: Some(group_arn(name)),
            zonal_shift: self.zonal_shift.clone(),
        }
    }
}

/// The ARN the in-memory cloud gives a group.
pub fn group_arn(name: &str) -> String {
    format!(
        "arn:aws:autoscaling:memory:000000000000:autoScalingGroup:0:autoScalingGroupName/{name}"
    )
}

/// A zonal shift in the in-memory cloud.
#[derive(Clone, Debug)]
pub struct MemoryShift {
    pub id: String,
    pub region: String,
    pub resource: String,
    pub away_from: String,
    pub comment: String,
    /// Seconds since the epoch.
    pub expires: i64,
    /// When it started: it applies after the cloud's shift delay.
    pub started: Instant,
    /// Cancelled.
    pub cancelled: bool,
}

impl MemoryShift {
    fn active(&self) -> bool {
        !self.cancelled && self.expires > jiff::Timestamp::now().as_second()
    }
}

/// The zone id the in-memory cloud gives a zone name unless told otherwise:
/// `us-east-1a` -> `use1-az1`, `us-east-1b` -> `use1-az2`.
fn default_zone_id(name: &str) -> String {
    let mut chars = name.chars();
    let letter = chars.next_back().unwrap_or('a');
    let short = crate::playbook::Region::parse(chars.as_str())
        .map(|r| r.short())
        .unwrap_or_else(|_| name.to_owned());
    format!(
        "{short}-az{}",
        u32::from(letter).saturating_sub(u32::from('a')) + 1
    )
}

#[derive(Default)]
struct World {
    groups: BTreeMap<(String, String), Group>,
    records: BTreeMap<String, Vec<RecordSetDef>>,
    /// Hosted zone names by id.
    zone_names: BTreeMap<String, String>,
    health_checks: BTreeSet<String>,
    changes: BTreeMap<String, Instant>,
    alarms: BTreeMap<(String, String), String>,
    /// Failures to answer, per operation: how many more.
    failures: BTreeMap<&'static str, u32>,
    calls: BTreeMap<&'static str, u32>,
    /// Mutating calls made so far.
    mutations: u32,
    /// Where the process "dies" (see [`MemoryCloud::crash_at`]).
    crash: Option<Crash>,
    next_change: u32,
    unhealthy: BTreeSet<String>,
    /// A teammate's weight change that lands just before the next weight change of
    /// this cloud's caller: (zone, set identifier, weight).
    race: Option<(String, String, i64)>,
    /// Zone ids by zone name, where they differ from [`default_zone_id`]'s.
    zone_ids: BTreeMap<String, String>,
    max_out: u32,
    /// The most instances of one group not yet serving (not InService, or not yet
    /// healthy in its load balancer) when a replacement was started.
    max_not_serving: u32,
    next_instance: u32,
    /// How many times each group's load balancer was read.
    balancer_reads: BTreeMap<String, u32>,
    /// vCPU quotas set, per (region, quota code); others are 10,000 vCPUs.
    quotas: BTreeMap<(String, String), Result<u64, String>>,
    /// Zonal shifts started, oldest first.
    shifts: Vec<MemoryShift>,
    /// How long a zonal shift takes to apply.
    shift_delay: Duration,
    /// The load balancer of each target group in front of one.
    load_balancers: BTreeMap<String, String>,
}

/// The vCPUs of the instance types the in-memory cloud knows.
const INSTANCE_VCPUS: [(&str, u32); 5] = [
    ("t3.micro", 2),
    ("m5.large", 2),
    ("m5.2xlarge", 8),
    ("c5.4xlarge", 16),
    ("p3.2xlarge", 8),
];

fn vcpus_of(instance_type: &str) -> Option<u32> {
    INSTANCE_VCPUS
        .iter()
        .find(|(t, _)| *t == instance_type)
        .map(|(_, v)| *v)
}

/// Where a run "dies": its `at`-th mutating call (from 1) never returns, before it
/// takes effect or, with `after`, once it has.
#[derive(Clone, Copy, Debug)]
pub struct Crash {
    /// The mutating call, from 1.
    pub at: u32,
    /// Whether the call takes effect before it hangs (a lost response).
    pub after: bool,
}

/// The in-memory cloud.
pub struct MemoryCloud {
    world: Mutex<World>,
    /// How long new capacity takes to come into (or go out of) service.
    pub launch: Duration,
    /// How long a Route 53 change takes to be in sync.
    pub sync: Duration,
    crash_signal: tokio::sync::Notify,
}

impl MemoryCloud {
    pub fn new(launch: Duration, sync: Duration) -> Self {
        Self {
            world: Mutex::new(World::default()),
            launch,
            sync,
            crash_signal: tokio::sync::Notify::new(),
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_group(&self, region: &str, name: &str, capacity: Capacity) {
        self.world()
            .groups
            .insert((region.into(), name.into()), Group::new(capacity));
    }

    /// Tags a group.
    pub fn tag(&self, region: &str, name: &str, key: &str, value: &str) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            g.tags.insert(key.into(), value.into());
        }
    }

    /// Changes what a group has besides its capacity: protected instances, a warm
    /// pool, hooks, policies, scheduled actions, suspended processes.
    pub fn shape(&self, region: &str, name: &str, change: impl FnOnce(&mut GroupExtras<'_>)) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            change(&mut GroupExtras {
                protected: &mut g.protected,
                warm_pool: &mut g.warm_pool,
                preflight: &mut g.preflight,
                suspended: &mut g.suspended,
            });
        }
    }

    /// Attaches a group to a load balancer whose health checks pass `healthy` after
    /// an instance is InService, and whose deregistration delay is `drain`.
    pub fn attach(
        &self,
        region: &str,
        name: &str,
        balancer: crate::state::Balancer,
        healthy: Duration,
        drain: Duration,
    ) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            g.balancer = Some(MemoryBalancer {
                balancer,
                healthy,
                drain,
            });
        }
    }

    fn balancer_views(
        &self,
        region: &str,
        groups: &[String],
    ) -> BTreeMap<String, Vec<crate::state::BalancerView>> {
        let now = Instant::now();
        let mut world = self.world();
        let views: BTreeMap<String, Vec<crate::state::BalancerView>> = groups
            .iter()
            .filter_map(|name| {
                let g = world.groups.get(&(region.to_owned(), name.clone()))?;
                Some((name.clone(), vec![g.balancer_view(now, self.launch)?]))
            })
            .collect();
        for name in views.keys() {
            *world.balancer_reads.entry(name.clone()).or_default() += 1;
        }
        views
    }

    /// Puts the load balancer `arn` in front of a group's target group (attach one
    /// first): ARC can shift it.
    pub fn front(&self, region: &str, name: &str, arn: &str) {
        let mut world = self.world();
        let tg = world
            .groups
            .get(&(region.to_owned(), name.to_owned()))
            .and_then(|g| g.balancer.as_ref())
            .and_then(|b| match &b.balancer {
                crate::state::Balancer::TargetGroup { arn } => Some(arn.clone()),
                crate::state::Balancer::Classic { .. } => None,
            });
        if let Some(tg) = tg {
            world.load_balancers.insert(tg, arn.to_owned());
        }
    }

    /// Enables zonal shift on a group, with its impaired-zone health check behaviour.
    pub fn enable_zonal_shift(&self, region: &str, name: &str, behaviour: &str) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            g.zonal_shift = Some(behaviour.to_owned());
        }
    }

    /// Zonal shifts take `delay` to apply.
    pub fn set_shift_delay(&self, delay: Duration) {
        self.world().shift_delay = delay;
    }

    /// Every zonal shift started, oldest first.
    pub fn shifts(&self) -> Vec<MemoryShift> {
        self.world().shifts.clone()
    }

    /// Someone else starts a zonal shift.
    pub fn start_shift_as(&self, region: &str, resource: &str, away_from: &str, comment: &str) {
        let mut world = self.world();
        let id = format!("shift-{}", world.shifts.len() + 1);
        world.shifts.push(MemoryShift {
            id,
            region: region.to_owned(),
            resource: resource.to_owned(),
            away_from: away_from.to_owned(),
            comment: comment.to_owned(),
            expires: jiff::Timestamp::now().as_second() + 3600,
            started: Instant::now(),
            cancelled: false,
        });
    }

    /// Whether ARC manages `resource` here: a load balancer in front of a target
    /// group, or a group with zonal shift enabled.
    fn managed(world: &World, resource: &str) -> bool {
        world.load_balancers.values().any(|lb| lb == resource)
            || world
                .groups
                .iter()
                .any(|((_, name), g)| g.zonal_shift.is_some() && group_arn(name) == resource)
    }

    /// How many times a group's load balancer was read.
    pub fn balancer_reads(&self, group: &str) -> u32 {
        self.world().balancer_reads.get(group).copied().unwrap_or(0)
    }

    /// Sets the instance type a group launches and runs.
    pub fn set_instance_type(&self, region: &str, name: &str, instance_type: &str) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            g.instance_type = instance_type.to_owned();
        }
    }

    /// Sets a vCPU quota of a region (Err: it cannot be read, and why).
    pub fn set_quota(&self, region: &str, code: &str, limit: Result<u64, String>) {
        self.world()
            .quotas
            .insert((region.to_owned(), code.to_owned()), limit);
    }

    /// Names a hosted zone (records are added to zones by id).
    pub fn name_zone(&self, id: &str, name: &str) {
        self.world().zone_names.insert(id.into(), name.into());
    }

    /// Adds a Route 53 health check.
    pub fn add_health_check(&self, id: &str) {
        self.world().health_checks.insert(id.into());
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
                instances,
                subnets: per_zone.iter().map(|(z, _)| (*z).to_owned()).collect(),
                seeded_at: Some(now),
                ..Group::new(capacity)
            },
        );
    }

    /// The demo world of [`crate::seed`] in memory: the same groups, tags, records,
    /// weights, TTLs and alarms (`OK`); each group's instances are spread over the
    /// region's zones a, b and c, which are also its subnets. Hosted zones get the
    /// ids `Z1`, `Z2`, ... in the spec's order.
    pub fn seeded(spec: &crate::seed::WorldSpec) -> Self {
        let cloud = Self::new(Duration::ZERO, Duration::ZERO);
        for region in &spec.regions {
            let r = region.region.as_str();
            let zones: Vec<String> = ["a", "b", "c"].iter().map(|z| format!("{r}{z}")).collect();
            for group in &region.groups {
                let desired = u32::try_from(group.desired).unwrap_or(0);
                let per_zone: Vec<(&str, u32)> = zones
                    .iter()
                    .enumerate()
                    .map(|(i, z)| {
                        (
                            z.as_str(),
                            desired / 3 + u32::from((i as u32) < desired % 3),
                        )
                    })
                    .collect();
                let name = format!("{}-{r}", group.service);
                let capacity = Capacity {
                    min: u32::try_from(group.min).unwrap_or(0),
                    desired,
                    max: u32::try_from(group.max).unwrap_or(0),
                };
                cloud.add_zoned_group(r, &name, capacity, &per_zone);
                cloud.tag(r, &name, "evac:service", &group.service);
                cloud.tag(r, &name, "evac:drill", "zone");
                cloud.tag(r, &name, "evac:fleet", &spec.fleet);
            }
            cloud.set_alarm(r, "api-5xx-rate", "OK");
        }
        for (i, zone) in spec.zones.iter().enumerate() {
            let id = format!("Z{}", i + 1);
            cloud.name_zone(&id, &zone.name);
            for record in &zone.records {
                for region in &spec.regions {
                    let short = region.region.short();
                    let (record_type, value) = if record.cname {
                        (
                            "CNAME",
                            format!(
                                "{}-{short}.{}",
                                record.label,
                                zone.name.trim_end_matches('.')
                            ),
                        )
                    } else {
                        ("A", format!("10.{}.0.10", region.octet))
                    };
                    cloud
                        .world()
                        .records
                        .entry(id.clone())
                        .or_default()
                        .push(RecordSetDef {
                            name: format!("{}.{}", record.label, zone.name),
                            record_type: record_type.into(),
                            set_identifier: format!("{}-{short}", record.label),
                            weight: region.weight,
                            ttl: Some(spec.ttl),
                            values: vec![value],
                            alias: None,
                            health_check_id: None,
                        });
                }
            }
        }
        cloud
    }

    /// The most instances of one group not serving at once (not InService, or
    /// not yet healthy in its load balancer), as replacements were started.
    pub fn max_not_serving(&self) -> u32 {
        self.world().max_not_serving
    }

    /// The most instances of one group replaced at once (not yet InService).
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
        self.add_record_values(zone, name, set_identifier, weight, &["10.0.0.1"]);
    }

    /// A weighted A record set with these values.
    pub fn add_record_values(
        &self,
        zone: &str,
        name: &str,
        set_identifier: &str,
        weight: i64,
        values: &[&str],
    ) {
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
                values: values.iter().map(|v| (*v).to_owned()).collect(),
                alias: None,
                health_check_id: None,
            });
    }

    /// Gives a record set (by set identifier, in any zone) a health check, which
    /// passes until [`MemoryCloud::fail_health_check`].
    pub fn check_set(&self, set_identifier: &str, health_check_id: &str) {
        let mut world = self.world();
        world.health_checks.insert(health_check_id.into());
        for set in world.records.values_mut().flatten() {
            if set.set_identifier == set_identifier {
                set.health_check_id = Some(health_check_id.into());
            }
        }
    }

    /// A health check fails (`true`) or passes again.
    pub fn fail_health_check(&self, id: &str, failing: bool) {
        let mut world = self.world();
        if failing {
            world.unhealthy.insert(id.into());
        } else {
            world.unhealthy.remove(id);
        }
    }

    /// Someone else sets the weight of `set_identifier` in `zone` just before the
    /// next weight change arrives: after the caller read it, before its call.
    pub fn race_next_change(&self, zone: &str, set_identifier: &str, weight: i64) {
        self.world().race = Some((zone.into(), set_identifier.into(), weight));
    }

    /// This account's zone `name` is the physical zone `id`.
    pub fn map_zone(&self, name: &str, id: &str) {
        self.world().zone_ids.insert(name.into(), id.into());
    }

    /// Sets an alarm's state.
    pub fn set_alarm(&self, region: &str, name: &str, state: &str) {
        self.world()
            .alarms
            .insert((region.into(), name.into()), state.into());
    }

    /// The run "dies" at `crash`: that mutating call hangs forever, and
    /// [`Self::crashed`] returns. A test then drops the run, as kill -9 would leave
    /// it: the journal as written up to that call, nothing after.
    pub fn crash_at(&self, crash: Option<Crash>) {
        let mut world = self.world();
        world.crash = crash;
        world.mutations = 0;
    }

    /// Returns once the run has reached its crash point.
    pub async fn crashed(&self) {
        self.crash_signal.notified().await;
    }

    /// How many mutating calls were made since the last [`Self::crash_at`].
    pub fn mutations(&self) -> u32 {
        self.world().mutations
    }

    /// A mutating call: counted, failed when asked to, and hung at the crash point.
    async fn mutation<T>(
        &self,
        operation: &'static str,
        apply: impl FnOnce(&Self) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        self.enter(operation)?;
        let crash = {
            let mut world = self.world();
            world.mutations += 1;
            let at = world.mutations;
            world.crash.filter(|c| c.at == at)
        };
        if crash.is_some_and(|c| !c.after) {
            self.crash_signal.notify_one();
            std::future::pending::<()>().await;
        }
        let result = apply(self);
        if crash.is_some() {
            self.crash_signal.notify_one();
            std::future::pending::<()>().await;
        }
        result
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

    /// The group's launches fail from now on, for `why`: AWS retries them, and each
    /// attempt is a failed scaling activity (one at the change, then one every 10 s).
    pub fn fail_launches(&self, region: &str, name: &str, why: &str) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            g.launch_failure = Some(why.to_owned());
        }
    }

    /// The group scales itself, as a scaling policy does: desired moves within its
    /// min and max (clamped to them, as AWS keeps it), instances follow at once.
    pub fn scale_itself(&self, region: &str, name: &str, desired: u32) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            let desired = desired.clamp(g.capacity.min, g.capacity.max);
            let from = g.capacity.desired;
            g.own.insert(
                0,
                crate::engine::cloud::Activity {
                    status: "Successful".into(),
                    message: String::new(),
                    description: if desired > from {
                        "Launching a new EC2 instance".into()
                    } else {
                        "Terminating EC2 instance".into()
                    },
                    started: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64),
                    cause: format!(
                        "a monitor alarm in state ALARM triggered policy target-tracking changing the desired capacity from {from} to {desired}"
                    ),
                },
            );
            g.capacity.desired = desired;
            g.in_service = g.whole(desired);
            g.changed = None;
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
            g.in_service = g.whole(capacity.desired);
            g.changed = None;
        }
    }

    /// A group counts its desired capacity in `unit`, each of its instances
    /// `weight` units (a `vcpu` group of 4-vCPU instances: weight 4). What is in
    /// service now comes in whole instances.
    pub fn weigh(&self, region: &str, name: &str, unit: crate::state::Unit, weight: u32) {
        if let Some(g) = self
            .world()
            .groups
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            g.unit = unit;
            g.weight = weight.max(1);
            g.in_service = g.whole(g.capacity.desired);
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
            return Err(CloudError::answered(
                operation.to_owned(),
                "InternalFailure",
                "InternalFailure (500)",
            ));
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
            if let Some(group) = world.groups.get_mut(&(region.to_owned(), name.clone())) {
                out.insert(name.clone(), group.state(name, now, launch));
            }
        }
        Ok(out)
    }

    async fn set_capacity(
        &self,
        region: &str,
        group: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        self.mutation("set_capacity", |cloud| {
            let mut world = cloud.world();
            let entry = world
                .groups
                .get_mut(&(region.to_owned(), group.to_owned()))
                .ok_or_else(|| {
                    CloudError::answered(
                        format!("update {group}"),
                        "ValidationError",
                        "ValidationError: group not found",
                    )
                })?;
            if entry.capacity.desired != capacity.desired {
                entry.moved = Some((Instant::now(), entry.capacity.desired));
            }
            entry.capacity = capacity;
            entry.changed = Some((Instant::now(), entry.in_service));
            Ok(())
        })
        .await
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

    async fn change_weights(
        &self,
        zone_id: &str,
        changes: &[crate::engine::cloud::WeightChange],
    ) -> Result<String, CloudError> {
        // Route 53 refuses a request past its limits, whole.
        let cost = changes
            .iter()
            .fold(crate::route53::Cost::default(), |c, d| {
                let one = crate::route53::Cost::of(&d.to);
                crate::route53::Cost {
                    elements: c.elements + one.elements,
                    chars: c.chars + one.chars,
                }
            });
        if !cost.fits() {
            return Err(CloudError::answered(
                format!("change weights in hosted zone {zone_id}"),
                "InvalidChangeBatch",
                format!(
                    "InvalidChangeBatch: {} ResourceRecord elements and {} characters of values counted, past Route 53's {} and {} in one request",
                    cost.elements,
                    cost.chars,
                    crate::route53::MAX_ELEMENTS,
                    crate::route53::MAX_VALUE_CHARS
                ),
            ));
        }
        self.mutation("change_weights", |cloud| {
            let ready = Instant::now() + cloud.sync;
            let mut world = cloud.world();
            if let Some((zone, id, weight)) = world.race.take() {
                for set in world.records.entry(zone).or_default() {
                    if set.set_identifier == id {
                        set.weight = weight;
                    }
                }
            }
            let zone = world.records.entry(zone_id.to_owned()).or_default();
            // A DELETE must match the set exactly, or the whole batch is refused.
            for change in changes {
                if !zone.contains(&change.from) {
                    return Err(CloudError::answered(
                        format!("change weights in hosted zone {zone_id}"),
                        "InvalidChangeBatch",
                        format!(
                            "InvalidChangeBatch: Tried to delete resource record set [name='{}', type='{}', set-identifier='{}'] but the values provided do not match the current values",
                            change.from.name, change.from.record_type, change.from.set_identifier
                        ),
                    ));
                }
            }
            for change in changes {
                zone.retain(|s| s.key() != change.to.key());
                zone.push(change.to.clone());
            }
            world.next_change += 1;
            let id = format!("C{}", world.next_change);
            world.changes.insert(id.clone(), ready);
            Ok(id)
        })
        .await
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

    /// The in-memory cloud keeps no metrics (metric checks are tested against the
    /// emulator, which does): every metric has no datapoint.
    async fn metric(&self, _query: &crate::plan::MetricQuery) -> Result<Option<f64>, CloudError> {
        self.enter("get_metric_statistics")?;
        Ok(None)
    }

    async fn activities(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Vec<crate::engine::cloud::Activity>, CloudError> {
        self.enter("activities")?;
        let now = Instant::now();
        let world = self.world();
        let Some(g) = world.groups.get(&(region.to_owned(), group.to_owned())) else {
            return Ok(Vec::new());
        };
        let (Some(why), Some((at, _))) = (&g.launch_failure, g.changed) else {
            return Ok(g.own.clone());
        };
        // Wall-clock times, as AWS gives them: the attempts so far, newest first.
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let since = now.duration_since(at).as_secs();
        Ok((0..=since / 10)
            .rev()
            .map(|k| crate::engine::cloud::Activity {
                status: "Failed".into(),
                message: why.clone(),
                description: format!("Launching a new EC2 instance. Status Reason: {why}"),
                started: wall - (since - k * 10) as i64,
                cause: "a user request update of AutoScalingGroup constraints".into(),
            })
            .collect())
    }

    async fn health_check_healthy(&self, id: &str) -> Result<bool, CloudError> {
        self.enter("health_check_healthy")?;
        Ok(!self.world().unhealthy.contains(id))
    }

    async fn instances(
        &self,
        region: &str,
        groups: &[String],
    ) -> Result<BTreeMap<String, crate::engine::cloud::Members>, CloudError> {
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
                    .map(|(id, zone, ready)| crate::engine::cloud::Instance {
                        id: id.clone(),
                        zone: zone.clone(),
                        in_service: *ready <= now,
                        weight: g.weight,
                    })
                    .collect();
                Some((
                    name.clone(),
                    crate::engine::cloud::Members {
                        desired: g.capacity.desired,
                        instances,
                    },
                ))
            })
            .collect())
    }

    /// Protected instances are named `i-GROUP-protected-N`: removing protection
    /// from them lowers the group's count of protected instances, setting it on
    /// them raises it.
    async fn set_protection(
        &self,
        region: &str,
        group: &str,
        instances: &[String],
        protected: bool,
    ) -> Result<(), CloudError> {
        self.mutation("set_protection", |cloud| {
            if let Some(g) = cloud
                .world()
                .groups
                .get_mut(&(region.to_owned(), group.to_owned()))
            {
                let n = u32::try_from(instances.len()).unwrap_or(u32::MAX);
                g.protected = if protected {
                    g.protected.saturating_add(n)
                } else {
                    g.protected.saturating_sub(n)
                };
            }
            Ok(())
        })
        .await
    }

    async fn balanced(
        &self,
        region: &str,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<crate::state::BalancerView>>, CloudError> {
        self.enter("balanced")?;
        let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        Ok(self.balancer_views(region, &names))
    }

    async fn set_subnets(
        &self,
        region: &str,
        group: &str,
        subnets: &[String],
    ) -> Result<(), CloudError> {
        self.mutation("set_subnets", |cloud| {
            if let Some(g) = cloud
                .world()
                .groups
                .get_mut(&(region.to_owned(), group.to_owned()))
            {
                g.subnets = subnets.to_vec();
            }
            Ok(())
        })
        .await
    }

    async fn suspend_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.mutation("suspend_processes", |cloud| {
            if let Some(g) = cloud
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
        })
        .await
    }

    async fn resume_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.mutation("resume_processes", |cloud| {
            if let Some(g) = cloud
                .world()
                .groups
                .get_mut(&(region.to_owned(), group.to_owned()))
            {
                g.suspended.retain(|p| !processes.contains(p));
            }
            Ok(())
        })
        .await
    }

    async fn remove_instance(&self, region: &str, instance: &str) -> Result<(), CloudError> {
        self.mutation("remove_instance", |cloud| {
            let mut world = cloud.world();
            for ((r, _), g) in world.groups.iter_mut() {
                if r != region {
                    continue;
                }
                if let Some(pos) = g.instances.iter().position(|(i, _, _)| i == instance) {
                    g.instances.remove(pos);
                    g.capacity.desired = g.capacity.desired.saturating_sub(g.weight);
                    g.in_service = g.in_service.saturating_sub(g.weight);
                }
            }
            Ok(())
        })
        .await
    }

    async fn replace_instance(&self, region: &str, instance: &str) -> Result<(), CloudError> {
        self.mutation("replace_instance", |cloud| {
            let now = Instant::now();
            let ready = now + cloud.launch;
            let mut world = cloud.world();
            world.next_instance += 1;
            let id = format!("i-new-{}", world.next_instance);
            let (mut out_now, mut not_serving) = (0, 0);
            let delay = world.shift_delay;
            let shifted: Vec<(String, String)> = world
                .shifts
                .iter()
                .filter(|s| s.active() && s.started + delay <= now)
                .map(|s| (s.resource.clone(), s.away_from.clone()))
                .collect();
            let zone_ids = world.zone_ids.clone();
            for ((r, name), g) in world.groups.iter_mut() {
                if r != region {
                    continue;
                }
                if let Some(pos) = g.instances.iter().position(|(i, _, _)| i == instance) {
                    g.instances.remove(pos);
                    // The replacement goes to the allowed zone with the fewest
                    // instances; a group with zonal shift enabled launches nowhere
                    // its shift moves it away from.
                    let arn = group_arn(name);
                    let away = |z: &String| {
                        let id = zone_ids
                            .get(z)
                            .cloned()
                            .unwrap_or_else(|| default_zone_id(z));
                        g.zonal_shift.is_some()
                            && shifted.iter().any(|(res, from)| *res == arn && *from == id)
                    };
                    let zone = g
                        .subnets
                        .iter()
                        .filter(|z| !away(z))
                        .min_by_key(|z| g.instances.iter().filter(|(_, iz, _)| iz == *z).count())
                        .cloned()
                        .unwrap_or_default();
                    g.instances.push((id.clone(), zone, ready));
                    out_now = g.instances.iter().filter(|(_, _, r)| *r > now).count() as u32;
                    let healthy = g.balancer.as_ref().map_or(Duration::ZERO, |b| b.healthy);
                    let seeded = g.seeded_at;
                    not_serving = g
                        .instances
                        .iter()
                        .filter(|(_, _, r)| seeded.is_none_or(|at| *r > at) && *r + healthy > now)
                        .count() as u32;
                }
            }
            world.max_out = world.max_out.max(out_now);
            world.max_not_serving = world.max_not_serving.max(not_serving);
            Ok(())
        })
        .await
    }

    async fn zonal_shifts(
        &self,
        region: &str,
        resource: &str,
    ) -> Result<Vec<crate::engine::cloud::ActiveShift>, CloudError> {
        self.enter("zonal_shifts")?;
        let world = self.world();
        if !Self::managed(&world, resource) {
            return Err(CloudError::answered(
                format!("read the zonal shifts of {resource}"),
                "ResourceNotFoundException",
                "ResourceNotFoundException",
            ));
        }
        let now = Instant::now();
        Ok(world
            .shifts
            .iter()
            .filter(|s| s.region == region && s.resource == resource && s.active())
            .map(|s| crate::engine::cloud::ActiveShift {
                id: s.id.clone(),
                away_from: s.away_from.clone(),
                comment: s.comment.clone(),
                expires: s.expires,
                applied: s.started + world.shift_delay <= now,
            })
            .collect())
    }

    async fn start_shift(
        &self,
        region: &str,
        resource: &str,
        away_from: &str,
        comment: &str,
        minutes: u32,
    ) -> Result<String, CloudError> {
        self.mutation("start_shift", |cloud| {
            let mut world = cloud.world();
            if !Self::managed(&world, resource) {
                return Err(CloudError::answered(
                    format!("start a zonal shift of {resource}"),
                    "ResourceNotFoundException",
                    "ResourceNotFoundException",
                ));
            }
            if world
                .shifts
                .iter()
                .any(|s| s.resource == resource && s.active())
            {
                return Err(CloudError::answered(
                    format!("start a zonal shift of {resource}"),
                    "ConflictException",
                    "ConflictException: a zonal shift is already active",
                ));
            }
            let id = format!("shift-{}", world.shifts.len() + 1);
            world.shifts.push(MemoryShift {
                id: id.clone(),
                region: region.to_owned(),
                resource: resource.to_owned(),
                away_from: away_from.to_owned(),
                comment: comment.to_owned(),
                expires: jiff::Timestamp::now().as_second() + i64::from(minutes) * 60,
                started: Instant::now(),
                cancelled: false,
            });
            Ok(id)
        })
        .await
    }

    async fn extend_shift(
        &self,
        _region: &str,
        _resource: &str,
        id: &str,
        minutes: u32,
    ) -> Result<(), CloudError> {
        self.mutation("extend_shift", |cloud| {
            let mut world = cloud.world();
            match world.shifts.iter_mut().find(|s| s.id == id && s.active()) {
                Some(s) => {
                    s.expires = jiff::Timestamp::now().as_second() + i64::from(minutes) * 60;
                    Ok(())
                }
                None => Err(CloudError::answered(
                    format!("extend zonal shift {id}"),
                    "ConflictException",
                    "ConflictException: not active",
                )),
            }
        })
        .await
    }

    async fn cancel_shift(
        &self,
        _region: &str,
        _resource: &str,
        id: &str,
    ) -> Result<(), CloudError> {
        self.mutation("cancel_shift", |cloud| {
            let mut world = cloud.world();
            match world.shifts.iter_mut().find(|s| s.id == id && s.active()) {
                Some(s) => {
                    s.cancelled = true;
                    Ok(())
                }
                None => Err(CloudError::answered(
                    format!("cancel zonal shift {id}"),
                    "ConflictException",
                    "ConflictException: not active",
                )),
            }
        })
        .await
    }
}

fn read_err(err: CloudError) -> ObserveError {
    err.into()
}

/// The in-memory cloud as a plan reads it: subnets are named after their zones,
/// hosted zones are found by id or by the name given with [`MemoryCloud::name_zone`].
impl Observe for MemoryCloud {
    async fn record_types(&self, zone_id: &str, name: &str) -> Result<Vec<String>, ObserveError> {
        let world = self.world();
        let mut types: Vec<String> = world
            .records
            .get(zone_id)
            .into_iter()
            .flatten()
            .filter(|d| d.name == name)
            .map(|d| d.record_type.clone())
            .collect();
        types.sort();
        types.dedup();
        Ok(types)
    }

    async fn shiftable(
        &self,
        _region: &Region,
        groups: &[&GroupState],
        named: &[String],
    ) -> Result<crate::state::Shiftable, ObserveError> {
        use crate::state::{Managed, ManagedRead, ShiftSeen, Shiftable};
        self.enter("shiftable").map_err(read_err)?;
        let world = self.world();
        let mut out = Shiftable::default();
        let mut resources: BTreeSet<String> = named.iter().cloned().collect();
        for g in groups {
            let lbs: Vec<String> = g
                .balancers
                .iter()
                .filter_map(|b| match b {
                    crate::state::Balancer::TargetGroup { arn } => {
                        world.load_balancers.get(arn).cloned()
                    }
                    crate::state::Balancer::Classic { .. } => None,
                })
                .collect();
            resources.extend(lbs.iter().cloned());
            if g.zonal_shift.is_some() {
                resources.extend(g.arn.clone());
            }
            out.balancers.insert(g.name.clone(), lbs);
        }
        for arn in resources {
            let read = if Self::managed(&world, &arn) {
                ManagedRead::Found(Managed {
                    name: arn.rsplit('/').next().unwrap_or(&arn).to_owned(),
                    shifts: world
                        .shifts
                        .iter()
                        .filter(|s| s.resource == arn && s.active())
                        .map(|s| ShiftSeen {
                            id: s.id.clone(),
                            away_from: s.away_from.clone(),
                            comment: s.comment.clone(),
                            expires: s.expires,
                        })
                        .collect(),
                    ..Managed::default()
                })
            } else {
                ManagedRead::Unshiftable(format!(
                    "ResourceNotFoundException: {arn} is not a managed resource"
                ))
            };
            out.managed.insert(arn, read);
        }
        Ok(out)
    }

    async fn groups_named(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<Vec<GroupState>, ObserveError> {
        self.enter("describe_groups").map_err(read_err)?;
        let (now, launch) = (Instant::now(), self.launch);
        let mut world = self.world();
        Ok(names
            .iter()
            .filter_map(|name| {
                let group = world.groups.get_mut(&(region.to_string(), name.clone()))?;
                Some(group.state(name, now, launch))
            })
            .collect())
    }

    async fn groups_tagged(
        &self,
        region: &Region,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Vec<GroupState>, ObserveError> {
        self.enter("describe_groups").map_err(read_err)?;
        let (now, launch) = (Instant::now(), self.launch);
        let mut world = self.world();
        Ok(world
            .groups
            .iter_mut()
            .filter(|((r, _), g)| {
                r == region.as_str()
                    && tags
                        .iter()
                        .all(|(key, values)| g.tags.get(key).is_some_and(|v| values.contains(v)))
            })
            .map(|((_, name), g)| g.state(name, now, launch))
            .collect())
    }

    /// Subnets are named after their zone, and have room for 250 more instances
    /// each.
    async fn subnets(
        &self,
        region: &Region,
        ids: &[String],
    ) -> Result<BTreeMap<String, crate::state::Subnet>, ObserveError> {
        self.enter("describe_subnets").map_err(read_err)?;
        let world = self.world();
        let known: BTreeSet<&String> = world
            .groups
            .iter()
            .filter(|((r, _), _)| r == region.as_str())
            .flat_map(|(_, g)| &g.subnets)
            .collect();
        Ok(ids
            .iter()
            .filter(|id| known.contains(id))
            .map(|id| {
                (
                    id.clone(),
                    crate::state::Subnet {
                        zone: id.clone(),
                        zone_id: Some(
                            world
                                .zone_ids
                                .get(id)
                                .cloned()
                                .unwrap_or_else(|| default_zone_id(id)),
                        ),
                        free: 250,
                    },
                )
            })
            .collect())
    }

    async fn alarm_states(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, ObserveError> {
        self.enter("describe_alarms").map_err(read_err)?;
        let world = self.world();
        Ok(names
            .iter()
            .filter_map(|name| {
                let state = world.alarms.get(&(region.to_string(), name.clone()))?;
                Some((name.clone(), state.clone()))
            })
            .collect())
    }

    async fn health_check_exists(&self, id: &str) -> Result<bool, ObserveError> {
        self.enter("get_health_check").map_err(read_err)?;
        Ok(self.world().health_checks.contains(id))
    }

    async fn health_check_passes(&self, id: &str) -> Result<bool, ObserveError> {
        Ok(Cloud::health_check_healthy(self, id).await?)
    }

    async fn preflight(
        &self,
        region: &Region,
        groups: &[String],
        hooks: bool,
    ) -> Result<BTreeMap<String, crate::state::Preflight>, ObserveError> {
        if hooks {
            self.enter("describe_lifecycle_hooks").map_err(read_err)?;
        }
        let world = self.world();
        Ok(groups
            .iter()
            .filter_map(|name| {
                let g = world.groups.get(&(region.to_string(), name.clone()))?;
                let mut found = g.preflight.clone();
                if !hooks {
                    found.hooks.clear();
                }
                (!found.is_empty()).then(|| (name.clone(), found))
            })
            .collect())
    }

    async fn balancers(
        &self,
        region: &Region,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<crate::state::BalancerView>>, ObserveError> {
        self.enter("describe_target_health").map_err(read_err)?;
        let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        Ok(self.balancer_views(region.as_str(), &names))
    }

    /// Every instance of a group is of its instance type; a region's running
    /// instances are its groups' InService ones.
    async fn vcpus(
        &self,
        region: &Region,
        groups: &[&GroupState],
    ) -> Result<crate::state::Vcpus, ObserveError> {
        use crate::state::{InstanceShape, Quota, vcpu_quota};
        self.enter("describe_instance_types").map_err(read_err)?;
        let now = Instant::now();
        let launch = self.launch;
        let mut world = self.world();
        let mut out = crate::state::Vcpus::default();
        for name in groups.iter().map(|g| &g.name) {
            let Some(g) = world.groups.get(&(region.to_string(), name.clone())) else {
                continue;
            };
            match vcpus_of(&g.instance_type) {
                Some(vcpus) => {
                    out.groups.insert(
                        name.clone(),
                        InstanceShape {
                            instance_type: g.instance_type.clone(),
                            vcpus,
                            units: g.weight,
                        },
                    );
                }
                None => {
                    out.unknown.insert(
                        name.clone(),
                        format!("EC2 does not know instance type(s) {}", g.instance_type),
                    );
                }
            }
        }
        let codes: BTreeSet<&str> = out
            .groups
            .values()
            .filter_map(|s| vcpu_quota(&s.instance_type).map(|(code, _)| code))
            .collect();
        let mut used: BTreeMap<&str, u64> = BTreeMap::new();
        for ((r, name), g) in world.groups.iter_mut() {
            if r != region.as_str() {
                continue;
            }
            let in_service = g.state(name, now, launch).in_service;
            if let (Some((code, _)), Some(vcpus)) =
                (vcpu_quota(&g.instance_type), vcpus_of(&g.instance_type))
            {
                // In service counts units; the quota counts instances' vCPUs.
                *used.entry(code).or_default() +=
                    u64::from(in_service / g.weight.max(1)) * u64::from(vcpus);
            }
        }
        for code in codes {
            let limit = world
                .quotas
                .get(&(region.to_string(), code.to_owned()))
                .cloned()
                .unwrap_or(Ok(10_000));
            let (limit, error) = match limit {
                Ok(l) => (Some(l), None),
                Err(why) => (None, Some(why)),
            };
            out.quotas.insert(
                code.to_owned(),
                Quota {
                    limit,
                    error,
                    used: used.get(code).copied().unwrap_or(0),
                },
            );
        }
        Ok(out)
    }

    async fn hosted_zones(
        &self,
        written: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, HostedZone>, ObserveError> {
        self.enter("hosted_zones").map_err(read_err)?;
        let world = self.world();
        let normal = |name: &str| format!("{}.", name.trim_end_matches('.').to_lowercase());
        Ok(written
            .iter()
            .map(|zone| {
                let bare = zone.trim_start_matches("/hostedzone/");
                let ids: Vec<&String> = world
                    .zone_names
                    .iter()
                    .filter(|(id, name)| id.as_str() == bare || normal(name) == normal(zone))
                    .map(|(id, _)| id)
                    .collect();
                let lookup = match ids.as_slice() {
                    [] => ZoneLookup::NotFound,
                    [id] => ZoneLookup::Found {
                        id: (*id).clone(),
                        name: normal(&world.zone_names[*id]),
                    },
                    _ => ZoneLookup::Ambiguous {
                        ids: ids.into_iter().cloned().collect(),
                    },
                };
                let record_count = match &lookup {
                    ZoneLookup::Found { id, .. } => {
                        world.records.get(id).map(|sets| sets.len() as i64)
                    }
                    _ => None,
                };
                (
                    (*zone).to_owned(),
                    HostedZone {
                        lookup,
                        record_count,
                    },
                )
            })
            .collect())
    }

    async fn weighted_sets(
        &self,
        zone_id: &str,
        _record_count: Option<i64>,
        wanted: &BTreeSet<RecordKey>,
    ) -> Result<BTreeMap<RecordKey, Vec<WeightedSet>>, ObserveError> {
        self.enter("list_records").map_err(read_err)?;
        let world = self.world();
        let sets = world.records.get(zone_id).cloned().unwrap_or_default();
        Ok(wanted
            .iter()
            .map(|key| {
                let found = sets
                    .iter()
                    .filter(|s| s.name == key.0 && s.record_type == key.1.to_string())
                    .map(|s| WeightedSet {
                        set_identifier: s.set_identifier.clone(),
                        weight: Some(s.weight),
                        ttl: s.ttl,
                        values: s.values.len(),
                        value_chars: s.values.iter().map(String::len).sum(),
                        health_check_id: s.health_check_id.clone(),
                        evaluate_target_health: s.alias.as_ref().is_some_and(|a| a.2),
                    })
                    .collect();
                (key.clone(), found)
            })
            .collect())
    }
}
