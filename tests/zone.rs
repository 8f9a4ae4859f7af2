//! Availability-zone evacuation against the local emulator. The emulator launches
//! every instance of a group into the first subnet of its VPCZoneIdentifier, so the
//! seeded groups start with all their instances in us-east-1a: the zone evacuated.

mod support;

use std::collections::BTreeMap;

use evac::playbook::Region;
use support::Account;

const ZONE: &str = "playbooks/evacuate-zone.yaml";

/// Per group of us-east-1: (subnets, suspended processes, desired, InService per zone).
type ZoneView = BTreeMap<String, (Vec<String>, Vec<String>, i32, BTreeMap<String, usize>)>;

fn view(account: &Account, region: &str) -> ZoneView {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let ctx = account.context().await;
            let answer = ctx
                .autoscaling(&Region::parse(region).expect("region"))
                .describe_auto_scaling_groups()
                .send()
                .await
                .expect("describe groups");
            answer
                .auto_scaling_groups()
                .iter()
                .map(|g| {
                    let subnets = g
                        .vpc_zone_identifier()
                        .unwrap_or_default()
                        .split(',')
                        .map(str::to_owned)
                        .collect();
                    let mut suspended: Vec<String> = g
                        .suspended_processes()
                        .iter()
                        .filter_map(|p| p.process_name().map(str::to_owned))
                        .collect();
                    suspended.sort();
                    let mut zones: BTreeMap<String, usize> = BTreeMap::new();
                    for i in g.instances() {
                        if i.lifecycle_state().map(|s| s.as_str()) == Some("InService") {
                            *zones
                                .entry(i.availability_zone().unwrap_or_default().to_owned())
                                .or_default() += 1;
                        }
                    }
                    (
                        g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                        (
                            subnets,
                            suspended,
                            g.desired_capacity().unwrap_or(-1),
                            zones,
                        ),
                    )
                })
                .collect()
        })
}

fn evac(account: &Account, args: &[&str]) -> (i32, String, String) {
    let output = account
        .command("evac")
        .args(args)
        .output()
        .expect("evac runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_zone_evacuation_empties_the_zone_keeps_capacity_and_rolls_back_exactly() {
    let account = Account::fresh();
    account.seed();
    let seeded_east = view(&account, "us-east-1");
    let seeded_west = view(&account, "us-west-2");
    assert_eq!(
        seeded_east["api-us-east-1"].3,
        BTreeMap::from([("us-east-1a".to_owned(), 6)]),
        "the emulator's layout"
    );
    let zone_a_subnet = seeded_east["api-us-east-1"].0[0].clone();
    let state = tempfile::tempdir().expect("state dir");
    let state_arg = state.path().display().to_string();

    let (code, _, stderr) = evac(
        &account,
        &[
            "run",
            ZONE,
            "--var",
            "steady_for=1s",
            "--yes",
            "--state-dir",
            &state_arg,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let after = view(&account, "us-east-1");
    for group in ["api-us-east-1", "worker-us-east-1"] {
        let (subnets, suspended, desired, zones) = &after[group];
        assert!(
            !zones.contains_key("us-east-1a"),
            "{group} still has instances in us-east-1a: {zones:?}"
        );
        assert_eq!(
            zones.values().sum::<usize>() as i32,
            *desired,
            "{group} kept its capacity"
        );
        assert!(
            !subnets.contains(&zone_a_subnet),
            "{group} still uses the zone's subnet"
        );
        assert_eq!(subnets.len(), 2);
        assert_eq!(suspended, &["AZRebalance".to_owned()]);
    }
    assert_eq!(
        view(&account, "us-west-2"),
        seeded_west,
        "the other region is untouched"
    );

    let run_id = support::run_ids(state.path()).pop().expect("a run");
    let (code, _, stderr) = evac(
        &account,
        &["rollback", &run_id, "--yes", "--state-dir", &state_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("10 replaced instance(s) left in their new zones"),
        "{stderr}"
    );
    let restored = view(&account, "us-east-1");
    for group in ["api-us-east-1", "worker-us-east-1"] {
        let (subnets, suspended, desired, _) = &restored[group];
        let (seed_subnets, seed_suspended, seed_desired, _) = &seeded_east[group];
        assert_eq!(subnets, seed_subnets, "{group}: subnets restored in order");
        assert_eq!(suspended, seed_suspended, "{group}: processes restored");
        assert_eq!(desired, seed_desired, "{group}: capacity restored");
    }
}

#[test]
fn the_zone_plan_shows_subnets_instances_and_processes() {
    let account = Account::fresh();
    account.seed();
    let (code, stdout, _) = evac(&account, &["plan", ZONE]);
    assert_eq!(code, 0, "{stdout}");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"subnet-[0-9a-f]+", "[SUBNET]");
    settings.add_filter(r"\b[0-9]{12}\b", "[ACCOUNT]");
    settings.bind(|| insta::assert_snapshot!("zone_plan_human", stdout));
}

#[test]
fn a_zone_written_by_its_id_plans_as_the_zone_it_names_in_this_account() {
    let account = Account::fresh();
    account.seed();
    let (code, by_name, _) = evac(&account, &["plan", ZONE]);
    assert_eq!(code, 0, "{by_name}");
    // The emulator's account maps us-east-1a to the zone id the plan shows.
    let id = by_name
        .split("leaves us-east-1a (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the plan shows the zone's id")
        .to_owned();
    let (code, by_id, stderr) = evac(&account, &["plan", ZONE, "--var", &format!("zone={id}")]);
    assert_eq!(code, 0, "{stderr}");
    // The same groups leave the same subnets, shown by name and id alike.
    let changes = |plan: &str| -> Vec<String> {
        plan.lines()
            .filter(|l| l.contains("leaves ") || l.contains(" subnet "))
            .map(str::to_owned)
            .collect()
    };
    assert!(!changes(&by_id).is_empty(), "{by_id}");
    assert_eq!(changes(&by_id), changes(&by_name));
}

#[test]
fn a_group_left_without_a_zone_is_a_blocker() {
    let account = Account::fresh();
    account.seed();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let ctx = account.context().await;
            let autoscaling = ctx.autoscaling(&Region::parse("us-east-1").expect("region"));
            let api = autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names("api-us-east-1")
                .send()
                .await
                .expect("describe");
            let zone_a = api.auto_scaling_groups()[0]
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .next()
                .unwrap_or_default()
                .to_owned();
            autoscaling
                .create_auto_scaling_group()
                .auto_scaling_group_name("single-zone")
                .launch_template(
                    aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                        .launch_template_name("evac-demo")
                        .version("$Latest")
                        .build(),
                )
                .min_size(1)
                .max_size(2)
                .desired_capacity(1)
                .vpc_zone_identifier(zone_a)
                .tags(
                    aws_sdk_autoscaling::types::Tag::builder()
                        .key("evac:drill")
                        .value("zone")
                        .resource_id("single-zone")
                        .resource_type("auto-scaling-group")
                        .build(),
                )
                .send()
                .await
                .expect("create a single-zone group");
        });
    let (code, stdout, _) = evac(&account, &["plan", ZONE]);
    assert_eq!(code, 3, "{stdout}");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"subnet-[0-9a-f]+", "[SUBNET]");
    settings.add_filter(r"\b[0-9]{12}\b", "[ACCOUNT]");
    settings.bind(|| insta::assert_snapshot!("zone_plan_blocked", stdout.clone()));
    assert!(
        stdout.contains(
            "x leave-zone: asg single-zone (us-east-1): single-zone would have no availability zone left without us-east-1a: add a subnet in another zone first"
        ),
        "{stdout}"
    );
}

#[test]
fn a_zone_left_without_keeping_capacity_lowers_desired_by_its_instances_and_rolls_back_exactly() {
    let account = Account::fresh();
    account.seed();
    // The emulator puts every instance in us-east-1a: leaving it without
    // replacing them takes each group to 0, which its min must allow.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let ctx = account.context().await;
            let autoscaling = ctx.autoscaling(&Region::parse("us-east-1").expect("region"));
            for group in ["api-us-east-1", "worker-us-east-1"] {
                autoscaling
                    .update_auto_scaling_group()
                    .auto_scaling_group_name(group)
                    .min_size(0)
                    .send()
                    .await
                    .expect("min lowered");
            }
        });
    let seeded = view(&account, "us-east-1");
    let dir = tempfile::tempdir().expect("dir");
    let playbook = dir.path().join("leave.yaml");
    std::fs::write(
        &playbook,
        std::fs::read_to_string(ZONE)
            .expect("the zone playbook")
            .replace("keep_capacity: true", "keep_capacity: false"),
    )
    .expect("playbook written");
    let playbook = playbook.display().to_string();
    // Named by its zone id, as the plan shows it for us-east-1a.
    let (code, by_name, _) = evac(&account, &["plan", ZONE]);
    assert_eq!(code, 0, "{by_name}");
    let id = by_name
        .split("leaves us-east-1a (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the plan shows the zone's id")
        .to_owned();
    let zone = format!("zone={id}");
    let (code, plan, stderr) = evac(&account, &["plan", &playbook, "--var", &zone]);
    assert_eq!(code, 0, "{plan}\n{stderr}");
    assert!(
        plan.contains("remove 6 without replacing them: us-east-1a=6 -> us-east-1b=0 us-east-1c=0; desired -> 0 (min 0 max 12)"),
        "{plan}"
    );

    let state = dir.path().join("state");
    let state_arg = state.display().to_string();
    let (code, _, stderr) = evac(
        &account,
        &[
            "run",
            &playbook,
            "--var",
            &zone,
            "--var",
            "steady_for=1s",
            "--yes",
            "--state-dir",
            &state_arg,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let after = view(&account, "us-east-1");
    for (group, had) in [("api-us-east-1", 6), ("worker-us-east-1", 4)] {
        let (subnets, _, desired, zones) = &after[group];
        assert_eq!(
            *desired,
            seeded[group].2 - had,
            "{group}: desired lowered by its {had}"
        );
        assert!(zones.is_empty(), "{group}: nothing replaced: {zones:?}");
        assert_eq!(subnets.len(), 2, "{group}: the zone's subnet removed");
    }
    let run_id = support::run_ids(&state).pop().expect("a run");
    let (code, _, stderr) = evac(
        &account,
        &["rollback", &run_id, "--yes", "--state-dir", &state_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    let restored = view(&account, "us-east-1");
    for group in ["api-us-east-1", "worker-us-east-1"] {
        let (subnets, suspended, desired, _) = &restored[group];
        let (seed_subnets, seed_suspended, seed_desired, _) = &seeded[group];
        assert_eq!(subnets, seed_subnets, "{group}: subnets restored in order");
        assert_eq!(suspended, seed_suspended, "{group}: processes restored");
        assert_eq!(desired, seed_desired, "{group}: desired restored");
    }
}
