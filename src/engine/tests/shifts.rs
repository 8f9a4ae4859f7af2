//! Zone steps with ARC zonal shift, in memory: traffic first, capacity after,
//! rollback in reverse, shifts kept alive until the drill ends.

use super::*;
use crate::engine::cloud::Cloud;
use crate::plan::Change;
use crate::state::Balancer;

const ALB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/app/front/50dc6c495c0c9188";

const ZONE_DRILL: &str = "version: 1\nname: zone\ngroups:\n  api: { names: [api-east] }\n  web: { names: [web-east] }\nsteps:\n  - id: leave\n    evacuate_zone: { groups: [api, web], region: us-east-1, zone: use1-az1, max_out_percent: 50 }\n";

/// Two groups with instances in three zones, behind one ALB (a target group each);
/// new instances are InService after 60 s, healthy 30 s later; a shift applies
/// after 45 s.
fn fronted() -> MemoryCloud {
    let cloud = MemoryCloud::new(Duration::from_secs(60), Duration::ZERO);
    for name in ["api-east", "web-east"] {
        cloud.add_zoned_group(
            "us-east-1",
            name,
            cap(4, 4, 8),
            &[("us-east-1a", 2), ("us-east-1b", 1), ("us-east-1c", 1)],
        );
        cloud.attach(
            "us-east-1",
            name,
            Balancer::TargetGroup {
                arn: format!(
                    "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/{name}/1"
                ),
            },
            Duration::from_secs(30),
            Duration::ZERO,
        );
        cloud.front("us-east-1", name, ALB);
    }
    cloud.set_shift_delay(Duration::from_secs(45));
    cloud
}

fn position(events: &[Event], what: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("no such event in {events:#?}"))
}

#[tokio::test(start_paused = true)]
async fn a_zone_drill_shifts_its_load_balancer_first_and_rollback_cancels_it_once_capacity_is_back()
{
    let cloud = fronted();
    let plan = observed_plan(&cloud, ZONE_DRILL).await;
    let step = &plan.steps[0];
    // One shift for the ALB both groups sit behind, first in the step, away from
    // the zone's id.
    let shifts: Vec<&Change> = step
        .changes
        .iter()
        .filter(|c| matches!(c, Change::ZonalShift { .. }))
        .collect();
    assert_eq!(shifts.len(), 1, "{:#?}", step.changes);
    let Change::ZonalShift {
        resource,
        zone_id,
        groups,
        minutes,
        ..
    } = &step.changes[0]
    else {
        panic!("the shift goes first: {:#?}", step.changes);
    };
    assert_eq!(resource, ALB);
    assert_eq!(zone_id, "use1-az1");
    assert_eq!(groups, &["api-east".to_owned(), "web-east".to_owned()]);
    assert!(*minutes >= 30, "estimate plus margin: {minutes}");

    let r = new_run();
    let options = Options {
        run_id: "zone-20261204-1".into(),
        ..Options::default()
    };
    execute_plan(&cloud, &r.run, &plan, &options, &Interrupt::default())
        .await
        .expect("the zone is left");
    let started = cloud.shifts();
    assert_eq!(started.len(), 1, "{started:#?}");
    assert_eq!(started[0].resource, ALB);
    assert_eq!(started[0].away_from, "use1-az1");
    assert_eq!(started[0].comment, "evac run zone-20261204-1 step leave");
    assert!(!started[0].cancelled);
    for name in ["api-east", "web-east"] {
        assert!(
            !cloud.zones("us-east-1", name).contains_key("us-east-1a"),
            "{name} left the zone"
        );
    }
    // The shift took effect before any instance was replaced.
    let events = events(&r.run);
    let shifted = position(
        &events,
        |e| matches!(e, Event::Converged { action } if action.contains(":shift:")),
    );
    let first_replacement = position(
        &events,
        |e| matches!(e, Event::Intent { action, .. } if action.contains(":replace:")),
    );
    let first_subnets = position(
        &events,
        |e| matches!(e, Event::Intent { action, .. } if action.ends_with(":subnets")),
    );
    assert!(shifted < first_subnets && shifted < first_replacement);

    let report = roll_back_plan(&cloud, &r.run, &options, &plan, false).await;
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(cloud.shifts()[0].cancelled, "rollback cancels the shift");
    // Cancelled after the subnets are back: traffic returns once capacity may.
    let events = super::events(&r.run);
    let cancelled = position(&events, |e| {
        matches!(
            e,
            Event::RollbackIntent {
                target: crate::journal::Target::ZonalShift { .. },
                ..
            }
        )
    });
    let subnets_back = position(
        &events,
        |e| matches!(e, Event::RollbackConverged { action } if action.ends_with(":subnets")),
    );
    assert!(subnets_back < cancelled, "{events:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_extends_a_shift_that_would_expire_before_the_drill_ends() {
    let cloud = fronted();
    let text = format!("{ZONE_DRILL}  - id: hold\n    wait: 2h\n");
    let mut plan = observed_plan(&cloud, &text).await;
    // Planned for a shorter drill than it turns out to be (an approval that
    // waited, a slow launch): its shift lasts 5 minutes.
    for change in &mut plan.steps[0].changes {
        if let Change::ZonalShift { minutes, .. } = change {
            *minutes = 5;
        }
    }
    let r = new_run();
    let options = Options {
        run_id: "zone-20261204-2".into(),
        ..Options::default()
    };
    // The process dies in the zone step, once the shift has taken effect.
    let died = tokio::time::timeout(
        Duration::from_secs(50),
        execute_plan(&cloud, &r.run, &plan, &options, &Interrupt::default()),
    )
    .await;
    assert!(died.is_err(), "still in the zone step");
    let soon = cloud.shifts()[0].expires;
    assert!(soon <= jiff::Timestamp::now().as_second() + 5 * 60);
    execute_plan(&cloud, &r.run, &plan, &options, &Interrupt::default())
        .await
        .expect("resumed");
    let shift = &cloud.shifts()[0];
    assert_eq!(cloud.shifts().len(), 1, "the same shift, not a second one");
    assert!(!shift.cancelled);
    assert!(
        shift.expires >= jiff::Timestamp::now().as_second() + 2 * 3600,
        "extended past the hold: expires {}, now {}",
        shift.expires,
        jiff::Timestamp::now().as_second()
    );
    let events = events(&r.run);
    let extension = events
        .iter()
        .find_map(|e| match e {
            Event::Intent {
                action,
                before,
                after,
                ..
            } if action.contains(":extend:") => Some((before.clone(), after.clone())),
            _ => None,
        })
        .expect("the extension is journaled before it is made");
    let expires = |v: &crate::journal::Value| match v {
        crate::journal::Value::ZonalShift {
            zonal_shift: Some(s),
        } => s.expires,
        _ => None,
    };
    assert_eq!(expires(&extension.0), Some(soon));
    assert!(expires(&extension.1) > Some(soon));
    assert_eq!(cloud.calls("extend_shift"), 1);
    // Rollback cancels the one shift, extended or not.
    let report = roll_back_plan(&cloud, &r.run, &options, &plan, true).await;
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(cloud.shifts()[0].cancelled);
    assert_eq!(cloud.calls("cancel_shift"), 1);
}

#[tokio::test(start_paused = true)]
async fn another_active_shift_on_the_load_balancer_blocks_the_plan_and_stops_a_run_that_meets_it() {
    let cloud = fronted();
    cloud.start_shift_as("us-east-1", ALB, "use1-az2", "teammate: az2 maintenance");
    let plan = observed_plan_as_is(&cloud, ZONE_DRILL).await;
    assert!(
        plan.blockers.iter().any(|b| b
            .message
            .contains("already has zonal shift shift-1 away from use1-az2")
            && b.message.contains("teammate: az2 maintenance")),
        "{:#?}",
        plan.blockers
    );
    // A run planned before the teammate's shift meets it as drift, and changes nothing.
    let quiet = fronted();
    let plan = observed_plan(&quiet, ZONE_DRILL).await;
    quiet.start_shift_as("us-east-1", ALB, "use1-az2", "teammate: az2 maintenance");
    let r = new_run();
    let err = execute_plan(
        &quiet,
        &r.run,
        &plan,
        &Options::default(),
        &Interrupt::default(),
    )
    .await
    .expect_err("drift");
    assert!(
        err.to_string().contains("teammate: az2 maintenance"),
        "{err}"
    );
    assert_eq!(quiet.calls("start_shift"), 0);
    assert_eq!(quiet.calls("set_subnets"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_group_with_zonal_shift_enabled_is_shifted_instead_of_losing_its_subnets() {
    let cloud = MemoryCloud::new(Duration::from_secs(60), Duration::ZERO);
    cloud.add_zoned_group(
        "us-east-1",
        "api-east",
        cap(4, 4, 8),
        &[("us-east-1a", 2), ("us-east-1b", 1), ("us-east-1c", 1)],
    );
    cloud.enable_zonal_shift("us-east-1", "api-east", "ReplaceUnhealthy");
    let text = "version: 1\nname: zone\ngroups:\n  api: { names: [api-east] }\nsteps:\n  - id: leave\n    evacuate_zone: { group: api, region: us-east-1, zone: us-east-1a }\n";
    let plan = observed_plan(&cloud, text).await;
    let arn = crate::testing::memory::group_arn("api-east");
    assert!(plan.steps[0].changes.iter().any(|c| matches!(
        c,
        Change::ZonalShift { resource, zone_id, .. } if *resource == arn && zone_id == "use1-az1"
    )));
    assert!(plan.steps[0].changes.iter().any(|c| matches!(
        c,
        Change::ZoneEvacuation { by_shift: true, subnets_removed, impaired_zone, .. }
            if subnets_removed.is_empty() && impaired_zone.as_deref() == Some("ReplaceUnhealthy")
    )));
    let r = new_run();
    execute_plan(
        &cloud,
        &r.run,
        &plan,
        &Options::default(),
        &Interrupt::default(),
    )
    .await
    .expect("left");
    let zones = cloud.zones("us-east-1", "api-east");
    assert!(!zones.contains_key("us-east-1a"), "{zones:?}");
    assert_eq!(zones.values().sum::<u32>(), 4);
    let state = cloud
        .groups("us-east-1", &["api-east".to_owned()])
        .await
        .expect("read");
    assert_eq!(
        state["api-east"].subnets,
        ["us-east-1a", "us-east-1b", "us-east-1c"],
        "its subnets stay"
    );
}

#[tokio::test(start_paused = true)]
async fn zonal_shift_false_keeps_the_old_way_and_says_so() {
    let cloud = fronted();
    let text = ZONE_DRILL.replace(
        "max_out_percent: 50",
        "max_out_percent: 50, zonal_shift: false",
    );
    let plan = observed_plan(&cloud, &text).await;
    assert!(
        !plan.steps[0]
            .changes
            .iter()
            .any(|c| matches!(c, Change::ZonalShift { .. }))
    );
    assert!(
        plan.warnings.iter().any(|w| w
            .message
            .starts_with("zonal_shift: false: the load balancers keep sending")),
        "{:#?}",
        plan.warnings
    );
    assert_eq!(cloud.calls("shiftable"), 0, "nothing of ARC is read");
}

#[tokio::test(start_paused = true)]
async fn a_run_extends_its_shift_before_a_later_step_that_would_outlast_it() {
    let cloud = fronted();
    let text = format!("{ZONE_DRILL}  - id: hold\n    wait: 2h\n");
    let mut plan = observed_plan(&cloud, &text).await;
    for change in &mut plan.steps[0].changes {
        if let Change::ZonalShift { minutes, .. } = change {
            *minutes = 5;
        }
    }
    let r = new_run();
    // One process, no resume: the hold step finds the shift's recorded expiry too
    // close and extends it before holding.
    execute_plan(
        &cloud,
        &r.run,
        &plan,
        &Options::default(),
        &Interrupt::default(),
    )
    .await
    .expect("the drill runs");
    assert_eq!(cloud.calls("extend_shift"), 1);
    let shift = &cloud.shifts()[0];
    assert!(
        shift.expires >= jiff::Timestamp::now().as_second() + 2 * 3600,
        "extended past the hold: expires {}",
        shift.expires
    );
    let events = events(&r.run);
    let extended = position(
        &events,
        |e| matches!(e, Event::Intent { action, .. } if action.contains(":extend:")),
    );
    let hold = position(
        &events,
        |e| matches!(e, Event::StepStarted { step } if step == "hold"),
    );
    assert!(extended < hold, "extended before the hold step starts");
}
