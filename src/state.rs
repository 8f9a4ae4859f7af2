//! What `evac` observed of AWS: the read-only snapshot a plan is built from.
//!
//! Plain data, serialisable, so a plan can carry a fingerprint of what it saw and
//! tests can build any state they need without AWS.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The min / desired / max of an Auto Scaling group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Minimum size.
    pub min: u32,
    /// Desired capacity.
    pub desired: u32,
    /// Maximum size.
    pub max: u32,
}

/// One Auto Scaling group as observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// The group's name.
    pub name: String,
    /// Its capacity.
    pub capacity: Capacity,
    /// Capacity in service, in the group's unit ([`Unit`]): the instances
    /// InService, or the sum of their weights.
    pub in_service: u32,
    /// Capacity in service per availability zone, in the group's unit.
    pub instances_by_zone: BTreeMap<String, u32>,
    /// What its desired capacity counts (`DesiredCapacityType`, weighted instance
    /// types).
    #[serde(default, skip_serializing_if = "Unit::is_instances")]
    pub unit: Unit,
    /// The smallest and largest number of units one of its instances counts (its
    /// instances' and its instance types' weights; 1 and 1 for a group counted in
    /// instances).
    #[serde(default, skip_serializing_if = "Weights::is_one")]
    pub weights: Weights,
    /// The availability zones the group uses.
    pub zones: Vec<String>,
    /// The subnets of its VPCZoneIdentifier, in order.
    pub subnets: Vec<String>,
    /// Suspended scaling processes.
    pub suspended_processes: Vec<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its instances protected from scale-in, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected: Vec<String>,
    /// The minimum size of its warm pool, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<u32>,
    /// The load balancers (target groups, classic load balancers) it registers its
    /// instances with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub balancers: Vec<Balancer>,
    /// What it launches, as its description tells (absent: not told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    /// Its instances, as read with it (for its load balancers' reads; never kept in
    /// a plan).
    #[serde(skip)]
    pub members: Vec<Member>,
    /// Its ARN, when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// With zonal shift enabled (`AvailabilityZoneImpairmentPolicy`): its impaired-zone
    /// health check behaviour (`ReplaceUnhealthy`, `IgnoreUnhealthy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zonal_shift: Option<String>,
}

/// A resource ARC zonal shift can move (a load balancer, a group with zonal shift
/// enabled), as `GetManagedResource` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Managed {
    /// Its name.
    pub name: String,
    /// The customer zonal shifts active on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shifts: Vec<ShiftSeen>,
    /// Zone ids a zonal autoshift moves its traffic away from now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autoshifts: Vec<String>,
    /// Whether zonal autoshift is enabled on it.
    #[serde(default)]
    pub autoshift_enabled: bool,
    /// Whether it has a practice run configuration (weekly practice runs).
    #[serde(default)]
    pub practice_runs: bool,
}

/// A zonal shift active on a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftSeen {
    /// Its id.
    pub id: String,
    /// The zone id it moves traffic away from.
    pub away_from: String,
    /// Its comment.
    pub comment: String,
    /// When it expires (seconds since the epoch).
    pub expires: i64,
}

/// What the plan read of a resource a zone step would shift.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagedRead {
    /// ARC manages it.
    Found(Managed),
    /// ARC cannot shift it: why, as AWS said.
    Unshiftable(String),
}

/// The zonal shift reads of one region's zone steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shiftable {
    /// Per group: the load balancers (ARNs) its target groups belong to.
    pub balancers: BTreeMap<String, Vec<String>>,
    /// Per resource ARN: what ARC says of it.
    pub managed: BTreeMap<String, ManagedRead>,
}

/// One instance of a group as read with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its id.
    pub id: String,
    /// Whether it is InService.
    pub in_service: bool,
    /// How many units of the group's desired capacity it counts.
    pub weight: u32,
}

/// What an Auto Scaling group's desired capacity counts.
///
/// With `DesiredCapacityType` `vcpu` or `memory-mib`, or weights on the instance
/// types of a mixed instances policy, desired counts units: an instance of weight 4
/// is 4 units, and AWS may exceed desired by up to one instance's weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Instances (`DesiredCapacityType` `units` with no weights).
    #[default]
    Instances,
    /// vCPUs (`DesiredCapacityType` `vcpu`).
    Vcpu,
    /// MiB of memory (`DesiredCapacityType` `memory-mib`).
    MemoryMib,
    /// The weights of its instance types (`WeightedCapacity`).
    Weighted,
}

impl Unit {
    /// Whether it counts instances.
    pub fn is_instances(&self) -> bool {
        *self == Unit::Instances
    }

    /// What one unit is called, in the plural (`instances`, `vCPUs`).
    pub fn noun(&self) -> &'static str {
        match self {
            Unit::Instances => "instances",
            Unit::Vcpu => "vCPUs",
            Unit::MemoryMib => "MiB",
            Unit::Weighted => "units",
        }
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

/// The smallest and largest weight of a group's instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// The smallest.
    pub smallest: u32,
    /// The largest.
    pub largest: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            smallest: 1,
            largest: 1,
        }
    }
}

impl Weights {
    /// Whether every instance counts one.
    pub fn is_one(&self) -> bool {
        *self == Weights::default()
    }

    /// The weights of `weights` (1 and 1 when there is none).
    pub fn of(weights: impl IntoIterator<Item = u32>) -> Self {
        let mut out: Option<Weights> = None;
        for w in weights.into_iter().filter(|w| *w > 0) {
            out = Some(match out {
                None => Weights {
                    smallest: w,
                    largest: w,
                },
                Some(o) => Weights {
                    smallest: o.smallest.min(w),
                    largest: o.largest.max(w),
                },
            });
        }
        out.unwrap_or_default()
    }

    /// At most how many instances bring `units` more units.
    pub fn instances_for(&self, units: u32) -> u32 {
        units.div_ceil(self.smallest.max(1))
    }
}

impl GroupState {
    /// Whether its capacity in service has come up to `desired` (units).
    pub fn reached(&self, desired: u32) -> bool {
        self.in_service >= desired
    }

    /// Whether its capacity in service has come down to `desired` (units). A group
    /// counted in units stops above desired by less than one instance's weight: AWS
    /// keeps at least desired.
    pub fn came_down_to(&self, desired: u32) -> bool {
        came_down_to(self.in_service, desired, self.weights)
    }
}

/// Whether `in_service` units have come down to `desired`, with instances of
/// `weights`: none left for 0, else less than one largest weight above desired.
pub fn came_down_to(in_service: u32, desired: u32, weights: Weights) -> bool {
    if desired == 0 {
        in_service == 0
    } else {
        in_service < desired.saturating_add(weights.largest.max(1))
    }
}

/// What an Auto Scaling group launches, as its description tells.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Launch {
    /// A launch template version (its instance type is read from it).
    Template {
        /// Its id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Its name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The version (`$Default`, `$Latest`, or a number).
        version: String,
    },
    /// These instance types: a mixed instances policy's, or (a launch configuration)
    /// its instances'.
    Types {
        /// The types.
        types: Vec<String>,
        /// The units of desired capacity one instance of a type counts, for the
        /// types a mixed instances policy weighs (`WeightedCapacity`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        weights: BTreeMap<String, u32>,
    },
    /// Nothing tells it.
    Unknown {
        /// Why.
        why: String,
    },
}

/// A load balancer an Auto Scaling group is attached to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Balancer {
    /// An Application, Network or Gateway Load Balancer's target group.
    TargetGroup {
        /// Its ARN.
        arn: String,
    },
    /// A Classic Load Balancer.
    Classic {
        /// Its name.
        name: String,
    },
}

impl std::fmt::Display for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
            Balancer::TargetGroup { arn } => {
                let name = arn
                    .split_once(":targetgroup/")
                    .and_then(|(_, rest)| rest.split('/').next())
                    .unwrap_or(arn);
                write!(f, "target group {name}")
            }
            Balancer::Classic { name } => write!(f, "load balancer {name}"),
        }
    }
}

impl BalancerView {
    /// How `members` (each instance of a group with whether it is InService) stand
    /// in `balancer`, given its registered targets (`unused` ones left out) and
    /// whether each passes the health checks.
    pub fn of(balancer: Balancer, members: &[Member], registered: &BTreeMap<String, bool>) -> Self {
        // Healthy and registered count the group's units, as desired does.
        let (mut healthy, mut listed, mut leaving) = (0, 0, 0);
        for m in members {
            match (registered.get(&m.id), m.in_service) {
                (None, _) => {}
                (Some(passes), true) => {
                    listed += m.weight;
                    if *passes {
                        healthy += m.weight;
                    }
                }
                (Some(_), false) => leaving += 1,
            }
        }
        BalancerView {
            balancer,
            healthy,
            registered: listed,
            leaving,
        }
    }
}

/// What the scale-ups of one region need to know of its EC2 On-Demand vCPU quotas.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vcpus {
    /// Per scaled group: the instance type it launches and its vCPUs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, InstanceShape>,
    /// Per scaled group whose instance type could not be told: why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown: BTreeMap<String, String>,
    /// Per quota code: the quota, and the vCPUs of running On-Demand instances it
    /// counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quotas: BTreeMap<String, Quota>,
}

/// The instance type a group launches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceShape {
    /// The instance type (of a mixed instances policy's, the one with the most vCPUs
    /// per unit of desired capacity).
    pub instance_type: String,
    /// Its vCPUs.
    pub vcpus: u32,
    /// How many units of the group's desired capacity one instance of it counts (1
    /// for a group counted in instances; its vCPUs, its MiB or its weight).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub units: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl InstanceShape {
    /// The vCPUs that `added` more units of desired capacity launch, at most.
    pub fn vcpus_for(&self, added: u32) -> u64 {
        u64::from(added.div_ceil(self.units.max(1))) * u64::from(self.vcpus)
    }
}

/// One EC2 vCPU quota of a region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Its value (the applied one, else AWS's default), when it could be read.
    pub limit: Option<u64>,
    /// Why it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// vCPUs of the region's running On-Demand instances it counts.
    pub used: u64,
}

/// The EC2 quotas of running On-Demand instances, counted in vCPUs: Service Quotas
/// code and name.
pub const VCPU_QUOTAS: [(&str, &str); 10] = [
    (
        "L-1216C47A",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    ),
    ("L-74FC7D96", "Running On-Demand F instances"),
    ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("L-1945791B", "Running On-Demand Inf instances"),
    ("L-417A185B", "Running On-Demand P instances"),
    ("L-7295265B", "Running On-Demand X instances"),
    ("L-2C3B7624", "Running On-Demand Trn instances"),
    ("L-6E869C2A", "Running On-Demand DL instances"),
    ("L-F7808C92", "Running On-Demand HPC instances"),
    ("L-43DA4232", "Running On-Demand High Memory instances"),
];

/// The vCPU quota (of [`VCPU_QUOTAS`]) an instance type falls under, by its family.
pub fn vcpu_quota(instance_type: &str) -> Option<(&'static str, &'static str)> {
    let family: String = instance_type
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    let code = match family.as_str() {
        "inf" => "L-1945791B",
        "trn" => "L-2C3B7624",
        "dl" => "L-6E869C2A",
        "hpc" => "L-F7808C92",
        "vt" => "L-DB2E81BA",
        "u" => "L-43DA4232",
        // Mac instances run on Dedicated Hosts, under quotas of their own.
        "mac" => return None,
        _ => match family.chars().next()? {
            'a' | 'c' | 'd' | 'h' | 'i' | 'm' | 'r' | 't' | 'z' => "L-1216C47A",
            'f' => "L-74FC7D96",
            'g' => "L-DB2E81BA",
            'p' => "L-417A185B",
            'x' => "L-7295265B",
            _ => return None,
        },
    };
    VCPU_QUOTAS.iter().copied().find(|(c, _)| *c == code)
}

/// The name of a vCPU quota code.
pub fn vcpu_quota_name(code: &str) -> &'static str {
    VCPU_QUOTAS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("an EC2 vCPU quota", |(_, name)| name)
}

/// How one group's instances stand in one of its load balancers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerView {
    /// The load balancer.
    pub balancer: Balancer,
    /// The group's InService instances that pass its health checks.
    pub healthy: u32,
    /// The group's InService instances registered with it.
    pub registered: u32,
    /// The group's instances on their way out (no longer InService) still
    /// registered with it: in their deregistration delay (connection draining).
    pub leaving: u32,
}

/// A subnet of a group: its availability zone and how many addresses it has free.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// Its availability zone.
    pub zone: String,
    /// Its availability zone's id (`use1-az1`: the same physical zone in every
    /// account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
    /// Its free IPv4 addresses.
    pub free: u32,
}

/// What besides evac changes how a group scales during a drill: lifecycle hooks,
/// scaling policies, scheduled actions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    /// Its lifecycle hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    /// Its scaling policies, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Its scheduled actions, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled: Vec<String>,
}

impl Preflight {
    /// Whether there is nothing to say.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty() && self.policies.is_empty() && self.scheduled.is_empty()
    }
}

/// A lifecycle hook: instances wait in it (up to its heartbeat timeout) on launch or
/// termination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Its name.
    pub name: String,
    /// Whether it holds launching instances (else terminating ones).
    pub launching: bool,
    /// How long an instance may wait in it, in seconds.
    pub heartbeat_secs: u32,
}

/// How a hosted zone written in a playbook was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ZoneLookup {
    /// Exactly one zone matched.
    Found {
        /// Its id, without the `/hostedzone/` prefix.
        id: String,
        /// Its name.
        name: String,
    },
    /// No zone matched.
    NotFound,
    /// Several zones have this name (a public and a private one, say).
    Ambiguous {
        /// Their ids.
        ids: Vec<String>,
    },
}

/// One weighted record set of a record name and type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedSet {
    /// Its set identifier.
    pub set_identifier: String,
    /// Its weight (absent when the set is not weighted).
    pub weight: Option<i64>,
    /// Its TTL in seconds (absent for alias records).
    pub ttl: Option<i64>,
    /// How many values it has (0 for an alias): what a change to it costs against
    /// Route 53's limits on one request.
    #[serde(default)]
    pub values: usize,
    /// The characters of its values, all together.
    #[serde(default)]
    pub value_chars: usize,
    /// Its Route 53 health check: Route 53 skips the set while it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
    /// An alias that evaluates its target's health (`EvaluateTargetHealth`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evaluate_target_health: bool,
}

/// Who AWS says the calls are made as (STS GetCallerIdentity).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The account.
    pub account: String,
    /// The ARN of the user or assumed role.
    pub arn: String,
    /// Where the credentials came from (`profile `prod` (--profile)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (account {})", self.arn, self.account)?;
        if let Some(source) = &self.credentials {
            write!(f, ", credentials from {source}")?;
        }
        Ok(())
    }
}

/// Everything observed for one plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Per region, per named playbook group: the names of the Auto Scaling groups it
    /// resolved to.
    pub resolved_groups: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Per region, per Auto Scaling group name: its state.
    pub groups: BTreeMap<String, BTreeMap<String, GroupState>>,
    /// The availability zone of each subnet that an `evacuate_zone` step needs.
    pub subnet_zones: BTreeMap<String, String>,
    /// Per subnet of a group a zone step changes: its availability zone's id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subnet_zone_ids: BTreeMap<String, String>,
    /// The free IPv4 addresses of each subnet of a group a `scale_up` changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subnet_free: BTreeMap<String, u32>,
    /// Per hosted zone as written in the playbook: what it resolved to.
    pub zones: BTreeMap<String, ZoneLookup>,
    /// Per playbook record name: its weighted record sets.
    pub records: BTreeMap<String, Vec<WeightedSet>>,
    /// Per playbook record found under no set of its type: the types its name has.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub record_types: BTreeMap<String, Vec<String>>,
    /// Per region, per alarm name: its state (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    /// A missing alarm has no entry.
    pub alarms: BTreeMap<String, BTreeMap<String, String>>,
    /// Per Route 53 health check id: whether it exists.
    pub health_checks: BTreeMap<String, bool>,
    /// Per health check of a weighted set a step changes: whether it passes, as
    /// Route 53 decides, when read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set_health: BTreeMap<String, bool>,
    /// Who the reads were made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
    /// Who the reads of each named account of the playbook were made as.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callers: BTreeMap<String, Caller>,
    /// Per region, per Auto Scaling group a step changes: its hooks, policies and
    /// scheduled actions (groups with none are absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub preflight: BTreeMap<String, BTreeMap<String, Preflight>>,
    /// Which named account each resource read was found in.
    #[serde(default, skip_serializing_if = "Routes::is_empty")]
    pub routes: Routes,
    /// Per region, per Auto Scaling group a capacity step changes that has load
    /// balancers: how its instances stand in each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub balancers: BTreeMap<String, BTreeMap<String, Vec<BalancerView>>>,
    /// Per region a `scale_up` raises: its groups' instance types and the vCPU
    /// quotas they fall under.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vcpus: BTreeMap<String, Vcpus>,
    /// Per region, per group a zone step moves out of a zone with zonal shift: the
    /// load balancers (ARNs) of its target groups.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shift_balancers: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Per resource a zone step would shift: what ARC says of it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub managed: BTreeMap<String, ManagedRead>,
    /// Regions not read live, whose values above come from their last known state
    /// in the state dir (see [`crate::plan::known`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unread: BTreeMap<String, Unread>,
}

/// A region not read live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unread {
    /// Why.
    pub why: UnreadWhy,
    /// When the oldest last known value used was read (RFC 3339); none when the
    /// state dir knew nothing of what was needed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
}

/// Why a region was not read live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnreadWhy {
    /// The operator said it is down (`--region-down`): nothing is sent to it.
    Down,
    /// It did not answer the plan's reads (what happened, said for people).
    Silent {
        /// `eu-west-1 is not answering (12 requests unanswered after 10s)`.
        said: String,
    },
}

impl Observed {
    /// Whether `region` was not read live (down, or silent).
    pub fn is_unread(&self, region: &str) -> bool {
        self.unread.contains_key(region)
    }
}

/// Which named account of a playbook each resource is in; a resource not listed is
/// in the ambient account. Built by the plan's reads, recorded in the plan, and
/// followed by every later call (run, resume, rollback) to the resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// Per region, per Auto Scaling group name: its account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, BTreeMap<String, String>>,
    /// Per hosted zone id: its account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zones: BTreeMap<String, String>,
    /// Per region, per alarm name: its account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alarms: BTreeMap<String, BTreeMap<String, String>>,
    /// Per Route 53 health check id: its account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health_checks: BTreeMap<String, String>,
    /// Per resource a zonal shift moves (load balancer or group ARN): its account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shifts: BTreeMap<String, String>,
}

impl Routes {
    /// Whether every resource is in the ambient account.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
            && self.zones.is_empty()
            && self.alarms.is_empty()
            && self.health_checks.is_empty()
            && self.shifts.is_empty()
    }

    /// The account of an Auto Scaling group (`None`: the ambient one).
    pub fn group(&self, region: &str, group: &str) -> Option<&str> {
        self.groups.get(region)?.get(group).map(String::as_str)
    }

    /// The account of a hosted zone.
    pub fn zone(&self, zone_id: &str) -> Option<&str> {
        self.zones.get(zone_id).map(String::as_str)
    }

    /// The account of an alarm.
    pub fn alarm(&self, region: &str, name: &str) -> Option<&str> {
        self.alarms.get(region)?.get(name).map(String::as_str)
    }

    /// The account of a health check.
    pub fn health_check(&self, id: &str) -> Option<&str> {
        self.health_checks.get(id).map(String::as_str)
    }

    /// The account of a resource a zonal shift moves.
    pub fn shift(&self, resource: &str) -> Option<&str> {
        self.shifts.get(resource).map(String::as_str)
    }
}

impl Observed {
    /// A stable digest of what a plan depends on: capacities, subnets, processes,
    /// tags, weights and TTLs, which alarms and health checks exist. Instances in
    /// service and alarm states move all the time without changing the plan, so they
    /// are left out: a saved plan is stale only when a value it shows has changed.
    pub fn fingerprint(&self) -> String {
        let mut stable = self.clone();
        // Who plans is not what the plan shows changing.
        stable.caller = None;
        stable.callers.clear();
        // Health moves all the time.
        stable.set_health.clear();
        for groups in stable.groups.values_mut() {
            for group in groups.values_mut() {
                group.in_service = 0;
                group.instances_by_zone.clear();
            }
        }
        // Health moves all the time; which balancers there are does not.
        for groups in stable.balancers.values_mut() {
            for views in groups.values_mut() {
                for view in views.iter_mut() {
                    (view.healthy, view.registered, view.leaving) = (0, 0, 0);
                }
            }
        }
        for region in stable.vcpus.values_mut() {
            for quota in region.quotas.values_mut() {
                quota.used = 0;
            }
        }
        for alarms in stable.alarms.values_mut() {
            for state in alarms.values_mut() {
                state.clear();
            }
        }
        // BTreeMaps and Vecs serialise in a fixed order, so the JSON is canonical.
        let json = serde_json::to_vec(&stable).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// [`Observed::fingerprint`] without the lifecycle hooks: what a run of a saved
    /// plan reads again (the plan read the hooks, and they only warn).
    pub fn fingerprint_without_hooks(&self) -> String {
        let mut stable = self.clone();
        for groups in stable.preflight.values_mut() {
            for found in groups.values_mut() {
                found.hooks.clear();
            }
            groups.retain(|_, found| !found.is_empty());
        }
        stable.preflight.retain(|_, groups| !groups.is_empty());
        stable.fingerprint()
    }

    /// The state of an Auto Scaling group.
    pub fn group(&self, region: &str, name: &str) -> Option<&GroupState> {
        self.groups.get(region).and_then(|g| g.get(name))
    }

    /// How a group's instances stood in its load balancers (none: it has none, or
    /// no step changes it).
    pub fn balancers_of(&self, region: &str, group: &str) -> &[BalancerView] {
        self.balancers
            .get(region)
            .and_then(|g| g.get(group))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The Auto Scaling groups a named playbook group resolved to in a region.
    pub fn resolved(&self, region: &str, group: &str) -> &[String] {
        self.resolved_groups
            .get(region)
            .and_then(|g| g.get(group))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod quota_tests {
    use super::vcpu_quota;

    #[test]
    fn instance_types_fall_under_their_families_vcpu_quota() {
        let code = |t: &str| vcpu_quota(t).map(|(code, _)| code);
        for standard in [
            "t3.micro",
            "m7i-flex.large",
            "c7gn.xlarge",
            "r6idn.2xlarge",
            "im4gn.large",
            "z1d.large",
            "a1.medium",
            "d3en.xlarge",
            "h1.2xlarge",
        ] {
            assert_eq!(code(standard), Some("L-1216C47A"), "{standard}");
        }
        assert_eq!(code("g5.xlarge"), Some("L-DB2E81BA"));
        assert_eq!(code("vt1.3xlarge"), Some("L-DB2E81BA"));
        assert_eq!(code("p4d.24xlarge"), Some("L-417A185B"));
        assert_eq!(code("inf2.xlarge"), Some("L-1945791B"));
        assert_eq!(code("trn1.2xlarge"), Some("L-2C3B7624"));
        assert_eq!(code("dl1.24xlarge"), Some("L-6E869C2A"));
        assert_eq!(code("hpc7g.4xlarge"), Some("L-F7808C92"));
        assert_eq!(code("x2iedn.xlarge"), Some("L-7295265B"));
        assert_eq!(code("f1.2xlarge"), Some("L-74FC7D96"));
        assert_eq!(code("u-6tb1.metal"), Some("L-43DA4232"));
        assert_eq!(code("mac2.metal"), None);
        assert_eq!(code(""), None);
    }
}
