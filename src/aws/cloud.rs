//! [`Cloud`] on the AWS SDK.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, RrType,
};

use super::{AwsContext, sdk_error_text};
use crate::engine::cloud::{ActiveShift, Cloud, CloudError, Instance, Members};
use crate::journal::RecordSetDef;
use crate::playbook::Region;
use crate::state::{Balancer, BalancerView, Capacity, GroupState};

/// The engine's AWS access through the SDK.
pub struct AwsCloud {
    ctx: AwsContext,
    /// Per Route 53 health check: whether it is calculated (read once).
    calculated: std::sync::Mutex<BTreeMap<String, bool>>,
}

impl AwsCloud {
    /// Wraps a loaded SDK configuration.
    pub fn new(ctx: AwsContext) -> Self {
        Self {
            ctx,
            calculated: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether health check `id` is calculated (from other health checks), read
    /// once with GetHealthCheck.
    async fn is_calculated(&self, id: &str) -> Result<bool, CloudError> {
        let known = self
            .calculated
            .lock()
            .map(|m| m.get(id).copied())
            .unwrap_or(None);
        if let Some(known) = known {
            return Ok(known);
        }
        let answer = self
            .ctx
            .route53()
            .get_health_check()
            .health_check_id(id)
            .send()
            .await
            .map_err(fail(format!("read health check {id}")))?;
        let calculated = answer
            .health_check()
            .and_then(|h| h.health_check_config())
            .is_some_and(|c| c.r#type() == &aws_sdk_route53::types::HealthCheckType::Calculated);
        if let Ok(mut m) = self.calculated.lock() {
            m.insert(id.to_owned(), calculated);
        }
        Ok(calculated)
    }

    /// The SDK configuration it calls with.
    pub fn context(&self) -> &AwsContext {
        &self.ctx
    }

    /// Describes the named groups of a region, 100 a call (the API's most), handing
    /// each to `each`.
    async fn describe(
        &self,
        region_name: &str,
        names: &[String],
        mut each: impl FnMut(&aws_sdk_autoscaling::types::AutoScalingGroup),
    ) -> Result<(), CloudError> {
        let client = self.ctx.autoscaling(&region(region_name)?);
        for chunk in names.chunks(100) {
            let mut pages = client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(fail(format!(
                    "describe Auto Scaling groups in {region_name}"
                )))?;
                page.auto_scaling_groups().iter().for_each(&mut each);
            }
        }
        Ok(())
    }
}

type HttpResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;

fn fail<E>(
    what: impl Into<String>,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>) -> CloudError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let what = what.into();
    move |err| {
        use crate::engine::cloud::ErrorKind;
        use aws_smithy_runtime_api::client::result::SdkError;
        let code = match &err {
            SdkError::ServiceError(service) => service.err().code().map(str::to_owned),
            _ => None,
        };
        let kind = match &err {
            SdkError::TimeoutError(_) => ErrorKind::TimedOut,
            SdkError::DispatchFailure(failure) if failure.is_timeout() => ErrorKind::TimedOut,
            _ if crate::aws::unanswered(&err) => ErrorKind::Unreachable,
            _ => code.as_deref().map_or(ErrorKind::Other, ErrorKind::of_code),
        };
        CloudError {
            what,
            message: sdk_error_text(&err),
            code,
            kind,
        }
    }
}

/// Route 53 counts a health check healthy when more than 18% of its checkers
/// report it healthy (AWS: How Route 53 determines whether a health check is
/// healthy), not by a majority.
pub fn healthy_as_route53_decides(healthy: usize, checkers: usize) -> bool {
    checkers > 0 && healthy * 100 > checkers * 18
}

fn region(name: &str) -> Result<Region, CloudError> {
    Region::parse(name).map_err(|message| CloudError::new("choose a region", message))
}

fn build_fail(what: &str) -> impl FnOnce(aws_sdk_route53::error::BuildError) -> CloudError + '_ {
    move |err| CloudError::new(what.to_owned(), err.to_string())
}

/// A weighted record set as the journal keeps it.
fn definition(name: &str, record_type: &str, id: &str, set: &ResourceRecordSet) -> RecordSetDef {
    RecordSetDef {
        name: name.to_owned(),
        record_type: record_type.to_owned(),
        set_identifier: id.to_owned(),
        weight: set.weight().unwrap_or(0),
        ttl: set.ttl(),
        values: set
            .resource_records()
            .iter()
            .map(|r| r.value().to_owned())
            .collect(),
        alias: set.alias_target().map(|a| {
            (
                a.hosted_zone_id().to_owned(),
                a.dns_name().to_owned(),
                a.evaluate_target_health(),
            )
        }),
        health_check_id: set.health_check_id().map(str::to_owned),
    }
}

impl Cloud for AwsCloud {
    async fn groups(
        &self,
        region_name: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, GroupState>, CloudError> {
        let mut out = BTreeMap::new();
        self.describe(region_name, names, |group| {
            let state = super::observe::group_state(group);
            out.insert(state.name.clone(), state);
        })
        .await?;
        Ok(out)
    }

    async fn set_capacity(
        &self,
        region_name: &str,
        group: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        self.ctx
            .autoscaling(&region(region_name)?)
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .min_size(to_i32(capacity.min))
            .desired_capacity(to_i32(capacity.desired))
            .max_size(to_i32(capacity.max))
            .send()
            .await
            .map_err(fail(format!(
                "update Auto Scaling group {group} in {region_name}"
            )))?;
        Ok(())
    }

    async fn record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        let mut out: Vec<RecordSetDef> = Vec::new();
        super::list_record(
            &self.ctx.route53(),
            zone_id,
            name,
            &RrType::from(record_type),
            |set| {
                // The emulator repeats items across pages inside weighted sets.
                if let Some(id) = set.set_identifier()
                    && !out.iter().any(|d| d.set_identifier == id)
                {
                    out.push(definition(name, record_type, id, set));
                }
            },
        )
        .await
        .map_err(fail(format!(
            "list records {name} {record_type} of hosted zone {zone_id}"
        )))?;
        Ok(out)
    }

    async fn zone_record_sets(
        &self,
        zone_id: &str,
        wanted: &[(String, String)],
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        // One listing of the whole zone when it takes fewer pages than one lookup per
        // record (the common case when a step moves many records); a zone too large
        // for that is given up after that many pages, and each record looked up.
        if wanted.len() > 2 {
            let keys: std::collections::BTreeMap<(String, String), &(String, String)> = wanted
                .iter()
                .map(|w| ((w.0.to_ascii_lowercase(), w.1.clone()), w))
                .collect();
            let mut out: Vec<RecordSetDef> = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            let complete = super::list_zone(
                &self.ctx.route53(),
                zone_id,
                Some(wanted.len() - 1),
                |set| {
                    let key = (
                        set.name().to_ascii_lowercase(),
                        set.r#type().as_str().to_owned(),
                    );
                    let (Some((name, record_type)), Some(id)) =
                        (keys.get(&key), set.set_identifier())
                    else {
                        return;
                    };
                    // The emulator repeats items across pages inside weighted sets.
                    if seen.insert((key, id.to_owned())) {
                        out.push(definition(name, record_type, id, set));
                    }
                },
            )
            .await
            .map_err(fail(format!("list records of hosted zone {zone_id}")))?;
            if complete {
                return Ok(out);
            }
        }
        let mut out = Vec::new();
        for (name, record_type) in wanted {
            out.extend(self.record_sets(zone_id, name, record_type).await?);
        }
        Ok(out)
    }

    async fn change_weights(
        &self,
        zone_id: &str,
        changes: &[crate::engine::cloud::WeightChange],
    ) -> Result<String, CloudError> {
        let mut batch = ChangeBatch::builder().comment("evac: weight shift");
        for change in changes {
            // DELETE as it must be now, CREATE as it becomes, atomically.
            for (action, def) in [
                (ChangeAction::Delete, &change.from),
                (ChangeAction::Create, &change.to),
            ] {
                batch = batch.changes(
                    Change::builder()
                        .action(action)
                        .resource_record_set(record_set(def)?)
                        .build()
                        .map_err(build_fail("build a change"))?,
                );
            }
        }
        let answer = self
            .ctx
            .route53()
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch.build().map_err(build_fail("build a change batch"))?)
            .send()
            .await
            .map_err(fail(format!("change weights in hosted zone {zone_id}")))?;
        Ok(answer
            .change_info()
            .map(|c| c.id().to_owned())
            .unwrap_or_default())
    }

    async fn change_in_sync(&self, change_id: &str) -> Result<bool, CloudError> {
        if change_id.is_empty() {
            return Ok(true);
        }
        let answer = self
            .ctx
            .route53()
            .get_change()
            .id(change_id.trim_start_matches("/change/"))
            .send()
            .await
            .map_err(fail(format!("read Route 53 change {change_id}")))?;
        Ok(answer.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync))
    }

    async fn alarm_state(
        &self,
        region_name: &str,
        name: &str,
    ) -> Result<Option<String>, CloudError> {
        let answer = self
            .ctx
            .cloudwatch(&region(region_name)?)
            .describe_alarms()
            .alarm_names(name)
            // Without AlarmTypes, AWS answers metric alarms only: a composite stop
            // alarm would read as missing.
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(fail(format!("describe alarm {name} in {region_name}")))?;
        let metric = answer.metric_alarms().first().and_then(|a| a.state_value());
        let composite = answer
            .composite_alarms()
            .first()
            .and_then(|a| a.state_value());
        Ok(metric.or(composite).map(|s| s.as_str().to_owned()))
    }

    /// GetMetricStatistics over the last three periods (and the current one); the
    /// newest datapoint.
    async fn metric(&self, query: &crate::plan::MetricQuery) -> Result<Option<f64>, CloudError> {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let now = std::time::SystemTime::now();
        let period = std::time::Duration::from_secs(u64::from(query.period_secs));
        let from = now - 3 * period;
        // Times go out in whole seconds: a datapoint from a moment ago would fall
        // after an end of `now`. AWS returns what exists up to a later end.
        let until = now + period;
        let mut request = self
            .ctx
            .cloudwatch(&region(&query.region)?)
            .get_metric_statistics()
            .namespace(&query.namespace)
            .metric_name(&query.name)
            .start_time(DateTime::from(from))
            .end_time(DateTime::from(until))
            .period(i32::try_from(query.period_secs).unwrap_or(i32::MAX))
            .statistics(Statistic::from(query.stat.as_str()));
        for (name, value) in &query.dimensions {
            request = request.dimensions(Dimension::builder().name(name).value(value).build());
        }
        let answer = request
            .send()
            .await
            .map_err(fail(format!("read metric {query}")))?;
        let newest = answer
            .datapoints()
            .iter()
            .filter_map(|d| Some((d.timestamp()?.secs(), d)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, d)| d);
        Ok(newest.and_then(|d| match query.stat.as_str() {
            "Sum" => d.sum(),
            "Average" => d.average(),
            "Minimum" => d.minimum(),
            "Maximum" => d.maximum(),
            "SampleCount" => d.sample_count(),
            _ => None,
        }))
    }

    async fn activities(
        &self,
        region_name: &str,
        group: &str,
    ) -> Result<Vec<crate::engine::cloud::Activity>, CloudError> {
        let answer = self
            .ctx
            .autoscaling(&region(region_name)?)
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .max_records(20)
            .send()
            .await
            .map_err(fail(format!(
                "read the scaling activities of {group} in {region_name}"
            )))?;
        Ok(answer
            .activities()
            .iter()
            .map(|a| crate::engine::cloud::Activity {
                status: a
                    .status_code()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                message: a.status_message().unwrap_or_default().to_owned(),
                description: a.description().unwrap_or_default().to_owned(),
                started: a.start_time().map_or(0, |t| t.secs()),
                cause: a.cause().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    async fn health_check_healthy(&self, id: &str) -> Result<bool, CloudError> {
        // GetHealthCheckStatus cannot read a calculated health check: its status is
        // the CloudWatch metric HealthCheckStatus (AWS/Route53, us-east-1), 1 when
        // healthy.
        if self.is_calculated(id).await? {
            let query = crate::plan::MetricQuery {
                region: "us-east-1".into(),
                namespace: "AWS/Route53".into(),
                name: "HealthCheckStatus".into(),
                dimensions: [("HealthCheckId".to_owned(), id.to_owned())].into(),
                stat: "Minimum".into(),
                period_secs: 60,
                account: None,
            };
            return match self.metric(&query).await? {
                Some(value) => Ok(value >= 1.0),
                None => Err(CloudError::new(
                    format!("read calculated health check {id}"),
                    "its CloudWatch metric AWS/Route53 HealthCheckStatus has no datapoint in the last 3 minutes",
                )),
            };
        }
        let answer = self
            .ctx
            .route53()
            .get_health_check_status()
            .health_check_id(id)
            .send()
            .await
            .map_err(fail(format!("read the status of health check {id}")))?;
        let observations = answer.health_check_observations();
        let ok = observations
            .iter()
            .filter(|o| {
                o.status_report()
                    .and_then(|r| r.status())
                    .is_some_and(|s| s.starts_with("Success"))
            })
            .count();
        Ok(healthy_as_route53_decides(ok, observations.len()))
    }

    async fn instances(
        &self,
        region_name: &str,
        groups: &[String],
    ) -> Result<BTreeMap<String, Members>, CloudError> {
        let mut out = BTreeMap::new();
        self.describe(region_name, groups, |g| {
            let instances = g
                .instances()
                .iter()
                .map(|i| Instance {
                    id: i.instance_id().unwrap_or_default().to_owned(),
                    zone: i.availability_zone().unwrap_or_default().to_owned(),
                    in_service: i.lifecycle_state().map(|s| s.as_str()) == Some("InService"),
                    weight: super::observe::weight_of(i.weighted_capacity()),
                })
                .collect();
            out.insert(
                g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                Members {
                    desired: g
                        .desired_capacity()
                        .and_then(|d| u32::try_from(d).ok())
                        .unwrap_or(0),
                    instances,
                },
            );
        })
        .await?;
        Ok(out)
    }

    async fn set_subnets(
        &self,
        region_name: &str,
        group: &str,
        subnets: &[String],
    ) -> Result<(), CloudError> {
        self.ctx
            .autoscaling(&region(region_name)?)
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .vpc_zone_identifier(subnets.join(","))
            .send()
            .await
            .map_err(fail(format!("set the subnets of {group} in {region_name}")))?;
        Ok(())
    }

    async fn suspend_processes(
        &self,
        region_name: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.ctx
            .autoscaling(&region(region_name)?)
            .suspend_processes()
            .auto_scaling_group_name(group)
            .set_scaling_processes(Some(processes.to_vec()))
            .send()
            .await
            .map_err(fail(format!(
                "suspend {} of {group} in {region_name}",
                processes.join(", ")
            )))?;
        Ok(())
    }

    async fn resume_processes(
        &self,
        region_name: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.ctx
            .autoscaling(&region(region_name)?)
            .resume_processes()
            .auto_scaling_group_name(group)
            .set_scaling_processes(Some(processes.to_vec()))
            .send()
            .await
            .map_err(fail(format!(
                "resume {} of {group} in {region_name}",
                processes.join(", ")
            )))?;
        Ok(())
    }

    async fn replace_instance(&self, region_name: &str, instance: &str) -> Result<(), CloudError> {
        self.ctx
            .autoscaling(&region(region_name)?)
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .map_err(fail(format!(
                "replace instance {instance} in {region_name}"
            )))?;
        Ok(())
    }

    async fn remove_instance(&self, region_name: &str, instance: &str) -> Result<(), CloudError> {
        self.ctx
            .autoscaling(&region(region_name)?)
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(fail(format!(
                "remove instance {instance} from its group in {region_name}"
            )))?;
        Ok(())
    }

    /// SetInstanceProtection, 50 instances a call (the API's most).
    async fn set_protection(
        &self,
        region_name: &str,
        group: &str,
        instances: &[String],
        protected: bool,
    ) -> Result<(), CloudError> {
        let client = self.ctx.autoscaling(&region(region_name)?);
        for chunk in instances.chunks(50) {
            client
                .set_instance_protection()
                .auto_scaling_group_name(group)
                .set_instance_ids(Some(chunk.to_vec()))
                .protected_from_scale_in(protected)
                .send()
                .await
                .map_err(fail(format!(
                    "{} scale-in protection of {} in {group} ({region_name})",
                    if protected { "set" } else { "remove" },
                    chunk.join(", ")
                )))?;
        }
        Ok(())
    }

    /// One read per load balancer of the groups (DescribeTargetHealth,
    /// DescribeInstanceHealth), shared by the groups attached to it, all at once;
    /// the groups' instances are those read with them.
    async fn balanced(
        &self,
        region_name: &str,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<BalancerView>>, CloudError> {
        let wanted: BTreeSet<&Balancer> = groups.iter().flat_map(|g| &g.balancers).collect();
        let region = region(region_name)?;
        let healths = try_join_all(
            wanted
                .into_iter()
                .map(|balancer| self.registered(&region, balancer)),
        )
        .await?;
        let healths: BTreeMap<&Balancer, BTreeMap<String, bool>> = healths.into_iter().collect();
        let none = BTreeMap::new();
        Ok(groups
            .iter()
            .filter(|g| !g.balancers.is_empty())
            .map(|g| {
                let views = g
                    .balancers
                    .iter()
                    .map(|b| {
                        BalancerView::of(b.clone(), &g.members, healths.get(b).unwrap_or(&none))
                    })
                    .collect();
                (g.name.clone(), views)
            })
            .collect())
    }

    async fn zonal_shifts(
        &self,
        region_name: &str,
        resource: &str,
    ) -> Result<Vec<ActiveShift>, CloudError> {
        let region = region(region_name)?;
        let answer = self
            .ctx
            .arc(&region)
            .get_managed_resource()
            .resource_identifier(resource)
            .send()
            .await
            .map_err(fail(format!("read the zonal shifts of {resource}")))?;
        Ok(active_shifts(answer.zonal_shifts()))
    }

    async fn start_shift(
        &self,
        region_name: &str,
        resource: &str,
        away_from: &str,
        comment: &str,
        minutes: u32,
    ) -> Result<String, CloudError> {
        let region = region(region_name)?;
        let answer = self
            .ctx
            .arc(&region)
            .start_zonal_shift()
            .resource_identifier(resource)
            .away_from(away_from)
            .comment(comment)
            .expires_in(crate::plan::shift::expires_in(minutes))
            .send()
            .await
            .map_err(fail(format!(
                "start a zonal shift of {resource} away from {away_from}"
            )))?;
        Ok(answer.zonal_shift_id().to_owned())
    }

    async fn extend_shift(
        &self,
        region_name: &str,
        _resource: &str,
        id: &str,
        minutes: u32,
    ) -> Result<(), CloudError> {
        let region = region(region_name)?;
        self.ctx
            .arc(&region)
            .update_zonal_shift()
            .zonal_shift_id(id)
            .expires_in(crate::plan::shift::expires_in(minutes))
            .send()
            .await
            .map_err(fail(format!("extend zonal shift {id}")))?;
        Ok(())
    }

    async fn cancel_shift(
        &self,
        region_name: &str,
        _resource: &str,
        id: &str,
    ) -> Result<(), CloudError> {
        let region = region(region_name)?;
        self.ctx
            .arc(&region)
            .cancel_zonal_shift()
            .zonal_shift_id(id)
            .send()
            .await
            .map_err(fail(format!("cancel zonal shift {id}")))?;
        Ok(())
    }
}

/// The customer zonal shifts of a managed resource (not zonal autoshifts or their
/// practice runs: those are ARC's, and a customer shift overrides them).
pub(crate) fn active_shifts(
    shifts: &[aws_sdk_arczonalshift::types::ZonalShiftInResource],
) -> Vec<ActiveShift> {
    use aws_sdk_arczonalshift::types::{AppliedStatus, ShiftType};
    shifts
        .iter()
        .filter(|s| {
            s.shift_type()
                .is_none_or(|t| matches!(t, ShiftType::ZonalShift | ShiftType::FisExperiment))
        })
        .map(|s| ActiveShift {
            id: s.zonal_shift_id().to_owned(),
            away_from: s.away_from().to_owned(),
            comment: s.comment().to_owned(),
            expires: s.expiry_time().secs(),
            applied: *s.applied_status() == AppliedStatus::Applied,
        })
        .collect()
}

impl AwsCloud {
    /// The targets registered with a load balancer (not `unused` ones), each with
    /// whether it passes the health checks.
    async fn registered<'b>(
        &self,
        region: &Region,
        balancer: &'b Balancer,
    ) -> Result<(&'b Balancer, BTreeMap<String, bool>), CloudError> {
        use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
        let mut out = BTreeMap::new();
        match balancer {
            Balancer::TargetGroup { arn } => {
                let answer = self
                    .ctx
                    .elbv2(region)
                    .describe_target_health()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .map_err(fail(format!("read the health of {balancer} in {region}")))?;
                for target in answer.target_health_descriptions() {
                    let (Some(id), Some(state)) = (
                        target.target().and_then(|t| t.id()),
                        target.target_health().and_then(|h| h.state()),
                    ) else {
                        continue;
                    };
                    if *state != TargetHealthStateEnum::Unused {
                        out.insert(id.to_owned(), *state == TargetHealthStateEnum::Healthy);
                    }
                }
            }
            Balancer::Classic { name } => {
                let answer = self
                    .ctx
                    .elb(region)
                    .describe_instance_health()
                    .load_balancer_name(name)
                    .send()
                    .await
                    .map_err(fail(format!("read the health of {balancer} in {region}")))?;
                for state in answer.instance_states() {
                    if let Some(id) = state.instance_id() {
                        out.insert(id.to_owned(), state.state() == Some("InService"));
                    }
                }
            }
        }
        Ok((balancer, out))
    }
}

/// A weighted record set as Route 53 takes it in a change.
fn record_set(def: &RecordSetDef) -> Result<ResourceRecordSet, CloudError> {
    let mut set = ResourceRecordSet::builder()
        .name(&def.name)
        .r#type(RrType::from(def.record_type.as_str()))
        .set_identifier(&def.set_identifier)
        .weight(def.weight)
        .set_ttl(def.ttl)
        .set_health_check_id(def.health_check_id.clone());
    for value in &def.values {
        set = set.resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(build_fail("build a record"))?,
        );
    }
    if let Some((zone, dns, evaluate)) = &def.alias {
        set = set.alias_target(
            AliasTarget::builder()
                .hosted_zone_id(zone)
                .dns_name(dns)
                .evaluate_target_health(*evaluate)
                .build()
                .map_err(build_fail("build an alias target"))?,
        );
    }
    set.build().map_err(build_fail("build a record set"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_health_check_is_healthy_past_18_percent_of_its_checkers() {
        use super::healthy_as_route53_decides as healthy;
        // 16 checkers: 3 is 18.75%, healthy; 2 is 12.5%, not.
        assert!(healthy(3, 16));
        assert!(!healthy(2, 16));
        // Exactly 18% is not more than 18%.
        assert!(!healthy(9, 50));
        assert!(healthy(10, 50));
        assert!(!healthy(0, 0));
    }
}
