//! Plans built on the in-memory cloud: every blocker, warning and projection of the
//! plan fixtures, read through [`Observe`] exactly as `evac plan` reads AWS, with no
//! emulator. `tests/plan.rs` runs the command itself against the emulator.

use std::collections::BTreeMap;
use std::path::Path;

use super::Plan;
use super::build::build;
use super::observe::observe;
use super::render;
use crate::accounts::Accounts;
use crate::playbook::{load_file, load_str, parse_var};
use crate::seed::WorldSpec;
use crate::state::Capacity;
use crate::testing::memory::MemoryCloud;

const BASE: &str = "tests/fixtures/plan/base.yaml";

/// The demo world, in memory.
fn seeded() -> MemoryCloud {
    MemoryCloud::seeded(&WorldSpec::standard())
}

/// Plans `file` with `vars` against `cloud`, as `evac plan` would.
async fn plan(cloud: &MemoryCloud, file: &str, vars: &[&str]) -> Plan {
    let vars: BTreeMap<_, _> = vars
        .iter()
        .map(|v| parse_var(v).expect("valid --var"))
        .collect();
    let playbook = load_file(Path::new(file), &vars).expect("valid playbook");
    planned(cloud, &playbook, file).await
}

/// Reads what `playbook` needs from `cloud` and builds its plan, at a fixed time.
async fn planned(cloud: &MemoryCloud, playbook: &crate::playbook::Playbook, file: &str) -> Plan {
    let observed = observe(&Accounts::one(cloud), playbook)
        .await
        .expect("observed");
    let now = "2026-11-24T23:00:00Z".parse().expect("timestamp");
    build(playbook, &observed, file, now)
}

fn shown(plan: &Plan) -> String {
    render::human(plan, false)
}

/// Asserts `plan` is blocked by exactly these blockers, shown as `lines`.
fn assert_blocked(plan: &Plan, lines: &[&str]) {
    let text = shown(plan);
    assert_eq!(plan.blockers.len(), lines.len(), "{text}");
    for line in lines {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("Blocked:"), "{text}");
}

#[tokio::test]
async fn the_example_drill_projects_capacity_and_weights() {
    let cloud = seeded();
    let plan = plan(&cloud, "playbooks/evacuate-region.yaml", &[]).await;
    let text = shown(&plan);
    assert!(plan.blockers.is_empty(), "{text}");
    for line in [
        "~ asg api-us-west-2 (us-west-2)  min 1 -> 8  desired 2 -> 8  max 12",
        "~ asg worker-us-west-2 (us-west-2)  min 1 -> 5  desired 1 -> 5  max 8",
        "api-use1 (us-east-1)  100 -> 75 -> 50 -> 25 -> 0",
        "api-usw2 (us-west-2)  0 -> 25 -> 50 -> 75 -> 100",
        "www-usw2 (us-west-2)  0 -> 25 -> 50 -> 75 -> 100",
        "~ asg api-us-east-1 (us-east-1)  min 3 -> 0  desired 6 -> 0  max 12",
        "Mutating calls: autoscaling:UpdateAutoScalingGroup 4, route53:ChangeResourceRecordSets 4",
        "Ready: no blockers. Nothing was changed.",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // The plan only read.
    for write in [
        "set_capacity",
        "change_weights",
        "set_subnets",
        "suspend_processes",
    ] {
        assert_eq!(cloud.calls(write), 0, "{write}");
    }
    assert!(cloud.calls("describe_groups") > 0 && cloud.calls("list_records") > 0);
}

#[tokio::test]
async fn the_zone_drill_projects_instances_leaving_the_zone() {
    let cloud = seeded();
    let plan = plan(&cloud, "playbooks/evacuate-zone.yaml", &[]).await;
    let text = shown(&plan);
    assert!(plan.blockers.is_empty(), "{text}");
    for line in [
        "~ asg api-us-east-1 (us-east-1) leaves us-east-1a",
        "replace 2 instances (1 at a time): us-east-1a=2 us-east-1b=2 us-east-1c=2 -> us-east-1b=3 us-east-1c=3",
        "~ asg worker-us-east-1 (us-east-1) leaves us-east-1a",
        "replace 2 instances (1 at a time): us-east-1a=2 us-east-1b=1 us-east-1c=1 -> us-east-1b=2 us-east-1c=2",
        "Mutating calls: autoscaling:SuspendProcesses 2, autoscaling:TerminateInstanceInAutoScalingGroup 4, autoscaling:UpdateAutoScalingGroup 2",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// A one-step zone evacuation of every group tagged `evac:drill=zone` in us-east-1.
const ZONE: &str = "version: 1
name: zone
groups:
  service:
    tags: { \"evac:drill\": zone }
steps:
  - id: leave
    evacuate_zone: { group: service, region: us-east-1, zone: us-east-1a }
";

async fn plan_text(cloud: &MemoryCloud, text: &str) -> Plan {
    let playbook = load_str("inline.yaml", text, &BTreeMap::new()).expect("valid playbook");
    planned(cloud, &playbook, "inline.yaml").await
}

#[tokio::test]
async fn a_zone_left_without_keeping_capacity_lowers_desired_by_its_instances_there() {
    use crate::engine::cloud::Cloud;
    let text = ZONE.replace(
        "zone: us-east-1a }",
        "zone: us-east-1a, keep_capacity: false }",
    );
    let cloud = seeded();
    let plan = plan_text(&cloud, &text).await;
    let shown_plan = shown(&plan);
    assert!(plan.blockers.is_empty(), "{shown_plan}");
    assert!(
        shown_plan.contains("remove 2 without replacing them: us-east-1a=2 us-east-1b=2 us-east-1c=2 -> us-east-1b=2 us-east-1c=2; desired -> 4 (min 3 max 12)"),
        "{shown_plan}"
    );
    // Below the group's min, it is a blocker.
    cloud
        .set_capacity(
            "us-east-1",
            "api-us-east-1",
            Capacity {
                min: 5,
                desired: 6,
                max: 12,
            },
        )
        .await
        .expect("set");
    let plan = plan_text(&cloud, &text).await;
    assert_blocked(
        &plan,
        &[
            "x leave: asg api-us-east-1 (us-east-1): leaving us-east-1a without replacing its 2 of api-us-east-1's capacity takes desired from 6 to 4, below its min 5: lower min first, or keep capacity",
        ],
    );
}

#[tokio::test]
async fn a_zone_left_without_its_capacity_must_still_carry_the_records_it_serves() {
    // us-east-1 serves all of `api` on api-us-east-1's 6; leaving us-east-1a without
    // replacing its 2 leaves 4 to carry it.
    let text = |margin: u32| {
        format!(
            "version: 1
name: zone
capacity_margin: {margin}
groups:
  api:
    tags: {{ \"evac:service\": api }}
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: {{ us-east-1: api-use1, us-west-2: api-usw2 }}
steps:
  - id: leave
    evacuate_zone: {{ group: api, region: us-east-1, zone: us-east-1a, keep_capacity: false }}
"
        )
    };
    let cloud = seeded();
    let plan = plan_text(&cloud, &text(0)).await;
    assert_blocked(
        &plan,
        &[
            "x leave: record api (us-east-1): leaving us-east-1a without replacing its capacity leaves 100% of `api`'s traffic in us-east-1 on a capacity of 4 (api-us-east-1); it needs at least 6 to carry no more per instance than us-east-1 carries now (100% on 6): keep capacity, shift `api` away first, or raise capacity_margin",
        ],
    );
    // Half as much again per instance is allowed: 4 carry what 6 did.
    let plan = plan_text(&cloud, &text(50)).await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
}

#[tokio::test]
async fn blocker_zone_evacuation_that_leaves_no_zone() {
    let cloud = seeded();
    let one = Capacity {
        min: 1,
        desired: 2,
        max: 4,
    };
    cloud.add_zoned_group("us-east-1", "solo", one, &[("us-east-1a", 2)]);
    cloud.tag("us-east-1", "solo", "evac:drill", "zone");
    let plan = plan_text(&cloud, ZONE).await;
    assert_blocked(
        &plan,
        &[
            "x leave: asg solo (us-east-1): solo would have no availability zone left without us-east-1a: add a subnet in another zone first",
        ],
    );
}

#[tokio::test]
async fn warning_zone_evacuation_of_a_group_outside_the_zone() {
    let cloud = seeded();
    let one = Capacity {
        min: 1,
        desired: 2,
        max: 4,
    };
    cloud.add_zoned_group(
        "us-east-1",
        "elsewhere",
        one,
        &[("us-east-1b", 1), ("us-east-1c", 1)],
    );
    cloud.tag("us-east-1", "elsewhere", "evac:drill", "zone");
    let plan = plan_text(&cloud, ZONE).await;
    let text = shown(&plan);
    assert!(plan.blockers.is_empty(), "{text}");
    assert!(
        text.contains("! leave: asg elsewhere (us-east-1): elsewhere does not use us-east-1a: nothing to evacuate"),
        "{text}"
    );
}

#[tokio::test]
async fn blocker_stop_condition_health_check_missing() {
    let text = |id: &str| {
        format!(
            "version: 1\nname: hc\nstop_when:\n  - health_check: {{ id: {id} }}\nsteps:\n  - id: hold\n    wait: 1m\n"
        )
    };
    let cloud = seeded();
    cloud.add_health_check("hc-api");
    let found = plan_text(&cloud, &text("hc-api")).await;
    assert!(found.blockers.is_empty(), "{}", shown(&found));
    let missing = plan_text(&cloud, &text("hc-gone")).await;
    assert_blocked(&missing, &["stop-condition health check hc-gone not found"]);
}

#[tokio::test]
async fn blocker_group_matching_nothing() {
    let plan = plan(&seeded(), BASE, &["service=nothing"]).await;
    assert_blocked(
        &plan,
        &[
            "x scale: group svc (us-west-2): group `svc` matches no Auto Scaling group in us-west-2 (tags evac:service=nothing)",
            "x drain: group svc (us-east-1): group `svc` matches no Auto Scaling group in us-east-1 (tags evac:service=nothing)",
        ],
    );
}

#[tokio::test]
async fn blocker_set_identifier_not_found() {
    let plan = plan(&seeded(), BASE, &["set_target=api-west"]).await;
    assert_blocked(
        &plan,
        &[
            "x shift: record api (api-west): set identifier api-west (us-west-2) of api.example.com. A not found in zone example.com.; its set identifiers are api-use1, api-usw2 (did you mean api-usw2?)",
            // Without that set, the drained region keeps all the weight.
            "x drain: record api (api-use1): drain of us-east-1 while record `api` still sends it weight 100 of 100 (100%): shift the traffic away first",
        ],
    );
}

#[tokio::test]
async fn blocker_record_not_found() {
    let plan = plan(&seeded(), BASE, &["record_name=nope.example.com."]).await;
    assert_blocked(
        &plan,
        &["x shift: record api: record nope.example.com. A not found in zone example.com."],
    );
}

#[tokio::test]
async fn a_record_asked_as_a_when_its_name_is_a_cname_says_so() {
    let plan = plan(&seeded(), BASE, &["record_name=www.example.com."]).await;
    assert_blocked(
        &plan,
        &[
            "x shift: record api: record www.example.com. A not found in zone example.com.; www.example.com. has CNAME record sets there: set `type: CNAME` under records.api",
        ],
    );
}

#[tokio::test]
async fn blocker_no_matching_source_group_for_absorb() {
    let cloud = seeded();
    let empty = Capacity {
        min: 0,
        desired: 0,
        max: 4,
    };
    cloud.add_group("us-west-2", "edge-west", empty);
    cloud.tag("us-west-2", "edge-west", "evac:service", "api");
    let plan = plan(&cloud, BASE, &[]).await;
    assert_blocked(
        &plan,
        &[
            "x scale: asg edge-west (us-west-2): no matching source group in us-east-1 for edge-west: group `svc` has 1 there (api-us-east-1); name the groups alike with the region in the name (api-us-east-1 / api-us-west-2), list names per region, or set `pair_by_tag`",
        ],
    );
}

#[tokio::test]
async fn blocker_desired_above_max_unless_raise_max() {
    let cloud = seeded();
    let over = "tests/fixtures/plan/over-max.yaml";
    assert_blocked(
        &plan(&cloud, over, &[]).await,
        &[
            "x scale: asg api-us-west-2 (us-west-2): desired 20 of api-us-west-2 would exceed its max 12: set `raise_max: true` or lower the share",
        ],
    );
    let raised = plan(&cloud, over, &["raise=true"]).await;
    let text = shown(&raised);
    assert!(raised.blockers.is_empty(), "{text}");
    assert!(
        text.contains("min 1 -> 20  desired 2 -> 20  max 12 -> 20"),
        "{text}"
    );
}

#[tokio::test]
async fn blocker_drain_of_a_region_that_still_carries_weight() {
    let plan = plan(&seeded(), "tests/fixtures/plan/drain-first.yaml", &[]).await;
    assert_blocked(
        &plan,
        &[
            "x drain: record api (api-use1): drain of us-east-1 while record `api` still sends it weight 100 of 100 (100%): shift the traffic away first",
            "x shift: record api: increment 1 moves 100 percent of the weight of `api` at once (from 0% to 100% on us-west-2), more than max_increment 50: add an increment or raise max_increment",
            "x shift: record api (us-west-2): increment 1 sends 100% of `api`'s traffic to us-west-2, where its capacity is 2 (api-us-west-2); it needs at least 6 to carry no more per instance than us-east-1 carries now (100% on 6): add a scale_up of api in us-west-2 before this step, ramp more slowly, or raise capacity_margin",
        ],
    );
}

#[tokio::test]
async fn blocker_all_weights_zero() {
    let cloud = seeded();
    cloud.set_weight("Z1", "api-use1", 0);
    let plan = plan(&cloud, BASE, &[]).await;
    assert_blocked(
        &plan,
        &[
            "x shift: record api: all weights of record `api` are zero, so Route 53 answers with every set in equal shares: there is no share to shift; give the sets weights first",
            // Equal shares reach the source too: it cannot be drained.
            "x drain: record api (api-use1): drain of us-east-1 while Route 53 still answers `api` with its set api-use1 at weight 0: every weight is 0, so Route 53 answers with every healthy set in equal shares",
        ],
    );
}

#[tokio::test]
async fn blocker_stop_condition_alarm_missing() {
    let plan = plan(&seeded(), BASE, &["alarm=no-such-alarm"]).await;
    assert_blocked(
        &plan,
        &[
            "x alarm no-such-alarm (us-west-2): stop-condition alarm no-such-alarm not found in us-west-2: create it, or fix its name or region",
        ],
    );
}

#[tokio::test]
async fn blocker_stop_condition_alarm_already_firing() {
    let cloud = seeded();
    cloud.set_alarm("us-west-2", "api-5xx-rate", "ALARM");
    let plan = plan(&cloud, BASE, &[]).await;
    assert_blocked(
        &plan,
        &[
            "x alarm api-5xx-rate (us-west-2): stop-condition alarm api-5xx-rate in us-west-2 is already in ALARM",
        ],
    );
}

#[tokio::test]
async fn warning_bake_shorter_than_ttl() {
    let plan = plan(&seeded(), BASE, &["bake=30s"]).await;
    let text = shown(&plan);
    assert!(plan.blockers.is_empty(), "a warning does not block: {text}");
    assert!(
        text.contains(
            "! shift: record api: bake 30s is shorter than the TTL 60s of api.example.com."
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_read_is_an_error_not_a_plan() {
    let cloud = seeded();
    cloud.fail("describe_alarms", 1);
    let playbook = load_file(Path::new(BASE), &BTreeMap::new()).expect("valid playbook");
    let err = observe(&Accounts::one(&cloud), &playbook)
        .await
        .expect_err("the read fails");
    assert_eq!(
        err.to_string(),
        "failed to describe_alarms: InternalFailure (500)"
    );
}

/// A one-step shift of `api` in the hosted zone written as `zone`.
fn shift_in(zone: &str) -> String {
    format!(
        "version: 1
name: shift
records:
  api:
    zone: {zone}
    name: api.example.com.
    type: A
    set_identifiers: {{ us-east-1: api-use1, us-west-2: api-usw2 }}
steps:
  - id: shift
    shift_traffic: {{ record: api, to: us-west-2, ramp: [50, 100], bake: 1m }}
"
    )
}

#[tokio::test]
async fn hosted_zones_are_found_by_id_or_by_name_once() {
    let cloud = seeded();
    let by_id = plan_text(&cloud, &shift_in("/hostedzone/Z1")).await;
    let text = shown(&by_id);
    assert!(by_id.blockers.is_empty(), "{text}");
    assert!(
        text.contains("api-usw2 (us-west-2)  0 -> 50 -> 100"),
        "{text}"
    );
    assert_blocked(
        &plan_text(&cloud, &shift_in("example.org.")).await,
        &["x shift: record api: hosted zone example.org. not found"],
    );
    cloud.name_zone("Z9", "example.com.");
    assert_blocked(
        &plan_text(&cloud, &shift_in("example.com.")).await,
        &["2 hosted zones are named example.com. (Z1, Z9): write the zone id instead"],
    );
}

#[tokio::test]
async fn blocker_named_group_not_found() {
    let text = "version: 1
name: named
groups:
  api:
    names: [api-us-west-2, api-gone]
steps:
  - id: scale
    scale_up: { group: api, region: us-west-2, desired: 4 }
";
    assert_blocked(
        &plan_text(&seeded(), text).await,
        &[
            "x scale: asg api-gone (us-west-2): Auto Scaling group api-gone (group `api`) not found in us-west-2",
        ],
    );
}

#[tokio::test]
async fn blocker_check_of_a_missing_alarm() {
    let text = |name: &str| {
        format!(
            "version: 1\nname: c\nsteps:\n  - id: steady\n    check: {{ alarm: {{ region: us-west-2, name: {name} }}, state: OK, for: 1m, timeout: 5m }}\n"
        )
    };
    let cloud = seeded();
    let found = plan_text(&cloud, &text("api-5xx-rate")).await;
    assert!(found.blockers.is_empty(), "{}", shown(&found));
    assert_blocked(
        &plan_text(&cloud, &text("gone")).await,
        &["x steady: alarm gone (us-west-2): alarm gone not found in us-west-2"],
    );
}

/// A drill whose `svc` group and `api` record carry the `account:` text given.
fn in_accounts(groups_account: &str, record_account: &str) -> crate::playbook::Playbook {
    let text = format!(
        r#"
version: 1
name: accounts
accounts:
  services: {{ profile: services }}
  dns: {{ role_arn: "arn:aws:iam::111111111111:role/evac-dns" }}
groups:
  svc: {{ tags: {{ "evac:service": api }}{groups_account} }}
  all: {{ names: [api-us-west-2] }}
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: {{ us-east-1: api-use1, us-west-2: api-usw2 }}
    {record_account}
steps:
  - id: scale
    scale_up: {{ group: svc, region: us-west-2, absorb: {{ from: us-east-1, percent: 100 }} }}
  - id: also
    scale_up: {{ group: all, region: us-west-2, desired: 8 }}
  - id: shift
    shift_traffic: {{ record: api, to: us-west-2, ramp: [100] }}
"#
    );
    load_str("accounts.yaml", &text, &BTreeMap::new()).expect("valid playbook")
}

#[tokio::test]
async fn what_is_read_in_a_named_account_is_routed_to_it() {
    let (ambient, services, dns) = (seeded(), seeded(), seeded());
    let clouds = Accounts {
        ambient: &ambient,
        named: [("services".to_owned(), &services), ("dns".to_owned(), &dns)].into(),
    };
    // Only the record in a named account: the hosted zone routes there, nothing else.
    let playbook = in_accounts("", "account: dns");
    let observed = observe(&clouds, &playbook).await.expect("observed");
    let zone_id = match &observed.zones["example.com."] {
        crate::state::ZoneLookup::Found { id, .. } => id.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(observed.routes.zone(&zone_id), Some("dns"));
    assert_eq!(observed.routes.group("us-west-2", "api-us-west-2"), None);
    assert!(observed.routes.groups.is_empty() && observed.routes.alarms.is_empty());
}

#[tokio::test]
async fn one_group_name_found_in_two_accounts_is_an_error_naming_both() {
    let (ambient, services, dns) = (seeded(), seeded(), seeded());
    let clouds = Accounts {
        ambient: &ambient,
        named: [("services".to_owned(), &services), ("dns".to_owned(), &dns)].into(),
    };
    // `svc` (by tag, in `services`) and `all` (by name, ambient) both find
    // api-us-west-2: calls could not tell the two apart.
    let playbook = in_accounts(", account: services", "");
    let err = observe(&clouds, &playbook).await.expect_err("a clash");
    assert_eq!(
        err.to_string(),
        "failed to tell apart Auto Scaling group api-us-west-2 in us-west-2: it is read in account `services` and in the ambient account; evac reaches it by that name alone, so the playbook must name it in one account only"
    );
}

/// A group to seed: `(region, name, desired, service)`. Every group carries
/// `team=pay`, and `service=SERVICE` when one is given.
type Seed<'a> = (&'a str, &'a str, u32, Option<&'a str>);

/// A cloud with only these groups.
fn groups_only(groups: &[Seed<'_>]) -> MemoryCloud {
    let cloud = MemoryCloud::new(std::time::Duration::ZERO, std::time::Duration::ZERO);
    for (region, name, desired, service) in groups {
        let capacity = Capacity {
            min: 0,
            desired: *desired,
            max: 20,
        };
        cloud.add_group(region, name, capacity);
        cloud.tag(region, name, "team", "pay");
        if let Some(service) = service {
            cloud.tag(region, name, "service", service);
        }
    }
    cloud
}

/// A one-step drill scaling `pay` up in us-west-2 by absorbing us-east-1, with the
/// group's selector and the absorb's extra fields as given.
async fn absorb_plan(cloud: &MemoryCloud, selector: &str, pairing: &str) -> Plan {
    plan_text(
        cloud,
        &format!(
            r#"
version: 1
name: pairing
groups:
  pay: {selector}
steps:
  - id: scale
    scale_up: {{ group: pay, region: us-west-2, absorb: {{ from: us-east-1, percent: 100{pairing} }} }}
"#
        ),
    )
    .await
}

/// The capacity changes of the plan's first step, as `group: before -> after desired`.
fn desired_changes(plan: &Plan) -> Vec<String> {
    plan.steps[0]
        .changes
        .iter()
        .filter_map(|c| match c {
            super::Change::Capacity {
                group,
                before,
                after,
                ..
            } => Some(format!("{group}: {} -> {}", before.desired, after.desired)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn absorb_pairs_groups_by_a_tag_value() {
    let cloud = groups_only(&[
        ("us-east-1", "payments-a", 4, Some("checkout")),
        ("us-east-1", "payments-b", 6, Some("ledger")),
        ("us-west-2", "west-ledger", 1, Some("ledger")),
        ("us-west-2", "west-checkout", 2, Some("checkout")),
    ]);
    let plan = absorb_plan(&cloud, "{ tags: { team: pay } }", ", pair_by_tag: service").await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
    assert_eq!(
        desired_changes(&plan),
        ["west-checkout: 2 -> 6", "west-ledger: 1 -> 7"]
    );
}

#[tokio::test]
async fn blocker_absorb_by_tag_with_no_counterpart_or_two() {
    let cloud = groups_only(&[
        ("us-east-1", "payments-a", 4, Some("checkout")),
        ("us-east-1", "payments-b", 6, Some("checkout")),
        ("us-west-2", "west-checkout", 2, Some("checkout")),
        ("us-west-2", "west-ledger", 1, Some("ledger")),
        ("us-west-2", "west-untagged", 1, None),
    ]);
    let plan = absorb_plan(&cloud, "{ tags: { team: pay } }", ", pair_by_tag: service").await;
    assert_blocked(
        &plan,
        &[
            "x scale: asg west-checkout (us-west-2): 2 source groups in us-east-1 have service=checkout for west-checkout: payments-a, payments-b; a group absorbs exactly one, so give each pair its own value",
            "x scale: asg west-ledger (us-west-2): no source group in us-east-1 for west-ledger: none of group `pay`'s groups there (payments-a, payments-b) has service=ledger",
            "x scale: asg west-untagged (us-west-2): west-untagged has no tag `service` to pair it with a source group in us-east-1 (pair_by_tag): tag it, or pair another way",
        ],
    );
}

#[tokio::test]
async fn absorb_pairs_per_region_names_by_position() {
    let cloud = groups_only(&[
        ("us-east-1", "api-east", 4, None),
        ("us-east-1", "jobs-east", 6, None),
        ("us-west-2", "web-w", 1, None),
        ("us-west-2", "batch-w", 2, None),
    ]);
    let names = "{ names: { us-east-1: [api-east, jobs-east], us-west-2: [web-w, batch-w] } }";
    let plan = absorb_plan(&cloud, names, "").await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
    assert_eq!(desired_changes(&plan), ["batch-w: 2 -> 8", "web-w: 1 -> 5"]);
}

#[tokio::test]
async fn blocker_per_region_names_with_no_counterpart_or_no_names_for_the_region() {
    let cloud = groups_only(&[
        ("us-east-1", "api-east", 4, None),
        ("us-west-2", "web-w", 1, None),
        ("us-west-2", "batch-w", 2, None),
    ]);
    let uneven = "{ names: { us-east-1: [api-east], us-west-2: [web-w, batch-w] } }";
    assert_blocked(
        &absorb_plan(&cloud, uneven, "").await,
        &[
            "x scale: asg batch-w (us-west-2): no source group in us-east-1 for batch-w: group `pay` lists 2 name(s) in us-west-2 and 1 in us-east-1, and per-region names pair by position",
        ],
    );
    let no_target = "{ names: { us-east-1: [api-east], eu-west-1: [web-w] } }";
    assert_blocked(
        &absorb_plan(&cloud, no_target, "").await,
        &[
            "x scale: group pay (us-west-2): group `pay` lists Auto Scaling group names per region, and none for us-west-2: add `us-west-2: [NAME, ...]` under groups.pay.names",
        ],
    );
}

/// The seeded world with a third region, eu-west-1, serving api.example.com. at
/// 50/25/25 (us-east-1 / us-west-2 / eu-west-1).
fn three_regions() -> MemoryCloud {
    let cloud = seeded();
    cloud.add_group(
        "eu-west-1",
        "api-eu-west-1",
        Capacity {
            min: 1,
            desired: 2,
            max: 12,
        },
    );
    cloud.tag("eu-west-1", "api-eu-west-1", "evac:service", "api");
    cloud.add_record("Z1", "api.example.com.", "api-euw1", 25);
    cloud.set_weight("Z1", "api-use1", 50);
    cloud.set_weight("Z1", "api-usw2", 25);
    cloud
}

/// A drill leaving us-east-1 with these scale-ups and this shift.
async fn leave_east(cloud: &MemoryCloud, scale_ups: &[&str], shift: &str) -> Plan {
    let steps: String = scale_ups
        .iter()
        .map(|region| {
            format!(
                "  - id: scale-{region}\n    scale_up: {{ group: api, region: {region}, absorb: {{ from: us-east-1, percent: 50 }} }}\n"
            )
        })
        .collect();
    plan_text(
        cloud,
        &format!(
            r#"
version: 1
name: three
groups:
  api: {{ tags: {{ "evac:service": api }} }}
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: {{ us-east-1: api-use1, us-west-2: api-usw2, eu-west-1: api-euw1 }}
steps:
{steps}  - id: leave
    shift_traffic: {shift}
"#
        ),
    )
    .await
}

/// The weights of each set after each increment of the plan's last step.
fn ramp_of(plan: &Plan) -> BTreeMap<String, Vec<i64>> {
    let last = plan.steps.last().expect("a step");
    last.changes
        .iter()
        .flat_map(|c| match c {
            super::Change::Weights { sets, .. } => sets
                .iter()
                .map(|s| (s.set_identifier.clone(), s.after.clone()))
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect()
}

#[tokio::test]
async fn leaving_a_region_spreads_its_weight_in_proportion_or_as_split() {
    let cloud = three_regions();
    let both = ["us-west-2", "eu-west-1"];
    let plan = leave_east(
        &cloud,
        &both,
        "{ record: api, from: us-east-1, ramp: [50, 100] }",
    )
    .await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
    assert_eq!(
        ramp_of(&plan),
        BTreeMap::from([
            ("api-use1".to_owned(), vec![25, 0]),
            // Equal remainders: the odd unit goes to the first set identifier.
            ("api-usw2".to_owned(), vec![37, 50]),
            ("api-euw1".to_owned(), vec![38, 50]),
        ])
    );
    let split =
        "{ record: api, from: us-east-1, to: { us-west-2: 60, eu-west-1: 40 }, ramp: [100] }";
    let plan = leave_east(&cloud, &both, split).await;
    assert_eq!(
        ramp_of(&plan),
        BTreeMap::from([
            ("api-use1".to_owned(), vec![0]),
            ("api-usw2".to_owned(), vec![55]),
            ("api-euw1".to_owned(), vec![45]),
        ])
    );
    // 50% of the total weight moved at once is within max_increment 50.
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
}

#[tokio::test]
async fn blocker_weight_sent_to_a_region_without_the_capacity_for_it() {
    // East serves 50% on 6, west and eu-west-1 25% on 2 each: the most loaded
    // carries 12.5% per instance. Moving east's weight in proportion sends eu-west-1
    // 38% (weight 38 of 100) at the first increment, which needs 4 instances there;
    // west has 5 after its scale-up.
    let cloud = three_regions();
    let plan = leave_east(
        &cloud,
        &["us-west-2"],
        "{ record: api, from: us-east-1, ramp: [50, 100] }",
    )
    .await;
    assert_blocked(
        &plan,
        &[
            "x leave: record api (eu-west-1): increment 1 sends 38% of `api`'s traffic to eu-west-1, where its capacity is 2 (api-eu-west-1); it needs at least 4 to carry no more per instance than eu-west-1 carries now (25% on 2): add a scale_up of api in eu-west-1 before this step, ramp more slowly, or raise capacity_margin",
        ],
    );
    // Leaving it out of the split leaves it alone, and west then takes all that
    // east served: 75% needs 6 instances, and absorbing half of east gives 5.
    let plan = leave_east(
        &cloud,
        &["us-west-2"],
        "{ record: api, from: us-east-1, to: us-west-2, ramp: [50, 100] }",
    )
    .await;
    assert_blocked(
        &plan,
        &[
            "x leave: record api (us-west-2): increment 2 sends 75% of `api`'s traffic to us-west-2, where its capacity is 5 (api-us-west-2); it needs at least 6",
        ],
    );
    assert_eq!(ramp_of(&plan)["api-euw1"], [25, 25]);
    assert_eq!(ramp_of(&plan)["api-usw2"], [50, 75]);
    // Scaled up there too, it carries its share.
    let plan = leave_east(
        &cloud,
        &["us-west-2", "eu-west-1"],
        "{ record: api, from: us-east-1, ramp: [50, 100] }",
    )
    .await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
}

/// The demo world's api drill: west scaled to `desired`, then `shift`.
async fn shift_onto(desired: u32, shift: &str) -> Plan {
    plan_text(
        &seeded(),
        &format!(
            r#"
version: 1
name: onto
groups:
  api: {{ tags: {{ "evac:service": api }} }}
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: {{ us-east-1: api-use1, us-west-2: api-usw2 }}
steps:
  - id: scale
    scale_up: {{ group: api, region: us-west-2, desired: {desired} }}
  - id: shift
    shift_traffic: {shift}
"#
        ),
    )
    .await
}

#[tokio::test]
async fn a_shift_one_instance_short_is_blocked_in_both_forms_and_ready_with_enough() {
    // East carries all of api on 6 instances: west needs 3 for half, 6 for all.
    for shift in [
        "{ record: api, to: us-west-2, ramp: [50, 100] }",
        "{ record: api, from: us-east-1, ramp: [50, 100] }",
    ] {
        let plan = shift_onto(5, shift).await;
        assert_blocked(
            &plan,
            &[
                "x shift: record api (us-west-2): increment 2 sends 100% of `api`'s traffic to us-west-2, where its capacity is 5 (api-us-west-2); it needs at least 6 to carry no more per instance than us-east-1 carries now (100% on 6): add a scale_up of api in us-west-2 before this step, ramp more slowly, or raise capacity_margin",
            ],
        );
        let plan = shift_onto(6, shift).await;
        assert!(plan.blockers.is_empty(), "{shift}: {}", shown(&plan));
    }
    // Half the traffic needs half the capacity: 2 is one short of 3.
    let plan = shift_onto(2, "{ record: api, to: us-west-2, ramp: [50] }").await;
    assert_blocked(
        &plan,
        &[
            "increment 1 sends 50% of `api`'s traffic to us-west-2, where its capacity is 2 (api-us-west-2); it needs at least 3",
        ],
    );
    assert!(
        shift_onto(3, "{ record: api, to: us-west-2, ramp: [50] }")
            .await
            .blockers
            .is_empty()
    );
}

#[tokio::test]
async fn a_scale_up_after_the_shift_is_named_and_the_margin_allows_more_load() {
    let text = |margin: &str| {
        format!(
            r#"
version: 1
name: late
{margin}
groups:
  api: {{ tags: {{ "evac:service": api }} }}
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: {{ us-east-1: api-use1, us-west-2: api-usw2 }}
steps:
  - id: shift
    shift_traffic: {{ record: api, to: us-west-2, ramp: [25] }}
  - id: scale
    scale_up: {{ group: api, region: us-west-2, desired: 6 }}
"#
        )
    };
    // 25% on 2 instances is 12.5% each against east's 16.7%: fine. Not so at
    // 40% of... so use a tighter world: east on 12.
    let cloud = seeded();
    cloud.set_capacity_now(
        "us-east-1",
        "api-us-east-1",
        Capacity {
            min: 3,
            desired: 12,
            max: 12,
        },
    );
    let plan = plan_text(&cloud, &text("")).await;
    assert_blocked(
        &plan,
        &[
            "increment 1 sends 25% of `api`'s traffic to us-west-2, where its capacity is 2 (api-us-west-2); it needs at least 3 to carry no more per instance than us-east-1 carries now (100% on 12): step `scale` scales them up later: move it before this step",
        ],
    );
    // 50% more load per instance than east's: 25% on 2 is 1.5 times 100% on 12.
    let plan = plan_text(&cloud, &text("capacity_margin: 50")).await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
}

#[tokio::test]
async fn a_record_with_no_linked_group_warns_and_is_not_checked() {
    let plan = plan_text(
        &seeded(),
        r#"
version: 1
name: unlinked
groups:
  fleet: { tags: { "evac:service": api } }
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: { us-east-1: api-use1, us-west-2: api-usw2 }
steps:
  - id: shift
    shift_traffic: { record: api, to: us-west-2, ramp: [50, 100] }
"#,
    )
    .await;
    let text = shown(&plan);
    assert!(plan.blockers.is_empty(), "{text}");
    assert!(
        text.contains("record `api` has no group linked, so its traffic is not checked against capacity: add `groups: [GROUP, ...]` under records.api, or name a group `api`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_drain_waits_only_for_the_records_its_groups_serve() {
    // `jobs` serves no record; `api` still has traffic in us-east-1.
    let cloud = seeded();
    cloud.add_group(
        "us-east-1",
        "jobs-us-east-1",
        Capacity {
            min: 1,
            desired: 3,
            max: 6,
        },
    );
    let drill = |group: &str| {
        format!(
            r#"
version: 1
name: jobs
groups:
  api: {{ tags: {{ "evac:service": api }} }}
  jobs: {{ names: [jobs-us-east-1] }}
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: {{ us-east-1: api-use1, us-west-2: api-usw2 }}
steps:
  - id: drain
    drain: {{ group: {group}, region: us-east-1, to: 0 }}
"#
        )
    };
    let plan = plan_text(&cloud, &drill("jobs")).await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
    let plan = plan_text(&cloud, &drill("api")).await;
    assert_blocked(
        &plan,
        &[
            "x drain: record api (api-use1): drain of us-east-1 while record `api` still sends it weight 100 of 100 (100%): shift the traffic away first",
        ],
    );
}

#[tokio::test]
async fn suspend_plans_the_suspension_first_and_silences_what_it_covers() {
    let cloud = seeded();
    cloud.shape("us-west-2", "api-us-west-2", |g| {
        g.preflight.policies.push("cpu-target".to_owned());
        g.preflight.scheduled.push("nightly".to_owned());
    });
    let drill = |suspend: &str| {
        format!(
            r#"
version: 1
name: suspend
groups:
  api: {{ names: [api-us-west-2] }}
steps:
  - id: scale
    scale_up: {{ group: api, region: us-west-2, desired: 4{suspend} }}
"#
        )
    };
    let warned = plan_text(&cloud, &drill("")).await;
    assert_eq!(warned.warnings.len(), 2, "{}", shown(&warned));
    let partly = plan_text(&cloud, &drill(", suspend: [AlarmNotification]")).await;
    assert_eq!(partly.warnings.len(), 1, "{}", shown(&partly));
    assert!(
        partly.warnings[0]
            .message
            .contains("scheduled actions (nightly)")
    );
    let quiet = plan_text(
        &cloud,
        &drill(", suspend: [ScheduledActions, AlarmNotification]"),
    )
    .await;
    assert!(quiet.warnings.is_empty(), "{}", shown(&quiet));
    assert!(matches!(
        &quiet.steps[0].changes[..],
        [
            super::Change::Suspend { group, processes, .. },
            super::Change::Capacity { .. }
        ] if group == "api-us-west-2" && processes == &["AlarmNotification", "ScheduledActions"]
    ));
    assert_eq!(
        quiet.estimate.mutating_calls["autoscaling:SuspendProcesses"],
        1
    );
}

#[tokio::test]
async fn blockers_and_warnings_of_the_groups_a_region_drill_changes() {
    let cloud = seeded();
    cloud.shape("us-east-1", "api-us-east-1", |g| *g.protected = 1);
    cloud.shape("us-west-2", "worker-us-west-2", |g| {
        g.suspended.push("Launch".to_owned());
        *g.warm_pool = Some(3);
    });
    let plan = plan(&cloud, "playbooks/evacuate-region.yaml", &["bake=0s"]).await;
    let text = shown(&plan);
    let blockers: Vec<&str> = plan.blockers.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(blockers.len(), 2, "{text}");
    assert!(
        blockers[0].starts_with("worker-us-west-2 has Launch suspended"),
        "{text}"
    );
    assert!(
        blockers[1].starts_with("1 instance(s) of api-us-east-1 are protected"),
        "{text}"
    );
    assert!(
        plan.warnings.iter().any(|w| w
            .message
            .starts_with("worker-us-west-2 has a warm pool (min size 3)")),
        "{text}"
    );
}

#[tokio::test]
async fn blocker_scale_up_beyond_the_free_addresses_of_the_subnets() {
    // The in-memory subnets (us-west-2a, b, c) have 250 free addresses each.
    let cloud = seeded();
    let drill = |desired: u32| {
        format!(
            r#"
version: 1
name: room
groups:
  api: {{ names: [api-us-west-2] }}
steps:
  - id: scale
    scale_up: {{ group: api, region: us-west-2, desired: {desired}, raise_max: true }}
"#
        )
    };
    let fits = plan_text(&cloud, &drill(752)).await;
    assert!(fits.blockers.is_empty(), "{}", shown(&fits));
    assert_blocked(
        &plan_text(&cloud, &drill(753)).await,
        &[
            "x scale: subnets (us-west-2): the scale-ups in us-west-2 add 751 instance(s) to subnets us-west-2a, us-west-2b, us-west-2c which have 750 free address(es): add subnets (or larger ones) to the groups, or scale up less",
        ],
    );
}

/// A scale-up of api-us-west-2 (c5.4xlarge, 16 vCPUs; desired 2) to `desired`.
fn scale_api_to(desired: u32) -> String {
    format!(
        r#"
version: 1
name: quota
groups:
  api: {{ names: [api-us-west-2] }}
  worker: {{ names: [worker-us-west-2] }}
steps:
  - id: scale
    scale_up: {{ group: api, region: us-west-2, desired: {desired}, raise_max: true }}
"#
    )
}

#[tokio::test]
async fn blocker_scale_up_beyond_the_regions_vcpu_quota() {
    let cloud = seeded();
    cloud.set_instance_type("us-west-2", "api-us-west-2", "c5.4xlarge");
    // In use: api 2 x 16 + worker 1 x 2 (m5.large) = 34 vCPUs. Desired 10 adds 8 x 16.
    cloud.set_quota("us-west-2", "L-1216C47A", Ok(162));
    let fits = plan_text(&cloud, &scale_api_to(10)).await;
    assert!(fits.blockers.is_empty(), "{}", shown(&fits));
    cloud.set_quota("us-west-2", "L-1216C47A", Ok(161));
    assert_blocked(
        &plan_text(&cloud, &scale_api_to(10)).await,
        &[
            "x scale: quota L-1216C47A (us-west-2): the scale-ups in us-west-2 need 128 more vCPUs under quota L-1216C47A (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances): 34 in use + 128 = 162, over its value 161; request at least 162 (aws service-quotas request-service-quota-increase --region us-west-2 --service-code ec2 --quota-code L-1216C47A --desired-value 162) or scale up less",
        ],
    );
}

#[tokio::test]
async fn the_vcpus_of_every_scale_up_of_a_region_add_up_per_quota() {
    let cloud = seeded();
    cloud.set_instance_type("us-west-2", "worker-us-west-2", "p3.2xlarge");
    cloud.set_quota("us-west-2", "L-417A185B", Ok(24));
    // Two steps: api (m5.large) takes Standard vCPUs, worker (p3.2xlarge, 8 vCPUs,
    // 1 running) P vCPUs: 8 in use + 2 x 8 = 24 fits, one more does not.
    let drill = |worker: u32| {
        format!(
            r#"
version: 1
name: quota
groups:
  api: {{ names: [api-us-west-2] }}
  worker: {{ names: [worker-us-west-2] }}
steps:
  - id: api
    scale_up: {{ group: api, region: us-west-2, desired: 6 }}
  - id: worker
    scale_up: {{ group: worker, region: us-west-2, desired: {worker}, raise_max: true }}
"#
        )
    };
    let fits = plan_text(&cloud, &drill(3)).await;
    assert!(fits.blockers.is_empty(), "{}", shown(&fits));
    let blocked = plan_text(&cloud, &drill(4)).await;
    assert_eq!(blocked.blockers.len(), 1, "{}", shown(&blocked));
    let blocker = &blocked.blockers[0];
    assert_eq!(blocker.step.as_deref(), Some("worker"));
    assert_eq!(
        blocker.resource.as_deref(),
        Some("quota L-417A185B (us-west-2)")
    );
    assert!(
        blocker
            .message
            .contains("need 24 more vCPUs under quota L-417A185B (Running On-Demand P instances): 8 in use + 24 = 32, over its value 24"),
        "{}",
        blocker.message
    );
}

#[tokio::test]
async fn warning_vcpu_quota_unreadable_or_instance_type_unknown() {
    let cloud = seeded();
    cloud.set_quota(
        "us-west-2",
        "L-1216C47A",
        Err(
            "AccessDeniedException: not authorized to perform servicequotas:GetServiceQuota".into(),
        ),
    );
    let plan = plan_text(&cloud, &scale_api_to(4)).await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
    assert!(
        plan.warnings.iter().any(|w| w.message
            == "the vCPU quota L-1216C47A (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances) of us-west-2 could not be read (AccessDeniedException: not authorized to perform servicequotas:GetServiceQuota): the scale-ups' 4 more vCPUs are not checked against it"),
        "{}",
        shown(&plan)
    );
    cloud.set_instance_type("us-west-2", "api-us-west-2", "zz9.plural");
    let plan = plan_text(&cloud, &scale_api_to(4)).await;
    assert!(
        plan.warnings.iter().any(|w| w.message
            == "the instance type of api-us-west-2 could not be told (EC2 does not know instance type(s) zz9.plural): its new instances are not counted against the region's vCPU quotas"),
        "{}",
        shown(&plan)
    );
}

#[tokio::test]
async fn the_estimate_says_when_traffic_is_gone_the_last_shifts_ttl_included() {
    // A drill that ends with a shift: traffic has left a TTL (60 s) after its last
    // change is in sync, after the run's own end.
    let cloud = seeded();
    let text = r#"
version: 1
name: tail
groups:
  api: { tags: { "evac:service": api } }
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: { us-east-1: api-use1, us-west-2: api-usw2 }
steps:
  - id: scale
    scale_up: { group: api, region: us-west-2, absorb: { from: us-east-1, percent: 100 } }
  - id: shift
    shift_traffic: { record: api, to: us-west-2, ramp: [50, 100], bake: 0s }
"#;
    let plan = plan_text(&cloud, text).await;
    let text = shown(&plan);
    assert!(plan.blockers.is_empty(), "{text}");
    let run = plan.estimate.duration_secs;
    let ttl = plan.steps[1]
        .changes
        .iter()
        .find_map(|c| match c {
            crate::plan::Change::Weights { ttl_secs, .. } => Some(*ttl_secs),
            _ => None,
        })
        .expect("the shift");
    assert_eq!(ttl, 60);
    // The shift is the last step: traffic is gone a TTL after the run's end.
    assert_eq!(plan.estimate.traffic_gone_secs, Some(run + ttl));
    assert!(text.contains("traffic gone after"), "{text}");
    assert!(
        text.contains("(the last shift's TTL: resolvers keep old answers that long)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_scale_up_counted_in_vcpus_costs_the_quota_its_vcpus() {
    // api-us-west-2 counts desired in vCPUs (DesiredCapacityType vcpu), of c5.4xlarge
    // (16 vCPUs): desired 32 is 2 instances. Desired 160 adds 128 vCPUs, 8
    // instances: 128 vCPUs of the quota, not 128 x 16.
    let cloud = seeded();
    cloud.set_instance_type("us-west-2", "api-us-west-2", "c5.4xlarge");
    cloud.set_capacity_now(
        "us-west-2",
        "api-us-west-2",
        Capacity {
            min: 32,
            desired: 32,
            max: 64,
        },
    );
    cloud.weigh("us-west-2", "api-us-west-2", crate::state::Unit::Vcpu, 16);
    // In use: api 2 x 16 + worker 1 x 2 (m5.large) = 34 vCPUs.
    cloud.set_quota("us-west-2", "L-1216C47A", Ok(162));
    let fits = plan_text(&cloud, &scale_api_to(160)).await;
    assert!(fits.blockers.is_empty(), "{}", shown(&fits));
    assert!(
        shown(&fits).contains("desired set to 160; desired counts vCPUs"),
        "{}",
        shown(&fits)
    );
    cloud.set_quota("us-west-2", "L-1216C47A", Ok(161));
    assert_blocked(
        &plan_text(&cloud, &scale_api_to(160)).await,
        &[
            "need 128 more vCPUs under quota L-1216C47A (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances): 34 in use + 128 = 162, over its value 161",
        ],
    );
}

#[tokio::test]
async fn blocker_absorb_between_groups_that_count_capacity_differently() {
    let cloud = seeded();
    cloud.weigh("us-west-2", "api-us-west-2", crate::state::Unit::Vcpu, 2);
    let text = r#"
version: 1
name: units
groups:
  api: { names: { us-east-1: [api-us-east-1], us-west-2: [api-us-west-2] } }
steps:
  - id: scale
    scale_up: { group: api, region: us-west-2, absorb: { from: us-east-1, percent: 100 }, raise_max: true }
"#;
    let plan = plan_text(&cloud, text).await;
    assert_blocked(
        &plan,
        &[
            "api-us-west-2 counts its desired capacity in vCPUs and api-us-east-1 in instances: a share of one is no count of the other; give this step `desired:` in vCPUs instead of `absorb`",
        ],
    );
}

/// A drill shifting `api` to us-west-2 (50 then 100) and draining us-east-1, whose
/// sets have health checks hc-east and hc-west.
const CHECKED: &str = r#"
version: 1
name: checked
groups:
  api: { names: [api-us-west-2] }
  src: { names: [api-us-east-1] }
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: { us-east-1: api-use1, us-west-2: api-usw2 }
steps:
  - id: scale
    scale_up: { group: api, region: us-west-2, desired: 6 }
  - id: shift
    shift_traffic: { record: api, to: us-west-2, ramp: [50, 100], bake: 1m }
  - id: drain
    drain: { group: src, region: us-east-1, to: 0 }
"#;

fn checked_cloud() -> MemoryCloud {
    let cloud = seeded();
    cloud.check_set("api-use1", "hc-east");
    cloud.check_set("api-usw2", "hc-west");
    cloud
}

#[tokio::test]
async fn weight_onto_a_set_whose_health_check_fails_is_blocked() {
    let cloud = checked_cloud();
    let ready = plan_text(&cloud, CHECKED).await;
    assert!(ready.blockers.is_empty(), "{}", shown(&ready));
    let text = shown(&ready);
    // The plan shows each set's check, and what Route 53 answers if the weighted
    // sets all fail after the shift.
    assert!(text.contains("(health check hc-west)"), "{text}");
    assert!(
        text.contains("if every set of non-zero weight fails its health check, Route 53 answers with api-use1 in equal shares (the healthy zero-weight sets)"),
        "{text}"
    );
    cloud.fail_health_check("hc-west", true);
    let blocked = plan_text(&cloud, CHECKED).await;
    let text = shown(&blocked);
    assert!(
        text.contains("x shift: record api (api-usw2): increment 1 raises set api-usw2 (us-west-2) of api.example.com. to weight 50, but its health check hc-west is failing: Route 53 skips the set and answers with api-use1"),
        "{text}"
    );
    assert!(
        text.contains("after increment 1 Route 53 answers api.example.com. with api-use1, not as the weights say"),
        "{text}"
    );
    let failing: Vec<bool> = blocked
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .filter_map(|c| match c {
            super::Change::Weights { sets, .. } => Some(sets.iter().map(|s| s.failing)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(failing, vec![false, true]);
}

#[tokio::test]
async fn a_drain_is_blocked_while_route53_answers_with_the_source_for_failing_checks() {
    // The traffic moved in an earlier drill: us-west-2 has all the weight, but its
    // check fails, so Route 53 answers with the healthy zero-weight us-east-1.
    let cloud = checked_cloud();
    cloud.set_weight("Z1", "api-use1", 0);
    cloud.set_weight("Z1", "api-usw2", 100);
    let drain_only = r#"
version: 1
name: drain
groups:
  src: { names: [api-us-east-1] }
records:
  api:
    zone: example.com.
    name: api.example.com.
    type: A
    set_identifiers: { us-east-1: api-use1, us-west-2: api-usw2 }
steps:
  - id: drain
    drain: { group: src, region: us-east-1, to: 0 }
"#;
    let ready = plan_text(&cloud, drain_only).await;
    assert!(ready.blockers.is_empty(), "{}", shown(&ready));
    cloud.fail_health_check("hc-west", true);
    assert_blocked(
        &plan_text(&cloud, drain_only).await,
        &[
            "x drain: record api (api-use1): drain of us-east-1 while Route 53 still answers `api` with its set api-use1 at weight 0: every set of non-zero weight is unhealthy, so Route 53 answers with the healthy zero-weight sets in equal shares",
        ],
    );
}

#[tokio::test]
async fn a_run_of_a_saved_plan_leaves_out_the_lifecycle_hooks_and_still_sees_every_other_change() {
    use crate::plan::observe::{Reads, observe_with};
    let cloud = seeded();
    cloud.shape("us-west-2", "api-us-west-2", |g| {
        g.preflight.hooks.push(crate::state::Hook {
            name: "warm-up".into(),
            launching: true,
            heartbeat_secs: 300,
        });
        g.preflight.policies.push("cpu-target".into());
    });
    let playbook = load_file(Path::new(BASE), &BTreeMap::new()).expect("valid playbook");
    let saved = observe(&Accounts::one(&cloud), &playbook)
        .await
        .expect("observed");
    let before = cloud.calls("describe_lifecycle_hooks");
    let hookless = Reads {
        lifecycle_hooks: false,
    };
    let now = observe_with(&Accounts::one(&cloud), &playbook, hookless)
        .await
        .expect("observed");
    assert_eq!(
        cloud.calls("describe_lifecycle_hooks"),
        before,
        "no hook was read"
    );
    // The hooks alone differ: what the run compares is the same.
    assert_ne!(saved.fingerprint(), now.fingerprint());
    assert_eq!(
        saved.fingerprint_without_hooks(),
        now.fingerprint_without_hooks()
    );
    // A change to anything else is still seen.
    cloud.set_capacity_now(
        "us-west-2",
        "api-us-west-2",
        Capacity {
            min: 1,
            desired: 3,
            max: 12,
        },
    );
    let changed = observe_with(&Accounts::one(&cloud), &playbook, hookless)
        .await
        .expect("observed");
    assert_ne!(
        saved.fingerprint_without_hooks(),
        changed.fingerprint_without_hooks()
    );
}

#[tokio::test]
async fn a_zone_step_by_id_leaves_the_zone_this_account_names_for_it() {
    let cloud = seeded();
    // In this account use1-az3 is us-east-1b.
    cloud.map_zone("us-east-1b", "use1-az3");
    let text = "version: 1\nname: zone\ngroups:\n  api: { names: [api-us-east-1] }\nsteps:\n  - id: leave\n    evacuate_zone: { group: api, region: us-east-1, zone: use1-az3 }\n";
    let plan = plan_text(&cloud, text).await;
    assert!(plan.blockers.is_empty(), "{}", shown(&plan));
    assert!(
        shown(&plan).contains("asg api-us-east-1 (us-east-1) leaves us-east-1b (use1-az3)"),
        "{}",
        shown(&plan)
    );
}

/// Plans the example drill with us-east-1 down, from `record` (what was known of
/// us-east-1), at 2026-11-24T23:00:00Z.
async fn planned_with_east_down(
    cloud: &MemoryCloud,
    record: &crate::plan::known::RegionRecord,
) -> Plan {
    let playbook = load_file(
        Path::new("playbooks/evacuate-region.yaml"),
        &BTreeMap::new(),
    )
    .expect("valid playbook");
    let reach = super::observe::Reach {
        down: ["us-east-1".to_owned()].into_iter().collect(),
        ..Default::default()
    };
    let reads = super::observe::Reads::default();
    let clouds = Accounts::one(cloud);
    let mut observed = super::observe::observe_reaching(&clouds, &playbook, reads, &reach)
        .await
        .expect("observed");
    let records = [("us-east-1".to_owned(), record.clone())]
        .into_iter()
        .collect();
    super::observe::fill_from_records(&mut observed, &playbook, &records, reads)
        .await
        .expect("filled");
    let now = "2026-11-24T23:00:00Z".parse().expect("timestamp");
    build(&playbook, &observed, "playbooks/evacuate-region.yaml", now)
}

/// What a plan of the example drill read of us-east-1, as read at `at`.
async fn east_known_at(cloud: &MemoryCloud, at: &str) -> crate::plan::known::RegionRecord {
    let playbook = load_file(
        Path::new("playbooks/evacuate-region.yaml"),
        &BTreeMap::new(),
    )
    .expect("valid playbook");
    let observed = observe(&Accounts::one(cloud), &playbook)
        .await
        .expect("observed");
    crate::plan::known::RegionRecord::of(&observed, &playbook, "us-east-1", at)
}

#[tokio::test]
async fn a_region_down_is_planned_from_its_last_known_state_and_its_steps_are_skipped() {
    use crate::engine::cloud::Cloud;
    let cloud = seeded();
    let record = east_known_at(&cloud, "2026-11-24T20:00:00Z").await;
    assert_eq!(record.groups["api-us-east-1"].value.capacity.desired, 6);
    let weight = record
        .weights
        .iter()
        .find(|(key, _)| key.ends_with(" api.example.com. A api-use1"))
        .map(|(_, known)| known.value);
    assert_eq!(weight, Some(100), "{:?}", record.weights.keys());
    // Since then us-east-1 changed; it is down, so nothing of it is read.
    cloud
        .set_capacity(
            "us-east-1",
            "api-us-east-1",
            Capacity {
                min: 3,
                desired: 9,
                max: 12,
            },
        )
        .await
        .expect("set");
    let plan = planned_with_east_down(&cloud, &record).await;
    let text = shown(&plan);
    assert!(plan.blockers.is_empty(), "{text}");
    for line in [
        "us-east-1 down: --region-down: nothing is read from it or sent to it; planned from its last known state, read 2026-11-24T20:00:00Z",
        // Absorb takes the last known desired, 6, not the live 9.
        "~ asg api-us-west-2 (us-west-2)  min 1 -> 8  desired 2 -> 8  max 12",
        "skipped: us-east-1 is down; it would change:",
        "us-east-1 is down (--region-down): nothing is read from it or sent to it; planned from its last known state, read 3h ago (2026-11-24T20:00:00Z)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let drain = plan
        .steps
        .iter()
        .find(|s| s.id == "drain-source")
        .expect("drain step");
    assert_eq!(drain.skipped.as_deref(), Some("us-east-1 is down"));
    assert_eq!(drain.estimate_secs, 0);
    // The drain's calls are not made.
    assert_eq!(
        plan.estimate
            .mutating_calls
            .get("autoscaling:UpdateAutoScalingGroup"),
        Some(&2)
    );
    assert!(!text.contains("more than 7d"), "{text}");
}

#[tokio::test]
async fn a_last_known_state_older_than_the_limit_warns() {
    let cloud = seeded();
    let record = east_known_at(&cloud, "2026-11-16T22:00:00Z").await;
    let plan = planned_with_east_down(&cloud, &record).await;
    let warned: Vec<&str> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        warned.contains(
            &"the last known state of us-east-1 was read 8d ago (2026-11-16T22:00:00Z), more than 7d: its groups may have changed since, and what this plan takes from them (absorb's capacity) with them"
        ),
        "{warned:#?}"
    );
    assert!(
        plan.blockers.is_empty(),
        "an old record warns; it does not block"
    );
}

#[tokio::test]
async fn a_region_down_with_no_last_known_state_blocks_what_needs_it() {
    let cloud = seeded();
    let plan = planned_with_east_down(&cloud, &crate::plan::known::RegionRecord::default()).await;
    assert_blocked(
        &plan,
        &[
            "api-us-west-2 absorbs the capacity of group `api` in us-east-1, which is down, and the last known state of us-east-1 holds none of its groups",
            "worker-us-west-2 absorbs the capacity of group `worker` in us-east-1, which is down",
        ],
    );
}
