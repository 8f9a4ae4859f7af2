//! The seeding program against the local emulator: the world the demo and the
//! example playbooks rely on.

mod support;

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::Filter;
use evac::playbook::Region;
use support::Account;

fn region(name: &str) -> Region {
    Region::parse(name).expect("valid region")
}

#[tokio::test]
async fn seeded_world_has_tagged_groups_weighted_records_and_alarms() {
    let account = Account::fresh();
    account.seed();
    let ctx = account.context().await;

    // Groups, found the way playbooks find them: by tag, in each region.
    let mut desired = BTreeMap::new();
    for name in ["us-east-1", "us-west-2"] {
        let groups = ctx
            .autoscaling(&region(name))
            .describe_auto_scaling_groups()
            .filters(
                Filter::builder()
                    .name("tag:evac:service")
                    .values("api")
                    .values("worker")
                    .build(),
            )
            .send()
            .await
            .expect("describe groups");
        for group in groups.auto_scaling_groups() {
            let in_service = group
                .instances()
                .iter()
                .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
                .count();
            desired.insert(
                group
                    .auto_scaling_group_name()
                    .unwrap_or_default()
                    .to_owned(),
                (group.desired_capacity(), in_service),
            );
            let zones: Vec<&str> = group
                .availability_zones()
                .iter()
                .map(String::as_str)
                .collect();
            assert_eq!(zones.len(), 3, "{name}: groups span three zones: {zones:?}");
        }
    }
    let expected: BTreeMap<String, (Option<i32>, usize)> = [
        ("api-us-east-1", (Some(6), 6)),
        ("api-us-west-2", (Some(2), 2)),
        ("worker-us-east-1", (Some(4), 4)),
        ("worker-us-west-2", (Some(1), 1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(desired, expected);

    // Weighted records: 100 in the source, 0 in the target.
    let route53 = ctx.route53();
    let zones = route53
        .list_hosted_zones_by_name()
        .dns_name("example.com.")
        .send()
        .await
        .expect("list zones");
    let zone = zones
        .hosted_zones()
        .first()
        .expect("the example.com. zone exists");
    let records = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone.id())
        .send()
        .await
        .expect("list records");
    let weights: BTreeMap<String, Option<i64>> = records
        .resource_record_sets()
        .iter()
        .filter_map(|r| r.set_identifier().map(|id| (id.to_owned(), r.weight())))
        .collect();
    let expected: BTreeMap<String, Option<i64>> = [
        ("api-use1", 100),
        ("api-usw2", 0),
        ("www-use1", 100),
        ("www-usw2", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Some(v)))
    .collect();
    assert_eq!(weights, expected);

    // The stop-condition alarm exists, not firing, in both regions.
    for name in ["us-east-1", "us-west-2"] {
        let alarms = ctx
            .cloudwatch(&region(name))
            .describe_alarms()
            .alarm_names("api-5xx-rate")
            .send()
            .await
            .expect("describe alarms");
        let states: Vec<&str> = alarms
            .metric_alarms()
            .iter()
            .filter_map(|a| a.state_value())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(states, ["OK"], "{name}");
    }
}

#[tokio::test]
async fn accounts_are_isolated_from_each_other() {
    let seeded = Account::fresh();
    seeded.seed();
    let empty = Account::fresh();
    let ctx = empty.context().await;
    let groups = ctx
        .autoscaling(&region("us-east-1"))
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("describe");
    assert!(
        groups.auto_scaling_groups().is_empty(),
        "a fresh account sees no groups of another"
    );
}

#[test]
fn seeding_refuses_a_non_local_endpoint() {
    let output = support::evac_seed()
        .args([
            "--endpoint-url",
            "https://autoscaling.us-east-1.amazonaws.com",
        ])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .output()
        .expect("evac-seed runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("seeding only talks to an emulator on loopback")
    );
}

#[test]
fn seeding_refuses_disguised_endpoints_naming_the_real_host() {
    // Nothing listens behind these: a refusal comes before any call.
    let cases = [
        (
            vec!["--endpoint-url", "http://127.0.0.1:1@example.invalid:4566/"],
            vec![],
            "host example.invalid",
        ),
        (
            vec!["--endpoint-url", "http://localhost.example.invalid:4566"],
            vec![],
            "host localhost.example.invalid",
        ),
        (
            vec!["--endpoint-url", "http://[::ffff:10.1.2.3]:4566"],
            vec![],
            "host [::ffff:a01:203]",
        ),
        (
            vec!["--endpoint-url", "http://127.0.0.1:9"],
            vec![("AWS_ENDPOINT_URL_ROUTE_53", "https://route53.amazonaws.com")],
            "AWS_ENDPOINT_URL_ROUTE_53: `https://route53.amazonaws.com` has host route53.amazonaws.com",
        ),
    ];
    for (args, env, host) in cases {
        let mut cmd = support::evac_seed();
        cmd.args(&args)
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "x");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("evac-seed runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("refusing to seed"), "{args:?}: {stderr}");
        assert!(stderr.contains(host), "{args:?}: {stderr}");
    }
}

#[test]
fn evac_seed_lists_every_record_tag_and_alarm_it_created() {
    let account = Account::fresh();
    let output = account
        .command("evac-seed")
        .output()
        .expect("evac-seed runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let world: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let records = world["records"].as_array().expect("records");
    let listed: Vec<(String, String, String, String)> = records
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["type"].as_str().unwrap_or_default().to_owned(),
                r["set_identifiers"]["us-east-1"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["set_identifiers"]["us-west-2"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let own = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        listed,
        [
            own("api.example.com.", "A", "api-use1", "api-usw2"),
            own("www.example.com.", "CNAME", "www-use1", "www-usw2"),
        ]
    );
    assert_eq!(records[0]["set_identifiers"]["us-east-1"][1], 100);
    assert_eq!(records[0]["ttl"], 60);
    assert_eq!(world["alarms"]["us-west-2"][0], "api-5xx-rate");
    assert_eq!(world["group_tags"]["evac:drill"], "zone");
    assert_eq!(world["group_tags"]["evac:fleet"], "demo");
}
