//! What a plan reads, and the read trait it reads through.
//!
//! [`Needs::of`] works out every read a playbook needs; [`observe`] makes them
//! through an [`Observe`], concurrently, and assembles the [`Observed`] snapshot the
//! plan is built from. The SDK implementation is [`crate::aws::cloud::AwsCloud`]
//! (batched describes, whole-zone listings where they take fewer pages); engine
//! tests' in-memory cloud implements it too, so plans are tested without AWS.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use crate::accounts::Accounts;
use crate::playbook::{
    Action, GroupSpec, Names, Playbook, RecordSpec, RecordType, Region, StopCondition,
};
use crate::state::{
    BalancerView, Caller, GroupState, Observed, Preflight, Subnet, Unread, UnreadWhy, Vcpus,
    WeightedSet, ZoneLookup,
};

/// A read that failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to {what}: {message}")]
pub struct ObserveError {
    /// What was being read.
    pub what: String,
    /// AWS's answer or the transport error.
    pub message: String,
    /// Whether the service did not answer, or answered only that it is failing
    /// (timeouts, lost connections, 5xx): what a region that is down does.
    pub unanswered: bool,
}

impl ObserveError {
    /// A read that failed for a reason of its own (not a silent service).
    pub fn new(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            message: message.into(),
            unanswered: false,
        }
    }
}

/// A hosted zone as written in a playbook, looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedZone {
    /// What the lookup found.
    pub lookup: ZoneLookup,
    /// How many record sets the zone holds, when the lookup says.
    pub record_count: Option<i64>,
}

/// A record name as written in the playbook and its type.
pub type RecordKey = (String, RecordType);

/// The reads a plan needs. Every method only reads.
// Plans await these in one task and never spawn them, so the futures need not be
// `Send`.
#[allow(async_fn_in_trait)]
pub trait Observe {
    /// The named Auto Scaling groups of a region (missing ones are absent).
    async fn groups_named(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<Vec<GroupState>, ObserveError>;
    /// The groups of a region that carry, for every key of `tags`, one of its values.
    async fn groups_tagged(
        &self,
        region: &Region,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Vec<GroupState>, ObserveError>;
    /// The availability zone and free addresses of each subnet (unknown ones are
    /// absent).
    async fn subnets(
        &self,
        region: &Region,
        ids: &[String],
    ) -> Result<BTreeMap<String, Subnet>, ObserveError>;
    /// The state of each named alarm (`OK`, `ALARM`, `INSUFFICIENT_DATA`); missing
    /// alarms are absent.
    async fn alarm_states(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, ObserveError>;
    /// Whether a Route 53 health check exists.
    async fn health_check_exists(&self, id: &str) -> Result<bool, ObserveError>;
    /// Whether a Route 53 health check passes, as Route 53 decides.
    async fn health_check_passes(&self, id: &str) -> Result<bool, ObserveError>;
    /// The lifecycle hooks, scaling policies and scheduled actions of the named
    /// groups of a region; groups with none are absent.
    async fn preflight(
        &self,
        region: &Region,
        groups: &[String],
        hooks: bool,
    ) -> Result<BTreeMap<String, Preflight>, ObserveError>;
    /// How the instances of groups of a region, as just read, stand in the groups'
    /// load balancers; groups with none are absent.
    async fn balancers(
        &self,
        region: &Region,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<BalancerView>>, ObserveError>;
    /// The instance types the named groups of a region launch, with their vCPUs,
    /// and the region's On-Demand vCPU quotas those fall under, with what they count
    /// now. A quota that cannot be read says why; it does not fail the read.
    async fn vcpus(&self, region: &Region, groups: &[&GroupState]) -> Result<Vcpus, ObserveError>;
    /// What a zone step's zonal shifts would move: the load balancers of the groups'
    /// target groups, and what ARC says of each of them, of each group with zonal
    /// shift enabled and of each resource in `named`. A cloud without ARC has none.
    async fn shiftable(
        &self,
        _region: &Region,
        _groups: &[&GroupState],
        _named: &[String],
    ) -> Result<crate::state::Shiftable, ObserveError> {
        Ok(crate::state::Shiftable::default())
    }
    /// The types of the record sets named `name` in hosted zone `zone_id` (a CNAME
    /// where an A was asked): said when the wanted type has none.
    async fn record_types(&self, _zone_id: &str, _name: &str) -> Result<Vec<String>, ObserveError> {
        Ok(Vec::new())
    }
    /// Looks up hosted zones as written in a playbook: ids or names.
    async fn hosted_zones(
        &self,
        written: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, HostedZone>, ObserveError>;
    /// Who the calls are made as, when the cloud can say.
    async fn caller(&self) -> Result<Option<Caller>, ObserveError> {
        Ok(None)
    }
    /// Where the cloud's requests and answers are counted per region, when it
    /// counts them: how a region that does not answer is named.
    fn pulse(&self) -> Option<&crate::pulse::Pulse> {
        None
    }
    /// The region the caller is asked in (STS), when the cloud has one.
    fn home_region(&self) -> Option<String> {
        None
    }
    /// The weighted sets of each (record name as written, type) of one hosted zone.
    async fn weighted_sets(
        &self,
        zone_id: &str,
        record_count: Option<i64>,
        wanted: &BTreeSet<RecordKey>,
    ) -> Result<BTreeMap<RecordKey, Vec<WeightedSet>>, ObserveError>;
}

impl<T: Observe> Observe for &T {
    async fn groups_named(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<Vec<GroupState>, ObserveError> {
        (**self).groups_named(region, names).await
    }
    async fn groups_tagged(
        &self,
        region: &Region,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Vec<GroupState>, ObserveError> {
        (**self).groups_tagged(region, tags).await
    }
    async fn subnets(
        &self,
        region: &Region,
        ids: &[String],
    ) -> Result<BTreeMap<String, Subnet>, ObserveError> {
        (**self).subnets(region, ids).await
    }
    async fn alarm_states(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, ObserveError> {
        (**self).alarm_states(region, names).await
    }
    async fn health_check_exists(&self, id: &str) -> Result<bool, ObserveError> {
        (**self).health_check_exists(id).await
    }
    async fn health_check_passes(&self, id: &str) -> Result<bool, ObserveError> {
        (**self).health_check_passes(id).await
    }
    async fn preflight(
        &self,
        region: &Region,
        groups: &[String],
        hooks: bool,
    ) -> Result<BTreeMap<String, Preflight>, ObserveError> {
        (**self).preflight(region, groups, hooks).await
    }
    async fn balancers(
        &self,
        region: &Region,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<BalancerView>>, ObserveError> {
        (**self).balancers(region, groups).await
    }
    async fn shiftable(
        &self,
        region: &Region,
        groups: &[&GroupState],
        named: &[String],
    ) -> Result<crate::state::Shiftable, ObserveError> {
        (**self).shiftable(region, groups, named).await
    }
    async fn vcpus(&self, region: &Region, groups: &[&GroupState]) -> Result<Vcpus, ObserveError> {
        (**self).vcpus(region, groups).await
    }
    async fn record_types(&self, zone_id: &str, name: &str) -> Result<Vec<String>, ObserveError> {
        (**self).record_types(zone_id, name).await
    }
    async fn hosted_zones(
        &self,
        written: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, HostedZone>, ObserveError> {
        (**self).hosted_zones(written).await
    }
    async fn caller(&self) -> Result<Option<Caller>, ObserveError> {
        (**self).caller().await
    }
    fn pulse(&self) -> Option<&crate::pulse::Pulse> {
        (**self).pulse()
    }
    fn home_region(&self) -> Option<String> {
        (**self).home_region()
    }
    async fn weighted_sets(
        &self,
        zone_id: &str,
        record_count: Option<i64>,
        wanted: &BTreeSet<RecordKey>,
    ) -> Result<BTreeMap<RecordKey, Vec<WeightedSet>>, ObserveError> {
        (**self).weighted_sets(zone_id, record_count, wanted).await
    }
}

/// Up to this many hosted zones written by name are looked up one by one
/// (ListHostedZonesByName); more are found in one listing of all (ListHostedZones).
pub const ZONES_LOOKED_UP_BY_NAME: usize = 2;

/// Whether a playbook's `zone` is a hosted zone id rather than a name.
pub fn is_zone_id(zone: &str) -> bool {
    zone.starts_with("/hostedzone/") || (!zone.contains('.') && zone.starts_with('Z'))
}

/// What a playbook needs to read.
#[derive(Debug, Default)]
pub struct Needs<'a> {
    /// Per region, the named groups used there.
    pub groups: BTreeMap<Region, BTreeMap<String, &'a GroupSpec>>,
    /// Regions where an `evacuate_zone` step needs subnet zones.
    pub subnets: BTreeSet<Region>,
    /// Per region, the named groups a `scale_up` or `drain` changes there: their
    /// hooks, policies and scheduled actions are read.
    pub changed: BTreeMap<Region, BTreeSet<String>>,
    /// Per region, the named groups a `scale_up` scales there: their subnets' free
    /// addresses are read.
    pub scaled: BTreeMap<Region, BTreeSet<String>>,
    /// Records used by `shift_traffic` steps.
    pub records: BTreeMap<String, &'a RecordSpec>,
    /// Per region, alarm names (stop conditions and checks).
    pub alarms: BTreeMap<Region, BTreeSet<String>>,
    /// Route 53 health check ids.
    pub health_checks: BTreeSet<String>,
    /// Per region, the named groups an `evacuate_zone` step moves out with zonal
    /// shift: their load balancers and ARC's view of them are read.
    pub shifted: BTreeMap<Region, BTreeSet<String>>,
    /// Per region, resources `evacuate_zone` steps name to shift (`load_balancers`).
    pub shift_named: BTreeMap<Region, BTreeSet<String>>,
}

impl<'a> Needs<'a> {
    /// Whether the playbook reads nothing (only waits and approvals): then it does
    /// not call AWS at all, not even to ask who it is.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
            && self.records.is_empty()
            && self.alarms.is_empty()
            && self.health_checks.is_empty()
    }

    /// Works out every read `playbook` needs in `account` (`None`: the ambient one).
    pub fn of(playbook: &'a Playbook, account: Option<&str>) -> Self {
        let mut needs = Needs::default();
        // Adds the named groups of `account` in `region`, and returns their names.
        let add_groups = |needs: &mut Needs<'a>, region: &Region, names: &Names| {
            let mut added = Vec::new();
            for name in names.iter() {
                if let Some(spec) = playbook.groups.get(name)
                    && spec.account.as_deref() == account
                {
                    needs
                        .groups
                        .entry(region.clone())
                        .or_default()
                        .insert(name.clone(), spec);
                    added.push(name.clone());
                }
            }
            added
        };
        for condition in &playbook.stop_when {
            match condition {
                StopCondition::Alarm(a) if a.account.as_deref() == account => {
                    needs
                        .alarms
                        .entry(a.region.clone())
                        .or_default()
                        .insert(a.name.clone());
                }
                StopCondition::HealthCheck(h) if h.account.as_deref() == account => {
                    needs.health_checks.insert(h.id.clone());
                }
                StopCondition::Alarm(_) | StopCondition::HealthCheck(_) => {}
            }
        }
        for step in &playbook.steps {
            match &step.action {
                Action::ScaleUp(s) => {
                    let scaled = add_groups(&mut needs, &s.region, &s.group);
                    mark(&mut needs.changed, &s.region, &scaled);
                    mark(&mut needs.scaled, &s.region, &scaled);
                    if let Some(absorb) = &s.absorb {
                        add_groups(&mut needs, &absorb.from, &s.group);
                    }
                }
                Action::Drain(d) => {
                    let drained = add_groups(&mut needs, &d.region, &d.group);
                    mark(&mut needs.changed, &d.region, &drained);
                    // A drain is checked against the traffic its region still gets.
                    for (name, spec) in &playbook.records {
                        if spec.set_identifiers.contains_key(&d.region)
                            && spec.account.as_deref() == account
                        {
                            needs.records.insert(name.clone(), spec);
                        }
                    }
                }
                Action::EvacuateZone(z) => {
                    let added = add_groups(&mut needs, &z.region, &z.group);
                    needs.subnets.insert(z.region.clone());
                    // Without keeping capacity, the records the region serves must
                    // still be carried: their weights, and the groups serving them in
                    // every region they serve, are read.
                    if !z.keep_capacity {
                        for (name, spec) in &playbook.records {
                            if !spec.set_identifiers.contains_key(&z.region) {
                                continue;
                            }
                            if spec.account.as_deref() == account {
                                needs.records.insert(name.clone(), spec);
                            }
                            let serving = Names(playbook.serving_groups(name));
                            for region in spec.set_identifiers.keys() {
                                add_groups(&mut needs, region, &serving);
                            }
                        }
                    }
                    if z.zonal_shift {
                        needs
                            .shifted
                            .entry(z.region.clone())
                            .or_default()
                            .extend(added);
                        // Named resources are read with the ambient account's groups.
                        if account.is_none() && !z.load_balancers.is_empty() {
                            needs
                                .shift_named
                                .entry(z.region.clone())
                                .or_default()
                                .extend(z.load_balancers.iter().cloned());
                        }
                    }
                }
                Action::ShiftTraffic(s) => {
                    for name in s.record.iter() {
                        if let Some(spec) = playbook.records.get(name)
                            && spec.account.as_deref() == account
                        {
                            needs.records.insert(name.clone(), spec);
                        }
                        // Capacity follows traffic: the groups serving the record
                        // are read in every region it serves.
                        if let Some(spec) = playbook.records.get(name) {
                            let serving = Names(playbook.serving_groups(name));
                            for region in spec.set_identifiers.keys() {
                                add_groups(&mut needs, region, &serving);
                            }
                        }
                    }
                }
                Action::Check(c) => {
                    if let Some(a) = &c.alarm
                        && a.account.as_deref() == account
                    {
                        needs
                            .alarms
                            .entry(a.region.clone())
                            .or_default()
                            .insert(a.name.clone());
                    }
                    if let Some(h) = &c.health_check
                        && h.account.as_deref() == account
                    {
                        needs.health_checks.insert(h.id.clone());
                    }
                }
                Action::Wait(_) | Action::Approve(_) => {}
            }
        }
        needs
    }
}

/// Adds `names` to `region`'s set in `map`; a region gets a set only when there is a
/// name to put in it.
fn mark(map: &mut BTreeMap<Region, BTreeSet<String>>, region: &Region, names: &[String]) {
    if !names.is_empty() {
        map.entry(region.clone())
            .or_default()
            .extend(names.iter().cloned());
    }
}

/// Reads everything `playbook` needs, each account through its own cloud, the
/// accounts, regions and services concurrently. What was found in a named account
/// is routed to it in [`Observed::routes`].
pub async fn observe<C: Observe>(
    clouds: &Accounts<C>,
    playbook: &Playbook,
) -> Result<Observed, ObserveError> {
    observe_with(clouds, playbook, Reads::default()).await
}

/// What a read of the live state may leave out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reads {
    /// Whether the lifecycle hooks of the changed groups are read: one call per
    /// group, the slowest read at fleet size, and only ever a warning. A run of a
    /// saved plan leaves them out: the plan read them and showed their warnings.
    pub lifecycle_hooks: bool,
}

impl Default for Reads {
    fn default() -> Self {
        Reads {
            lifecycle_hooks: true,
        }
    }
}

/// Which regions are read live, and how long a region may leave the reads
/// unanswered.
#[derive(Clone, Debug)]
pub struct Reach {
    /// Regions read from their last known state only (`--region-down`): nothing
    /// is sent to them.
    pub down: BTreeSet<String>,
    /// How long a region may leave a request unanswered while answering nothing
    /// before its reads are given up on ([`crate::limits::region_budget`]).
    pub budget: std::time::Duration,
}

impl Default for Reach {
    fn default() -> Self {
        Self {
            down: BTreeSet::new(),
            budget: crate::limits::region_budget(),
        }
    }
}

/// [`observe`], leaving out what `reads` says.
pub async fn observe_with<C: Observe>(
    clouds: &Accounts<C>,
    playbook: &Playbook,
    reads: Reads,
) -> Result<Observed, ObserveError> {
    observe_reaching(clouds, playbook, reads, &Reach::default()).await
}

/// [`observe_with`], reading nothing in the regions `reach` says are down, and
/// giving up on a region that stays silent past its budget. Those regions are
/// listed in [`Observed::unread`], without values: [`fill_from_records`] gives
/// them their last known ones.
pub async fn observe_reaching<C: Observe>(
    clouds: &Accounts<C>,
    playbook: &Playbook,
    reads: Reads,
    reach: &Reach,
) -> Result<Observed, ObserveError> {
    let ambient = observe_in(&clouds.ambient, playbook, None, reads, reach);
    let named = try_join_all(playbook.accounts.keys().map(|name| async move {
        let cloud = clouds.get(Some(name)).ok_or_else(|| {
            ObserveError::new(
                format!("read in account `{name}`"),
                "no credentials were set up for it",
            )
        })?;
        observe_in(cloud, playbook, Some(name), reads, reach)
            .await
            .map(|observed| (name, observed))
    }));
    let (mut observed, named) = futures::try_join!(ambient, named)?;
    for (name, part) in named {
        merge(&mut observed, name, part)?;
    }
    for region in &reach.down {
        observed.unread.insert(
            region.clone(),
            Unread {
                why: UnreadWhy::Down,
                read_at: None,
            },
        );
    }
    Ok(observed)
}

/// Gives every region of [`Observed::unread`] the values of its last known state
/// (`records`, by region): what each account's reads there found when it was
/// read. A region with no record gets nothing, and the plan says what is missing.
pub async fn fill_from_records(
    observed: &mut Observed,
    playbook: &Playbook,
    records: &BTreeMap<String, crate::plan::known::RegionRecord>,
    reads: Reads,
) -> Result<(), ObserveError> {
    let empty = crate::plan::known::RegionRecord::default();
    let regions: Vec<String> = observed.unread.keys().cloned().collect();
    for region_name in regions {
        let Ok(region) = Region::parse(&region_name) else {
            continue;
        };
        let record = records.get(&region_name).unwrap_or(&empty);
        let mut oldest: Option<String> = None;
        let accounts =
            std::iter::once(None).chain(playbook.accounts.keys().map(|n| Some(n.as_str())));
        for account in accounts {
            let needs = Needs::of(playbook, account);
            let recorded = crate::plan::known::Recorded::new(record, account);
            let (groups, alarms) = read_region(&recorded, &needs, &region, reads).await?;
            let mut part = Observed::default();
            put_region(&mut part, &region, groups, alarms);
            match account {
                None => absorb(observed, part),
                Some(name) => merge(observed, name, part)?,
            }
            if let Some(at) = recorded.oldest()
                && oldest.as_ref().is_none_or(|o| at < *o)
            {
                oldest = Some(at);
            }
        }
        if let Some(unread) = observed.unread.get_mut(&region_name) {
            unread.read_at = oldest;
        }
    }
    Ok(())
}

/// Adds what was read in the ambient account to `into` (no routes to make).
fn absorb(into: &mut Observed, part: Observed) {
    for (region, resolved) in part.resolved_groups {
        into.resolved_groups
            .entry(region)
            .or_default()
            .extend(resolved);
    }
    for (region, groups) in part.groups {
        into.groups.entry(region).or_default().extend(groups);
    }
    into.subnet_zones.extend(part.subnet_zones);
    into.subnet_zone_ids.extend(part.subnet_zone_ids);
    into.subnet_free.extend(part.subnet_free);
    for (region, alarms) in part.alarms {
        into.alarms.entry(region).or_default().extend(alarms);
    }
}

/// Adds what was read in the named account `account` to `into`, routing each
/// resource found there to it. Calls reach a group by region and name, a zone by id,
/// an alarm by region and name: the same one found in two accounts cannot be told
/// apart, and is an error naming both.
fn merge(into: &mut Observed, account: &str, part: Observed) -> Result<(), ObserveError> {
    let clash = |what: String, other: Option<&String>| ObserveError {
        unanswered: false,
        what: format!("tell apart {what}"),
        message: format!(
            "it is read in account `{account}` and in {}; evac reaches it by that name alone, so the playbook must name it in one account only",
            other.map_or("the ambient account".to_owned(), |o| format!(
                "account `{o}`"
            ))
        ),
    };
    merge_regional(
        &mut into.groups,
        &mut into.routes.groups,
        part.groups,
        account,
        |name, region, other| clash(format!("Auto Scaling group {name} in {region}"), other),
    )?;
    for (region, resolved) in part.resolved_groups {
        into.resolved_groups
            .entry(region)
            .or_default()
            .extend(resolved);
    }
    into.subnet_zones.extend(part.subnet_zones);
    into.subnet_zone_ids.extend(part.subnet_zone_ids);
    into.subnet_free.extend(part.subnet_free);
    for (written, lookup) in part.zones {
        if into.zones.contains_key(&written) {
            let other = match into.zones.get(&written) {
                Some(ZoneLookup::Found { id, .. }) => into.routes.zones.get(id),
                _ => None,
            };
            return Err(clash(format!("hosted zone {written}"), other));
        }
        if let ZoneLookup::Found { id, .. } = &lookup {
            into.routes.zones.insert(id.clone(), account.to_owned());
        }
        into.zones.insert(written, lookup);
    }
    into.records.extend(part.records);
    into.record_types.extend(part.record_types);
    merge_regional(
        &mut into.alarms,
        &mut into.routes.alarms,
        part.alarms,
        account,
        |name, region, other| clash(format!("alarm {name} in {region}"), other),
    )?;
    for (id, exists) in part.health_checks {
        if into.health_checks.contains_key(&id) {
            return Err(clash(
                format!("health check {id}"),
                into.routes.health_checks.get(&id),
            ));
        }
        into.routes
            .health_checks
            .insert(id.clone(), account.to_owned());
        into.health_checks.insert(id, exists);
    }
    into.set_health.extend(part.set_health);
    for (region, groups) in part.preflight {
        into.preflight.entry(region).or_default().extend(groups);
    }
    for (region, groups) in part.balancers {
        into.balancers.entry(region).or_default().extend(groups);
    }
    for (region, groups) in part.shift_balancers {
        into.shift_balancers
            .entry(region)
            .or_default()
            .extend(groups);
    }
    for (arn, read) in part.managed {
        into.routes.shifts.insert(arn.clone(), account.to_owned());
        into.managed.insert(arn, read);
    }
    for (region, vcpus) in part.vcpus {
        let into = into.vcpus.entry(region).or_default();
        into.groups.extend(vcpus.groups);
        into.unknown.extend(vcpus.unknown);
        // Each account has quotas of its own; the scale-ups of one region in two
        // accounts are checked against the stricter.
        for (code, quota) in vcpus.quotas {
            match into.quotas.get(&code) {
                Some(have)
                    if have.limit.map(|l| l.saturating_sub(have.used))
                        <= quota.limit.map(|l| l.saturating_sub(quota.used)) => {}
                _ => {
                    into.quotas.insert(code, quota);
                }
            }
        }
    }
    if let Some(caller) = part.caller {
        into.callers.insert(account.to_owned(), caller);
    }
    into.unread.extend(part.unread);
    Ok(())
}

/// Adds `part`'s resources (per region, per name) read in `account` to `into`,
/// routing each to it; one already there is an error made by `clash` (name, region,
/// the account it was read in).
fn merge_regional<T>(
    into: &mut BTreeMap<String, BTreeMap<String, T>>,
    routes: &mut BTreeMap<String, BTreeMap<String, String>>,
    part: BTreeMap<String, BTreeMap<String, T>>,
    account: &str,
    clash: impl Fn(&str, &str, Option<&String>) -> ObserveError,
) -> Result<(), ObserveError> {
    for (region, found) in part {
        for (name, value) in found {
            let routed = routes.entry(region.clone()).or_default();
            if into
                .get(&region)
                .is_some_and(|here| here.contains_key(&name))
            {
                return Err(clash(&name, &region, routed.get(&name)));
            }
            routed.insert(name.clone(), account.to_owned());
            into.entry(region.clone()).or_default().insert(name, value);
        }
    }
    routes.retain(|_, routed| !routed.is_empty());
    Ok(())
}

/// Reads everything `playbook` needs in one account through that account's cloud,
/// the regions and services concurrently; nothing in the regions `reach` says are
/// down, and nothing more of a region that stays silent past its budget.
async fn observe_in(
    cloud: &impl Observe,
    playbook: &Playbook,
    account: Option<&str>,
    reads: Reads,
    reach: &Reach,
) -> Result<Observed, ObserveError> {
    let needs = Needs::of(playbook, account);
    let budget = reach.budget;
    let regions: BTreeSet<&Region> = needs
        .groups
        .keys()
        .chain(needs.alarms.keys())
        .filter(|r| !reach.down.contains(r.as_str()))
        .collect();
    let needs_ref = &needs;
    let regional = try_join_all(regions.into_iter().map(|region| async move {
        let read = read_region(cloud, needs_ref, region, reads);
        let said = match crate::pulse::watch(cloud.pulse(), region.as_str(), budget, read).await {
            Ok(Ok((groups, alarms))) => return Ok((region.clone(), Ok((groups, alarms)))),
            Ok(Err(err)) if err.unanswered => format!("{region} is failing ({err})"),
            Ok(Err(err)) => return Err(err),
            Err(silence) => silence.to_string(),
        };
        Ok((region.clone(), Err(said)))
    }));
    // Route 53's control plane is in us-east-1; STS is asked in the home region.
    let route53 = crate::route53::REGION;
    let global = |what: &'static str, region: String, silence: crate::pulse::Silence| {
        ObserveError {
            what: what.to_owned(),
            message: format!(
                "{silence}; {}",
                if region == route53 {
                    "Route 53's control plane is in us-east-1: no traffic can be moved while it does not answer"
                } else {
                    "set AWS_REGION to a region that answers"
                }
            ),
            unanswered: true,
        }
    };
    let records = async {
        crate::pulse::watch(
            cloud.pulse(),
            route53,
            budget,
            records(cloud, &needs.records),
        )
        .await
        .map_err(|s| global("read Route 53", route53.to_owned(), s))?
    };
    let checks = async {
        let checks = try_join_all(needs.health_checks.iter().map(|id| async move {
            cloud
                .health_check_exists(id)
                .await
                .map(|exists| (id.clone(), exists))
        }));
        crate::pulse::watch(cloud.pulse(), route53, budget, checks)
            .await
            .map_err(|s| global("read Route 53 health checks", route53.to_owned(), s))?
    };
    let caller = async {
        if needs.is_empty() {
            return Ok(None);
        }
        let home = cloud.home_region().unwrap_or_else(|| route53.to_owned());
        crate::pulse::watch(cloud.pulse(), &home, budget, cloud.caller())
            .await
            .map_err(|s| global("ask STS who the calls are made as", home.clone(), s))?
    };
    let (regional, (zones, records, record_types), health_checks, caller) =
        futures::try_join!(regional, records, checks, caller)?;
    // The health checks of the weighted sets the steps change: Route 53 skips a set
    // whose check fails.
    let set_checks: BTreeSet<&String> = records
        .values()
        .flatten()
        .filter_map(|s| s.health_check_id.as_ref())
        .collect();
    let set_health = try_join_all(set_checks.into_iter().map(|id| async move {
        cloud
            .health_check_passes(id)
            .await
            .map(|passes| (id.clone(), passes))
    }))
    .await?;

    let mut observed = Observed {
        zones,
        records,
        record_types,
        health_checks: health_checks.into_iter().collect(),
        set_health: set_health.into_iter().collect(),
        caller,
        ..Observed::default()
    };
    for (region, read) in regional {
        match read {
            Ok((groups, alarms)) => put_region(&mut observed, &region, groups, alarms),
            Err(said) => {
                observed.unread.insert(
                    region.to_string(),
                    Unread {
                        why: UnreadWhy::Silent { said },
                        read_at: None,
                    },
                );
            }
        }
    }
    Ok(observed)
}

/// What one region's reads found: its groups (when any are needed there) and the
/// states of its alarms.
type RegionRead = (Option<RegionGroups>, Option<BTreeMap<String, String>>);

/// Makes `needs`' reads of one region, its groups and alarms concurrently.
async fn read_region(
    cloud: &impl Observe,
    needs: &Needs<'_>,
    region: &Region,
    reads: Reads,
) -> Result<RegionRead, ObserveError> {
    let groups = async {
        let Some(named) = needs.groups.get(region) else {
            return Ok(None);
        };
        region_groups(cloud, region, named, needs, reads)
            .await
            .map(Some)
    };
    let alarms = async {
        let Some(names) = needs.alarms.get(region) else {
            return Ok(None);
        };
        let names: Vec<String> = names.iter().cloned().collect();
        cloud.alarm_states(region, &names).await.map(Some)
    };
    futures::try_join!(groups, alarms)
}

/// Puts what one region's reads found into `observed`.
fn put_region(
    observed: &mut Observed,
    region: &Region,
    groups: Option<RegionGroups>,
    alarms: Option<BTreeMap<String, String>>,
) {
    if let Some(found) = groups {
        observed
            .resolved_groups
            .insert(region.to_string(), found.resolved);
        observed.groups.insert(region.to_string(), found.states);
        observed.subnet_zones.extend(found.subnet_zones);
        observed.subnet_zone_ids.extend(found.subnet_zone_ids);
        observed.subnet_free.extend(found.subnet_free);
        if !found.preflight.is_empty() {
            observed
                .preflight
                .insert(region.to_string(), found.preflight);
        }
        if !found.balancers.is_empty() {
            observed
                .balancers
                .insert(region.to_string(), found.balancers);
        }
        if let Some(vcpus) = found.vcpus {
            observed.vcpus.insert(region.to_string(), vcpus);
        }
        if !found.shiftable.balancers.is_empty() {
            observed
                .shift_balancers
                .insert(region.to_string(), found.shiftable.balancers);
        }
        observed.managed.extend(found.shiftable.managed);
    }
    if let Some(alarms) = alarms {
        observed.alarms.insert(region.to_string(), alarms);
    }
}

struct RegionGroups {
    resolved: BTreeMap<String, Vec<String>>,
    states: BTreeMap<String, GroupState>,
    subnet_zones: BTreeMap<String, String>,
    subnet_zone_ids: BTreeMap<String, String>,
    subnet_free: BTreeMap<String, u32>,
    preflight: BTreeMap<String, Preflight>,
    balancers: BTreeMap<String, Vec<BalancerView>>,
    vcpus: Option<Vcpus>,
    shiftable: crate::state::Shiftable,
}

/// The groups of one region: every explicit name in one read, and one read per set
/// of tag keys with every wanted value of each key; each named group then keeps the
/// groups that carry all of its tags.
async fn region_groups(
    cloud: &impl Observe,
    region: &Region,
    named: &BTreeMap<String, &GroupSpec>,
    needs: &Needs<'_>,
    reads: Reads,
) -> Result<RegionGroups, ObserveError> {
    let with_subnets = needs.subnets.contains(region);
    let changed = needs.changed.get(region);
    let scaled = needs.scaled.get(region);
    let mut found: BTreeMap<String, GroupState> = BTreeMap::new();
    let names: BTreeSet<&String> = named
        .values()
        .filter_map(|s| s.names_in(region.as_str()))
        .flatten()
        .collect();
    if !names.is_empty() {
        let names: Vec<String> = names.into_iter().cloned().collect();
        for group in cloud.groups_named(region, &names).await? {
            found.insert(group.name.clone(), group);
        }
    }
    let mut by_keys: BTreeMap<Vec<&String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for spec in named.values() {
        if let Some(tags) = &spec.tags {
            let entry = by_keys.entry(tags.keys().collect()).or_default();
            for (key, value) in tags {
                entry.entry(key.clone()).or_default().insert(value.clone());
            }
        }
    }
    for filters in by_keys.values() {
        for group in cloud.groups_tagged(region, filters).await? {
            found.insert(group.name.clone(), group);
        }
    }

    let mut resolved = BTreeMap::new();
    for (name, spec) in named {
        let members: Vec<String> = found
            .values()
            .filter(|g| match (spec.names_in(region.as_str()), &spec.tags) {
                (Some(names), _) => names.contains(&g.name),
                (None, Some(tags)) => tags.iter().all(|(k, v)| g.tags.get(k) == Some(v)),
                (None, None) => false,
            })
            .map(|g| g.name.clone())
            .collect();
        resolved.insert(name.clone(), members);
    }
    // The Auto Scaling groups of some of the named groups.
    let members = |named: Option<&BTreeSet<String>>| -> BTreeSet<String> {
        named
            .into_iter()
            .flatten()
            .filter_map(|name| resolved.get(name))
            .flatten()
            .cloned()
            .collect()
    };
    // Subnets: their zones for a zone evacuation (every group's), their free
    // addresses for a scale-up (the scaled groups'), in one read.
    let wanted: BTreeSet<String> = if with_subnets {
        found
            .values()
            .flat_map(|g| g.subnets.iter().cloned())
            .collect()
    } else {
        members(scaled)
            .iter()
            .filter_map(|g| found.get(g))
            .flat_map(|g| g.subnets.iter().cloned())
            .collect()
    };
    let changed: Vec<String> = members(changed).into_iter().collect();
    let subnets = async {
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let ids: Vec<String> = wanted.into_iter().collect();
        cloud.subnets(region, &ids).await
    };
    let preflight = async {
        if changed.is_empty() {
            return Ok(BTreeMap::new());
        }
        cloud
            .preflight(region, &changed, reads.lifecycle_hooks)
            .await
    };
    // Load balancers: of the changed groups attached to one.
    let balanced: Vec<&GroupState> = changed
        .iter()
        .filter_map(|g| found.get(g))
        .filter(|s| !s.balancers.is_empty())
        .collect();
    let balancers = async {
        if balanced.is_empty() {
            return Ok(BTreeMap::new());
        }
        cloud.balancers(region, &balanced).await
    };
    // vCPU quotas: of the scaled groups.
    let raised_names = members(scaled);
    let raised: Vec<&GroupState> = raised_names.iter().filter_map(|g| found.get(g)).collect();
    let vcpus = async {
        if raised.is_empty() {
            return Ok(None);
        }
        cloud.vcpus(region, &raised).await.map(Some)
    };
    // Zonal shifts: the load balancers of the shifted groups, and ARC's view.
    let shifted_names = members(needs.shifted.get(region));
    let shifted: Vec<&GroupState> = shifted_names.iter().filter_map(|g| found.get(g)).collect();
    let shift_named: Vec<String> = needs
        .shift_named
        .get(region)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let shiftable = async {
        if shifted.is_empty() && shift_named.is_empty() {
            return Ok(crate::state::Shiftable::default());
        }
        cloud.shiftable(region, &shifted, &shift_named).await
    };
    let (subnets, preflight, balancers, vcpus, shiftable) =
        futures::try_join!(subnets, preflight, balancers, vcpus, shiftable)?;
    let mut subnet_zones = BTreeMap::new();
    let mut subnet_zone_ids = BTreeMap::new();
    let mut subnet_free = BTreeMap::new();
    for (id, subnet) in subnets {
        if with_subnets {
            subnet_zones.insert(id.clone(), subnet.zone);
            if let Some(zone_id) = subnet.zone_id {
                subnet_zone_ids.insert(id.clone(), zone_id);
            }
        }
        subnet_free.insert(id, subnet.free);
    }
    Ok(RegionGroups {
        resolved,
        states: found,
        subnet_zones,
        subnet_zone_ids,
        subnet_free,
        preflight,
        balancers,
        vcpus,
        shiftable,
    })
}

/// The hosted zones of the records, then each zone's wanted record sets, the zones
/// concurrently.
async fn records(
    cloud: &impl Observe,
    records: &BTreeMap<String, &RecordSpec>,
) -> Result<
    (
        BTreeMap<String, ZoneLookup>,
        BTreeMap<String, Vec<WeightedSet>>,
        BTreeMap<String, Vec<String>>,
    ),
    ObserveError,
> {
    if records.is_empty() {
        return Ok(Default::default());
    }
    let written: BTreeSet<&str> = records.values().map(|r| r.zone.as_str()).collect();
    let zones = cloud.hosted_zones(&written).await?;

    // Per resolved zone id: its record count and the (name, type) pairs wanted.
    let mut wanted: BTreeMap<&str, (Option<i64>, BTreeSet<RecordKey>)> = BTreeMap::new();
    for spec in records.values() {
        if let Some(HostedZone {
            lookup: ZoneLookup::Found { id, .. },
            record_count,
        }) = zones.get(&spec.zone)
        {
            wanted
                .entry(id.as_str())
                .or_insert_with(|| (*record_count, BTreeSet::new()))
                .1
                .insert((spec.name.clone(), spec.record_type));
        }
    }
    let listed = try_join_all(
        wanted
            .into_iter()
            .map(|(zone_id, (count, pairs))| async move {
                cloud
                    .weighted_sets(zone_id, count, &pairs)
                    .await
                    .map(|sets| (zone_id.to_owned(), sets))
            }),
    )
    .await?;
    let listed: BTreeMap<String, BTreeMap<RecordKey, Vec<WeightedSet>>> =
        listed.into_iter().collect();

    let mut out = BTreeMap::new();
    let mut missing: Vec<(String, String, String)> = Vec::new();
    for (name, spec) in records {
        let sets = match zones.get(&spec.zone).map(|z| &z.lookup) {
            Some(ZoneLookup::Found { id, .. }) => {
                let sets = listed
                    .get(id)
                    .and_then(|by_name| by_name.get(&(spec.name.clone(), spec.record_type)))
                    .cloned()
                    .unwrap_or_default();
                if sets.is_empty() {
                    missing.push((name.clone(), id.clone(), spec.name.clone()));
                }
                sets
            }
            _ => Vec::new(),
        };
        out.insert(name.clone(), sets);
    }
    // A record not found under its type: which types its name has, to say so.
    let others = try_join_all(missing.iter().map(|(record, zone_id, dns)| async move {
        cloud
            .record_types(zone_id, dns)
            .await
            .map(|types| (record.clone(), types))
    }))
    .await?;
    let others: BTreeMap<String, Vec<String>> =
        others.into_iter().filter(|(_, t)| !t.is_empty()).collect();
    let lookups = zones
        .into_iter()
        .map(|(written, zone)| (written, zone.lookup))
        .collect();
    Ok((lookups, out, others))
}
