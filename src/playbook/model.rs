//! The typed playbook, v1. Parameters are already substituted in these values.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::types::{HumanDuration, Names, Percent, Region, StepId, Zone};

/// A loaded, validated playbook.
#[derive(Clone, Debug, Serialize)]
pub struct Playbook {
    /// Format version; always 1 for now.
    pub version: u32,
    /// The playbook's name: runs, locks and history are keyed by it.
    pub name: String,
    /// What the drill is for.
    pub description: Option<String>,
    /// Parameter values after `--var` overrides.
    pub params: BTreeMap<String, serde_yaml::Value>,
    /// Named AWS accounts reached through a role or a profile; resources with no
    /// `account` use the ambient credentials.
    pub accounts: BTreeMap<String, AccountSpec>,
    /// Named sets of Auto Scaling groups.
    pub groups: BTreeMap<String, GroupSpec>,
    /// Named weighted record sets.
    pub records: BTreeMap<String, RecordSpec>,
    /// Conditions that halt the run.
    pub stop_when: Vec<StopCondition>,
    /// The largest share of weight (in percent of the total) one ramp increment may
    /// move; 50 unless set.
    pub max_increment: Percent,
    /// How much more traffic per unit of capacity, in percent, a region receiving
    /// weight may be asked to carry than the most loaded region carries before the
    /// drill; 0 unless set.
    pub capacity_margin: u16,
    /// The recovery time objective: how long the evacuation may take. The plan's
    /// estimate, and each drill's time to evacuate, are scored against it.
    pub rto: Option<HumanDuration>,
    /// When drills are meant to run; outside it the plan warns.
    pub window: Option<Window>,
    /// Where the drill's events are sent besides the terminal.
    pub notify: Option<Notify>,
    /// The ordered steps.
    pub steps: Vec<Step>,
}

/// A drill window: weekdays and hours in a time zone.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Days of the week, `mon` to `sun`.
    pub days: Vec<Weekday>,
    /// `HH:MM-HH:MM`, local time.
    pub hours: String,
    /// An IANA time zone such as `America/Los_Angeles`.
    pub tz: String,
}

/// Where a drill's events go: an SNS topic, an EventBridge bus, a webhook (any of
/// them). A notification that fails is said on the terminal and never stops the
/// drill.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// An SNS topic ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns: Option<String>,
    /// An EventBridge bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventbridge: Option<EventBus>,
    /// A webhook taking Slack-compatible JSON (`{"text": ...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// An EventBridge event bus.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBus {
    /// Its name (`default` for the account's default bus) or ARN.
    pub bus: String,
    /// Its region.
    pub region: Region,
}

/// A webhook: its URL, or the environment variable that holds it (a webhook URL is
/// often a secret, which then stays out of the playbook, plan and journal).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
}

/// A day of the week.
#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// The default `max_increment`.
pub const DEFAULT_MAX_INCREMENT: u8 = 50;

/// An AWS account a playbook reaches other than through the ambient credentials: a
/// role to assume (from the ambient credentials, or from `profile`'s), or a profile.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The IAM role to assume (`arn:aws:iam::123456789012:role/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// A profile of `~/.aws/config`: the credentials the role is assumed with, or,
    /// with no `role_arn`, the credentials used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// How long one role session lasts (15m to 12h; 1h unless set). Sessions are
    /// renewed before they end, so a drill may last longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<HumanDuration>,
}

/// How to find the Auto Scaling groups of a named group in a region: by name or by
/// tags (every group carrying all the tags).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Explicit group names: one list for every region, or a list per region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<GroupNames>,
    /// Tags every matching group carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// The account (under `accounts:`) the groups are in; the ambient one unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl GroupSpec {
    /// The explicit names of the groups in `region`, when selected by names.
    pub fn names_in(&self, region: &str) -> Option<&[String]> {
        match self.names.as_ref()? {
            GroupNames::All(names) => Some(names),
            GroupNames::PerRegion(by_region) => Some(
                by_region
                    .iter()
                    .find(|(r, _)| r.as_str() == region)
                    .map_or(&[][..], |(_, names)| names.as_slice()),
            ),
        }
    }
}

/// Explicit Auto Scaling group names: `[a, b]`, the same in every region, or
/// `{ us-east-1: [api-east], us-west-2: [api-west] }`, per region. Per-region lists
/// also pair the groups of `absorb`: the first of one region with the first of the
/// other, and so on.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum GroupNames {
    /// The same names in every region.
    All(Vec<String>),
    /// Names per region.
    PerRegion(BTreeMap<Region, Vec<String>>),
}

impl GroupNames {
    /// Whether no name is given at all.
    pub fn is_empty(&self) -> bool {
        match self {
            GroupNames::All(names) => names.is_empty(),
            GroupNames::PerRegion(by_region) => by_region.values().all(Vec::is_empty),
        }
    }

    /// Every name, of every region.
    pub fn all(&self) -> Vec<&String> {
        match self {
            GroupNames::All(names) => names.iter().collect(),
            GroupNames::PerRegion(by_region) => by_region.values().flatten().collect(),
        }
    }
}

impl<'de> Deserialize<'de> for GroupNames {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_yaml::Value::deserialize(deserializer)? {
            list @ serde_yaml::Value::Sequence(_) => serde_yaml::from_value(list)
                .map(GroupNames::All)
                .map_err(|e| D::Error::custom(format!("a list of Auto Scaling group names: {e}"))),
            map @ serde_yaml::Value::Mapping(_) => serde_yaml::from_value(map)
                .map(GroupNames::PerRegion)
                .map_err(|e| {
                    D::Error::custom(format!("names per region (`REGION: [NAME, ...]`): {e}"))
                }),
            _ => Err(D::Error::custom(
                "expected a list of Auto Scaling group names, or a list per region (`{ us-east-1: [api-east], us-west-2: [api-west] }`)",
            )),
        }
    }
}

/// A DNS record type that weighted routing applies to.
#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// Canonical name.
    #[serde(rename = "CNAME")]
    Cname,
}

impl std::fmt::Display for RecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
        })
    }
}

impl Playbook {
    /// Every region the playbook names: its steps', its records', its alarms'.
    pub fn regions(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for spec in self.records.values() {
            out.extend(spec.set_identifiers.keys().map(ToString::to_string));
        }
        for condition in &self.stop_when {
            if let StopCondition::Alarm(a) = condition {
                out.insert(a.region.to_string());
            }
        }
        for step in &self.steps {
            match &step.action {
                Action::ScaleUp(s) => {
                    out.insert(s.region.to_string());
                    if let Some(absorb) = &s.absorb {
                        out.insert(absorb.from.to_string());
                    }
                }
                Action::Drain(d) => {
                    out.insert(d.region.to_string());
                }
                Action::EvacuateZone(z) => {
                    out.insert(z.region.to_string());
                }
                Action::ShiftTraffic(t) => {
                    out.extend(t.from.iter().map(ToString::to_string));
                    match &t.to {
                        Some(ShiftTo::Region(r)) => {
                            out.insert(r.to_string());
                        }
                        Some(ShiftTo::Split(split)) => {
                            out.extend(split.keys().map(ToString::to_string));
                        }
                        None => {}
                    }
                }
                Action::Check(c) => {
                    out.extend(c.alarm.iter().map(|a| a.region.to_string()));
                    out.extend(c.metric.iter().map(|m| m.region.to_string()));
                    if let Some(share) = &c.share {
                        out.extend(
                            std::iter::once(&share.of)
                                .chain(&share.among)
                                .map(|m| m.region.to_string()),
                        );
                    }
                }
                Action::Wait(_) | Action::Approve(_) => {}
            }
        }
        out
    }

    /// The groups (under `groups:`) that serve record `name`: its `groups`, else the
    /// group of the same name, else none.
    pub fn serving_groups(&self, name: &str) -> Vec<String> {
        match self.records.get(name).and_then(|r| r.groups.as_ref()) {
            Some(groups) => groups.0.clone(),
            None if self.groups.contains_key(name) => vec![name.to_owned()],
            None => Vec::new(),
        }
    }
}

/// A weighted Route 53 record: one record set per region, told apart by set identifier.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    /// Hosted zone name (`example.com.`) or id (`Z0123456789`).
    pub zone: String,
    /// Record name (`api.example.com.`).
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The set identifier of the record set serving each region.
    pub set_identifiers: BTreeMap<Region, String>,
    /// The account (under `accounts:`) the hosted zone is in; the ambient one unless
    /// set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The groups (under `groups:`) whose capacity serves this record in each
    /// region. Unset: the group of the record's own name, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Names>,
}

/// A CloudWatch alarm in a region.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmRef {
    /// The alarm's region.
    pub region: Region,
    /// The alarm's name.
    pub name: String,
    /// The account (under `accounts:`) the alarm is in; the ambient one unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A Route 53 health check.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckRef {
    /// The health check's id.
    pub id: String,
    /// The account (under `accounts:`) the health check is in; the ambient one
    /// unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A condition that halts the run when it fires. Written `- alarm: {...}` or
/// `- health_check: {...}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case", try_from = "RawStopCondition")]
pub enum StopCondition {
    /// Fires when the alarm is in ALARM.
    Alarm(AlarmRef),
    /// Fires when the health check is unhealthy.
    HealthCheck(HealthCheckRef),
}

/// The written form of a stop condition: exactly one of the fields is set.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["alarm"] }, { "required": ["health_check"] }]))]
struct RawStopCondition {
    #[serde(default)]
    alarm: Option<AlarmRef>,
    #[serde(default)]
    health_check: Option<HealthCheckRef>,
}

impl TryFrom<RawStopCondition> for StopCondition {
    type Error = &'static str;
    fn try_from(raw: RawStopCondition) -> Result<Self, Self::Error> {
        match (raw.alarm, raw.health_check) {
            (Some(alarm), None) => Ok(StopCondition::Alarm(alarm)),
            (None, Some(check)) => Ok(StopCondition::HealthCheck(check)),
            _ => Err(
                "a stop condition is exactly one of `alarm: { region, name }` or `health_check: { id }`",
            ),
        }
    }
}

/// One step of a playbook.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Stable identifier.
    pub id: StepId,
    /// Optional human description.
    pub description: Option<String>,
    /// What the step does.
    pub action: Action,
}

/// What a step does. Each variant is one step kind.
// A playbook holds a handful of steps: the size of the largest kind (`check`, with
// its metrics) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Raise the capacity of groups in a region.
    ScaleUp(ScaleUp),
    /// Move weighted DNS traffic toward a region.
    ShiftTraffic(ShiftTraffic),
    /// Lower the capacity of groups in a region.
    Drain(Drain),
    /// Hold for a fixed time.
    Wait(HumanDuration),
    /// A human gate.
    Approve(String),
    /// Wait until an alarm or health check is in a given state.
    Check(Check),
    /// Take one availability zone out of groups.
    EvacuateZone(EvacuateZone),
}

/// The step kinds, by the key that introduces each.
pub const STEP_KINDS: [&str; 7] = [
    "scale_up",
    "shift_traffic",
    "drain",
    "wait",
    "approve",
    "check",
    "evacuate_zone",
];

/// What a scale-up waits for after setting capacity.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Until the new capacity is InService and passes the health checks of every
    /// load balancer (target group, classic load balancer) the group is attached
    /// to; a group with none: until InService.
    #[default]
    Healthy,
    /// Until the group's InService count reaches desired.
    InService,
    /// Do not wait.
    None,
}

/// What a drain waits for after lowering capacity.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DrainWait {
    /// Until the instances going out have left service and every load balancer the
    /// group is attached to (its deregistration delay, connection draining, has
    /// passed): users are off them.
    #[default]
    Deregistered,
    /// Until the group's InService count is down to the drain's target.
    InService,
}

/// Take on a share of the matching source group's desired capacity.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Absorb {
    /// The region whose groups' capacity is absorbed.
    pub from: Region,
    /// The share of the source's desired capacity added to the target's.
    pub percent: Percent,
    /// Pair each target group with the source group whose value of this tag is the
    /// same. Without it, groups pair by position in per-region `names`, else by
    /// name with the region swapped (`api-us-west-2` absorbs `api-us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_by_tag: Option<String>,
}

/// `scale_up`: raise desired (and min, max where needed) of groups in a region.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleUp {
    /// The named group(s).
    #[serde(alias = "groups")]
    pub group: Names,
    /// The region whose groups are scaled.
    pub region: Region,
    /// Add a share of the source's desired capacity.
    #[serde(default)]
    pub absorb: Option<Absorb>,
    /// Or set an explicit desired capacity.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::templated::<u32>")]
    pub desired: Option<u32>,
    /// Allow raising max when desired would exceed it.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::templated::<bool>")]
    pub raise_max: bool,
    /// What to wait for.
    #[serde(default)]
    pub wait: WaitFor,
    /// How long the wait may take.
    #[serde(default = "default_scale_timeout")]
    pub timeout: HumanDuration,
    /// Scaling processes suspended on the groups before their capacity changes, and
    /// resumed by rollback (`[AlarmNotification, ScheduledActions]` keeps scaling
    /// policies and scheduled actions from changing desired during the drill).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspend: Vec<ScalingProcess>,
}

/// An Auto Scaling process that can be suspended.
#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum ScalingProcess {
    /// Launching instances.
    Launch,
    /// Terminating instances.
    Terminate,
    /// Registering new instances with load balancers.
    AddToLoadBalancer,
    /// Acting on CloudWatch alarms (scaling policies).
    AlarmNotification,
    /// Rebalancing instances across zones.
    #[serde(rename = "AZRebalance")]
    AzRebalance,
    /// Health checks.
    HealthCheck,
    /// Instance refreshes.
    InstanceRefresh,
    /// Replacing unhealthy instances.
    ReplaceUnhealthy,
    /// Scheduled actions.
    ScheduledActions,
}

impl ScalingProcess {
    /// Its name in the Auto Scaling API.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalingProcess::Launch => "Launch",
            ScalingProcess::Terminate => "Terminate",
            ScalingProcess::AddToLoadBalancer => "AddToLoadBalancer",
            ScalingProcess::AlarmNotification => "AlarmNotification",
            ScalingProcess::AzRebalance => "AZRebalance",
            ScalingProcess::HealthCheck => "HealthCheck",
            ScalingProcess::InstanceRefresh => "InstanceRefresh",
            ScalingProcess::ReplaceUnhealthy => "ReplaceUnhealthy",
            ScalingProcess::ScheduledActions => "ScheduledActions",
        }
    }
}

/// `shift_traffic`: move weighted records' traffic in increments, toward one region
/// (`to: REGION`), or away from one (`from: REGION`) to the others in proportion to
/// their weights or as an explicit split (`to: { us-west-2: 60, eu-west-1: 40 }`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftTraffic {
    /// The named record(s).
    #[serde(alias = "records")]
    pub record: Names,
    /// The region whose weight is moved away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Region>,
    /// The region that gains the traffic, or with `from`, each target's share of
    /// what is moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ShiftTo>,
    /// After each increment: with `to: REGION` alone, the target's share of the
    /// total weight; with `from`, the share of the source's weight moved away. In
    /// percent, strictly increasing.
    #[schemars(schema_with = "super::schema::templated::<Vec<i64>>")]
    pub ramp: Vec<i64>,
    /// Hold between increments.
    #[serde(default)]
    pub bake: HumanDuration,
    /// How long one increment may take to be in sync.
    #[serde(default = "default_shift_timeout")]
    pub timeout: HumanDuration,
}

/// Where `shift_traffic` sends traffic.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum ShiftTo {
    /// One region.
    Region(Region),
    /// Each region's share of the moved weight, in percent, summing to 100.
    Split(BTreeMap<Region, Percent>),
}

impl<'de> Deserialize<'de> for ShiftTo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_yaml::Value::deserialize(deserializer)? {
            map @ serde_yaml::Value::Mapping(_) => serde_yaml::from_value(map)
                .map(ShiftTo::Split)
                .map_err(|e| D::Error::custom(format!("a split `{{ REGION: PERCENT, ... }}`: {e}"))),
            other => serde_yaml::from_value(other).map(ShiftTo::Region).map_err(|e| {
                D::Error::custom(format!(
                    "{e}; `to` is a region, or a split like `{{ us-west-2: 60, eu-west-1: 40 }}`"
                ))
            }),
        }
    }
}

/// `drain`: lower desired (and min) of groups in a region.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    /// The named group(s).
    #[serde(alias = "groups")]
    pub group: Names,
    /// The region whose groups are drained.
    pub region: Region,
    /// Desired capacity after the drain.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::templated::<u32>")]
    pub to: u32,
    /// What to wait for.
    #[serde(default)]
    pub wait: DrainWait,
    /// Remove the groups' instances' scale-in protection so that the drain can
    /// terminate them (rollback protects again those that remain). Without it, a
    /// drain of a group with protected instances is blocked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(schema_with = "super::schema::templated::<bool>")]
    pub force_protected: bool,
    /// How long the drain may take.
    #[serde(default = "default_drain_timeout")]
    pub timeout: HumanDuration,
    /// Scaling processes suspended on the groups before their capacity changes, and
    /// resumed by rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspend: Vec<ScalingProcess>,
}

/// The state a `check` waits for.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub enum CheckState {
    /// Alarm state OK.
    #[serde(rename = "OK")]
    Ok,
    /// Alarm state ALARM.
    #[serde(rename = "ALARM")]
    Alarm,
    /// Alarm state INSUFFICIENT_DATA.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
    /// Health check healthy.
    #[serde(rename = "healthy")]
    Healthy,
    /// Health check unhealthy.
    #[serde(rename = "unhealthy")]
    Unhealthy,
}

impl CheckState {
    /// Whether this state belongs to alarms (as opposed to health checks).
    pub fn is_alarm_state(self) -> bool {
        matches!(
            self,
            CheckState::Ok | CheckState::Alarm | CheckState::InsufficientData
        )
    }
}

/// A CloudWatch metric statistic over one period.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricRef {
    /// The metric's region.
    pub region: Region,
    /// Its namespace (`AWS/ApplicationELB`).
    pub namespace: String,
    /// Its name (`RequestCount`).
    pub name: String,
    /// Its dimensions.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// The statistic: `Sum`, `Average`, `Minimum`, `Maximum` or `SampleCount`.
    #[serde(default = "default_stat")]
    pub stat: String,
    /// The period one value covers (1s, 5s, 10s, 30s or whole minutes).
    #[serde(default = "default_period")]
    pub period: HumanDuration,
    /// The account (under `accounts:`) the metric is in; the ambient one unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

fn default_stat() -> String {
    "Sum".to_owned()
}
fn default_period() -> HumanDuration {
    HumanDuration::secs(60)
}

/// A share of a metric in a total: `of` divided by `of` plus every metric of
/// `among`, in percent (the target region's requests among all regions').
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricShare {
    /// The part.
    pub of: MetricRef,
    /// The rest of the total.
    pub among: Vec<MetricRef>,
}

/// `check`: wait until an alarm or a health check is in a state, or a metric (or a
/// share of one) is above or below a threshold.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["alarm"] }, { "required": ["health_check"] }, { "required": ["metric"] }, { "required": ["share"] }]))]
pub struct Check {
    /// The alarm to watch.
    #[serde(default)]
    pub alarm: Option<AlarmRef>,
    /// Or the Route 53 health check to watch.
    #[serde(default)]
    pub health_check: Option<HealthCheckRef>,
    /// Or a metric's latest value.
    #[serde(default)]
    pub metric: Option<MetricRef>,
    /// Or a metric's share of a total, in percent.
    #[serde(default)]
    pub share: Option<MetricShare>,
    /// The wanted state (of an alarm or health check).
    #[serde(default)]
    pub state: Option<CheckState>,
    /// For a metric or share: the value must be above this.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::templated::<Option<f64>>")]
    pub above: Option<f64>,
    /// For a metric or share: the value must be below this.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::templated::<Option<f64>>")]
    pub below: Option<f64>,
    /// How long the state must hold.
    #[serde(default, rename = "for")]
    pub hold: HumanDuration,
    /// How long to wait at most.
    #[serde(default = "default_check_timeout")]
    pub timeout: HumanDuration,
}

/// `evacuate_zone`: stop groups using one availability zone.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvacuateZone {
    /// The named group(s).
    #[serde(alias = "groups")]
    pub group: Names,
    /// The region of the groups.
    pub region: Region,
    /// The zone to leave.
    pub zone: Zone,
    /// Replace the zone's instances in the remaining zones; false: remove them,
    /// lowering each group's desired by what it had in the zone.
    #[serde(default = "yes")]
    #[schemars(schema_with = "super::schema::templated::<bool>")]
    pub keep_capacity: bool,
    /// Move the load balancers' traffic (and groups with zonal shift enabled)
    /// out of the zone first with ARC zonal shift; false: edit subnets and
    /// replace instances only, as before zonal shift.
    #[serde(default = "yes")]
    #[schemars(schema_with = "super::schema::templated::<bool>")]
    pub zonal_shift: bool,
    /// Load balancers (ARNs) to shift besides those of the groups' target groups.
    #[serde(default)]
    pub load_balancers: Vec<String>,
    /// The largest share of a group replaced at once.
    #[serde(default = "default_max_out")]
    pub max_out_percent: Percent,
    /// On rollback, let AZRebalance spread instances back.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::templated::<bool>")]
    pub rebalance: bool,
    /// How long the evacuation may take.
    #[serde(default = "default_zone_timeout")]
    pub timeout: HumanDuration,
}

fn yes() -> bool {
    true
}
fn default_scale_timeout() -> HumanDuration {
    HumanDuration::secs(15 * 60)
}
fn default_shift_timeout() -> HumanDuration {
    HumanDuration::secs(5 * 60)
}
fn default_drain_timeout() -> HumanDuration {
    HumanDuration::secs(10 * 60)
}
fn default_check_timeout() -> HumanDuration {
    HumanDuration::secs(10 * 60)
}
fn default_zone_timeout() -> HumanDuration {
    HumanDuration::secs(20 * 60)
}
fn default_max_out() -> Percent {
    Percent(25)
}
