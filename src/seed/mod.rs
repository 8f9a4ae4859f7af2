//! A realistic two-region world in a local AWS emulator, for the demo and the tests.
//!
//! Per region: a VPC with a subnet in each of three zones, a launch template, the
//! tagged Auto Scaling groups `api-REGION` and `worker-REGION`, and a CloudWatch alarm
//! `api-5xx-rate`. One hosted zone `example.com.` holds weighted records for `api`
//! (A) and `www` (CNAME), weight 100 in the source region and 0 in the target. The
//! example playbooks in `playbooks/` run against exactly this world. [`WorldSpec::fleet`]
//! makes a fleet-size world for benchmarks.

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
        "refusing to seed: {0}; seeding only talks to an emulator on loopback (127.0.0.1, ::1 or localhost)"
    )]
    NotLocal(String),
}

fn aws_err<E, R>(call: impl Into<String>) -> impl FnOnce(SdkError<E, R>) -> SeedError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
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

/// One weighted record to create: `LABEL.ZONE` with one set per region.
#[derive(Clone, Debug, Serialize)]
pub struct RecordSeed {
    /// The first label (`api`); set identifiers are `LABEL-SHORTREGION`.
    pub label: String,
    /// `true` for a CNAME, `false` for an A record.
    pub cname: bool,
}

/// One hosted zone and its records.
#[derive(Clone, Debug, Serialize)]
pub struct ZoneSeed {
    /// The zone name, with the trailing dot.
    pub name: String,
    /// Its weighted records.
    pub records: Vec<RecordSeed>,
}

/// What to create.
#[derive(Clone, Debug, Serialize)]
pub struct WorldSpec {
    /// The hosted zones.
    pub zones: Vec<ZoneSeed>,
    /// The regions, source first.
    pub regions: Vec<RegionSeed>,
    /// Record TTL in seconds.
    pub ttl: i64,
    /// Value of the `evac:fleet` tag on every group.
    pub fleet: String,
}

fn region_of(name: &str) -> Region {
    Region::parse(name).unwrap_or_else(|e| unreachable!("{e}"))
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
        let record = |label: &str, cname| RecordSeed {
            label: label.to_owned(),
            cname,
        };
        Self {
            zones: vec![ZoneSeed {
                name: "example.com.".to_owned(),
                records: vec![record("api", false), record("www", true)],
            }],
            ttl: 60,
            fleet: "demo".to_owned(),
            regions: vec![
                RegionSeed {
                    region: region_of("us-east-1"),
                    octet: 0,
                    weight: 100,
                    groups: vec![group("api", 3, 6, 12), group("worker", 2, 4, 8)],
                },
                RegionSeed {
                    region: region_of("us-west-2"),
                    octet: 1,
                    weight: 0,
                    groups: vec![group("api", 1, 2, 12), group("worker", 1, 1, 8)],
                },
            ],
        }
    }

    /// A fleet-size world for benchmarks: `services` groups in each of us-east-1 and
    /// us-west-2 (`svc-NNN-REGION`, tagged `evac:fleet=bench`), and `records` weighted
    /// A records (`svc-NNN`) spread over `zones` hosted zones (`zoneN.example.com.`).
    pub fn fleet(services: usize, records: usize, zones: usize) -> Self {
        let groups = |min, desired| {
            (0..services)
                .map(|i| GroupSeed {
                    service: format!("svc-{i:03}"),
                    min,
                    desired,
                    max: 20,
                })
                .collect()
        };
        let zones = zones.max(1);
        Self {
            zones: (0..zones)
                .map(|z| ZoneSeed {
                    name: format!("zone{z}.example.com."),
                    records: (0..records)
                        .filter(|r| r % zones == z)
                        .map(|r| RecordSeed {
                            label: format!("svc-{r:03}"),
                            cname: false,
                        })
                        .collect(),
                })
                .collect(),
            ttl: 60,
            fleet: "bench".to_owned(),
            regions: vec![
                RegionSeed {
                    region: region_of("us-east-1"),
                    octet: 0,
                    weight: 100,
                    groups: groups(1, 2),
                },
                RegionSeed {
                    region: region_of("us-west-2"),
                    octet: 1,
                    weight: 0,
                    groups: groups(0, 1),
                },
            ],
        }
    }
}

/// What was created.
#[derive(Clone, Debug, Serialize)]
pub struct World {
    /// The hosted zone ids by name.
    pub hosted_zones: BTreeMap<String, String>,
    /// The created Auto Scaling group names per region.
    pub groups: BTreeMap<Region, Vec<String>>,
    /// The tags every group carries (`evac:service` is the group's service).
    pub group_tags: BTreeMap<String, String>,
    /// The subnet ids per region, in zone order a, b, c.
    pub subnets: BTreeMap<Region, Vec<String>>,
    /// The weighted records: what a playbook's `records:` names.
    pub records: Vec<SeededRecord>,
    /// The CloudWatch alarms per region (state INSUFFICIENT_DATA until set).
    pub alarms: BTreeMap<Region, Vec<String>>,
}

/// One weighted record as created.
#[derive(Clone, Debug, Serialize)]
pub struct SeededRecord {
    /// Its hosted zone.
    pub zone: String,
    /// Its name.
    pub name: String,
    /// `A` or `CNAME`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Per region: its set identifier and weight.
    pub set_identifiers: BTreeMap<Region, (String, i64)>,
    /// Its TTL in seconds.
    pub ttl: i64,
}

/// Checks that `url` points at this machine: parsed as a URL (so that user info,
/// odd number forms and IPv6 are read as a client reads them), http or https, no
/// user info, and a host that is `localhost`, an IPv4 loopback address or `::1`.
/// The error names what the host really is.
pub fn loopback(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    let host = parsed.host();
    let named = host
        .as_ref()
        .map_or_else(|| "no host".to_owned(), |h| format!("host {h}"));
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not http or https ({named})"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "`{url}` carries user info before `@`: its {named} is what a client would call"
        ));
    }
    let local = match host {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if local {
        Ok(())
    } else {
        Err(format!("`{url}` has {named}, which is not this machine"))
    }
}

/// The endpoints AWS clients would use besides `endpoint`: every service-specific
/// `AWS_ENDPOINT_URL_*` variable, which overrides the global endpoint for its service.
fn service_endpoints() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_ENDPOINT_URL_"))
        .collect()
}

/// Creates the world described by `spec`. Refuses anything but a loopback endpoint,
/// before any call.
pub async fn seed(ctx: &AwsContext, spec: &WorldSpec) -> Result<World, SeedError> {
    match ctx.endpoint_url() {
        Some(url) => loopback(url).map_err(SeedError::NotLocal)?,
        None => {
            return Err(SeedError::NotLocal(
                "no endpoint is set: that is real AWS".to_owned(),
            ));
        }
    }
    for (variable, url) in service_endpoints() {
        loopback(&url).map_err(|why| SeedError::NotLocal(format!("{variable}: {why}")))?;
    }
    let mut groups = BTreeMap::new();
    let mut subnets = BTreeMap::new();
    for region in &spec.regions {
        let (names, ids) = seed_region(ctx, region, &spec.fleet).await?;
        groups.insert(region.region.clone(), names);
        subnets.insert(region.region.clone(), ids);
    }
    let mut hosted_zones = BTreeMap::new();
    for zone in &spec.zones {
        hosted_zones.insert(zone.name.clone(), seed_zone(ctx, spec, zone).await?);
    }
    let records = spec
        .zones
        .iter()
        .flat_map(|zone| {
            zone.records.iter().map(|record| SeededRecord {
                zone: zone.name.clone(),
                name: format!("{}.{}", record.label, zone.name),
                record_type: if record.cname { "CNAME" } else { "A" }.to_owned(),
                set_identifiers: spec
                    .regions
                    .iter()
                    .map(|r| {
                        (
                            r.region.clone(),
                            (format!("{}-{}", record.label, r.region.short()), r.weight),
                        )
                    })
                    .collect(),
                ttl: spec.ttl,
            })
        })
        .collect();
    Ok(World {
        hosted_zones,
        groups,
        group_tags: BTreeMap::from([
            (
                "evac:service".to_owned(),
                "SERVICE (api, worker)".to_owned(),
            ),
            ("evac:drill".to_owned(), "zone".to_owned()),
            ("evac:fleet".to_owned(), spec.fleet.clone()),
        ]),
        subnets,
        records,
        alarms: spec
            .regions
            .iter()
            .map(|r| (r.region.clone(), vec!["api-5xx-rate".to_owned()]))
            .collect(),
    })
}

async fn seed_region(
    ctx: &AwsContext,
    seed: &RegionSeed,
    fleet: &str,
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
            .tags(tag("evac:fleet", fleet))
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

async fn seed_zone(
    ctx: &AwsContext,
    spec: &WorldSpec,
    zone: &ZoneSeed,
) -> Result<String, SeedError> {
    let route53 = ctx.route53();
    let created = route53
        .create_hosted_zone()
        .name(&zone.name)
        .caller_reference(format!("evac-seed-{}-{}", std::process::id(), zone.name))
        .send()
        .await
        .map_err(aws_err(format!("create hosted zone {}", zone.name)))?;
    let zone_id = created
        .hosted_zone()
        .map(|z| z.id().to_owned())
        .unwrap_or_default();
    let zone_id = zone_id.trim_start_matches("/hostedzone/").to_owned();
    let mut changes = Vec::new();
    for record in &zone.records {
        for region in &spec.regions {
            let short = region.region.short();
            let (rr_type, value) = if record.cname {
                (
                    RrType::Cname,
                    format!(
                        "{}-{short}.{}",
                        record.label,
                        zone.name.trim_end_matches('.')
                    ),
                )
            } else {
                (RrType::A, format!("10.{}.0.10", region.octet))
            };
            let set = ResourceRecordSet::builder()
                .name(format!("{}.{}", record.label, zone.name))
                .r#type(rr_type)
                .set_identifier(format!("{}-{short}", record.label))
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
            changes.push(
                Change::builder()
                    .action(ChangeAction::Create)
                    .resource_record_set(set)
                    .build()
                    .map_err(build_err("build a change"))?,
            );
        }
    }
    // A change batch holds at most 1,000 changes.
    for chunk in changes.chunks(500) {
        route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(
                ChangeBatch::builder()
                    .set_changes(Some(chunk.to_vec()))
                    .build()
                    .map_err(build_err("build the change batch"))?,
            )
            .send()
            .await
            .map_err(aws_err(format!(
                "create the weighted records of {}",
                zone.name
            )))?;
    }
    Ok(zone_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_loopback(url: &str) -> bool {
        loopback(url).is_ok()
    }

    #[test]
    fn only_loopback_endpoints_count_as_local() {
        assert!(is_loopback("http://127.0.0.1:5000"));
        assert!(is_loopback("http://127.0.0.2:5000"));
        assert!(is_loopback("http://localhost:5000/"));
        assert!(is_loopback("http://[::1]:5000"));
        assert!(
            is_loopback("http://2130706433:5000/"),
            "127.0.0.1 as one number"
        );
        assert!(!is_loopback("https://route53.amazonaws.com"));
        assert!(!is_loopback("http://127.0.0.1.example.com"));
        assert!(!is_loopback("http://localhost.example.com:5000"));
        assert!(!is_loopback("http://[::ffff:8.8.8.8]:5000"));
        assert!(!is_loopback("ftp://127.0.0.1/"));
        assert!(!is_loopback("127.0.0.1:5000"));
    }

    #[test]
    fn user_info_is_read_as_a_client_reads_it() {
        let err = loopback("http://127.0.0.1:1@example.invalid:4566/").expect_err("disguised");
        assert!(err.contains("host example.invalid"), "{err}");
        assert!(err.contains("user info"), "{err}");
    }

    #[test]
    fn short_region_names_match_the_example_set_identifiers() {
        let region = |r| Region::parse(r).expect("valid");
        assert_eq!(region("us-east-1").short(), "use1");
        assert_eq!(region("us-west-2").short(), "usw2");
        assert_eq!(region("ap-southeast-2").short(), "apse2");
    }
}
