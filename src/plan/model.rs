//! The plan: a serialisable value that every view (human, JSON, Markdown) renders.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::Capacity;

/// The version of the plan's JSON document; bumped on any incompatible change.
pub const PLAN_FORMAT: u32 = 1;

/// What a run of a playbook would do, against the state observed now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT`].
    pub format: u32,
    /// The playbook planned.
    pub playbook: PlaybookRef,
    /// The steps in order, each with its changes.
    pub steps: Vec<StepPlan>,
    /// Problems that forbid the run.
    pub blockers: Vec<Finding>,
    /// Risks worth a look.
    pub warnings: Vec<Finding>,
    /// Expected duration and API calls.
    pub estimate: Estimate,
    /// The playbook's recovery time objective (`rto:`), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_secs: Option<u64>,
    /// Conditions that halt the run when they fire.
    #[serde(default)]
    pub stop_conditions: Vec<StopRef>,
    /// Each stop condition's state when the plan was made, by its name as shown
    /// (`alarm api-5xx-rate (us-west-2)`): the alarm's state (`OK`, `ALARM`,
    /// `INSUFFICIENT_DATA`), `exists` for a health check, or `not found`.
    #[serde(default)]
    pub stop_live: BTreeMap<String, String>,
    /// Digest of the observed state the plan was made against.
    pub fingerprint: String,
    /// The same without the lifecycle hooks, which a run of the saved plan does not
    /// read again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint_without_hooks: String,
    /// Who AWS said the plan's reads were made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<crate::state::Caller>,
    /// The playbook's named accounts, with who the plan's reads in each were made as.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, PlannedAccount>,
    /// Where the drill's events are sent (the playbook's `notify`): resume and
    /// rollback, wherever they run, send there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<crate::playbook::Notify>,
    /// Which named account each resource of the plan is in.
    #[serde(default, skip_serializing_if = "crate::state::Routes::is_empty")]
    pub routes: crate::state::Routes,
    /// Regions not read live (down, or silent), planned from their last known
    /// state: why, and when that state was read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unread: BTreeMap<String, crate::state::Unread>,
    /// The evac version that made the plan.
    #[serde(default)]
    pub evac_version: String,
    /// SHA-256 of the plan document with this field empty: a plan edited after it was
    /// made no longer matches it.
    #[serde(default)]
    pub digest: String,
}

/// A named account of the playbook, as the run reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAccount {
    /// How it is reached: role, external id, profile, session length.
    #[serde(flatten)]
    pub spec: crate::playbook::AccountSpec,
    /// Who the plan's reads in it were made as, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<crate::state::Caller>,
}

/// A stop condition as the engine watches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopRef {
    /// Fires when the alarm is in ALARM.
    Alarm {
        /// The alarm's region.
        region: String,
        /// The alarm's name.
        name: String,
    },
    /// Fires when the health check is unhealthy.
    HealthCheck {
        /// The health check id.
        id: String,
    },
}

impl StopRef {
    /// What makes it fire, said for people.
    pub fn fires_when(&self) -> &'static str {
        match self {
            StopRef::Alarm { .. } => "ALARM",
            StopRef::HealthCheck { .. } => "unhealthy",
        }
    }
}

impl std::fmt::Display for StopRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopRef::Alarm { region, name } => write!(f, "alarm {name} ({region})"),
            StopRef::HealthCheck { id } => write!(f, "health check {id}"),
        }
    }
}

impl Plan {
    /// The playbook's named accounts as they are reached, for resume and rollback.
    pub fn account_specs(&self) -> impl Iterator<Item = (&String, &crate::playbook::AccountSpec)> {
        self.accounts.iter().map(|(name, a)| (name, &a.spec))
    }

    /// Whether the run may start.
    pub fn is_blocked(&self) -> bool {
        !self.blockers.is_empty()
    }

    fn computed_digest(&self) -> String {
        let mut unsealed = self.clone();
        unsealed.digest = String::new();
        let json = serde_json::to_vec(&unsealed).unwrap_or_default();
        crate::journal::hex_digest(&json)
    }

    /// Records the evac version and the digest: from now on an edit shows.
    pub fn seal(&mut self) {
        self.evac_version = env!("CARGO_PKG_VERSION").to_owned();
        self.digest = self.computed_digest();
    }

    /// Whether the plan is as it was sealed.
    pub fn is_intact(&self) -> bool {
        !self.digest.is_empty() && self.digest == self.computed_digest()
    }
}

/// Which playbook, with which parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaybookRef {
    /// Its name.
    pub name: String,
    /// The file it was loaded from.
    pub file: String,
    /// Parameter values after `--var`.
    pub params: BTreeMap<String, String>,
    /// SHA-256 of the playbook file's text.
    #[serde(default)]
    pub sha256: String,
    /// The playbook's text, in a plan saved with `evac plan --save`: `evac run --plan
    /// FILE` needs nothing else.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// What a step does; shared by the plan, the engine and the drill report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Raise the capacity of Auto Scaling groups.
    ScaleUp,
    /// Move Route 53 weights in increments.
    ShiftTraffic,
    /// Lower the capacity of Auto Scaling groups.
    Drain,
    /// Take one availability zone out of Auto Scaling groups.
    EvacuateZone,
    /// Hold for a fixed time.
    Wait,
    /// A human gate.
    Approve,
    /// Wait for an alarm or health check state.
    Check,
}

impl StepKind {
    /// The playbook's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::ScaleUp => "scale_up",
            StepKind::ShiftTraffic => "shift_traffic",
            StepKind::Drain => "drain",
            StepKind::EvacuateZone => "evacuate_zone",
            StepKind::Wait => "wait",
            StepKind::Approve => "approve",
            StepKind::Check => "check",
        }
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepPlan {
    /// The step id.
    pub id: String,
    /// The step kind.
    pub kind: StepKind,
    /// One line saying what the step does.
    pub summary: String,
    /// The changes and gates, in order.
    pub changes: Vec<Change>,
    /// Expected duration of the step in seconds.
    pub estimate_secs: u64,
    /// How long the step may wait for its changes to take effect (per increment for
    /// `shift_traffic`), in seconds; 0 when it does not wait.
    #[serde(default)]
    pub timeout_secs: u64,
    /// Whether the step's wait includes its groups' load balancers: until the new
    /// capacity is healthy in each (`scale_up`), until the instances going out
    /// have left each (`drain`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub balancers: bool,
    /// Why the run leaves the step out (`eu-west-1 is down`): it would change, or
    /// wait on, something in a region that is down. Its changes show what it would
    /// have done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl StepPlan {
    /// How long resolvers may keep the old answers after the step's last weight
    /// change is in sync: the largest TTL of its records; none for a step that
    /// changes no weights.
    pub fn ttl_secs(&self) -> Option<u64> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::Weights { ttl_secs, .. } => Some(*ttl_secs),
                _ => None,
            })
            .max()
    }
}

/// One weighted record set's weight before the step and after each increment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWeights {
    /// The set identifier.
    pub set_identifier: String,
    /// The region it serves, when the playbook names it.
    pub region: Option<String>,
    /// Weight before the step.
    pub before: i64,
    /// Weight after each increment.
    pub after: Vec<i64>,
    /// What decides whether Route 53 answers with it: its health check's id, or
    /// `target health` for an alias that evaluates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
    /// Whether its health check failed when the plan was made: Route 53 skips it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failing: bool,
}

/// One change (or gate) a step makes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// New min / desired / max of an Auto Scaling group.
    Capacity {
        /// The group's region.
        region: String,
        /// The Auto Scaling group.
        group: String,
        /// Capacity before the step.
        before: Capacity,
        /// Capacity after it.
        after: Capacity,
        /// How `after` was computed.
        reason: String,
        /// The group's load balancers, with how its instances stood in each when
        /// the plan was made.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        balancers: Vec<crate::state::BalancerView>,
    },
    /// A weight ramp of one record.
    Weights {
        /// The playbook's record name.
        record: String,
        /// The DNS name.
        name: String,
        /// The record type.
        record_type: String,
        /// The hosted zone id.
        zone_id: String,
        /// The target's share after each increment, in percent.
        ramp: Vec<i64>,
        /// Every set's weights.
        sets: Vec<SetWeights>,
        /// Hold after each increment, in seconds.
        bake_secs: u64,
        /// How long resolvers may keep the old answers after a change is in sync: the
        /// largest TTL of the record's sets (an alias: 60 s), in seconds.
        #[serde(default)]
        ttl_secs: u64,
        /// For a record whose sets have health checks: what Route 53 answers with
        /// after the shift if every set of non-zero weight fails its check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_unhealthy: Option<String>,
    },
    /// Scaling processes suspended on a group before its capacity changes.
    Suspend {
        /// The group's region.
        region: String,
        /// The Auto Scaling group.
        group: String,
        /// The processes suspended (those already suspended stay so).
        processes: Vec<String>,
    },
    /// Removing scale-in protection from a group's instances before a drain.
    Unprotect {
        /// The group's region.
        region: String,
        /// The Auto Scaling group.
        group: String,
        /// The instances protected from scale-in when the plan was made.
        instances: Vec<String>,
    },
    /// Taking one availability zone out of a group.
    ZoneEvacuation {
        /// The group's region.
        region: String,
        /// The Auto Scaling group.
        group: String,
        /// The zone left, by its name in the group's account.
        zone: String,
        /// Its zone id (`use1-az1`), when the group's subnets tell it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone_id: Option<String>,
        /// Subnets removed from the group.
        subnets_removed: Vec<String>,
        /// Subnets the group keeps.
        subnets_after: Vec<String>,
        /// Processes suspended for the drill.
        suspend_processes: Vec<String>,
        /// Instances replaced in the remaining zones.
        instances_to_replace: u32,
        /// At most this many instances replaced at once.
        batch_size: u32,
        /// In-service instances per zone now.
        instances_before: BTreeMap<String, u32>,
        /// Expected in-service instances per zone afterwards.
        instances_after: BTreeMap<String, u32>,
        /// With `keep_capacity: false`: the group's capacity before the step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity_before: Option<Capacity>,
        /// With `keep_capacity: false`: the group's capacity once the zone's
        /// instances are gone and not replaced (desired lowered by them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity_after: Option<Capacity>,
        /// The group has zonal shift enabled: its own zonal shift keeps its
        /// launches out of the zone, and its subnets stay as they are.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_shift: bool,
        /// With `by_shift`: the group's impaired-zone health check behaviour
        /// (`ReplaceUnhealthy`, `IgnoreUnhealthy`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        impaired_zone: Option<String>,
    },
    /// An ARC zonal shift moving a resource's traffic (a load balancer) or launches
    /// (a group with zonal shift enabled) away from a zone, started before any
    /// capacity moves and cancelled by rollback once capacity is back.
    ZonalShift {
        /// The resource's region.
        region: String,
        /// The resource's ARN.
        resource: String,
        /// Its name, as ARC gives it.
        name: String,
        /// The zone left, by name.
        zone: String,
        /// The zone id the shift moves away from.
        zone_id: String,
        /// How long the shift lasts before it expires by itself: the drill's
        /// estimate from this step on, plus a margin.
        minutes: u32,
        /// The step's groups behind it.
        groups: Vec<String>,
    },
    /// A fixed hold.
    Wait {
        /// Seconds.
        secs: u64,
    },
    /// A human gate.
    Approve {
        /// The question asked.
        message: String,
    },
    /// Waiting for a metric, or its share of a total, to pass a threshold.
    MetricCheck {
        /// The metric (the part, for a share).
        metric: MetricQuery,
        /// For a share: the rest of the total.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        among: Vec<MetricQuery>,
        /// The value must be above this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<f64>,
        /// The value must be below this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<f64>,
        /// How long it must hold, in seconds.
        hold_secs: u64,
        /// The longest wait, in seconds.
        timeout_secs: u64,
    },
    /// Waiting for an alarm or health check state.
    Check {
        /// What is watched.
        target: StopRef,
        /// The wanted state.
        state: String,
        /// How long it must hold, in seconds.
        hold_secs: u64,
        /// The longest wait, in seconds.
        timeout_secs: u64,
    },
}

/// One CloudWatch statistic of one metric over one period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// The region.
    pub region: String,
    /// The namespace.
    pub namespace: String,
    /// The metric name.
    pub name: String,
    /// The dimensions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    /// The statistic.
    pub stat: String,
    /// The period, in seconds.
    pub period_secs: u32,
    /// The named account it is read in (none: the ambient one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl std::fmt::Display for MetricQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.namespace, self.name)?;
        if !self.dimensions.is_empty() {
            let dims: Vec<String> = self
                .dimensions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, " [{}]", dims.join(", "))?;
        }
        write!(
            f,
            " {} per {}s ({})",
            self.stat, self.period_secs, self.region
        )
    }
}

/// What a metric check waits for, said for people: `METRIC is above 1000`, or
/// `the share of METRIC among METRIC, ... is above 90%`.
pub fn metric_condition(
    metric: &MetricQuery,
    among: &[MetricQuery],
    above: Option<f64>,
    below: Option<f64>,
) -> String {
    let unit = if among.is_empty() { "" } else { "%" };
    let threshold = match (above, below) {
        (Some(a), _) => format!("above {a}{unit}"),
        (None, Some(b)) => format!("below {b}{unit}"),
        (None, None) => "anything".to_owned(),
    };
    if among.is_empty() {
        format!("{metric} is {threshold}")
    } else {
        let rest: Vec<String> = among.iter().map(ToString::to_string).collect();
        format!(
            "the share of {metric} among it and {} is {threshold}",
            rest.join(", ")
        )
    }
}

impl MetricQuery {
    /// The query of a playbook's metric.
    pub fn of(m: &crate::playbook::MetricRef) -> Self {
        Self {
            region: m.region.to_string(),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            dimensions: m.dimensions.clone(),
            stat: m.stat.clone(),
            period_secs: u32::try_from(m.period.0.as_secs()).unwrap_or(u32::MAX),
            account: m.account.clone(),
        }
    }
}

/// A blocker or a warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The step concerned, if one.
    pub step: Option<String>,
    /// The resource concerned, if one.
    pub resource: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

/// Expected duration and API calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// Expected duration in seconds, approvals excluded.
    pub duration_secs: u64,
    /// When the traffic is expected to have left, in seconds from the start: the
    /// last shift's changes in sync plus its records' TTL (resolvers keep old answers
    /// that long), when that is after the run's end; absent without a shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_gone_secs: Option<u64>,
    /// Mutating API calls per service and operation (`route53:ChangeResourceRecordSets`).
    pub mutating_calls: BTreeMap<String, u32>,
    /// What the figures assume.
    pub assumptions: Vec<String>,
}
