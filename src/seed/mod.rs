//! A realistic two-region world in a local AWS emulator, for the demo and the tests.
//!
//! Per region: a VPC with a subnet in each of three zones, a launch template, the
//! tagged Auto Scaling groups `api-REGION` and `worker-REGION`, and a CloudWatch alarm
//! `api-5xx-rate`. One hosted zone `example.com.` holds weighted records for `api`
//! (A) and `www` (CNAME), weight 100 in the source region and 0 in the target. The
//! example playbooks in `playbooks/` run against exactly this world.

use std::collections::BTreeMap;

use serde::Serialize;

use aws_sdk_autoscaling::types::Tag;
use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, TagSpecification};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use aws_sdk_route53::error::BuildError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{AwsContext, sdk_error_text};
use crate::playbook::Region;

/// A failed seeding call.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// An AWS call failed.
    #[error("failed to {call}: {message}")]
    Aws {
        /// What was being done.
        call: String,
        /// The SDK's error with its causes.
        message: String,
    },
    /// The endpoint is not a local emulator.
    #[error(
        "refusing to seed {0}: seeding only talks to an emulator on loopback (127.0.0.1, ::1 or localhost)"
    )]
    NotLocal(String),
}

fn aws_err<E, R>(call: impl Into<String>) -> impl FnOnce(SdkError<E, R>) -> SeedError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let call = call.into();
    move |err| SeedError::Aws {
        call,
        message: sdk_error_text(&err),
    }
}

fn build_err(call: &'static str) -> impl FnOnce(BuildError) -> SeedError {
    move |err| SeedError::Aws {
        call: call.to_owned(),
        message: err.to_string(),
    }
}

/// One Auto Scaling group to create.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSeed {
    /// The service it runs (`api`, `worker`); tagged `evac:service`.
    pub service: String,
    /// Minimum size.
    pub min: i32,
    /// Desired capacity.
    pub desired: i32,
    /// Maximum size.
    pub max: i32,
}

/// One region of the world.
#[derive(Clone, Debug, Serialize)]
pub struct RegionSeed {
    /// The region.
    pub region: Region,
    /// The second octet of the region's 10.x.0.0/16 VPC.
    pub octet: u8,
    /// The share of DNS weight the region starts with (100 or 0).
    pub weight: i64,
    /// Its groups.
    pub groups: Vec<GroupSeed>,
}

/// What to create.
#[derive(Clone, Debug, Serialize)]
pub struct WorldSpec {
    /// The hosted zone.
    pub zone: String,
    /// The regions, source first.
    pub regions: Vec<RegionSeed>,
    /// Record TTL in seconds.
    pub ttl: i64,
}

impl WorldSpec {
    /// The standard world: us-east-1 serves everything, us-west-2 is a warm standby.
    pub fn standard() -> Self {
        let group = |service: &str, min, desired, max| GroupSeed {
            service: service.to_owned(),
            min,
            desired,
            max,
        };
        let region = |name: &str| Region::parse(name).unwrap_or_else(|e| unreachable!("{e}"));
        Self {
            zone: "example.com.".to_owned(),
            ttl: 60,
            regions: vec![
                RegionSeed {
                    region: region("us-east-1"),
                    octet: 0,
                    weight: 100,
                    groups: vec![group("api", 3, 6, 12), group("worker", 2, 4, 8)],
                },
                RegionSeed {
                    region: region("us-west-2"),
                    octet: 1,
                    weight: 0,
                    groups: vec![group("api", 1, 2, 12), group("worker", 1, 1, 8)],
                },
            ],
        }
    }
}

/// What was created.
#[derive(Clone, Debug, Serialize)]
pub struct World {
    /// The hosted zone's id.
    pub hosted_zone_id: String,
    /// The created Auto Scaling group names per region.
    pub groups: BTreeMap<Region, Vec<String>>,
    /// The subnet ids per region, in zone order a, b, c.
    pub subnets: BTreeMap<Region, Vec<String>>,
}

/// Whether `url` points at this machine.
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// Creates the world described by `spec`. Refuses anything but a loopback endpoint.
pub async fn seed(ctx: &AwsContext, spec: &WorldSpec) -> Result<World, SeedError> {
    match ctx.endpoint_url() {
        Some(url) if is_loopback(url) => {}
        other => {
            return Err(SeedError::NotLocal(
                other.unwrap_or("real AWS (no endpoint set)").to_owned(),
            ));
        }
    }
    let mut groups = BTreeMap::new();
    let mut subnets = BTreeMap::new();
    for region in &spec.regions {
        let (names, ids) = seed_region(ctx, region).await?;
        groups.insert(region.region.clone(), names);
        subnets.insert(region.region.clone(), ids);
    }
    let hosted_zone_id = seed_dns(ctx, spec).await?;
    Ok(World {
        hosted_zone_id,
        groups,
        subnets,
    })
}

async fn seed_region(
    ctx: &AwsContext,
    seed: &RegionSeed,
) -> Result<(Vec<String>, Vec<String>), SeedError> {
    let region = &seed.region;
    let ec2 = ctx.ec2(region);
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("10.{}.0.0/16", seed.octet))
        .send()
        .await
        .map_err(aws_err(format!("create the VPC in {region}")))?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    let mut subnet_ids = Vec::new();
    // /18 subnets hold thousands of instances, enough for fleet-size benchmarks.
    for (i, zone) in ["a", "b", "c"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.{}.{}.0/18", seed.octet, i * 64))
            .availability_zone(format!("{region}{zone}"))
            .send()
            .await
            .map_err(aws_err(format!("create a subnet in {region}{zone}")))?;
        subnet_ids.push(
            subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_default()
                .to_owned(),
        );
    }
    ec2.create_launch_template()
        .launch_template_name("evac-demo")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type("t3.micro".into())
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("evac:demo")
                        .value("true")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(aws_err(format!("create the launch template in {region}")))?;

    let autoscaling = ctx.autoscaling(region);
    let mut names = Vec::new();
    for group in &seed.groups {
        let name = format!("{}-{region}", group.service);
        let tag = |key: &str, value: &str| {
            Tag::builder()
                .key(key)
                .value(value)
                .propagate_at_launch(true)
                .resource_id(&name)
                .resource_type("auto-scaling-group")
                .build()
        };
        autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_name("evac-demo")
                    .version("$Latest")
                    .build(),
            )
            .min_size(group.min)
            .max_size(group.max)
            .desired_capacity(group.desired)
            .vpc_zone_identifier(subnet_ids.join(","))
            .tags(tag("evac:service", &group.service))
            .tags(tag("evac:drill", "zone"))
            .send()
            .await
            .map_err(aws_err(format!("create Auto Scaling group {name}")))?;
        names.push(name);
    }

    ctx.cloudwatch(region)
        .put_metric_alarm()
        .alarm_name("api-5xx-rate")
        .alarm_description("API 5xx responses above 1% for 3 minutes")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(3)
        .threshold(50.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .map_err(aws_err(format!(
            "create the api-5xx-rate alarm in {region}"
        )))?;
    Ok((names, subnet_ids))
}

async fn seed_dns(ctx: &AwsContext, spec: &WorldSpec) -> Result<String, SeedError> {
    let route53 = ctx.route53();
    let zone = route53
        .create_hosted_zone()
        .name(&spec.zone)
        .caller_reference(format!("evac-seed-{}", std::process::id()))
        .send()
        .await
        .map_err(aws_err(format!("create hosted zone {}", spec.zone)))?;
    let zone_id = zone
        .hosted_zone()
        .map(|z| z.id().to_owned())
        .unwrap_or_default();
    let zone_id = zone_id.trim_start_matches("/hostedzone/").to_owned();
    let mut batch = ChangeBatch::builder();
    for region in &spec.regions {
        let short = short_region(&region.region);
        let records = [
            ("api", RrType::A, format!("10.{}.0.10", region.octet)),
            (
                "www",
                RrType::Cname,
                format!("web-{short}.{}", spec.zone.trim_end_matches('.')),
            ),
        ];
        for (service, rr_type, value) in records {
            let set = ResourceRecordSet::builder()
                .name(format!("{service}.{}", spec.zone))
                .r#type(rr_type)
                .set_identifier(format!("{service}-{short}"))
                .weight(region.weight)
                .ttl(spec.ttl)
                .resource_records(
                    ResourceRecord::builder()
                        .value(value)
                        .build()
                        .map_err(build_err("build a record"))?,
                )
                .build()
                .map_err(build_err("build a record set"))?;
            batch = batch.changes(
                Change::builder()
                    .action(ChangeAction::Create)
                    .resource_record_set(set)
                    .build()
                    .map_err(build_err("build a change"))?,
            );
        }
    }
    route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(batch.build().map_err(build_err("build the change batch"))?)
        .send()
        .await
        .map_err(aws_err("create the weighted records"))?;
    Ok(zone_id)
}

/// `us-east-1` -> `use1`, as set identifiers are spelled in the examples.
pub fn short_region(region: &Region) -> String {
    let parts: Vec<&str> = region.as_str().split('-').collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 || i == parts.len() - 1 {
            out.push_str(part);
        } else {
            // Compass points keep two letters (southeast -> se), as AWS abbreviates them.
            match *part {
                "northeast" => out.push_str("ne"),
                "northwest" => out.push_str("nw"),
                "southeast" => out.push_str("se"),
                "southwest" => out.push_str("sw"),
                _ => out.extend(part.chars().next()),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_count_as_local() {
        assert!(is_loopback("http://127.0.0.1:5000"));
        assert!(is_loopback("http://localhost:5000/"));
        assert!(is_loopback("http://[::1]:5000"));
        assert!(!is_loopback("https://route53.amazonaws.com"));
        assert!(!is_loopback("http://127.0.0.1.example.com"));
    }

    #[test]
    fn short_region_names_match_the_example_set_identifiers() {
        let region = |r| Region::parse(r).expect("valid");
        assert_eq!(short_region(&region("us-east-1")), "use1");
        assert_eq!(short_region(&region("us-west-2")), "usw2");
        assert_eq!(short_region(&region("ap-southeast-2")), "apse2");
    }
}
