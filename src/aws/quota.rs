//! The EC2 vCPU quotas a scale-up must fit in: which instance type each scaled group
//! launches (its launch template's, else the largest of its mixed instances policy
//! or of its instances), the vCPUs of each type, what the region's running
//! On-Demand instances use of each quota, and the quotas themselves (Service Quotas:
//! the applied value, else AWS's default).
//!
//! What a group launches comes with its description (the plan's
//! DescribeAutoScalingGroups). Calls: DescribeLaunchTemplateVersions per launch
//! template version, DescribeInstances (paged), DescribeInstanceTypes per
//! 100 types, and GetServiceQuota (GetAWSDefaultServiceQuota when the account has
//! no applied value) per quota.

use std::collections::{BTreeMap, BTreeSet};

use super::cloud::AwsCloud;
use super::observe::read_err;
use super::sdk_error_text;
use crate::plan::observe::ObserveError;
use crate::playbook::Region;
use crate::state::{GroupState, InstanceShape, Launch, Quota, Unit, Vcpus, vcpu_quota};

impl AwsCloud {
    /// See the module doc.
    pub(crate) async fn read_vcpus(
        &self,
        region: &Region,
        groups: &[&GroupState],
    ) -> Result<Vcpus, ObserveError> {
        let mut out = Vcpus::default();
        // Launch template versions: each read once.
        let mut template_types: BTreeMap<&Launch, Result<String, String>> = BTreeMap::new();
        for group in groups {
            if let Some(launch @ Launch::Template { id, name, version }) = &group.launch
                && let std::collections::btree_map::Entry::Vacant(entry) =
                    template_types.entry(launch)
            {
                entry.insert(self.template_type(region, id, name, version).await?);
            }
        }
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for group in groups {
            let types = match &group.launch {
                Some(launch @ Launch::Template { .. }) => template_types
                    .get(launch)
                    .cloned()
                    .unwrap_or_else(|| Err("its launch template was not read".into()))
                    .map(|t| vec![t]),
                Some(Launch::Types { types, .. }) => Ok(types.clone()),
                Some(Launch::Unknown { why }) => Err(why.clone()),
                None => Err("its description does not say".into()),
            };
            match types {
                Ok(types) => {
                    wanted.insert(group.name.clone(), types);
                }
                Err(why) => {
                    out.unknown.insert(group.name.clone(), why);
                }
            }
        }
        let running = self.running(region).await?;
        let types: BTreeSet<String> = wanted
            .values()
            .flatten()
            .chain(running.keys())
            .cloned()
            .collect();
        let sizes = self.type_sizes(region, &types).await?;
        let vcpus: BTreeMap<String, u32> = sizes
            .iter()
            .map(|(t, size)| (t.clone(), size.vcpus))
            .collect();
        let by_name: BTreeMap<&str, &GroupState> =
            groups.iter().map(|g| (g.name.as_str(), *g)).collect();
        for (group, types) in wanted {
            let state = by_name.get(group.as_str());
            let unit = state.map(|g| g.unit).unwrap_or_default();
            let type_weights = match state.and_then(|g| g.launch.as_ref()) {
                Some(Launch::Types { weights, .. }) => weights.clone(),
                _ => BTreeMap::new(),
            };
            let largest = types
                .iter()
                .filter_map(|t| {
                    let size = sizes.get(t)?;
                    Some(InstanceShape {
                        instance_type: t.clone(),
                        vcpus: size.vcpus,
                        units: units_of(unit, t, size, &type_weights),
                    })
                })
                // The most vCPUs per unit of desired capacity: the most a unit can
                // cost of the quota.
                .max_by(|a, b| {
                    (u64::from(a.vcpus) * u64::from(b.units))
                        .cmp(&(u64::from(b.vcpus) * u64::from(a.units)))
                        .then_with(|| a.vcpus.cmp(&b.vcpus))
                });
            match largest {
                Some(shape) => {
                    out.groups.insert(group, shape);
                }
                None => {
                    out.unknown.insert(
                        group,
                        format!("EC2 does not know instance type(s) {}", types.join(", ")),
                    );
                }
            }
        }
        let codes: BTreeSet<&'static str> = out
            .groups
            .values()
            .filter_map(|shape| vcpu_quota(&shape.instance_type).map(|(code, _)| code))
            .collect();
        for code in codes {
            let used = running
                .iter()
                .filter(|(t, _)| vcpu_quota(t).map(|(c, _)| c) == Some(code))
                .map(|(t, count)| u64::from(vcpus.get(t).copied().unwrap_or(0)) * count)
                .sum();
            let (limit, error) = match self.quota(region, code).await {
                Ok(limit) => (Some(limit), None),
                Err(why) => (None, Some(why)),
            };
            out.quotas
                .insert(code.to_owned(), Quota { limit, error, used });
        }
        Ok(out)
    }

    /// The instance type of a launch template version (Err: why there is none).
    async fn template_type(
        &self,
        region: &Region,
        id: &Option<String>,
        name: &Option<String>,
        version: &str,
    ) -> Result<Result<String, String>, ObserveError> {
        let shown = id.as_deref().or(name.as_deref()).unwrap_or("?");
        let answer = self
            .context()
            .ec2(region)
            .describe_launch_template_versions()
            .set_launch_template_id(id.clone())
            .set_launch_template_name(if id.is_some() { None } else { name.clone() })
            .versions(version)
            .send()
            .await
            .map_err(read_err(format!(
                "describe launch template {shown} version {version} in {region}"
            )))?;
        Ok(answer
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .and_then(|d| d.instance_type())
            .map(|t| t.as_str().to_owned())
            .ok_or_else(|| {
                format!("launch template {shown} version {version} sets no instance type")
            }))
    }

    /// The region's running (and pending) On-Demand instances: how many of each
    /// type.
    async fn running(&self, region: &Region) -> Result<BTreeMap<String, u64>, ObserveError> {
        let mut pages = self
            .context()
            .ec2(region)
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .send();
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(read_err(format!("describe instances in {region}")))?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let spot = instance
                    .instance_lifecycle()
                    .is_some_and(|l| l.as_str() == "spot");
                if let (false, Some(t)) = (spot, instance.instance_type()) {
                    *out.entry(t.as_str().to_owned()).or_default() += 1;
                }
            }
        }
        Ok(out)
    }

    /// The vCPUs and memory of each instance type (unknown types are absent).
    async fn type_sizes(
        &self,
        region: &Region,
        types: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, TypeSize>, ObserveError> {
        let client = self.context().ec2(region);
        let types: Vec<String> = types.iter().cloned().collect();
        let mut out = BTreeMap::new();
        for chunk in types.chunks(100) {
            let answer = client
                .describe_instance_types()
                .set_instance_types(Some(chunk.iter().map(|t| t.as_str().into()).collect()))
                .send()
                .await
                .map_err(read_err(format!("describe instance types in {region}")))?;
            for t in answer.instance_types() {
                let vcpus = t
                    .v_cpu_info()
                    .and_then(|v| v.default_v_cpus())
                    .and_then(|v| u32::try_from(v).ok());
                let memory_mib = t
                    .memory_info()
                    .and_then(|m| m.size_in_mib())
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(0);
                if let (Some(name), Some(vcpus)) = (t.instance_type(), vcpus) {
                    out.insert(name.as_str().to_owned(), TypeSize { vcpus, memory_mib });
                }
            }
        }
        Ok(out)
    }

    /// A quota's value in the region: the applied one, else AWS's default (Err:
    /// why neither could be read).
    async fn quota(&self, region: &Region, code: &str) -> Result<u64, String> {
        let client = self.context().servicequotas(region);
        let applied = client
            .get_service_quota()
            .service_code("ec2")
            .quota_code(code)
            .send()
            .await;
        let value = match applied {
            Ok(answer) => answer.quota().and_then(|q| q.value()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_resource_exception()) =>
            {
                // Asked once: a quota that cannot be read is a warning, not worth
                // the retries' backoff.
                client
                    .get_aws_default_service_quota()
                    .service_code("ec2")
                    .quota_code(code)
                    .customize()
                    .config_override(
                        aws_sdk_servicequotas::config::Builder::default()
                            .retry_config(aws_smithy_types::retry::RetryConfig::disabled()),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        let endpoint = self.context().endpoint_url();
                        match (endpoint, unserved(&e)) {
                            // What a local emulator answers for a call it does not
                            // implement: not an outage.
                            (Some(url), true) => format!(
                                "no applied value, and the endpoint {url} (AWS_ENDPOINT_URL) does not serve AWS's default: GetAWSDefaultServiceQuota answered HTTP 500 with no error code, as a local emulator does for a call it does not implement; against AWS it is read"
                            ),
                            _ => format!(
                                "no applied value, and AWS's default could not be read: {}",
                                sdk_error_text(&e)
                            ),
                        }
                    })?
                    .quota()
                    .and_then(|q| q.value())
            }
            Err(err) => return Err(sdk_error_text(&err)),
        };
        value
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.floor() as u64)
            .ok_or_else(|| "Service Quotas gave no value".to_owned())
    }
}

/// Whether an SDK error is an HTTP 500 with no error code: what a local emulator
/// answers for a call it does not implement.
fn unserved<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    R: std::fmt::Debug + 'static,
{
    let aws_smithy_runtime_api::client::result::SdkError::ServiceError(service) = err else {
        return false;
    };
    let raw: &dyn std::any::Any = service.raw();
    service.err().code().is_none()
        && raw
            .downcast_ref::<aws_smithy_runtime_api::client::orchestrator::HttpResponse>()
            .is_some_and(|r| r.status().as_u16() == 500)
}

/// The size of an instance type.
#[derive(Clone, Copy, Debug)]
struct TypeSize {
    vcpus: u32,
    memory_mib: u32,
}

/// How many units of desired capacity one instance of type `t` counts in a group
/// counted in `unit`.
fn units_of(unit: Unit, t: &str, size: &TypeSize, weights: &BTreeMap<String, u32>) -> u32 {
    match unit {
        Unit::Instances => 1,
        Unit::Vcpu => size.vcpus,
        Unit::MemoryMib => size.memory_mib,
        Unit::Weighted => weights.get(t).copied().unwrap_or(1),
    }
    .max(1)
}

/// A launch template specification as a [`Launch`].
fn template(t: &aws_sdk_autoscaling::types::LaunchTemplateSpecification) -> Launch {
    Launch::Template {
        id: t.launch_template_id().map(str::to_owned),
        name: t.launch_template_name().map(str::to_owned),
        version: t.version().unwrap_or("$Default").to_owned(),
    }
}

/// What a described group launches: its launch template; else its mixed instances
/// policy's types (or template); else its instances' types.
pub(super) fn launch_of(group: &aws_sdk_autoscaling::types::AutoScalingGroup) -> Launch {
    if let Some(t) = group.launch_template() {
        return template(t);
    }
    if let Some(mixed) = group.mixed_instances_policy() {
        let spec = mixed.launch_template();
        let overrides = spec.map(|t| t.overrides()).unwrap_or_default();
        let types: Vec<String> = overrides
            .iter()
            .filter_map(|o| o.instance_type().map(str::to_owned))
            .collect();
        let weights: BTreeMap<String, u32> = overrides
            .iter()
            .filter_map(|o| {
                let weight = o.weighted_capacity()?.trim().parse::<u32>().ok()?;
                Some((o.instance_type()?.to_owned(), weight))
            })
            .collect();
        if !types.is_empty() {
            return Launch::Types { types, weights };
        }
        return match spec.and_then(|t| t.launch_template_specification()) {
            Some(t) => template(t),
            None => Launch::Unknown {
                why: "its mixed instances policy names no instance type".into(),
            },
        };
    }
    let mut types: Vec<String> = group
        .instances()
        .iter()
        .filter_map(|i| i.instance_type().map(str::to_owned))
        .collect();
    types.sort();
    types.dedup();
    if types.is_empty() {
        Launch::Unknown {
            why: "it has a launch configuration and no instance to tell its type by".into(),
        }
    } else {
        Launch::Types {
            types,
            weights: BTreeMap::new(),
        }
    }
}
