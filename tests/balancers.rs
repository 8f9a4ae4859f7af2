//! Load balancers, against the emulator: the plan shows a changed group's target
//! groups with their healthy counts, and a scale-up waits until its new capacity
//! passes the health checks of the group's load balancers, not only until it is
//! InService.
//!
//! The emulator's target groups report every registered instance healthy at once
//! (and refuse to register a stopped one), so a target group's slow health checks
//! come from the timing model of `support::proxy` between evac and the emulator:
//! new instances `initial` for a while after they are InService. A Classic Load
//! Balancer of the emulator reports a stopped instance OutOfService while its group
//! keeps it InService: an instance InService but unhealthy, with no model.
//! `src/engine/tests.rs` covers slow health checks and deregistration delays on the
//! in-memory cloud.

mod support;

use std::time::Duration;

use evac::playbook::Region;
use support::Account;

const DRILL: &str = "tests/fixtures/balancers/scale.yaml";

fn us_west_2() -> Region {
    Region::parse("us-west-2").expect("region")
}

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(work)
}

#[test]
fn the_plan_shows_the_target_groups_of_a_group_and_their_healthy_counts() {
    let account = Account::fresh();
    account.seed();
    account.attach_target_group("us-west-2", "api-us-west-2", "api-usw2");
    let out = account
        .command("evac")
        .args(["plan", DRILL])
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "scale up api in us-west-2, wait until InService and healthy in their load balancers (timeout 5m)",
        "target group api-usw2: 2 of 2 registered instance(s) healthy",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let out = account
        .command("evac")
        .args(["plan", DRILL, "--output", "json"])
        .output()
        .expect("plan");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let step = &plan["steps"][0];
    assert_eq!(step["balancers"], true);
    let view = &step["changes"][0]["balancers"][0];
    assert_eq!(view["balancer"]["kind"], "target_group");
    assert_eq!(
        (view["healthy"].as_u64(), view["registered"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn a_scale_up_into_a_target_group_reads_its_health_before_it_ends() {
    let account = Account::fresh();
    account.seed();
    account.attach_target_group("us-west-2", "api-us-west-2", "api-usw2");
    let state = tempfile::tempdir().expect("state dir");
    account
        .evac_in(state.path(), &["run", DRILL, "--yes"])
        .assert()
        .success();
    assert_eq!(account.world().groups["api-us-west-2"].1, 4);
    // The group's health in its target group was read after its capacity changed.
    let calls: Vec<String> = support::recorded_calls()
        .into_iter()
        .filter(|c| c.access_key == account.access_key)
        .map(|c| c.operation)
        .collect();
    let update = calls
        .iter()
        .rposition(|c| c == "UpdateAutoScalingGroup")
        .expect("the scale-up");
    assert!(
        calls[update..].iter().any(|c| c == "DescribeTargetHealth"),
        "{calls:?}"
    );
}

#[test]
fn a_scale_up_waits_while_an_instance_is_unhealthy_in_its_load_balancer() {
    let account = Account::fresh();
    account.seed();
    account.attach_classic("us-west-2", "api-us-west-2", "api-usw2");
    // One of the group's two instances stops: still InService in its group,
    // OutOfService in the load balancer.
    let ids = block_on(async {
        let client = account.context().await.autoscaling(&us_west_2());
        support::group_instances(&client, "api-us-west-2").await
    });
    let sick = ids[0].clone();
    let ec2 = |start: bool| {
        block_on(async {
            let ec2 = account.context().await.ec2(&us_west_2());
            if start {
                ec2.start_instances()
                    .instance_ids(&sick)
                    .send()
                    .await
                    .expect("start the instance");
            } else {
                ec2.stop_instances()
                    .instance_ids(&sick)
                    .send()
                    .await
                    .expect("stop the instance");
            }
        })
    };
    ec2(false);
    let state = tempfile::tempdir().expect("state dir");
    let mut run = account
        .process()
        .args(["run", DRILL, "--yes", "--output", "json", "--state-dir"])
        .arg(state.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    // The group reached 4 InService, and the load balancer was read twice since:
    // the run is waiting on it.
    let health_reads = || {
        support::recorded_calls()
            .iter()
            .filter(|c| {
                c.access_key == account.access_key && c.operation == "DescribeInstanceHealth"
            })
            .count()
    };
    support::until("the load balancer read twice", || health_reads() >= 2);
    assert_eq!(account.world().groups["api-us-west-2"].1, 4);
    assert_eq!(run.try_wait().expect("wait"), None, "the run ended early");
    let id = support::run_ids(state.path()).pop().expect("a run");
    let journal = support::journal_so_far(state.path(), &id);
    assert!(
        !journal.iter().any(|e| e["event"] == "step_finished"),
        "{journal:?}"
    );
    // Healthy again: the step ends, and the run.
    ec2(true);
    assert_eq!(support::exit_within(&mut run, Duration::from_secs(60)), 0);
    let journal = support::journal_so_far(state.path(), &id);
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "step_finished" && e["step"] == "scale"),
        "{journal:?}"
    );
}

#[test]
fn a_scale_up_into_a_target_group_waits_while_its_new_instances_are_initial() {
    use support::proxy::{FaultProxy, Timing};
    let account = Account::fresh();
    account.seed();
    account.attach_target_group("us-west-2", "api-us-west-2", "api-usw2");
    // Between evac and the emulator, a model of AWS in time: new instances pass
    // their target group's health checks 2 s after they are InService.
    let timing = Timing::parse("latency=0ms,launch=0s,healthy=2s").expect("timing");
    let proxy = FaultProxy::with_timing(&account.endpoint, Vec::new(), Some(timing));
    let state = tempfile::tempdir().expect("state dir");
    account
        .command("evac")
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["run", DRILL, "--yes", "--state-dir"])
        .arg(state.path())
        .assert()
        .success();
    // The two new instances were seen `initial`, and the run went on only once a
    // read showed all four healthy.
    assert!(proxy.held() >= 2, "held {}", proxy.held());
    let reads = proxy
        .calls()
        .get("DescribeTargetHealth")
        .copied()
        .unwrap_or(0);
    assert!(reads >= 2, "{:?}", proxy.calls());
    assert_eq!(account.world().groups["api-us-west-2"].1, 4);
}
