//! [`Observe`] on the AWS SDK: the reads a plan makes.
//!
//! Reads are batched (up to 100 groups or alarms per call, whole hosted zones when
//! that takes fewer calls than one lookup per record). They go through the same
//! clients, pacing and retry policy as the engine's writes. Nothing here mutates
//! anything.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use aws_sdk_autoscaling::types::{AutoScalingGroup, Filter};
use aws_sdk_route53::types::RrType;

use super::cloud::AwsCloud;
use super::sdk_error_text;
use crate::plan::observe::{HostedZone, Observe, ObserveError, RecordKey};
use crate::playbook::{RecordType, Region};
use crate::state::{
    Caller, Capacity, GroupState, Hook, Member, Preflight, Subnet, Unit, WeightedSet, Weights,
    ZoneLookup,
};

pub(super) fn read_err<E, R>(
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
        unanswered: super::unanswered(&err),
    }
}

/// The largest page the Auto Scaling and CloudWatch describe calls return.
const PAGE: usize = 100;
/// The largest page of ListResourceRecordSets.
const RECORD_PAGE: i64 = 300;

impl Observe for AwsCloud {
    async fn groups_named(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<Vec<GroupState>, ObserveError> {
        let client = self.context().autoscaling(region);
        let mut found = BTreeMap::new();
        for chunk in names.chunks(PAGE) {
            let request = client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(PAGE as i32);
            describe_groups(request, region, &mut found).await?;
        }
        Ok(found.into_values().collect())
    }

    async fn groups_tagged(
        &self,
        region: &Region,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Vec<GroupState>, ObserveError> {
        let mut request = self
            .context()
            .autoscaling(region)
            .describe_auto_scaling_groups()
            .max_records(PAGE as i32);
        for (key, values) in tags {
            request = request.filters(
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .set_values(Some(values.iter().cloned().collect()))
                    .build(),
            );
        }
        let mut found = BTreeMap::new();
        describe_groups(request, region, &mut found).await?;
        Ok(found.into_values().collect())
    }

    /// Hooks: one DescribeLifecycleHooks per group (the API takes one), eight at a
    /// time. Policies and scheduled actions: the region's, paged, kept for these
    /// groups (a region's listing takes fewer calls than one per group).
    async fn preflight(
        &self,
        region: &Region,
        groups: &[String],
        with_hooks: bool,
    ) -> Result<BTreeMap<String, Preflight>, ObserveError> {
        use futures::{StreamExt, TryStreamExt};
        let client = self.context().autoscaling(region);
        let wanted: BTreeSet<&String> = groups.iter().collect();
        let mut out: BTreeMap<String, Preflight> = BTreeMap::new();
        let hooked: &[String] = if with_hooks { groups } else { &[] };
        let hooks: Vec<(String, Vec<Hook>)> = futures::stream::iter(hooked.iter().cloned())
            .map(|group| {
                let client = client.clone();
                async move {
                    let answer = client
                        .describe_lifecycle_hooks()
                        .auto_scaling_group_name(&group)
                        .send()
                        .await
                        .map_err(read_err(format!(
                            "describe the lifecycle hooks of {group} in {region}"
                        )))?;
                    let hooks = answer
                        .lifecycle_hooks()
                        .iter()
                        .map(|h| Hook {
                            name: h.lifecycle_hook_name().unwrap_or_default().to_owned(),
                            launching: h
                                .lifecycle_transition()
                                .is_some_and(|t| t.contains("LAUNCHING")),
                            heartbeat_secs: h
                                .heartbeat_timeout()
                                .and_then(|t| u32::try_from(t).ok())
                                .unwrap_or(0),
                        })
                        .collect();
                    Ok::<_, ObserveError>((group, hooks))
                }
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        for (group, hooks) in hooks {
            if !hooks.is_empty() {
                out.entry(group).or_default().hooks = hooks;
            }
        }
        let mut pages = client
            .describe_policies()
            .max_records(50)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(read_err(format!("describe scaling policies in {region}")))?;
            for policy in page.scaling_policies() {
                if let (Some(group), Some(name)) =
                    (policy.auto_scaling_group_name(), policy.policy_name())
                    && wanted.contains(&group.to_owned())
                {
                    out.entry(group.to_owned())
                        .or_default()
                        .policies
                        .push(name.to_owned());
                }
            }
        }
        let mut pages = client
            .describe_scheduled_actions()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(read_err(format!("describe scheduled actions in {region}")))?;
            for action in page.scheduled_update_group_actions() {
                if let (Some(group), Some(name)) = (
                    action.auto_scaling_group_name(),
                    action.scheduled_action_name(),
                ) && wanted.contains(&group.to_owned())
                {
                    out.entry(group.to_owned())
                        .or_default()
                        .scheduled
                        .push(name.to_owned());
                }
            }
        }
        Ok(out)
    }

    async fn subnets(
        &self,
        region: &Region,
        ids: &[String],
    ) -> Result<BTreeMap<String, Subnet>, ObserveError> {
        let client = self.context().ec2(region);
        let mut zones = BTreeMap::new();
        for chunk in ids.chunks(200) {
            let answer = client
                .describe_subnets()
                .set_subnet_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(read_err(format!("describe subnets in {region}")))?;
            for subnet in answer.subnets() {
                if let (Some(id), Some(zone)) = (subnet.subnet_id(), subnet.availability_zone()) {
                    let free = subnet
                        .available_ip_address_count()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0);
                    zones.insert(
                        id.to_owned(),
                        Subnet {
                            zone: zone.to_owned(),
                            zone_id: subnet.availability_zone_id().map(str::to_owned),
                            free,
                        },
                    );
                }
            }
        }
        Ok(zones)
    }

    async fn alarm_states(
        &self,
        region: &Region,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, ObserveError> {
        let client = self.context().cloudwatch(region);
        let mut states = BTreeMap::new();
        for chunk in names.chunks(PAGE) {
            let mut pages = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                // Composite alarms are answered only when asked for.
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
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
                for alarm in page.composite_alarms() {
                    if let (Some(name), Some(state)) = (alarm.alarm_name(), alarm.state_value()) {
                        states.insert(name.to_owned(), state.as_str().to_owned());
                    }
                }
            }
        }
        Ok(states)
    }

    async fn health_check_passes(&self, id: &str) -> Result<bool, ObserveError> {
        use crate::engine::cloud::Cloud;
        Ok(self.health_check_healthy(id).await?)
    }

    async fn health_check_exists(&self, id: &str) -> Result<bool, ObserveError> {
        match self
            .context()
            .route53()
            .get_health_check()
            .health_check_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_health_check()) =>
            {
                Ok(false)
            }
            Err(err) => Err(read_err(format!("read health check {id}"))(err)),
        }
    }

    fn pulse(&self) -> Option<&crate::pulse::Pulse> {
        Some(crate::pulse::global())
    }

    fn home_region(&self) -> Option<String> {
        self.context().home_region()
    }

    async fn caller(&self) -> Result<Option<Caller>, ObserveError> {
        let answer = self
            .context()
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(read_err("ask STS who the calls are made as"))?;
        Ok(Some(Caller {
            account: answer.account().unwrap_or_default().to_owned(),
            arn: answer.arn().unwrap_or_default().to_owned(),
            credentials: self.context().credentials_source().map(str::to_owned),
        }))
    }

    async fn balancers(
        &self,
        region: &Region,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<crate::state::BalancerView>>, ObserveError> {
        crate::engine::cloud::Cloud::balanced(self, region.as_str(), groups)
            .await
            .map_err(ObserveError::from)
    }

    async fn vcpus(
        &self,
        region: &Region,
        groups: &[&GroupState],
    ) -> Result<crate::state::Vcpus, ObserveError> {
        self.read_vcpus(region, groups).await
    }

    async fn shiftable(
        &self,
        region: &Region,
        groups: &[&GroupState],
        named: &[String],
    ) -> Result<crate::state::Shiftable, ObserveError> {
        self.read_shiftable(region, groups, named).await
    }

    async fn record_types(&self, zone_id: &str, name: &str) -> Result<Vec<String>, ObserveError> {
        let answer = self
            .context()
            .route53()
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(name)
            .max_items(20)
            .send()
            .await
            .map_err(read_err(format!("list the record sets named {name}")))?;
        let wanted = super::normalize_name(name);
        let mut types: Vec<String> = answer
            .resource_record_sets()
            .iter()
            .filter(|set| super::normalize_name(set.name()) == wanted)
            .map(|set| set.r#type().as_str().to_owned())
            .collect();
        types.sort();
        types.dedup();
        Ok(types)
    }

    async fn hosted_zones(
        &self,
        written: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, HostedZone>, ObserveError> {
        resolve_zones(&self.context().route53(), written).await
    }

    async fn weighted_sets(
        &self,
        zone_id: &str,
        record_count: Option<i64>,
        wanted: &BTreeSet<RecordKey>,
    ) -> Result<BTreeMap<RecordKey, Vec<WeightedSet>>, ObserveError> {
        // Route 53 answers with normalised names; map them back to the written ones.
        let by_normal: BTreeMap<(String, RrType), &RecordKey> = wanted
            .iter()
            .map(|key| ((super::normalize_name(&key.0), rr_type(key.1)), key))
            .collect();
        let pairs: BTreeSet<(String, RrType)> = by_normal.keys().cloned().collect();
        let listed =
            list_zone_records(&self.context().route53(), zone_id, &pairs, record_count).await?;
        let mut out = BTreeMap::new();
        for (pair, sets) in listed {
            if let Some(key) = by_normal.get(&pair) {
                out.insert((*key).clone(), sets);
            }
        }
        Ok(out)
    }
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

/// The load balancers a group registers its instances with.
pub fn balancers_of(group: &AutoScalingGroup) -> Vec<crate::state::Balancer> {
    use crate::state::Balancer;
    let mut out: Vec<Balancer> = group
        .target_group_arns()
        .iter()
        .map(|arn| Balancer::TargetGroup { arn: arn.clone() })
        .chain(
            group
                .load_balancer_names()
                .iter()
                .map(|name| Balancer::Classic { name: name.clone() }),
        )
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The state of a described group. Capacity in service counts the group's unit:
/// each InService instance's `WeightedCapacity` (1 when it has none).
pub fn group_state(group: &AutoScalingGroup) -> GroupState {
    let to_u32 = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let mut members: Vec<Member> = Vec::new();
    let mut instances_by_zone: BTreeMap<String, u32> = BTreeMap::new();
    let mut in_service = 0u32;
    for instance in group.instances() {
        let serving = instance.lifecycle_state().map(|s| s.as_str()) == Some("InService");
        let weight = weight_of(instance.weighted_capacity());
        if serving {
            in_service = in_service.saturating_add(weight);
            *instances_by_zone
                .entry(instance.availability_zone().unwrap_or_default().to_owned())
                .or_default() += weight;
        }
        if let Some(id) = instance.instance_id() {
            members.push(Member {
                id: id.to_owned(),
                in_service: serving,
                weight,
            });
        }
    }
    let launch = super::quota::launch_of(group);
    let type_weights: Vec<u32> = match &launch {
        crate::state::Launch::Types { weights, .. } => weights.values().copied().collect(),
        _ => Vec::new(),
    };
    let unit = match group.desired_capacity_type() {
        Some("vcpu") => Unit::Vcpu,
        Some("memory-mib") => Unit::MemoryMib,
        _ if !type_weights.is_empty() || members.iter().any(|m| m.weight != 1) => Unit::Weighted,
        _ => Unit::Instances,
    };
    let weights = if unit.is_instances() {
        Weights::default()
    } else {
        Weights::of(members.iter().map(|m| m.weight).chain(type_weights))
    };
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
        unit,
        weights,
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
        protected: {
            let mut ids: Vec<String> = group
                .instances()
                .iter()
                .filter(|i| i.protected_from_scale_in() == Some(true))
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect();
            ids.sort();
            ids
        },
        warm_pool: group
            .warm_pool_configuration()
            .map(|w| to_u32(w.min_size())),
        balancers: balancers_of(group),
        launch: Some(launch),
        members,
        arn: group.auto_scaling_group_arn().map(str::to_owned),
        zonal_shift: group
            .availability_zone_impairment_policy()
            .filter(|p| p.zonal_shift_enabled() == Some(true))
            .map(|p| {
                p.impaired_zone_health_check_behavior()
                    .map_or("ReplaceUnhealthy".to_owned(), |b| b.as_str().to_owned())
            }),
    }
}

/// The units an instance counts: its `WeightedCapacity`, 1 when it has none.
pub(super) fn weight_of(weighted: Option<&str>) -> u32 {
    weighted
        .and_then(|w| w.trim().parse::<u32>().ok())
        .filter(|w| *w > 0)
        .unwrap_or(1)
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
async fn resolve_zones(
    client: &aws_sdk_route53::Client,
    written: &BTreeSet<&str>,
) -> Result<BTreeMap<String, HostedZone>, ObserveError> {
    let mut out = BTreeMap::new();
    let (ids, names): (Vec<&str>, Vec<&str>) = written
        .iter()
        .partition(|z| crate::plan::observe::is_zone_id(z));
    for id in ids {
        let bare = id.trim_start_matches("/hostedzone/");
        let info = match client.get_hosted_zone().id(bare).send().await {
            Ok(answer) => match answer.hosted_zone() {
                Some(zone) => HostedZone {
                    lookup: ZoneLookup::Found {
                        id: bare.to_owned(),
                        name: zone.name().to_owned(),
                    },
                    record_count: zone.resource_record_set_count(),
                },
                None => HostedZone {
                    lookup: ZoneLookup::NotFound,
                    record_count: None,
                },
            },
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_hosted_zone()) =>
            {
                HostedZone {
                    lookup: ZoneLookup::NotFound,
                    record_count: None,
                }
            }
            Err(err) => return Err(read_err(format!("read hosted zone {id}"))(err)),
        };
        out.insert((*id).to_owned(), info);
    }
    if names.is_empty() {
        return Ok(out);
    }
    let mut all: Vec<aws_sdk_route53::types::HostedZone> = Vec::new();
    if names.len() <= crate::plan::observe::ZONES_LOOKED_UP_BY_NAME {
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
            [] => HostedZone {
                lookup: ZoneLookup::NotFound,
                record_count: None,
            },
            [id] => HostedZone {
                lookup: ZoneLookup::Found {
                    id: id.clone(),
                    name: wanted.clone(),
                },
                record_count: matches.first().and_then(|z| z.resource_record_set_count()),
            },
            _ => HostedZone {
                lookup: ZoneLookup::Ambiguous { ids },
                record_count: None,
            },
        };
        out.insert((*name).to_owned(), info);
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
            values: set.resource_records().len(),
            value_chars: set.resource_records().iter().map(|r| r.value().len()).sum(),
            health_check_id: set.health_check_id().map(str::to_owned),
            evaluate_target_health: set
                .alias_target()
                .is_some_and(|a| a.evaluate_target_health()),
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

/// The most target groups one DescribeTargetGroups names.
const TARGET_GROUP_PAGE: usize = 20;

impl AwsCloud {
    /// See [`Observe::shiftable`]: one DescribeTargetGroups per 20 target groups,
    /// then one GetManagedResource per resource, concurrently.
    async fn read_shiftable(
        &self,
        region: &Region,
        groups: &[&GroupState],
        named: &[String],
    ) -> Result<crate::state::Shiftable, ObserveError> {
        use crate::state::{Balancer, ManagedRead, Shiftable};
        let target_groups: Vec<String> = groups
            .iter()
            .flat_map(|g| &g.balancers)
            .filter_map(|b| match b {
                Balancer::TargetGroup { arn } => Some(arn.clone()),
                Balancer::Classic { .. } => None,
            })
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let elbv2 = self.context().elbv2(region);
        let pages =
            futures::future::try_join_all(target_groups.chunks(TARGET_GROUP_PAGE).map(|chunk| {
                let elbv2 = elbv2.clone();
                async move {
                    elbv2
                        .describe_target_groups()
                        .set_target_group_arns(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(read_err(format!(
                            "describe the target groups of the zone step's groups in {region}"
                        )))
                }
            }))
            .await?;
        let mut lbs_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for page in &pages {
            for tg in page.target_groups() {
                if let Some(arn) = tg.target_group_arn() {
                    lbs_of.insert(arn.to_owned(), tg.load_balancer_arns().to_vec());
                }
            }
        }
        let mut out = Shiftable::default();
        let mut resources: BTreeSet<String> = named.iter().cloned().collect();
        for g in groups {
            let mut lbs: Vec<String> = g
                .balancers
                .iter()
                .filter_map(|b| match b {
                    Balancer::TargetGroup { arn } => lbs_of.get(arn),
                    Balancer::Classic { .. } => None,
                })
                .flatten()
                .cloned()
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect();
            resources.extend(lbs.iter().cloned());
            if g.zonal_shift.is_some()
                && let Some(arn) = &g.arn
            {
                resources.insert(arn.clone());
            }
            lbs.sort();
            out.balancers.insert(g.name.clone(), lbs);
        }
        let arc = self.context().arc(region);
        let reads = futures::future::try_join_all(resources.into_iter().map(|arn| {
            let arc = arc.clone();
            async move {
                match arc
                    .get_managed_resource()
                    .resource_identifier(&arn)
                    .send()
                    .await
                {
                    Ok(answer) => {
                        use aws_sdk_arczonalshift::types::{
                            AutoshiftAppliedStatus, ZonalAutoshiftStatus,
                        };
                        let managed = crate::state::Managed {
                            name: answer.name().unwrap_or(&arn).to_owned(),
                            shifts: super::cloud::active_shifts(answer.zonal_shifts())
                                .into_iter()
                                .map(|s| crate::state::ShiftSeen {
                                    id: s.id,
                                    away_from: s.away_from,
                                    comment: s.comment,
                                    expires: s.expires,
                                })
                                .collect(),
                            autoshifts: answer
                                .autoshifts()
                                .iter()
                                .filter(|a| *a.applied_status() == AutoshiftAppliedStatus::Applied)
                                .map(|a| a.away_from().to_owned())
                                .collect(),
                            autoshift_enabled: answer.zonal_autoshift_status()
                                == Some(&ZonalAutoshiftStatus::Enabled),
                            practice_runs: answer.practice_run_configuration().is_some(),
                        };
                        Ok((arn, ManagedRead::Found(managed)))
                    }
                    Err(err)
                        if err.as_service_error().is_some_and(|e| {
                            e.is_resource_not_found_exception() || e.is_validation_exception()
                        }) =>
                    {
                        Ok((arn, ManagedRead::Unshiftable(sdk_error_text(&err))))
                    }
                    Err(err) => Err(read_err(format!("read zonal shift resource {arn}"))(err)),
                }
            }
        }))
        .await?;
        out.managed = reads.into_iter().collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_autoscaling::types::{
        AutoScalingGroup, Instance, LaunchTemplate, LaunchTemplateOverrides, LifecycleState,
        MixedInstancesPolicy,
    };

    use super::group_state;
    use crate::state::{Unit, Weights};

    fn instance(id: &str, zone: &str, state: LifecycleState, weight: Option<&str>) -> Instance {
        Instance::builder()
            .instance_id(id)
            .availability_zone(zone)
            .lifecycle_state(state)
            .health_status("Healthy")
            .protected_from_scale_in(false)
            .set_weighted_capacity(weight.map(str::to_owned))
            .build()
    }

    fn described(capacity_type: Option<&str>, instances: Vec<Instance>) -> AutoScalingGroup {
        AutoScalingGroup::builder()
            .auto_scaling_group_name("api")
            .min_size(8)
            .desired_capacity(30)
            .max_size(64)
            .set_desired_capacity_type(capacity_type.map(str::to_owned))
            .set_instances(Some(instances))
            .build()
    }

    #[test]
    fn capacity_in_service_counts_the_weights_of_a_group_counted_in_vcpus() {
        let group = group_state(&described(
            Some("vcpu"),
            vec![
                instance("i-1", "eu-west-1a", LifecycleState::InService, Some("16")),
                instance("i-2", "eu-west-1b", LifecycleState::InService, Some("8")),
                instance("i-3", "eu-west-1b", LifecycleState::Pending, Some("8")),
            ],
        ));
        assert_eq!(group.unit, Unit::Vcpu);
        assert_eq!(group.in_service, 24);
        assert_eq!(group.instances_by_zone["eu-west-1b"], 8);
        assert_eq!(
            group.weights,
            Weights {
                smallest: 8,
                largest: 16
            }
        );
        // Down to desired 20: 24 is less than one largest weight above it.
        assert!(group.came_down_to(20));
        assert!(!group.came_down_to(0));
    }

    #[test]
    fn a_mixed_instances_policy_with_weights_counts_units() {
        let policy = MixedInstancesPolicy::builder()
            .launch_template(
                LaunchTemplate::builder()
                    .overrides(
                        LaunchTemplateOverrides::builder()
                            .instance_type("m5.large")
                            .weighted_capacity("2")
                            .build(),
                    )
                    .overrides(
                        LaunchTemplateOverrides::builder()
                            .instance_type("m5.2xlarge")
                            .weighted_capacity("8")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let mut described = described(None, vec![]);
        described.mixed_instances_policy = Some(policy);
        let group = group_state(&described);
        assert_eq!(group.unit, Unit::Weighted);
        assert_eq!(
            group.weights,
            Weights {
                smallest: 2,
                largest: 8
            }
        );
        // A plain group counts instances.
        let plain = group_state(&super::tests::described(
            None,
            vec![instance("i-1", "a", LifecycleState::InService, None)],
        ));
        assert_eq!((plain.unit, plain.in_service), (Unit::Instances, 1));
    }
}
