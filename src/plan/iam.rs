//! The least-privilege IAM policy a playbook needs (`evac iam-policy`): exactly the
//! actions evac calls for it, on the resources it names.
//!
//! Reads follow [`Needs`], the same list of reads a plan makes, so the policy cannot
//! drift from them. Where an API allows no narrower resource (Describe and List
//! calls of Auto Scaling, EC2 and Route 53), the resource is `*`; actions are never
//! wildcards. `sts:GetCallerIdentity` is left out: AWS allows it to every principal.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::observe::Needs;
use crate::playbook::{Action, GroupSpec, Playbook};

/// Which commands the policy is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Purpose {
    /// `evac plan`: reads only.
    Plan,
    /// `evac run`, `resume` and `rollback` (a run plans first, so reads too).
    Run,
    /// The role of `--state-role`: the S3 state dir only.
    State,
}

/// What the policy is made from.
pub struct PolicyFor<'a> {
    /// The playbook.
    pub playbook: &'a Playbook,
    /// For which commands.
    pub purpose: Purpose,
    /// The account (`None`: the ambient credentials').
    pub account: Option<&'a str>,
    /// The id of each hosted zone the playbook writes by name, where known.
    pub zone_ids: &'a BTreeMap<String, String>,
    /// The S3 state dir (bucket, prefix), for a run's journals and locks.
    pub state: Option<(&'a str, &'a str)>,
    /// The role the state dir is reached through (`--state-role`).
    pub state_role: Option<&'a str>,
}

/// An IAM policy document, its fields in the order AWS writes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The policy language version.
    #[serde(rename = "Version")]
    pub version: String,
    /// What is allowed.
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

/// One statement: a Sid that says why, the actions, the resources, a condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Why (letters and digits only, as IAM wants).
    #[serde(rename = "Sid")]
    pub sid: String,
    /// Always `Allow`.
    #[serde(rename = "Effect")]
    pub effect: String,
    /// The actions, never wildcards.
    #[serde(rename = "Action")]
    pub action: Vec<String>,
    /// The resources (ARNs, with `*` where the API allows nothing narrower).
    #[serde(rename = "Resource")]
    pub resource: Vec<String>,
    /// When a condition narrows it further (tags of groups, names of records).
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

fn statement(
    sid: &str,
    actions: &BTreeSet<String>,
    resources: Vec<String>,
    condition: Option<Value>,
) -> Statement {
    Statement {
        sid: sid.to_owned(),
        effect: "Allow".to_owned(),
        action: actions.iter().cloned().collect(),
        resource: resources,
        condition,
    }
}

fn actions(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|a| (*a).to_owned()).collect()
}

/// The hosted zone ARN of a zone as written: its id, or every zone when the id is
/// not known.
fn zone_arn(written: &str, zone_ids: &BTreeMap<String, String>) -> String {
    let id = if super::observe::is_zone_id(written) {
        Some(written.trim_start_matches("/hostedzone/").to_owned())
    } else {
        zone_ids.get(written).cloned()
    };
    format!(
        "arn:aws:route53:::hostedzone/{}",
        id.as_deref().unwrap_or("*")
    )
}

/// The policy document.
pub fn policy(p: &PolicyFor<'_>) -> Document {
    if p.purpose == Purpose::State {
        return Document {
            version: "2012-10-17".to_owned(),
            statement: p.state.map(state_statements).unwrap_or_default(),
        };
    }
    let playbook = p.playbook;
    let needs = Needs::of(playbook, p.account);
    let run = p.purpose == Purpose::Run;
    // The account id in ARNs: the role's account for a named account with a role.
    let account_id = p
        .account
        .and_then(|name| playbook.accounts.get(name))
        .and_then(|a| a.role_arn.as_deref())
        .and_then(|arn| arn.split(':').nth(4))
        .unwrap_or("*")
        .to_owned();
    let mut statements = Vec::new();

    if !needs.groups.is_empty() {
        let mut reads = actions(&["autoscaling:DescribeAutoScalingGroups"]);
        if !needs.changed.is_empty() {
            // The preflight of groups a scale_up or drain changes.
            reads.extend(actions(&[
                "autoscaling:DescribeLifecycleHooks",
                "autoscaling:DescribePolicies",
                "autoscaling:DescribeScheduledActions",
            ]));
        }
        if run && !needs.scaled.is_empty() {
            // Why a scale-up's instances do not come, read while they lag.
            reads.extend(actions(&["autoscaling:DescribeScalingActivities"]));
        }
        statements.push(statement(
            "ReadAutoScalingGroups",
            &reads,
            vec!["*".to_owned()],
            None,
        ));
    }
    if !needs.changed.is_empty() || (run && !needs.subnets.is_empty()) {
        // How the changed groups stand in their load balancers: the plan shows it,
        // the run waits on it (a zone evacuation between its batches). These reads
        // take no resource-level permissions.
        statements.push(statement(
            "ReadLoadBalancerHealth",
            &actions(&[
                "elasticloadbalancing:DescribeInstanceHealth",
                "elasticloadbalancing:DescribeTargetHealth",
            ]),
            vec!["*".to_owned()],
            None,
        ));
    }
    if !needs.shifted.is_empty() || !needs.shift_named.is_empty() {
        // Zone steps' zonal shifts: the load balancers of the groups' target groups
        // are found by reading the target groups; ARC is asked about each, and a
        // run starts, extends and cancels their shifts. ARC scopes these by the
        // resource a call names (`arc-zonal-shift:ResourceIdentifier`): the
        // Application and Network Load Balancers of the step's region and account,
        // the groups with zonal shift enabled, and the load balancers a step names.
        statements.push(statement(
            "FindTheLoadBalancersOfZoneStepGroups",
            &actions(&["elasticloadbalancing:DescribeTargetGroups"]),
            vec!["*".to_owned()],
            None,
        ));
        let mut shifted: BTreeSet<String> = BTreeSet::new();
        for region in needs.shifted.keys().chain(needs.shift_named.keys()) {
            for kind in ["app", "net"] {
                shifted.insert(format!(
                    "arn:aws:elasticloadbalancing:{region}:{account_id}:loadbalancer/{kind}/*"
                ));
            }
        }
        for (region, names) in &needs.shifted {
            for name in names {
                let by_name = playbook
                    .groups
                    .get(name)
                    .and_then(|g| g.names_in(region.as_str()));
                match by_name {
                    Some(groups) => shifted.extend(groups.iter().map(|g| {
                        format!("arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/{g}")
                    })),
                    None => {
                        shifted.insert(format!(
                            "arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/*"
                        ));
                    }
                }
            }
        }
        shifted.extend(needs.shift_named.values().flatten().cloned());
        let mut verbs = vec!["arc-zonal-shift:GetManagedResource"];
        if run {
            verbs.extend([
                "arc-zonal-shift:StartZonalShift",
                "arc-zonal-shift:UpdateZonalShift",
                "arc-zonal-shift:CancelZonalShift",
            ]);
        }
        statements.push(statement(
            if run {
                "ShiftZoneStepResourcesAwayFromTheZone"
            } else {
                "ReadZoneStepResourcesInArc"
            },
            &actions(&verbs),
            vec!["*".to_owned()],
            Some(serde_json::json!({
                "StringLike": {
                    "arc-zonal-shift:ResourceIdentifier": shifted.into_iter().collect::<Vec<_>>()
                }
            })),
        ));
    }
    if run {
        statements.extend(group_writes(playbook, p.account, &account_id));
    }
    if !needs.scaled.is_empty() {
        // The vCPU quotas a scale-up must fit in: the groups' instance types, the
        // region's running instances, the quotas (AWS's default when the account
        // has no applied value).
        statements.push(statement(
            "ReadInstanceTypesAndVcpuQuotas",
            &actions(&[
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeInstances",
                "ec2:DescribeLaunchTemplateVersions",
                "servicequotas:GetAWSDefaultServiceQuota",
            ]),
            vec!["*".to_owned()],
            None,
        ));
        // An account's applied quota is read by its ARN: the EC2 vCPU quotas of the
        // regions scaled up.
        statements.push(statement(
            "ReadAppliedVcpuQuotas",
            &actions(&["servicequotas:GetServiceQuota"]),
            needs
                .scaled
                .keys()
                .flat_map(|region| {
                    let account_id = &account_id;
                    crate::state::VCPU_QUOTAS.iter().map(move |(code, _)| {
                        format!("arn:aws:servicequotas:{region}:{account_id}:ec2/{code}")
                    })
                })
                .collect(),
            None,
        ));
    }
    if !needs.subnets.is_empty() || !needs.scaled.is_empty() {
        statements.push(statement(
            "ReadSubnetsForZonesAndFreeAddresses",
            &actions(&["ec2:DescribeSubnets"]),
            vec!["*".to_owned()],
            None,
        ));
    }
    if !needs.alarms.is_empty() {
        let arns = needs
            .alarms
            .iter()
            .flat_map(|(region, names)| {
                let account_id = &account_id;
                names.iter().map(move |name| {
                    format!("arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}")
                })
            })
            .collect();
        statements.push(statement(
            "ReadStopAndCheckAlarms",
            &actions(&["cloudwatch:DescribeAlarms"]),
            arns,
            None,
        ));
    }
    if !needs.health_checks.is_empty() {
        let mut wanted = actions(&["route53:GetHealthCheck"]);
        if run {
            wanted.insert("route53:GetHealthCheckStatus".to_owned());
        }
        statements.push(statement(
            "ReadStopAndCheckHealthChecks",
            &wanted,
            needs
                .health_checks
                .iter()
                .map(|id| format!("arn:aws:route53:::healthcheck/{id}"))
                .collect(),
            None,
        ));
        if run {
            // A calculated health check's state is its CloudWatch metric
            // (GetMetricStatistics takes no resource-level permission).
            statements.push(statement(
                "ReadCalculatedHealthCheckMetrics",
                &actions(&["cloudwatch:GetMetricStatistics"]),
                vec!["*".to_owned()],
                None,
            ));
        }
    }
    if !needs.records.is_empty() {
        let written: BTreeSet<&str> = needs.records.values().map(|r| r.zone.as_str()).collect();
        let (ids, names): (Vec<&str>, Vec<&str>) =
            written.iter().partition(|z| super::observe::is_zone_id(z));
        if !ids.is_empty() {
            statements.push(statement(
                "ReadHostedZonesById",
                &actions(&["route53:GetHostedZone"]),
                ids.iter().map(|z| zone_arn(z, p.zone_ids)).collect(),
                None,
            ));
        }
        if !names.is_empty() {
            let lookup = if names.len() <= super::observe::ZONES_LOOKED_UP_BY_NAME {
                "route53:ListHostedZonesByName"
            } else {
                "route53:ListHostedZones"
            };
            statements.push(statement(
                "FindHostedZonesByName",
                &actions(&[lookup]),
                vec!["*".to_owned()],
                None,
            ));
        }
        let zones: BTreeSet<String> = written.iter().map(|z| zone_arn(z, p.zone_ids)).collect();
        statements.push(statement(
            "ReadWeightedRecordSets",
            &actions(&["route53:ListResourceRecordSets"]),
            zones.into_iter().collect(),
            None,
        ));
        // Route 53 skips a weighted set whose health check fails: the plan reads
        // the checks its sets carry, which are only known once the sets are read
        // (a calculated one through its CloudWatch metric).
        statements.push(statement(
            "ReadTheHealthChecksOfWeightedSets",
            &actions(&["route53:GetHealthCheck", "route53:GetHealthCheckStatus"]),
            vec!["arn:aws:route53:::healthcheck/*".to_owned()],
            None,
        ));
        statements.push(statement(
            "ReadCalculatedHealthChecksOfWeightedSets",
            &actions(&["cloudwatch:GetMetricStatistics"]),
            vec!["*".to_owned()],
            None,
        ));
    }
    if run {
        statements.extend(weight_writes(playbook, p.account, p.zone_ids));
        let metrics = playbook.steps.iter().any(|step| match &step.action {
            Action::Check(c) => c
                .metric
                .iter()
                .chain(
                    c.share
                        .iter()
                        .flat_map(|s| std::iter::once(&s.of).chain(&s.among)),
                )
                .any(|m| m.account.as_deref() == p.account),
            _ => false,
        });
        if metrics {
            statements.push(statement(
                "ReadTheMetricsOfCheckSteps",
                &actions(&["cloudwatch:GetMetricStatistics"]),
                vec!["*".to_owned()],
                None,
            ));
        }
    }
    if p.account.is_none() {
        let roles: BTreeSet<String> = playbook
            .accounts
            .values()
            .filter(|a| a.profile.is_none())
            .filter_map(|a| a.role_arn.clone())
            .collect();
        if !roles.is_empty() {
            statements.push(statement(
                "AssumeThePlaybooksAccountRoles",
                &actions(&["sts:AssumeRole"]),
                roles.into_iter().collect(),
                None,
            ));
        }
        if let (true, Some(notify)) = (run, &playbook.notify) {
            if let Some(topic) = &notify.sns {
                statements.push(statement(
                    "NotifyTheDrillsSnsTopic",
                    &actions(&["sns:Publish"]),
                    vec![topic.clone()],
                    None,
                ));
            }
            if let Some(bus) = &notify.eventbridge {
                let arn = if bus.bus.starts_with("arn:") {
                    bus.bus.clone()
                } else {
                    format!("arn:aws:events:{}:*:event-bus/{}", bus.region, bus.bus)
                };
                statements.push(statement(
                    "NotifyTheDrillsEventBus",
                    &actions(&["events:PutEvents"]),
                    vec![arn],
                    None,
                ));
            }
        }
        match (run, p.state, p.state_role) {
            (true, Some(_), Some(role)) => statements.push(statement(
                "AssumeTheStateBucketsRole",
                &actions(&["sts:AssumeRole"]),
                vec![role.to_owned()],
                None,
            )),
            (true, Some(state), None) => statements.extend(state_statements(state)),
            (false, Some(state), None) => statements.extend(plan_state_statements(state)),
            _ => {}
        }
    }
    in_partition(
        Document {
            version: "2012-10-17".to_owned(),
            statement: statements,
        },
        partition(playbook),
    )
}

/// The AWS partition of the playbook's regions: `aws-cn` for China, `aws-us-gov`
/// for GovCloud, else `aws`.
fn partition(playbook: &Playbook) -> &'static str {
    let regions = playbook.steps.iter().filter_map(|s| match &s.action {
        Action::ScaleUp(a) => Some(a.region.as_str()),
        Action::Drain(a) => Some(a.region.as_str()),
        Action::EvacuateZone(a) => Some(a.region.as_str()),
        Action::ShiftTraffic(a) => a.from.as_ref().map(|r| r.as_str()),
        _ => None,
    });
    let records = playbook
        .records
        .values()
        .flat_map(|r| r.set_identifiers.keys().map(|k| k.as_str()));
    regions
        .chain(records)
        .find_map(|region| {
            if region.starts_with("cn-") {
                Some("aws-cn")
            } else if region.starts_with("us-gov-") {
                Some("aws-us-gov")
            } else {
                None
            }
        })
        .unwrap_or("aws")
}

/// `document` with the ARNs evac writes (`arn:aws:...`) in `partition`; ARNs the
/// playbook gives (roles) are as written.
fn in_partition(mut document: Document, partition: &str) -> Document {
    if partition == "aws" {
        return document;
    }
    let rewrite = |arn: &mut String| {
        if let Some(rest) = arn.strip_prefix("arn:aws:") {
            *arn = format!("arn:{partition}:{rest}");
        }
    };
    for statement in &mut document.statement {
        statement.resource.iter_mut().for_each(rewrite);
        // ARNs in conditions (the resources a zonal shift may name).
        if let Some(Value::Object(tests)) = &mut statement.condition {
            for keys in tests.values_mut() {
                if let Value::Object(keys) = keys {
                    for values in keys.values_mut() {
                        if let Value::Array(values) = values {
                            for v in values {
                                if let Value::String(arn) = v {
                                    rewrite(arn);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    document
}

/// What a `scale_up` or `drain` writes: capacity, and with `suspend:` the processes
/// (suspended by the step, resumed by rollback).
fn capacity_writes(suspend: &[crate::playbook::ScalingProcess]) -> &'static [&'static str] {
    if suspend.is_empty() {
        &["autoscaling:UpdateAutoScalingGroup"]
    } else {
        &[
            "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:SuspendProcesses",
            "autoscaling:ResumeProcesses",
        ]
    }
}

/// Listing, reading, writing and deleting a run's journal objects and locks under
/// the state dir's prefix.
fn state_statements((bucket, prefix): (&str, &str)) -> Vec<Statement> {
    let under = state_under(prefix);
    vec![
        list_runs_statement(bucket, &under),
        statement(
            "KeepJournalsAndLocksInTheStateBucket",
            &actions(&["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]),
            vec![format!("arn:aws:s3:::{bucket}/{under}*")],
            None,
        ),
    ]
}

/// The state dir's prefix as keys start with it: `PREFIX/`, or nothing.
fn state_under(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// Listing the runs (and everything else) under the state dir's prefix.
fn list_runs_statement(bucket: &str, under: &str) -> Statement {
    statement(
        "ListRunsInTheStateBucket",
        &actions(&["s3:ListBucket"]),
        vec![format!("arn:aws:s3:::{bucket}")],
        (!under.is_empty())
            .then(|| json!({ "StringLike": { "s3:prefix": [format!("{under}*")] } })),
    )
}

/// What `plan` does in the state dir: lists and reads the runs (an unfinished one
/// is a blocker), and records each region's last known state under `known/`.
fn plan_state_statements((bucket, prefix): (&str, &str)) -> Vec<Statement> {
    let under = state_under(prefix);
    vec![
        list_runs_statement(bucket, &under),
        statement(
            "ReadRunsAndKnownStateInTheStateBucket",
            &actions(&["s3:GetObject"]),
            vec![format!("arn:aws:s3:::{bucket}/{under}*")],
            None,
        ),
        statement(
            "RecordEachRegionsLastKnownState",
            &actions(&["s3:PutObject"]),
            vec![format!("arn:aws:s3:::{bucket}/{under}known/*")],
            None,
        ),
        statement(
            "KeepWhatEachCheckFound",
            &actions(&["s3:PutObject"]),
            vec![format!("arn:aws:s3:::{bucket}/{under}checks/*")],
            None,
        ),
    ]
}

/// The Auto Scaling writes of the playbook's groups in `account`: per group
/// selector, the actions its steps make, on its groups by name or by tag.
fn group_writes(playbook: &Playbook, account: Option<&str>, account_id: &str) -> Vec<Statement> {
    // Per group name: the regions it is written in and the actions.
    let mut writes: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut add = |group: &str, region: &str, list: &[&str]| {
        let entry = writes.entry(group.to_owned()).or_default();
        entry.0.insert(region.to_owned());
        entry.1.extend(list.iter().map(|a| (*a).to_owned()));
    };
    for step in &playbook.steps {
        match &step.action {
            Action::ScaleUp(s) => s
                .group
                .iter()
                .for_each(|g| add(g, s.region.as_str(), capacity_writes(&s.suspend))),
            Action::Drain(d) => d.group.iter().for_each(|g| {
                add(g, d.region.as_str(), capacity_writes(&d.suspend));
                if d.force_protected {
                    add(g, d.region.as_str(), &["autoscaling:SetInstanceProtection"]);
                }
            }),
            Action::EvacuateZone(z) => {
                let mut list = vec![
                    "autoscaling:UpdateAutoScalingGroup",
                    "autoscaling:SuspendProcesses",
                    "autoscaling:ResumeProcesses",
                ];
                if z.keep_capacity {
                    list.push("autoscaling:TerminateInstanceInAutoScalingGroup");
                }
                z.group
                    .iter()
                    .for_each(|g| add(g, z.region.as_str(), &list));
            }
            _ => {}
        }
    }
    let mut by_name: (BTreeSet<String>, BTreeSet<String>) = Default::default();
    let mut tagged = Vec::new();
    for (name, (regions, wanted)) in writes {
        let Some(spec) = playbook
            .groups
            .get(&name)
            .filter(|s| s.account.as_deref() == account)
        else {
            continue;
        };
        let arn = |region: &str, group: &str| {
            format!(
                "arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/{group}"
            )
        };
        match spec {
            GroupSpec {
                tags: Some(tags), ..
            } => {
                let condition: serde_json::Map<String, Value> = tags
                    .iter()
                    .map(|(k, v)| (format!("aws:ResourceTag/{k}"), Value::String(v.clone())))
                    .collect();
                tagged.push((
                    name.clone(),
                    wanted,
                    regions.iter().map(|r| arn(r, "*")).collect::<Vec<_>>(),
                    json!({ "StringEquals": condition }),
                ));
            }
            _ => {
                by_name.1.extend(wanted);
                for region in &regions {
                    for group in spec.names_in(region).unwrap_or_default() {
                        by_name.0.insert(arn(region, group));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    if !by_name.0.is_empty() {
        out.push(statement(
            "ChangeTheDrillsAutoScalingGroupsByName",
            &by_name.1,
            by_name.0.into_iter().collect(),
            None,
        ));
    }
    for (name, wanted, resources, condition) in tagged {
        // `api-v2` -> `ApiV2`: a Sid is letters and digits.
        let camel: String = name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or(String::new(), |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        let sid = format!("ChangeTheAutoScalingGroupsOfGroup{camel}");
        out.push(statement(&sid, &wanted, resources, Some(condition)));
    }
    out
}

/// The Route 53 writes of the playbook's shifts in `account`: upserts of the
/// shifted records only, in their zones, and reading back the changes.
fn weight_writes(
    playbook: &Playbook,
    account: Option<&str>,
    zone_ids: &BTreeMap<String, String>,
) -> Vec<Statement> {
    let mut zones = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut types = BTreeSet::new();
    for step in &playbook.steps {
        if let Action::ShiftTraffic(s) = &step.action {
            for record in s.record.iter() {
                if let Some(spec) = playbook
                    .records
                    .get(record)
                    .filter(|r| r.account.as_deref() == account)
                {
                    zones.insert(zone_arn(&spec.zone, zone_ids));
                    names.insert(spec.name.trim_end_matches('.').to_ascii_lowercase());
                    types.insert(spec.record_type.to_string());
                }
            }
        }
    }
    if zones.is_empty() {
        return Vec::new();
    }
    vec![
        statement(
            "ChangeTheWeightsOfTheShiftedRecords",
            &actions(&["route53:ChangeResourceRecordSets"]),
            zones.into_iter().collect(),
            Some(json!({
                "ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": names.into_iter().collect::<Vec<_>>(),
                    // Each weight change deletes the set as read and creates it
                    // anew, in one batch (a compare-and-swap).
                    "route53:ChangeResourceRecordSetsActions": ["CREATE", "DELETE"],
                    "route53:ChangeResourceRecordSetsRecordTypes": types.into_iter().collect::<Vec<_>>(),
                }
            })),
        ),
        statement(
            "WaitForWeightChangesToBeInSync",
            &actions(&["route53:GetChange"]),
            vec!["arn:aws:route53:::change/*".to_owned()],
            None,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns_role() -> Playbook {
        let vars = [(
            "dns_account".to_owned(),
            serde_yaml::Value::from("111111111111"),
        )]
        .into();
        crate::playbook::load_file(
            std::path::Path::new("tests/fixtures/accounts/dns-role.yaml"),
            &vars,
        )
        .expect("valid playbook")
    }

    fn sids_and_actions(document: &Document) -> Vec<(String, Vec<String>)> {
        document
            .statement
            .iter()
            .map(|s| (s.sid.clone(), s.action.clone()))
            .collect()
    }

    #[test]
    fn each_account_gets_the_calls_made_in_it_and_the_ambient_one_assumes_the_roles() {
        let playbook = dns_role();
        let zone_ids = BTreeMap::from([("example.com.".to_owned(), "Z123".to_owned())]);
        let of = |account, purpose| {
            policy(&PolicyFor {
                playbook: &playbook,
                purpose,
                account,
                zone_ids: &zone_ids,
                state: Some(("drills", "evac")),
                state_role: None,
            })
        };
        let dns = of(Some("dns"), Purpose::Run);
        assert_eq!(
            sids_and_actions(&dns),
            [
                (
                    "FindHostedZonesByName",
                    vec!["route53:ListHostedZonesByName"]
                ),
                (
                    "ReadWeightedRecordSets",
                    vec!["route53:ListResourceRecordSets"]
                ),
                (
                    "ReadTheHealthChecksOfWeightedSets",
                    vec!["route53:GetHealthCheck", "route53:GetHealthCheckStatus"]
                ),
                (
                    "ReadCalculatedHealthChecksOfWeightedSets",
                    vec!["cloudwatch:GetMetricStatistics"]
                ),
                (
                    "ChangeTheWeightsOfTheShiftedRecords",
                    vec!["route53:ChangeResourceRecordSets"]
                ),
                ("WaitForWeightChangesToBeInSync", vec!["route53:GetChange"]),
            ]
            .map(|(sid, actions)| (
                sid.to_owned(),
                actions.iter().map(|a| (*a).to_owned()).collect()
            ))
        );
        assert_eq!(
            dns.statement[1].resource,
            ["arn:aws:route53:::hostedzone/Z123"]
        );

        let ambient = of(None, Purpose::Run);
        let sids: Vec<&str> = ambient.statement.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(
            sids,
            [
                "ReadAutoScalingGroups",
                "ReadLoadBalancerHealth",
                "ChangeTheAutoScalingGroupsOfGroupSvc",
                "ReadInstanceTypesAndVcpuQuotas",
                "ReadAppliedVcpuQuotas",
                "ReadSubnetsForZonesAndFreeAddresses",
                "ReadStopAndCheckAlarms",
                "AssumeThePlaybooksAccountRoles",
                "ListRunsInTheStateBucket",
                "KeepJournalsAndLocksInTheStateBucket",
            ]
        );
        assert_eq!(
            ambient.statement[7].resource,
            ["arn:aws:iam::111111111111:role/evac-dns"]
        );
        assert_eq!(
            ambient.statement[9].resource,
            ["arn:aws:s3:::drills/evac/*"]
        );
        // A plan changes nothing in AWS: in the state dir it reads the runs and
        // records each region's last known state, under `known/` only.
        let plan = of(None, Purpose::Plan);
        let sids: Vec<&str> = plan.statement.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(
            sids,
            [
                "ReadAutoScalingGroups",
                "ReadLoadBalancerHealth",
                "ReadInstanceTypesAndVcpuQuotas",
                "ReadAppliedVcpuQuotas",
                "ReadSubnetsForZonesAndFreeAddresses",
                "ReadStopAndCheckAlarms",
                "AssumeThePlaybooksAccountRoles",
                "ListRunsInTheStateBucket",
                "ReadRunsAndKnownStateInTheStateBucket",
                "RecordEachRegionsLastKnownState",
                "KeepWhatEachCheckFound",
            ]
        );
        assert_eq!(
            plan.statement[9].resource,
            ["arn:aws:s3:::drills/evac/known/*"]
        );
        assert_eq!(
            plan.statement[10].resource,
            ["arn:aws:s3:::drills/evac/checks/*"]
        );
    }

    /// The example drill with its regions as given.
    fn example(source: &str, target: &str) -> Playbook {
        let vars = [
            ("source".to_owned(), serde_yaml::Value::from(source)),
            ("target".to_owned(), serde_yaml::Value::from(target)),
        ]
        .into();
        let text = std::fs::read_to_string("playbooks/evacuate-region.yaml")
            .expect("example")
            .replace("us-east-1: api-use1", &format!("{source}: api-use1"))
            .replace("us-west-2: api-usw2", &format!("{target}: api-usw2"))
            .replace("us-east-1: www-use1", &format!("{source}: www-use1"))
            .replace("us-west-2: www-usw2", &format!("{target}: www-usw2"));
        crate::playbook::load_str("example.yaml", &text, &vars).expect("valid playbook")
    }

    fn run_policy(playbook: &Playbook) -> Document {
        policy(&PolicyFor {
            playbook,
            purpose: Purpose::Run,
            account: None,
            zone_ids: &BTreeMap::new(),
            state: Some(("drills", "evac")),
            state_role: None,
        })
    }

    #[test]
    fn policies_for_china_and_govcloud_use_their_partitions_arns() {
        for (source, target, partition) in [
            ("cn-north-1", "cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "us-gov-east-1", "aws-us-gov"),
            ("us-east-1", "us-west-2", "aws"),
        ] {
            let document = run_policy(&example(source, target));
            let arns: Vec<&String> = document
                .statement
                .iter()
                .flat_map(|s| &s.resource)
                .filter(|r| r.starts_with("arn:"))
                .collect();
            assert!(!arns.is_empty());
            for arn in arns {
                assert!(
                    arn.starts_with(&format!("arn:{partition}:")),
                    "{partition}: {arn}"
                );
            }
        }
    }

    #[test]
    fn record_changes_are_limited_to_the_record_types_shifted_and_quotas_to_their_arns() {
        let document = run_policy(&example("us-east-1", "us-west-2"));
        let change = document
            .statement
            .iter()
            .find(|s| s.sid == "ChangeTheWeightsOfTheShiftedRecords")
            .expect("the record statement");
        let condition = change.condition.as_ref().expect("a condition");
        assert_eq!(
            condition["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsRecordTypes"],
            json!(["A", "CNAME"])
        );
        let quotas = document
            .statement
            .iter()
            .find(|s| s.sid == "ReadAppliedVcpuQuotas")
            .expect("the quota statement");
        assert_eq!(quotas.action, ["servicequotas:GetServiceQuota"]);
        assert!(
            quotas
                .resource
                .contains(&"arn:aws:servicequotas:us-west-2:*:ec2/L-1216C47A".to_owned())
        );
        assert!(
            quotas
                .resource
                .iter()
                .all(|r| r.starts_with("arn:aws:servicequotas:us-west-2:"))
        );
        assert!(!document.statement.iter().any(|s| {
            s.resource == ["*"]
                && s.action
                    .contains(&"servicequotas:GetServiceQuota".to_owned())
        }));
    }
}
