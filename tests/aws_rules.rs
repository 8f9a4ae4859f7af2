//! AWS's rules that a drill depends on, against the emulator where it keeps them:
//! Route 53's limit on one change batch.

mod support;

use support::Account;

#[test]
fn a_drill_of_300_names_in_one_zone_shifts_every_record() {
    // 300 two-region records in one hosted zone: 600 UPSERTs, 1,200 elements counted,
    // past the 1,000 one request holds (the emulator refuses such a request too).
    let account = Account::fresh();
    account.seed_spec(&evac::seed::WorldSpec::fleet(1, 300, 1));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = String::from("version: 1\nname: big-zone\nrecords:\n");
    for r in 0..300 {
        text.push_str(&format!(
            "  svc-{r:03}:\n    zone: zone0.example.com.\n    name: svc-{r:03}.zone0.example.com.\n    type: A\n    set_identifiers: {{ us-east-1: svc-{r:03}-use1, us-west-2: svc-{r:03}-usw2 }}\n"
        ));
    }
    let all: Vec<String> = (0..300).map(|r| format!("svc-{r:03}")).collect();
    text.push_str(&format!(
        "steps:\n  - id: shift\n    shift_traffic: {{ record: [{}], to: us-west-2, ramp: [50, 100], bake: 0s }}\n",
        all.join(", ")
    ));
    let file = dir.path().join("big-zone.yaml");
    std::fs::write(&file, text).expect("write");
    let file = file.to_str().expect("path");
    let state = dir.path().join("state");

    let planned = account
        .evac_in(&state, &["plan", file])
        .output()
        .expect("plan");
    let said = String::from_utf8_lossy(&planned.stdout).into_owned();
    assert_eq!(planned.status.code(), Some(0), "{said}");
    assert!(said.contains("in 2 change batches"), "{said}");
    assert!(
        said.contains("route53:ChangeResourceRecordSets 4"),
        "{said}"
    );

    let ran = account
        .evac_in(&state, &["run", file, "--yes"])
        .output()
        .expect("run");
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let weights = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async { support::all_weights(&account.context().await.route53()).await });
    assert_eq!(weights.len(), 600, "every set read");
    for r in 0..300 {
        assert_eq!(weights[&format!("svc-{r:03}-use1")], 0, "svc-{r:03}");
        assert_eq!(weights[&format!("svc-{r:03}-usw2")], 100, "svc-{r:03}");
    }
}

/// A playbook that scales the demo world's api up, halted by `alarm`.
fn halted_by(alarm: &str) -> String {
    format!(
        r#"version: 1
name: composite
groups:
  api: {{ tags: {{ "evac:service": api }} }}
stop_when:
  - alarm: {{ region: us-west-2, name: {alarm} }}
steps:
  - id: scale
    scale_up: {{ group: api, region: us-west-2, desired: 4 }}
"#
    )
}

#[test]
fn every_describe_alarms_asks_for_composite_alarms_too() {
    // AWS answers composite alarms only when DescribeAlarms asks for them with
    // AlarmTypes: a composite stop alarm would read as missing (a blocker), and a
    // halted run would never see it fire. The emulator answers both whatever is
    // asked, and cannot make a composite alarm, so the request itself is checked.
    let account = Account::fresh();
    account.seed();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("alarmed.yaml");
    std::fs::write(&file, halted_by("api-5xx-rate")).expect("write");
    let file = file.to_str().expect("path");
    let state = dir.path().join("state");
    let out = account
        .evac_in(&state, &["plan", file])
        .output()
        .expect("plan");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = account
        .evac_in(&state, &["run", file, "--yes"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked: Vec<String> = support::recorded_calls()
        .into_iter()
        .filter(|c| c.access_key == account.access_key && c.operation == "DescribeAlarms")
        .map(|c| c.body)
        .collect();
    // The plan's read, and the run's: its own plan and the watch before each wave.
    assert!(asked.len() >= 3, "{asked:?}");
    for body in &asked {
        assert!(
            body.contains("AlarmTypes.member.1=MetricAlarm")
                && body.contains("AlarmTypes.member.2=CompositeAlarm"),
            "{body}"
        );
    }
}

/// Starts `evac run` of the plan fixture (no bakes) with its state in `state`,
/// through a proxy that holds its first weight change for `hold`.
fn run_holding_the_first_weight_change(
    account: &Account,
    state: &std::path::Path,
    hold: std::time::Duration,
) -> (support::proxy::FaultProxy, std::process::Child) {
    use support::proxy::{Fault, FaultProxy, Rule};
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::nth(
            "ChangeResourceRecordSets",
            Fault::Latency(hold),
            1,
        )],
    );
    let child = account
        .process()
        .args([
            "run",
            "tests/fixtures/plan/base.yaml",
            "--var",
            "bake=0s",
            "--yes",
            "--state-dir",
        ])
        .arg(state)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    (proxy, child)
}

#[test]
fn groups_that_scale_themselves_during_a_drill_are_left_so_and_rollback_is_exact() {
    // Scaling policies move desired within the bounds evac set: the target out as
    // traffic arrives, the source in as it leaves. The run's first weight change is
    // held at the test proxy; while it is held the test scales both groups, as their
    // policies would, then lets it through.
    use std::time::Duration;
    let account = Account::fresh();
    account.seed();
    let seeded = account.world();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let (_proxy, mut child) =
        run_holding_the_first_weight_change(&account, &state, Duration::from_secs(5));
    support::until("the first weight change is on its way", || {
        support::run_ids(&state).iter().any(|id| {
            support::journal_so_far(&state, id)
                .iter()
                .any(|e| e["event"] == "intent" && e["target"]["kind"] == "weights")
        })
    });
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let ctx = account.context().await;
            for (region, group, desired) in [
                ("us-west-2", "api-us-west-2", 10),
                ("us-east-1", "api-us-east-1", 4),
            ] {
                ctx.autoscaling(&evac::playbook::Region::parse(region).expect("region"))
                    .set_desired_capacity()
                    .auto_scaling_group_name(group)
                    .desired_capacity(desired)
                    .send()
                    .await
                    .expect("scale");
            }
        });
    let code = support::exit_within(&mut child, Duration::from_secs(120));
    let mut stderr = String::new();
    use std::io::Read as _;
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(code, 0, "the drill finishes: {stderr}");
    let world = account.world();
    assert_eq!(world.groups["api-us-west-2"].0, 8, "min evac set");
    assert_eq!(world.groups["api-us-west-2"].1, 10, "the scale-out is left");
    assert_eq!(world.groups["api-us-east-1"].1, 0, "drained");
    assert_eq!(world.weights["api-usw2"], 100);
    let run_id = support::run_ids(&state).pop().expect("the run");
    // The journal records each group's own scaling (the emulator's scaling
    // activities are empty: the cause says so).
    let scaled: Vec<(String, i64)> = support::journal_so_far(&state, &run_id)
        .iter()
        .filter(|e| e["event"] == "scaled_itself")
        .map(|e| {
            (
                e["group"].as_str().unwrap_or_default().to_owned(),
                e["to"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert!(
        scaled.contains(&("api-us-west-2".to_owned(), 10)),
        "{scaled:?}"
    );
    assert!(
        scaled.contains(&("api-us-east-1".to_owned(), 4)),
        "{scaled:?}"
    );
    let out = account
        .evac_in(&state, &["rollback", &run_id, "--yes"])
        .output()
        .expect("rollback");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let back = account.world();
    // As recorded: the target as before the run; the source as its drain found it.
    assert_eq!(back.groups["api-us-west-2"], seeded.groups["api-us-west-2"]);
    let east = &back.groups["api-us-east-1"];
    assert_eq!((east.0, east.1, east.2), (3, 4, 12));
    assert_eq!(back.weights, seeded.weights);
}

/// Makes a calculated health check in `account` (and a metric datapoint of its
/// HealthCheckStatus, `value`), returning its id.
fn calculated_health_check(account: &Account, value: f64) -> String {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let ctx = account.context().await;
            let created = ctx
                .route53()
                .create_health_check()
                .caller_reference(format!("evac-test-{value}"))
                .health_check_config(
                    aws_sdk_route53::types::HealthCheckConfig::builder()
                        .r#type(aws_sdk_route53::types::HealthCheckType::Calculated)
                        .health_threshold(1)
                        .build()
                        .expect("config"),
                )
                .send()
                .await
                .expect("health check");
            let id = created
                .health_check()
                .map(|h| h.id().to_owned())
                .expect("an id");
            ctx.cloudwatch(&evac::playbook::Region::parse("us-east-1").expect("region"))
                .put_metric_data()
                .namespace("AWS/Route53")
                .metric_data(
                    aws_sdk_cloudwatch::types::MetricDatum::builder()
                        .metric_name("HealthCheckStatus")
                        .dimensions(
                            aws_sdk_cloudwatch::types::Dimension::builder()
                                .name("HealthCheckId")
                                .value(&id)
                                .build(),
                        )
                        .value(value)
                        .timestamp(aws_smithy_types::DateTime::from(
                            std::time::SystemTime::now(),
                        ))
                        .build(),
                )
                .send()
                .await
                .expect("metric");
            id
        })
}

#[test]
fn a_calculated_health_check_is_read_from_its_cloudwatch_metric() {
    // AWS refuses GetHealthCheckStatus for a calculated health check (the test
    // proxy does so too): read that way, every run watching one would halt, since a
    // condition that cannot be read counts as fired.
    use support::proxy::FaultProxy;
    let account = Account::fresh();
    account.seed();
    let proxy = FaultProxy::start(&account.endpoint, vec![]);
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |id: &str, name: &str| {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                r#"version: 1
name: {name}
groups:
  api: {{ tags: {{ "evac:service": api }} }}
stop_when:
  - health_check: {{ id: {id} }}
steps:
  - id: scale
    scale_up: {{ group: api, region: us-west-2, desired: 4 }}
"#
            ),
        )
        .expect("write");
        let mut cmd = account.evac_in(
            &dir.path().join("state"),
            &["run", file.to_str().expect("path"), "--yes"],
        );
        cmd.env("AWS_ENDPOINT_URL", &proxy.url);
        cmd.output().expect("run")
    };
    let healthy = calculated_health_check(&account, 1.0);
    let out = run(&healthy, "calculated-healthy");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !proxy.calls().contains_key("GetHealthCheckStatus"),
        "the calculated check was read from its metric: {:?}",
        proxy.calls()
    );
    let unhealthy = calculated_health_check(&account, 0.0);
    let out = run(&unhealthy, "calculated-unhealthy");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(6),
        "halted by the unhealthy check: {said}"
    );
    assert!(said.contains(&unhealthy), "{said}");
}

#[test]
fn a_weight_change_raced_by_a_teammate_is_refused_by_route53_not_applied() {
    // Route 53 takes a DELETE only of the set as it is: evac deletes each set as it
    // read it and creates it with its new weight, in one batch. The emulator keeps
    // that rule (scripts/moto_server.py). The run's first weight change is held at
    // the test proxy; meanwhile a teammate sets the target to 30.
    use std::time::Duration;
    let account = Account::fresh();
    account.seed();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let (proxy, mut child) =
        run_holding_the_first_weight_change(&account, &state, Duration::from_secs(4));
    support::until("the first weight change is held", || {
        proxy
            .injected()
            .get("ChangeResourceRecordSets")
            .is_some_and(|n| *n >= 1)
    });
    account.set_weights(&[("api-usw2", 30)]);
    let code = support::exit_within(&mut child, Duration::from_secs(120));
    let mut stderr = String::new();
    use std::io::Read as _;
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("InvalidChangeBatch"), "{stderr}");
    // The teammate's weight stands; the run's 50/50 did not land.
    let world = account.world();
    assert_eq!(world.weights["api-usw2"], 30);
    assert_eq!(world.weights["api-use1"], 100);
}
