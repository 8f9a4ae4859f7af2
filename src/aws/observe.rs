//! Read-only observation of the AWS resources a playbook names.
//!
//! Reads are batched (up to 100 groups or alarms per call, whole hosted zones when
//! that takes fewer calls than one lookup per record) and the regions and services
//! are read concurrently. Nothing here mutates anything.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use aws_sdk_autoscaling::types::{AutoScalingGroup, Filter};
use aws_sdk_route53::types::RrType;
use futures::future::try_join_all;

use super::{AwsContext, sdk_error_text};
use crate::playbook::{Action, GroupSpec, Playbook, RecordSpec, RecordType, Region, StopCondition};
use crate::state::{Capacity, GroupState, Observed, WeightedSet, ZoneLookup};

/// A read that failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to {what}: {message}")]
pub struct ObserveError {
    /// What was being read.
    pub what: String,
    /// AWS's answer or the transport error.
    pub message: String,
}

fn read_err<E, R>(
    what: impl Into<String>,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ObserveError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let what = what.into();
    move |err| ObserveError {
        what,
        message: sdk_error_text(&err),
    }
}

/// The largest page the Auto Scaling and CloudWatch describe calls return.
const PAGE: usize = 100;
/// The largest page of ListResourceRecordSets.
const RECORD_PAGE: i64 = 300;

/// What a playbook needs to read.
#[derive(Debug, Default)]
pub struct Needs<'a> {
    /// Per region, the named groups used there.
    pub groups: BTreeMap<Region, BTreeMap<String, &'a GroupSpec>>,
    /// Regions where an `evacuate_zone` step needs subnet zones.
    pub subnets: BTreeSet<Region>,
    /// Records used by `shift_traffic` steps.
    pub records: BTreeMap<String, &'a RecordSpec>,
    /// Per region, alarm names (stop conditions and checks).
    pub alarms: BTreeMap<Region, BTreeSet<String>>,
    /// Route 53 health check ids.
    pub health_checks: BTreeSet<String>,
}

impl<'a> Needs<'a> {
    /// Works out every read `playbook` needs.
    pub fn of(playbook: &'a Playbook) -> Self {
        let mut needs = Needs::default();
        let add_groups =
            |needs: &mut Needs<'a>, region: &Region, names: &crate::playbook::Names| {
                for name in names.iter() {
                    if let Some(spec) = playbook.groups.get(name) {
                        needs
                            .groups
                            .entry(region.clone())
                            .or_default()
                            .insert(name.clone(), spec);
                    }
                }
            };
        for condition in &playbook.stop_when {
            match condition {
                StopCondition::Alarm(a) => {
                    needs
                        .alarms
                        .entry(a.region.clone())
                        .or_default()
                        .insert(a.name.clone());
                }
                StopCondition::HealthCheck(h) => {
                    needs.health_checks.insert(h.id.clone());
                }
            }
        }
        for step in &playbook.steps {
            match &step.action {
                Action::ScaleUp(s) => {
                    add_groups(&mut needs, &s.region, &s.group);
                    if let Some(absorb) = &s.absorb {
                        add_groups(&mut needs, &absorb.from, &s.group);
                    }
                }
                Action::Drain(d) => {
                    add_groups(&mut needs, &d.region, &d.group);
                    // A drain is checked against the traffic its region still gets.
                    for (name, spec) in &playbook.records {
                        if spec.set_identifiers.contains_key(&d.region) {
                            needs.records.insert(name.clone(), spec);
                        }
                    }
                }
                Action::EvacuateZone(z) => {
                    add_groups(&mut needs, &z.region, &z.group);
                    needs.subnets.insert(z.region.clone());
                }
                Action::ShiftTraffic(s) => {
                    for name in s.record.iter() {
                        if let Some(spec) = playbook.records.get(name) {
                            needs.records.insert(name.clone(), spec);
                        }
                    }
                }
                Action::Check(c) => {
                    if let Some(a) = &c.alarm {
                        needs
                            .alarms
                            .entry(a.region.clone())
                            .or_default()
                            .insert(a.name.clone());
                    }
                    if let Some(h) = &c.health_check {
                        needs.health_checks.insert(h.id.clone());
                    }
                }
                Action::Wait(_) | Action::Approve(_) => {}
            }
        }
        needs
    }
}

/// Reads everything `playbook` needs, concurrently.
pub async fn observe(ctx: &AwsContext, playbook: &Playbook) -> Result<Observed, ObserveError> {
    let needs = Needs::of(playbook);
    let groups = try_join_all(needs.groups.iter().map(|(region, named)| {
        let with_subnets = needs.subnets.contains(region);
        async move {
            observe_region_groups(ctx, region, named, with_subnets)
                .await
                .map(|r| (region.clone(), r))
        }
    }));
    let alarms = try_join_all(needs.alarms.iter().map(|(region, names)| async move {
        observe_alarms(ctx, region, names)
            .await
            .map(|a| (region.clone(), a))
    }));
    let records = observe_records(ctx, &needs.records);
    let checks = observe_health_checks(ctx, &needs.health_checks);
    let (groups, alarms, (zones, records), health_checks) =
        futures::try_join!(groups, alarms, records, checks)?;

    let mut observed = Observed {
        zones,
        records,
        health_checks,
        ..Observed::default()
    };
    for (region, found) in groups {
        observed
            .resolved_groups
            .insert(region.to_string(), found.resolved);
        observed.groups.insert(region.to_string(), found.states);
        observed.subnet_zones.extend(found.subnet_zones);
    }
    for (region, states) in alarms {
        observed.alarms.insert(region.to_string(), states);
    }
    Ok(observed)
}

struct RegionGroups {
    resolved: BTreeMap<String, Vec<String>>,
    states: BTreeMap<String, GroupState>,
    subnet_zones: BTreeMap<String, String>,
}

async fn observe_region_groups(
    ctx: &AwsContext,
    region: &Region,
    named: &BTreeMap<String, &GroupSpec>,
    with_subnets: bool,
) -> Result<RegionGroups, ObserveError> {
    let client = ctx.autoscaling(region);
    let mut found: BTreeMap<String, GroupState> = BTreeMap::new();

    // Explicit names: one call per 100 names.
    let names: BTreeSet<&String> = named
        .values()
        .filter_map(|s| s.names.as_ref())
        .flatten()
        .collect();
    let names: Vec<&String> = names.into_iter().collect();
    for chunk in names.chunks(PAGE) {
        let request = client
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(chunk.iter().map(|s| (*s).clone()).collect()))
            .max_records(PAGE as i32);
        describe_groups(request, region, &mut found).await?;
    }

    // Tags: one query per set of tag keys, with every wanted value of each key;
    // each named group then keeps the groups that carry all of its tags.
    let mut by_keys: BTreeMap<Vec<&String>, BTreeMap<&String, BTreeSet<&String>>> = BTreeMap::new();
    for spec in named.values() {
        if let Some(tags) = &spec.tags {
            let entry = by_keys.entry(tags.keys().collect()).or_default();
            for (key, value) in tags {
                entry.entry(key).or_default().insert(value);
            }
        }
    }
    for filters in by_keys.values() {
        let mut request = client
            .describe_auto_scaling_groups()
            .max_records(PAGE as i32);
        for (key, values) in filters {
            request = request.filters(
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .set_values(Some(values.iter().map(|v| (*v).clone()).collect()))
                    .build(),
            );
        }
        describe_groups(request, region, &mut found).await?;
    }

    let mut resolved = BTreeMap::new();
    for (name, spec) in named {
        let members: Vec<String> = found
            .values()
            .filter(|g| match (&spec.names, &spec.tags) {
                (Some(names), _) => names.contains(&g.name),
                (None, Some(tags)) => tags.iter().all(|(k, v)| g.tags.get(k) == Some(v)),
                (None, None) => false,
            })
            .map(|g| g.name.clone())
            .collect();
        resolved.insert(name.clone(), members);
    }
    let mut subnet_zones = BTreeMap::new();
    if with_subnets {
        let ids: BTreeSet<String> = found
            .values()
            .flat_map(|g| g.subnets.iter().cloned())
            .collect();
        subnet_zones = observe_subnets(ctx, region, ids.into_iter().collect()).await?;
    }
    Ok(RegionGroups {
        resolved,
        states: found,
        subnet_zones,
    })
}

/// Runs a DescribeAutoScalingGroups request through all its pages into `found`.
async fn describe_groups(
    request: aws_sdk_autoscaling::operation::describe_auto_scaling_groups::builders::DescribeAutoScalingGroupsFluentBuilder,
    region: &Region,
    found: &mut BTreeMap<String, GroupState>,
) -> Result<(), ObserveError> {
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(read_err(format!(
            "describe Auto Scaling groups in {region}"
        )))?;
        for group in page.auto_scaling_groups() {
            let state = group_state(group);
            found.insert(state.name.clone(), state);
        }
    }
    Ok(())
}

/// The state of a described group.
pub fn group_state(group: &AutoScalingGroup) -> GroupState {
    let to_u32 = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let mut instances_by_zone: BTreeMap<String, u32> = BTreeMap::new();
    let mut in_service = 0;
    for instance in group.instances() {
        if instance.lifecycle_state().map(|s| s.as_str()) == Some("InService") {
            in_service += 1;
            *instances_by_zone
                .entry(instance.availability_zone().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    GroupState {
        name: group
            .auto_scaling_group_name()
            .unwrap_or_default()
            .to_owned(),
        capacity: Capacity {
            min: to_u32(group.min_size()),
            desired: to_u32(group.desired_capacity()),
            max: to_u32(group.max_size()),
        },
        in_service,
        instances_by_zone,
        zones: group.availability_zones().to_vec(),
        subnets: group
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        suspended_processes: group
            .suspended_processes()
            .iter()
            .filter_map(|p| p.process_name())
            .map(str::to_owned)
            .collect(),
        tags: group
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
    }
}

async fn observe_subnets(
    ctx: &AwsContext,
    region: &Region,
    ids: Vec<String>,
) -> Result<BTreeMap<String, String>, ObserveError> {
    let mut zones = BTreeMap::new();
    if ids.is_empty() {
        return Ok(zones);
    }
    let client = ctx.ec2(region);
    for chunk in ids.chunks(200) {
        let answer = client
            .describe_subnets()
            .set_subnet_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(read_err(format!("describe subnets in {region}")))?;
        for subnet in answer.subnets() {
            if let (Some(id), Some(zone)) = (subnet.subnet_id(), subnet.availability_zone()) {
                zones.insert(id.to_owned(), zone.to_owned());
            }
        }
    }
    Ok(zones)
}

async fn observe_alarms(
    ctx: &AwsContext,
    region: &Region,
    names: &BTreeSet<String>,
) -> Result<BTreeMap<String, String>, ObserveError> {
    let client = ctx.cloudwatch(region);
    let names: Vec<String> = names.iter().cloned().collect();
    let mut states = BTreeMap::new();
    for chunk in names.chunks(PAGE) {
        let mut pages = client
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .max_records(PAGE as i32)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(read_err(format!("describe alarms in {region}")))?;
            for alarm in page.metric_alarms() {
                if let (Some(name), Some(state)) = (alarm.alarm_name(), alarm.state_value()) {
                    states.insert(name.to_owned(), state.as_str().to_owned());
                }
            }
        }
    }
    Ok(states)
}

async fn observe_health_checks(
    ctx: &AwsContext,
    ids: &BTreeSet<String>,
) -> Result<BTreeMap<String, bool>, ObserveError> {
    let client = ctx.route53();
    let answers = try_join_all(ids.iter().map(|id| {
        let client = client.clone();
        async move {
            match client.get_health_check().health_check_id(id).send().await {
                Ok(_) => Ok((id.clone(), true)),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_no_such_health_check()) =>
                {
                    Ok((id.clone(), false))
                }
                Err(err) => Err(read_err(format!("read health check {id}"))(err)),
            }
        }
    }))
    .await?;
    Ok(answers.into_iter().collect())
}

/// Whether a playbook's `zone` is a hosted zone id rather than a name.
fn is_zone_id(zone: &str) -> bool {
    zone.starts_with("/hostedzone/") || (!zone.contains('.') && zone.starts_with('Z'))
}

struct ZoneInfo {
    lookup: ZoneLookup,
    record_count: Option<i64>,
}

async fn observe_records(
    ctx: &AwsContext,
    records: &BTreeMap<String, &RecordSpec>,
) -> Result<
    (
        BTreeMap<String, ZoneLookup>,
        BTreeMap<String, Vec<WeightedSet>>,
    ),
    ObserveError,
> {
    let client = ctx.route53();
    let written: BTreeSet<&str> = records.values().map(|r| r.zone.as_str()).collect();
    let zones = resolve_zones(&client, &written).await?;

    // Per resolved zone id, the (name, type) pairs wanted.
    let mut wanted: BTreeMap<String, BTreeSet<(String, RrType)>> = BTreeMap::new();
    for spec in records.values() {
        if let Some(ZoneInfo {
            lookup: ZoneLookup::Found { id, .. },
            ..
        }) = zones.get(spec.zone.as_str())
        {
            wanted
                .entry(id.clone())
                .or_default()
                .insert((super::normalize_name(&spec.name), rr_type(spec.record_type)));
        }
    }
    let counts: BTreeMap<String, Option<i64>> = zones
        .values()
        .filter_map(|z| match &z.lookup {
            ZoneLookup::Found { id, .. } => Some((id.clone(), z.record_count)),
            _ => None,
        })
        .collect();
    let listed = try_join_all(wanted.into_iter().map(|(zone_id, pairs)| {
        let client = client.clone();
        let count = counts.get(&zone_id).copied().flatten();
        async move {
            list_zone_records(&client, &zone_id, &pairs, count)
                .await
                .map(|sets| (zone_id, sets))
        }
    }))
    .await?;
    let listed: BTreeMap<String, BTreeMap<(String, RrType), Vec<WeightedSet>>> =
        listed.into_iter().collect();

    let mut out = BTreeMap::new();
    for (name, spec) in records {
        let sets = match zones.get(spec.zone.as_str()).map(|z| &z.lookup) {
            Some(ZoneLookup::Found { id, .. }) => listed
                .get(id)
                .and_then(|by_name| {
                    by_name.get(&(super::normalize_name(&spec.name), rr_type(spec.record_type)))
                })
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        out.insert(name.clone(), sets);
    }
    let lookups = zones
        .into_iter()
        .map(|(written, info)| (written.to_owned(), info.lookup))
        .collect();
    Ok((lookups, out))
}

fn rr_type(t: RecordType) -> RrType {
    match t {
        RecordType::A => RrType::A,
        RecordType::Aaaa => RrType::Aaaa,
        RecordType::Cname => RrType::Cname,
    }
}

/// Resolves the zones written in the playbook: ids with GetHostedZone, names with
/// one ListHostedZonesByName each when there are one or two, else with one paged
/// ListHostedZones (100 zones a page).
async fn resolve_zones<'a>(
    client: &aws_sdk_route53::Client,
    written: &BTreeSet<&'a str>,
) -> Result<BTreeMap<&'a str, ZoneInfo>, ObserveError> {
    let mut out = BTreeMap::new();
    let (ids, names): (Vec<&str>, Vec<&str>) = written.iter().partition(|z| is_zone_id(z));
    for id in ids {
        let bare = id.trim_start_matches("/hostedzone/");
        let info = match client.get_hosted_zone().id(bare).send().await {
            Ok(answer) => match answer.hosted_zone() {
                Some(zone) => ZoneInfo {
                    lookup: ZoneLookup::Found {
                        id: bare.to_owned(),
                        name: zone.name().to_owned(),
                    },
                    record_count: zone.resource_record_set_count(),
                },
                None => ZoneInfo {
                    lookup: ZoneLookup::NotFound,
                    record_count: None,
                },
            },
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_hosted_zone()) =>
            {
                ZoneInfo {
                    lookup: ZoneLookup::NotFound,
                    record_count: None,
                }
            }
            Err(err) => return Err(read_err(format!("read hosted zone {id}"))(err)),
        };
        out.insert(id, info);
    }
    if names.is_empty() {
        return Ok(out);
    }
    let mut all: Vec<aws_sdk_route53::types::HostedZone> = Vec::new();
    if names.len() <= 2 {
        for name in &names {
            let answer = client
                .list_hosted_zones_by_name()
                .dns_name(*name)
                .max_items(10)
                .send()
                .await
                .map_err(read_err(format!("look up hosted zone {name}")))?;
            all.extend(answer.hosted_zones().iter().cloned());
        }
    } else {
        let mut pages = client
            .list_hosted_zones()
            .max_items(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(read_err("list hosted zones"))?;
            all.extend(page.hosted_zones().iter().cloned());
        }
    }
    for name in names {
        let wanted = super::normalize_name(name);
        let matches: Vec<&aws_sdk_route53::types::HostedZone> = all
            .iter()
            .filter(|z| super::normalize_name(z.name()) == wanted)
            .collect();
        let mut ids: Vec<String> = matches
            .iter()
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_owned())
            .collect();
        ids.dedup();
        let info = match ids.as_slice() {
            [] => ZoneInfo {
                lookup: ZoneLookup::NotFound,
                record_count: None,
            },
            [id] => ZoneInfo {
                lookup: ZoneLookup::Found {
                    id: id.clone(),
                    name: wanted.clone(),
                },
                record_count: matches.first().and_then(|z| z.resource_record_set_count()),
            },
            _ => ZoneInfo {
                lookup: ZoneLookup::Ambiguous { ids },
                record_count: None,
            },
        };
        out.insert(name, info);
    }
    Ok(out)
}

/// Lists the weighted sets of the wanted (name, type) pairs of one zone: the whole
/// zone when that takes fewer pages than one targeted lookup per pair.
async fn list_zone_records(
    client: &aws_sdk_route53::Client,
    zone_id: &str,
    pairs: &BTreeSet<(String, RrType)>,
    record_count: Option<i64>,
) -> Result<BTreeMap<(String, RrType), Vec<WeightedSet>>, ObserveError> {
    let whole_zone_pages = record_count.map(|n| (n.max(1) + RECORD_PAGE - 1) / RECORD_PAGE);
    let mut out: BTreeMap<(String, RrType), Vec<WeightedSet>> = BTreeMap::new();
    let mut seen: HashSet<(String, RrType, String)> = HashSet::new();
    let mut keep = |out: &mut BTreeMap<(String, RrType), Vec<WeightedSet>>,
                    set: &aws_sdk_route53::types::ResourceRecordSet| {
        let key = (super::normalize_name(set.name()), set.r#type().clone());
        if !pairs.contains(&key) {
            return;
        }
        let Some(id) = set.set_identifier() else {
            return;
        };
        // The emulator repeats items across pages inside weighted sets.
        if !seen.insert((key.0.clone(), key.1.clone(), id.to_owned())) {
            return;
        }
        out.entry(key).or_default().push(WeightedSet {
            set_identifier: id.to_owned(),
            weight: set.weight(),
            ttl: set.ttl(),
        });
    };
    if whole_zone_pages.is_some_and(|pages| pages <= pairs.len() as i64) {
        super::list_zone(client, zone_id, None, |set| keep(&mut out, set))
            .await
            .map_err(read_err(format!("list records of hosted zone {zone_id}")))?;
    } else {
        for (name, kind) in pairs {
            super::list_record(client, zone_id, name, kind, |set| keep(&mut out, set))
                .await
                .map_err(read_err(format!(
                    "list records {name} {kind} of hosted zone {zone_id}"
                )))?;
        }
    }
    Ok(out)
}
