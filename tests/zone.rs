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
    // The counts agree: two groups' subnets and processes listed, then restored;
    // a second rollback finds them all in place.
    assert!(
        stderr.contains(&format!(
            "run {run_id}: 4 to restore (10 replaced instance(s) stay in their new zones), newest first"
        ))
            && stderr.contains(&format!(
                "run {run_id} rolled back: 4 restored, 10 replaced"
            )),
        "{stderr}"
    );
    let (code, _, stderr) = evac(
        &account,
        &["rollback", &run_id, "--yes", "--state-dir", &state_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "run {run_id} rolled back: all 4 already in place;"
        )),
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

/// The seeded account with an ALB in front of both groups of us-east-1, which the
/// fake ARC service manages, its evac commands reaching the fake: (account, fake,
/// ALB ARN).
fn fronted() -> (Account, support::arc::FakeArc, String) {
    let mut account = Account::fresh();
    account.seed();
    let (alb, zone_ids) =
        account.alb_in_front("us-east-1", &["api-us-east-1", "worker-us-east-1"], "front");
    let arc = support::arc::FakeArc::start(std::time::Duration::ZERO);
    let ids: Vec<&str> = zone_ids.iter().map(String::as_str).collect();
    arc.add_resource(&alb, "app/front/1", &ids);
    account.arc = Some(arc.url.clone());
    (account, arc, alb)
}

/// Where the first journal entry `what` holds is, by its place in the journal.
fn place(journal: &[serde_json::Value], what: impl Fn(&serde_json::Value) -> bool) -> usize {
    journal
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("no such entry in {journal:#?}"))
}

fn action_has(e: &serde_json::Value, event: &str, part: &str) -> bool {
    e["event"] == event && e["action"].as_str().is_some_and(|a| a.contains(part))
}

#[test]
fn a_zone_drill_behind_an_alb_shifts_it_away_from_the_zone_id_first_and_rollback_cancels_it_once_capacity_is_back()
 {
    let (account, arc, alb) = fronted();
    let state = tempfile::tempdir().expect("state dir");
    let state_arg = state.path().display().to_string();
    let (code, plan, stderr) = evac(&account, &["plan", ZONE]);
    assert_eq!(code, 0, "{plan}\n{stderr}");
    let id = plan
        .split("leaves us-east-1a (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the plan shows the zone's id")
        .to_owned();
    assert!(
        plan.contains(&format!(
            "zonal shift app/front/1 (us-east-1) away from us-east-1a ({id}), expiring after"
        )) && plan.contains("in front of api-us-east-1, worker-us-east-1"),
        "{plan}"
    );

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
    let run_id = support::run_ids(state.path()).pop().expect("a run");
    let shifts = arc.shifts();
    assert_eq!(
        shifts.len(),
        1,
        "one shift for the ALB both groups sit behind: {shifts:#?}"
    );
    assert_eq!(shifts[0].resource, alb);
    assert_eq!(shifts[0].away_from, id, "away from the zone's id");
    assert_eq!(
        shifts[0].comment,
        format!("evac run {run_id} step leave-zone")
    );
    assert_eq!(shifts[0].status, "ACTIVE");
    assert!(
        shifts[0].expiry - shifts[0].start >= 30.0 * 60.0,
        "estimate plus margin"
    );
    let journal = support::journal_so_far(state.path(), &run_id);
    let shifted = place(&journal, |e| action_has(e, "converged", ":shift:"));
    let first_subnets = place(&journal, |e| action_has(e, "intent", ":subnets"));
    let first_replacement = place(&journal, |e| action_has(e, "intent", ":replace:"));
    assert!(
        shifted < first_subnets && shifted < first_replacement,
        "the zone's traffic left before any capacity moved"
    );
    let after = view(&account, "us-east-1");
    assert!(!after["api-us-east-1"].3.contains_key("us-east-1a"));

    let (code, _, stderr) = evac(
        &account,
        &["rollback", &run_id, "--yes", "--state-dir", &state_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        arc.shifts()[0].status,
        "CANCELED",
        "rollback cancels the shift"
    );
    let journal = support::journal_so_far(state.path(), &run_id);
    let cancelled = place(&journal, |e| {
        e["event"] == "rollback_intent" && e["target"]["kind"] == "zonal_shift"
    });
    let subnets_back = place(&journal, |e| {
        action_has(e, "rollback_converged", ":subnets")
    });
    assert!(
        subnets_back < cancelled,
        "cancelled once the capacity is back"
    );
    let cancels = arc
        .calls()
        .iter()
        .filter(|c| c.operation == "CancelZonalShift")
        .count();
    assert_eq!(cancels, 1);
}

#[test]
fn a_second_active_shift_on_the_load_balancer_blocks_the_plan() {
    let (account, arc, alb) = fronted();
    let (code, plan, _) = evac(&account, &["plan", ZONE]);
    assert_eq!(code, 0, "{plan}");
    let other = arc.start_shift(&alb, "use1-az2", "storage team: az2 maintenance", 60);
    let (code, plan, stderr) = evac(&account, &["plan", ZONE]);
    assert_eq!(code, 3, "{plan}\n{stderr}");
    assert!(
        plan.contains(&format!(
            "app/front/1 already has zonal shift {other} away from use1-az2 (\"storage team: az2 maintenance\")"
        )) && plan.contains("ARC allows one active shift per resource"),
        "{plan}"
    );
    assert!(
        !arc.calls().iter().any(|c| c.operation == "StartZonalShift"),
        "a plan starts nothing"
    );
}

#[test]
fn a_resumed_run_extends_a_shift_near_its_expiry() {
    let (account, arc, _) = fronted();
    let dir = tempfile::tempdir().expect("dir");
    let playbook = dir.path().join("leave-and-hold.yaml");
    let text = std::fs::read_to_string(ZONE).expect("the zone playbook");
    let cut = text.find("  # 2. The service").expect("the second step");
    std::fs::write(
        &playbook,
        format!("{}  - id: hold\n    wait: 1h\n", &text[..cut]),
    )
    .expect("playbook written");
    let playbook = playbook.display().to_string();
    let state = dir.path().join("state");
    let state_arg = state.display().to_string();
    let log = dir.path().join("evac.log");
    let spawn = |args: &[&str]| {
        support::process(&account.command("evac"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("evac starts")
    };
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    // The run dies in its hold, after the zone is left.
    let mut child = spawn(&["run", &playbook, "--yes", "--state-dir", &state_arg]);
    support::until("the hold", || {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "the run ended: {}",
            said()
        );
        support::run_ids(&state).pop().is_some_and(|run| {
            support::journal_so_far(&state, &run)
                .iter()
                .any(|e| e["event"] == "step_started" && e["step"] == "hold")
        })
    });
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let run_id = support::run_ids(&state).pop().expect("a run");
    // Meanwhile its shift came close to its expiry.
    let shift = arc.shifts().remove(0);
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        + 60.0;
    arc.set_expiry(&shift.id, soon);
    let mut child = spawn(&["resume", &run_id, "--yes", "--state-dir", &state_arg]);
    support::until("the extension", || {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "the resume ended: {}",
            said()
        );
        support::journal_so_far(&state, &run_id)
            .iter()
            .any(|e| action_has(e, "converged", ":extend:"))
    });
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let extended = arc.shifts().remove(0);
    assert_eq!(extended.id, shift.id, "the same shift");
    assert_eq!(extended.status, "ACTIVE");
    assert!(
        extended.expiry >= soon + 3600.0,
        "extended past the hour's hold: {} vs {soon}",
        extended.expiry
    );
    let journal = support::journal_so_far(&state, &run_id);
    let intent = journal
        .iter()
        .find(|e| action_has(e, "intent", ":extend:"))
        .expect("the extension journaled");
    assert_eq!(
        intent["before"]["zonal_shift"]["expires"]
            .as_f64()
            .map(|s| s as i64),
        Some(soon as i64),
        "with the expiry it replaces"
    );
    let (code, _, stderr) = evac(
        &account,
        &["rollback", &run_id, "--yes", "--state-dir", &state_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(arc.shifts()[0].status, "CANCELED");
}
