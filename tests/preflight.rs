//! What `plan` (and so `run`, which plans first) checks of the Auto Scaling groups a
//! drill changes, against the emulator: a suspended Launch or Terminate and
//! instances protected from scale-in block; lifecycle hooks, warm pools, scaling
//! policies and scheduled actions warn. And `suspend:` on a step, undone by rollback.

mod support;

use aws_sdk_autoscaling::Client;
use evac::playbook::Region;
use support::Account;

const DRILL: &str = "playbooks/evacuate-region.yaml";

/// A seeded account, changed by `setup` (given the Auto Scaling client of a region),
/// and the blockers and warnings of the example drill's plan, as `RESOURCE: message`.
fn findings(region: &str, setup: impl AsyncFnOnce(Client)) -> (Vec<String>, Vec<String>) {
    let account = Account::fresh();
    account.seed();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let client = account
                .context()
                .await
                .autoscaling(&Region::parse(region).expect("region"));
            setup(client).await;
        });
    let out = account
        .command("evac")
        .args(["plan", DRILL, "--output", "json"])
        .output()
        .expect("plan");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let list = |key: &str| -> Vec<String> {
        plan[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                format!(
                    "{}: {}",
                    f["resource"].as_str().unwrap_or_default(),
                    f["message"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    (list("blockers"), list("warnings"))
}

async fn suspend(client: &Client, group: &str, process: &str) {
    client
        .suspend_processes()
        .auto_scaling_group_name(group)
        .scaling_processes(process)
        .send()
        .await
        .expect("suspend");
}

#[test]
fn blocker_instances_protected_from_scale_in_in_a_drained_group() {
    let (blockers, _) = findings("us-east-1", async |client| {
        let ids = support::group_instances(&client, "api-us-east-1").await;
        client
            .set_instance_protection()
            .auto_scaling_group_name("api-us-east-1")
            .set_instance_ids(Some(ids[..2].to_vec()))
            .protected_from_scale_in(true)
            .send()
            .await
            .expect("protect");
    });
    assert_eq!(
        blockers,
        [
            "asg api-us-east-1 (us-east-1): 2 instance(s) of api-us-east-1 are protected from scale-in: the drain would wait for them until its timeout; remove the protection (aws autoscaling set-instance-protection --no-protected-from-scale-in), set `force_protected: true` on the step (rollback protects again those still running), or leave the group out"
        ]
    );
}

#[test]
fn blocker_launch_suspended_in_a_group_scaled_up() {
    let (blockers, _) = findings("us-west-2", async |client| {
        suspend(&client, "api-us-west-2", "Launch").await;
    });
    assert_eq!(
        blockers,
        [
            "asg api-us-west-2 (us-west-2): api-us-west-2 has Launch suspended: the scale-up would never launch an instance; resume it (aws autoscaling resume-processes --auto-scaling-group-name api-us-west-2 --scaling-processes Launch) or leave the group out"
        ]
    );
}

#[test]
fn blocker_terminate_suspended_in_a_drained_group() {
    let (blockers, _) = findings("us-east-1", async |client| {
        suspend(&client, "worker-us-east-1", "Terminate").await;
    });
    assert_eq!(
        blockers,
        [
            "asg worker-us-east-1 (us-east-1): worker-us-east-1 has Terminate suspended: the drain would never terminate an instance; resume it (aws autoscaling resume-processes --auto-scaling-group-name worker-us-east-1 --scaling-processes Terminate) or leave the group out"
        ]
    );
}

#[test]
fn warning_lifecycle_hooks_that_hold_launches() {
    let (blockers, warnings) = findings("us-west-2", async |client| {
        client
            .put_lifecycle_hook()
            .auto_scaling_group_name("api-us-west-2")
            .lifecycle_hook_name("warm-caches")
            .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
            .heartbeat_timeout(300)
            .send()
            .await
            .expect("hook");
    });
    assert!(blockers.is_empty(), "{blockers:?}");
    assert!(
        warnings.contains(&"asg api-us-west-2 (us-west-2): api-us-west-2 has launch lifecycle hook(s): warm-caches (heartbeat 300s); each instance may wait up to 300s in it, which the estimate does not include".to_owned()),
        "{warnings:?}"
    );
}

#[test]
fn warning_warm_pool() {
    let (_, warnings) = findings("us-west-2", async |client| {
        client
            .put_warm_pool()
            .auto_scaling_group_name("worker-us-west-2")
            .min_size(2)
            .send()
            .await
            .expect("warm pool");
    });
    assert!(
        warnings.contains(&"asg worker-us-west-2 (us-west-2): worker-us-west-2 has a warm pool (min size 2): instances come from it first and launch faster than the estimate assumes".to_owned()),
        "{warnings:?}"
    );
}

#[test]
fn warning_scaling_policies_and_scheduled_actions() {
    let (_, warnings) = findings("us-west-2", async |client| {
        client
            .put_scaling_policy()
            .auto_scaling_group_name("api-us-west-2")
            .policy_name("cpu-target")
            .policy_type("SimpleScaling")
            .adjustment_type("ChangeInCapacity")
            .scaling_adjustment(1)
            .send()
            .await
            .expect("policy");
        client
            .put_scheduled_update_group_action()
            .auto_scaling_group_name("worker-us-west-2")
            .scheduled_action_name("nightly-shrink")
            .recurrence("0 3 * * *")
            .desired_capacity(1)
            .send()
            .await
            .expect("scheduled action");
    });
    for expected in [
        "asg api-us-west-2 (us-west-2): api-us-west-2 has scaling policies (cpu-target): they keep working during the drill, and evac keeps floors, not exact values: desired may move between the min and max evac sets (out as traffic arrives, in as it leaves) and is left there; only min or max changed by someone else, or desired below evac's min, stops the run as drift; rollback restores min, desired and max as recorded",
        "asg worker-us-west-2 (us-west-2): worker-us-west-2 has scheduled actions (nightly-shrink) that can change its desired capacity during the drill: add `suspend: [ScheduledActions]` to the step (resumed by rollback)",
    ] {
        assert!(
            warnings.contains(&expected.to_owned()),
            "{expected}\n{warnings:?}"
        );
    }
}

#[test]
fn processes_a_step_suspends_are_resumed_by_rollback() {
    let account = Account::fresh();
    account.seed();
    let playbook = "tests/fixtures/preflight/suspend.yaml";
    let state = tempfile::tempdir().expect("state dir");
    account
        .evac_in(state.path(), &["run", playbook, "--yes"])
        .assert()
        .success();
    let during = &account.world().groups["api-us-west-2"];
    assert_eq!(during.1, 4);
    assert_eq!(during.3, ["AlarmNotification", "ScheduledActions"]);
    let id = support::run_ids(state.path()).pop().expect("a run");
    account
        .evac_in(state.path(), &["rollback", &id, "--yes"])
        .assert()
        .success();
    let after = &account.world().groups["api-us-west-2"];
    assert_eq!(after.1, 2);
    assert!(after.3.is_empty(), "{:?}", after.3);
}

#[test]
fn blocker_scale_up_beyond_the_free_addresses_of_the_groups_subnets() {
    let account = Account::fresh();
    account.seed();
    let (subnets, free) = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let ctx = account.context().await;
            let region = Region::parse("us-west-2").expect("region");
            let group = ctx
                .autoscaling(&region)
                .describe_auto_scaling_groups()
                .auto_scaling_group_names("api-us-west-2")
                .send()
                .await
                .expect("describe group");
            let mut ids: Vec<String> = group.auto_scaling_groups()[0]
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .map(str::to_owned)
                .collect();
            ids.sort();
            let answer = ctx
                .ec2(&region)
                .describe_subnets()
                .set_subnet_ids(Some(ids.clone()))
                .send()
                .await
                .expect("describe subnets");
            let free: i32 = answer
                .subnets()
                .iter()
                .filter_map(|s| s.available_ip_address_count())
                .sum();
            (ids, free)
        });
    let plan = |desired: i32| {
        let out = account
            .command("evac")
            .args(["plan", "tests/fixtures/preflight/room.yaml", "--var"])
            .arg(format!("desired={desired}"))
            .output()
            .expect("plan");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // The seeded group has desired 2.
    let (code, text) = plan(2 + free);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = plan(2 + free + 1);
    assert_eq!(code, Some(3), "{text}");
    let blocker = format!(
        "the scale-ups in us-west-2 add {} instance(s) to subnets {} which have {free} free address(es)",
        free + 1,
        subnets.join(", ")
    );
    assert!(text.contains(&blocker), "{blocker}\n{text}");
}

/// Protects `which` of api-us-east-1's instances (as described, in order) from
/// scale-in; returns their ids, sorted.
fn protect(account: &Account, which: std::ops::Range<usize>) -> Vec<String> {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let client = account
                .context()
                .await
                .autoscaling(&Region::parse("us-east-1").expect("region"));
            let ids = support::group_instances(&client, "api-us-east-1").await;
            let mut chosen = ids[which].to_vec();
            client
                .set_instance_protection()
                .auto_scaling_group_name("api-us-east-1")
                .set_instance_ids(Some(chosen.clone()))
                .protected_from_scale_in(true)
                .send()
                .await
                .expect("protect");
            chosen.sort();
            chosen
        })
}

/// The instances of api-us-east-1 protected from scale-in, sorted, and how many it
/// has.
fn protected_now(account: &Account) -> (Vec<String>, usize) {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let answer = account
                .context()
                .await
                .autoscaling(&Region::parse("us-east-1").expect("region"))
                .describe_auto_scaling_groups()
                .auto_scaling_group_names("api-us-east-1")
                .send()
                .await
                .expect("describe");
            let group = &answer.auto_scaling_groups()[0];
            let mut ids: Vec<String> = group
                .instances()
                .iter()
                .filter(|i| i.protected_from_scale_in() == Some(true))
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect();
            ids.sort();
            (ids, group.instances().len())
        })
}

#[test]
fn force_protected_drains_protected_instances_and_rollback_says_they_are_gone() {
    let account = Account::fresh();
    account.seed();
    let protected = protect(&account, 0..2);
    let playbook = "tests/fixtures/preflight/force-protected.yaml";
    let out = account
        .command("evac")
        .args(["plan", playbook])
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let shown = format!(
        "~ asg api-us-east-1 (us-east-1)  remove scale-in protection from {} (restored by rollback on those still running)",
        protected.join(", ")
    );
    assert!(text.contains(&shown), "{shown}\n{text}");
    assert!(
        text.contains("`force_protected` removes the protection"),
        "{text}"
    );

    let state = tempfile::tempdir().expect("state dir");
    account
        .evac_in(state.path(), &["run", playbook, "--yes"])
        .assert()
        .success();
    // The protection came off, so the drain could take every instance.
    assert_eq!(account.world().groups["api-us-east-1"].1, 0);
    assert_eq!(protected_now(&account), (vec![], 0));
    let id = support::run_ids(state.path()).pop().expect("a run");
    let journal = support::journal_so_far(state.path(), &id);
    let intent = journal
        .iter()
        .find(|e| e["event"] == "intent" && e["target"]["kind"] == "protection")
        .unwrap_or_else(|| panic!("no protection intent in {journal:?}"));
    assert_eq!(intent["before"]["protected"], serde_json::json!(protected));

    let out = account
        .evac_in(state.path(), &["rollback", &id, "--yes"])
        .output()
        .expect("rollback");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "not restored: asg api-us-east-1 (us-east-1): {} protected from scale-in before the run, no longer running: their protection cannot come back",
            protected.join(", ")
        )),
        "{said}"
    );
    assert_eq!(account.world().groups["api-us-east-1"].1, 6);
}

#[test]
fn rollback_protects_again_the_instances_a_partial_drain_left() {
    let account = Account::fresh();
    account.seed();
    // The emulator scales in the first instances of a group; the last two stay.
    let protected = protect(&account, 4..6);
    let state = tempfile::tempdir().expect("state dir");
    account
        .evac_in(
            state.path(),
            &[
                "run",
                "tests/fixtures/preflight/force-protected.yaml",
                "--var",
                "to=4",
                "--yes",
            ],
        )
        .assert()
        .success();
    assert_eq!(protected_now(&account), (vec![], 4));
    let id = support::run_ids(state.path()).pop().expect("a run");
    let out = account
        .evac_in(state.path(), &["rollback", &id, "--yes"])
        .output()
        .expect("rollback");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains("not restored"), "{said}");
    assert_eq!(protected_now(&account), (protected, 6));
}
