//! Engine tests on an in-memory cloud and paused time: slow convergence, timeouts,
//! throttling, failures, resume and rollback, which the emulator cannot produce.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::error::EngineError;
use super::execute::{Executor, Options};
use super::interrupt::Interrupt;
use super::recorder::Recorder;
use super::reporter::Silent;
use crate::journal::history::History;
use crate::journal::{Event, Journal, RunDir};
use crate::plan::{Plan, build::build};
use crate::state::{Capacity, GroupState, Observed, WeightedSet, ZoneLookup};
use crate::testing::memory::MemoryCloud;

/// Rolls back as `evac rollback` does: through an executor of these parts.
pub(super) async fn rollback<C: super::cloud::Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    options: &Options,
    plan: &Plan,
    fast: bool,
) -> Result<super::rollback::RollbackReport, EngineError> {
    Executor {
        cloud,
        recorder,
        options,
        interrupt,
    }
    .rollback(plan, fast)
    .await
}

const PLAYBOOK: &str = r#"
version: 1
name: engine-test
groups:
  api: { names: [api-west] }
  src: { names: [api-east] }
records:
  api:
    zone: Z1
    name: api.example.com.
    type: A
    set_identifiers: { us-east-1: east, us-west-2: west }
steps:
  - id: scale
    scale_up: { group: api, region: us-west-2, desired: 8, timeout: 10m }
  - id: shift
    shift_traffic: { record: api, to: us-west-2, ramp: [50, 100], bake: 2m }
  - id: drain
    drain: { group: src, region: us-east-1, to: 0, timeout: 10m }
"#;

fn cap(min: u32, desired: u32, max: u32) -> Capacity {
    Capacity { min, desired, max }
}

fn group(name: &str, capacity: Capacity) -> GroupState {
    GroupState {
        name: name.into(),
        capacity,
        in_service: capacity.desired,
        instances_by_zone: BTreeMap::new(),
        unit: Default::default(),
        weights: Default::default(),
        zones: vec![],
        subnets: vec![],
        suspended_processes: vec![],
        tags: BTreeMap::new(),
        protected: vec![],
        warm_pool: None,
        balancers: vec![],
        launch: None,
        members: vec![],
        arn: None,
        zonal_shift: None,
    }
}

/// The world the engine tests plan against: group `api` (`api-west`) in us-west-2
/// with `west`, group `src` (`api-east`) in us-east-1 with `east`, and record `api`
/// in zone Z1 at east 100, west 0.
fn two_regions(west: Capacity, east: Capacity) -> Observed {
    let mut observed = Observed::default();
    observed.resolved_groups.insert(
        "us-west-2".into(),
        [("api".to_owned(), vec!["api-west".to_owned()])].into(),
    );
    observed.resolved_groups.insert(
        "us-east-1".into(),
        [("src".to_owned(), vec!["api-east".to_owned()])].into(),
    );
    observed.groups.insert(
        "us-west-2".into(),
        [("api-west".to_owned(), group("api-west", west))].into(),
    );
    observed.groups.insert(
        "us-east-1".into(),
        [("api-east".to_owned(), group("api-east", east))].into(),
    );
    observed.zones.insert(
        "Z1".into(),
        ZoneLookup::Found {
            id: "Z1".into(),
            name: "example.com.".into(),
        },
    );
    observed.records.insert(
        "api".into(),
        vec![
            WeightedSet {
                set_identifier: "east".into(),
                weight: Some(100),
                ttl: Some(60),
                ..Default::default()
            },
            WeightedSet {
                set_identifier: "west".into(),
                weight: Some(0),
                ttl: Some(60),
                ..Default::default()
            },
        ],
    );
    observed
}

/// The plan of PLAYBOOK against a world where east serves everything.
fn plan() -> Plan {
    let playbook = crate::playbook::load_str("engine.yaml", PLAYBOOK, &BTreeMap::new())
        .expect("valid playbook");
    let observed = two_regions(cap(1, 2, 12), cap(3, 6, 12));
    let plan = build(
        &playbook,
        &observed,
        "engine.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    );
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    plan
}

fn cloud(launch: Duration, sync: Duration) -> MemoryCloud {
    let cloud = MemoryCloud::new(launch, sync);
    cloud.add_group("us-west-2", "api-west", cap(1, 2, 12));
    cloud.add_group("us-east-1", "api-east", cap(3, 6, 12));
    cloud.add_record("Z1", "api.example.com.", "east", 100);
    cloud.add_record("Z1", "api.example.com.", "west", 0);
    cloud
}

struct Run {
    _dir: tempfile::TempDir,
    run: RunDir,
}

/// A run folder whose journal has begun, as `evac run` leaves it before the engine.
fn new_run() -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = RunDir::create(dir.path(), "test-run", PLAYBOOK, "{}").expect("run dir");
    Journal::open(&run)
        .expect("journal")
        .append(Event::RunStarted {
            run_id: "test-run".into(),
            playbook: "engine-test".into(),
            file: "engine.yaml".into(),
            params: BTreeMap::new(),
            user: "test".into(),
            host: "test".into(),
            version: "test".into(),
            caller: None,
        })
        .expect("append");
    Run { _dir: dir, run }
}

async fn execute<C: super::cloud::Cloud>(
    cloud: &C,
    run: &RunDir,
    options: &Options,
    interrupt: &Interrupt,
) -> Result<(), EngineError> {
    execute_plan(cloud, run, &plan(), options, interrupt).await
}

async fn roll_back<C: super::cloud::Cloud>(
    cloud: &C,
    run: &RunDir,
    fast: bool,
) -> super::rollback::RollbackReport {
    roll_back_plan(cloud, run, &Options::default(), &plan(), fast).await
}

/// Rolls back `run` of `plan`.
async fn roll_back_plan<C: super::cloud::Cloud>(
    cloud: &C,
    run: &RunDir,
    options: &Options,
    plan: &Plan,
    fast: bool,
) -> super::rollback::RollbackReport {
    let history = History::from_entries(&run.read().expect("journal"));
    let mut journal = Journal::open(run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    rollback(cloud, &recorder, &Interrupt::default(), options, plan, fast)
        .await
        .expect("rollback")
}

fn events(run: &RunDir) -> Vec<Event> {
    run.read()
        .expect("journal")
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_run_waits_for_slow_instances_and_ends_in_the_planned_state() {
    let cloud = cloud(Duration::from_secs(90), Duration::from_secs(30));
    let r = new_run();
    let start = Instant::now();
    execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect("run succeeds");
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(8, 8, 12)));
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(0, 0, 12)));
    assert_eq!(
        cloud.weights("Z1"),
        BTreeMap::from([("east".to_owned(), 0), ("west".to_owned(), 100)])
    );
    // 90 s launch + 2 x (30 s sync + 2 m bake) + 90 s drain, on paused time.
    assert!(
        start.elapsed() >= Duration::from_secs(90 + 2 * 150 + 90),
        "{:?}",
        start.elapsed()
    );
    // One change batch per zone per increment.
    assert_eq!(cloud.calls("change_weights"), 2);
    // Every intent comes before its call's record.
    let evs = events(&r.run);
    for (i, e) in evs.iter().enumerate() {
        if let Event::Applied { action, .. } = e {
            assert!(
                evs[..i]
                    .iter()
                    .any(|p| matches!(p, Event::Intent { action: a, .. } if a == action)),
                "{action}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_that_cannot_converge_fails_with_group_wanted_and_seen() {
    let cloud = cloud(Duration::from_secs(3600), Duration::ZERO);
    let r = new_run();
    let err = execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect_err("times out");
    let message = err.to_string();
    assert!(
        message.contains("step scale failed: timed out after 600s: asg api-west (us-west-2) wanted 8 instances InService, last seen 2"),
        "{message}"
    );
    assert!(
        events(&r.run)
            .iter()
            .any(|e| matches!(e, Event::StepFailed { step, .. } if step == "scale"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_5xx_that_does_not_clear_fails_the_step_and_rollback_restores_everything() {
    let cloud = cloud(Duration::from_secs(30), Duration::ZERO);
    let r = new_run();
    let full = plan();
    let mut first_two = full.clone();
    first_two.steps.truncate(2);
    {
        let mut journal = Journal::open(&r.run).expect("journal");
        let recorder = Recorder::new(&mut journal, History::default(), &Silent);
        let (options, interrupt) = (Options::default(), Interrupt::default());
        let executor = Executor {
            cloud: &cloud,
            recorder: &recorder,
            options: &options,
            interrupt: &interrupt,
        };
        executor
            .run(&first_two)
            .await
            .expect("scale and shift succeed");
        // From the drain on, every capacity update fails (the SDK's retries spent).
        cloud.fail("set_capacity", u32::MAX);
        let err = executor.run(&full).await.expect_err("the drain fails");
        assert_eq!(
            err.to_string(),
            "step drain failed: failed to set_capacity: InternalFailure (500)",
            "reported with AWS's answer"
        );
        // AWS's code and the failure's kind reach the journal (and so the JSON
        // output and notifications) for automation to decide on, no text parsed.
        let failed = events(&r.run).into_iter().find_map(|e| match e {
            Event::StepFailed {
                step, code, kind, ..
            } => Some((step, code, kind)),
            _ => None,
        });
        assert_eq!(
            failed,
            Some((
                "drain".to_owned(),
                Some("InternalFailure".to_owned()),
                Some("unreachable".to_owned())
            ))
        );
    }
    cloud.fail("set_capacity", 0);
    let report = roll_back(&cloud, &r.run, false).await;
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(1, 2, 12)));
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(3, 6, 12)));
    assert_eq!(
        cloud.weights("Z1"),
        BTreeMap::from([("east".to_owned(), 100), ("west".to_owned(), 0)])
    );
}

#[tokio::test(start_paused = true)]
async fn rollback_is_ramped_idempotent_and_verified() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect("run succeeds");
    let start = Instant::now();
    let first = roll_back(&cloud, &r.run, false).await;
    assert!(first.differences.is_empty());
    // Two weight increments restored one by one, with a bake between.
    assert!(
        start.elapsed() >= Duration::from_secs(120),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        cloud.weights("Z1"),
        BTreeMap::from([("east".to_owned(), 100), ("west".to_owned(), 0)])
    );
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(1, 2, 12)));
    let writes = cloud.calls("set_capacity") + cloud.calls("change_weights");
    let second = roll_back(&cloud, &r.run, false).await;
    assert_eq!(
        cloud.calls("set_capacity") + cloud.calls("change_weights"),
        writes,
        "a second rollback writes nothing"
    );
    assert!(second.differences.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_during_a_bake_leaves_a_journal_that_resume_finishes() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    let interrupt = Interrupt::default();
    let options = Options::default();
    let run = execute(&cloud, &r.run, &options, &interrupt);
    let stop = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        interrupt.trigger();
    };
    let (result, ()) = tokio::join!(run, stop);
    assert!(
        matches!(result, Err(EngineError::Interrupted)),
        "{result:?}"
    );
    assert_eq!(
        cloud.weights("Z1")["west"],
        50,
        "stopped during the first bake"
    );
    execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect("resume finishes");
    assert_eq!(cloud.weights("Z1")["west"], 100);
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(0, 0, 12)));
    assert_eq!(
        cloud.calls("change_weights"),
        2,
        "no increment was sent twice"
    );
}

#[tokio::test(start_paused = true)]
async fn resume_reconciles_in_flight_actions_and_stops_on_drift() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    {
        // A crash right after the scale-up's intent was written: no call was made.
        let mut journal = Journal::open(&r.run).expect("journal");
        journal
            .append(Event::StepStarted {
                step: "scale".into(),
            })
            .expect("append");
        journal
            .append(Event::Intent {
                action: "scale:asg:us-west-2:api-west".into(),
                step: "scale".into(),
                target: crate::journal::Target::Capacity {
                    region: "us-west-2".into(),
                    group: "api-west".into(),
                },
                before: crate::journal::Value::Capacity(cap(1, 2, 12)),
                after: crate::journal::Value::Capacity(cap(8, 8, 12)),
                record_sets: vec![],
                increment: None,
            })
            .expect("append");
    }
    // Someone else changed the group's bounds meanwhile: drift. (Desired alone
    // moving between them is the group's own scaling, not drift.)
    cloud.add_group("us-west-2", "api-west", cap(1, 5, 10));
    let err = execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect_err("drift");
    assert!(matches!(err, EngineError::Drift { .. }), "{err}");
    assert!(err.to_string().contains("min 1 desired 5 max 10"), "{err}");
    // Back at the recorded before: redone.
    cloud.add_group("us-west-2", "api-west", cap(1, 2, 12));
    execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect("resume");
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(8, 8, 12)));
}

#[tokio::test(start_paused = true)]
async fn an_approval_without_a_terminal_and_without_yes_fails_at_once() {
    let playbook = crate::playbook::load_str(
        "gate.yaml",
        "version: 1\nname: gate\nsteps:\n  - id: gate\n    approve: Go on?\n",
        &BTreeMap::new(),
    )
    .expect("valid playbook");
    let plan = build(
        &playbook,
        &Observed::default(),
        "gate.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    );
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    let mut journal = Journal::open(&r.run).expect("journal");
    let recorder = Recorder::new(&mut journal, History::default(), &Silent);
    let (options, interrupt) = (Options::default(), Interrupt::default());
    let executor = Executor {
        cloud: &cloud,
        recorder: &recorder,
        options: &options,
        interrupt: &interrupt,
    };
    let start = Instant::now();
    let err = executor.run(&plan).await.expect_err("no one to ask");
    assert_eq!(start.elapsed(), Duration::ZERO, "it did not wait");
    assert_eq!(
        err.to_string(),
        "step gate failed: this step needs an approval and there is no terminal to ask on: rerun with --yes to approve it"
    );
    let yes = Options {
        yes: true,
        ..Options::default()
    };
    let executor = Executor {
        cloud: &cloud,
        recorder: &recorder,
        options: &yes,
        interrupt: &interrupt,
    };
    executor.run(&plan).await.expect("--yes approves");
    assert!(
        events(&r.run)
            .iter()
            .any(|e| matches!(e, Event::Approved { by, .. } if by == "terminal with --yes"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_rollback_puts_weights_back_in_one_change_per_zone() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect("run succeeds");
    let writes = cloud.calls("change_weights");
    let start = Instant::now();
    let report = roll_back(&cloud, &r.run, true).await;
    assert!(report.differences.is_empty());
    assert_eq!(
        cloud.calls("change_weights") - writes,
        1,
        "one change for the zone"
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "no bakes");
    assert_eq!(
        cloud.weights("Z1"),
        BTreeMap::from([("east".to_owned(), 100), ("west".to_owned(), 0)])
    );
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(3, 6, 12)));
}

#[tokio::test(start_paused = true)]
async fn a_stop_alarm_halts_the_run_within_one_poll_interval() {
    use crate::plan::StopRef;
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    cloud.set_alarm("us-west-2", "api-5xx-rate", "OK");
    let r = new_run();
    let options = Options {
        stops: vec![StopRef::Alarm {
            region: "us-west-2".into(),
            name: "api-5xx-rate".into(),
        }],
        stop_poll: Duration::from_secs(5),
        ..Options::default()
    };
    let interrupt = Interrupt::default();
    let start = Instant::now();
    let run = async {
        let result = execute(&cloud, &r.run, &options, &interrupt).await;
        (result, start.elapsed())
    };
    let fire = async {
        // 10 s into the first 2 m bake.
        tokio::time::sleep(Duration::from_secs(10)).await;
        cloud.set_alarm("us-west-2", "api-5xx-rate", "ALARM");
    };
    let ((result, halted_after), ()) = tokio::join!(run, fire);
    assert!(
        matches!(result, Err(EngineError::Interrupted)),
        "{result:?}"
    );
    assert_eq!(
        interrupt.reason(),
        Some(super::interrupt::Reason::StopCondition {
            condition: "alarm api-5xx-rate (us-west-2)".into(),
            state: "ALARM".into()
        })
    );
    assert!(
        halted_after <= Duration::from_secs(10 + 5),
        "halted after {halted_after:?}"
    );
    assert_eq!(cloud.weights("Z1")["west"], 50, "halted in the first bake");
    assert!(events(&r.run).iter().any(|e| matches!(e, Event::StopConditionFired { condition, .. } if condition == "alarm api-5xx-rate (us-west-2)")));
}

#[tokio::test(start_paused = true)]
async fn a_zone_evacuation_never_takes_more_than_its_share_out_at_once() {
    let text = "version: 1\nname: zone\ngroups:\n  api: { names: [api-east] }\nsteps:\n  - id: leave\n    evacuate_zone: { group: api, region: us-east-1, zone: us-east-1a, max_out_percent: 25 }\n";
    let playbook =
        crate::playbook::load_str("zone.yaml", text, &BTreeMap::new()).expect("valid playbook");
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let mut state = group("api-east", cap(8, 8, 12));
    state.subnets = zones.iter().map(|z| (*z).to_owned()).collect();
    state.instances_by_zone = [
        ("us-east-1a".to_owned(), 4),
        ("us-east-1b".to_owned(), 2),
        ("us-east-1c".to_owned(), 2),
    ]
    .into();
    let mut observed = Observed::default();
    observed.resolved_groups.insert(
        "us-east-1".into(),
        [("api".to_owned(), vec!["api-east".to_owned()])].into(),
    );
    observed
        .groups
        .insert("us-east-1".into(), [("api-east".to_owned(), state)].into());
    observed.subnet_zones = zones
        .iter()
        .map(|z| ((*z).to_owned(), (*z).to_owned()))
        .collect();
    let plan = build(
        &playbook,
        &observed,
        "zone.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    );
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);

    let cloud = MemoryCloud::new(Duration::from_secs(60), Duration::ZERO);
    cloud.add_zoned_group(
        "us-east-1",
        "api-east",
        cap(8, 8, 12),
        &[("us-east-1a", 4), ("us-east-1b", 2), ("us-east-1c", 2)],
    );
    let r = new_run();
    let start = Instant::now();
    {
        let mut journal = Journal::open(&r.run).expect("journal");
        let recorder = Recorder::new(&mut journal, History::default(), &Silent);
        let (options, interrupt) = (Options::default(), Interrupt::default());
        let executor = Executor {
            cloud: &cloud,
            recorder: &recorder,
            options: &options,
            interrupt: &interrupt,
        };
        executor.run(&plan).await.expect("the zone is evacuated");
    }
    assert_eq!(cloud.max_out(), 2, "25% of 8 at a time");
    assert!(
        start.elapsed() >= Duration::from_secs(120),
        "two batches of 60 s: {:?}",
        start.elapsed()
    );
    assert_eq!(
        cloud.zones("us-east-1", "api-east"),
        BTreeMap::from([("us-east-1b".to_owned(), 4), ("us-east-1c".to_owned(), 4)])
    );
    let states = super::cloud::Cloud::groups(&cloud, "us-east-1", &["api-east".to_owned()])
        .await
        .expect("groups");
    assert_eq!(states["api-east"].subnets, ["us-east-1b", "us-east-1c"]);
    assert_eq!(states["api-east"].suspended_processes, ["AZRebalance"]);

    let history = History::from_entries(&r.run.read().expect("journal"));
    let mut journal = Journal::open(&r.run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    let report = rollback(
        &cloud,
        &recorder,
        &Interrupt::default(),
        &Options::default(),
        &plan,
        false,
    )
    .await
    .expect("rollback");
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(report.replaced, 4);
    let states = super::cloud::Cloud::groups(&cloud, "us-east-1", &["api-east".to_owned()])
        .await
        .expect("groups");
    assert_eq!(states["api-east"].subnets, zones);
    assert!(states["api-east"].suspended_processes.is_empty());
}

/// A playbook record: its name, its hosted zone id, and the weight of each set.
type RecordSpec<'a> = (&'a str, &'a str, &'a [(&'a str, i64)]);

/// A plan of `text` against a world the in-memory `cloud` also holds: groups of
/// `groups` (region, playbook group, names, capacity) and records of `records`.
fn plan_of(
    text: &str,
    groups: &[(&str, &str, Vec<String>, Capacity)],
    records: &[RecordSpec<'_>],
) -> Plan {
    let playbook =
        crate::playbook::load_str("test.yaml", text, &BTreeMap::new()).expect("valid playbook");
    let mut observed = Observed::default();
    for (region, name, members, capacity) in groups {
        observed
            .resolved_groups
            .entry((*region).to_owned())
            .or_default()
            .insert((*name).to_owned(), members.clone());
        for m in members {
            observed
                .groups
                .entry((*region).to_owned())
                .or_default()
                .insert(m.clone(), group(m, *capacity));
        }
    }
    for (record, zone, weights) in records {
        observed.zones.insert(
            (*zone).to_owned(),
            ZoneLookup::Found {
                id: (*zone).to_owned(),
                name: "example.com.".into(),
            },
        );
        observed.records.insert(
            (*record).to_owned(),
            weights
                .iter()
                .map(|(id, w)| WeightedSet {
                    set_identifier: (*id).to_owned(),
                    weight: Some(*w),
                    ttl: Some(60),
                    ..Default::default()
                })
                .collect(),
        );
    }
    let plan = build(
        &playbook,
        &observed,
        "test.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    );
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    plan
}

async fn execute_plan<C: super::cloud::Cloud>(
    cloud: &C,
    run: &RunDir,
    plan: &Plan,
    options: &Options,
    interrupt: &Interrupt,
) -> Result<(), EngineError> {
    let history = History::from_entries(&run.read().expect("journal"));
    let mut journal = Journal::open(run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    let executor = Executor {
        cloud,
        recorder: &recorder,
        options,
        interrupt,
    };
    executor.run(plan).await
}

#[tokio::test(start_paused = true)]
async fn one_increment_over_five_zones_costs_one_sync_wait() {
    let mut text = String::from("version: 1\nname: zones\nrecords:\n");
    let mut records = Vec::new();
    let cloud = MemoryCloud::new(Duration::ZERO, Duration::from_secs(60));
    for z in 1..=5 {
        text.push_str(&format!(
            "  r{z}:\n    zone: Z{z}\n    name: r{z}.example.com.\n    type: A\n    set_identifiers: {{ us-east-1: east, us-west-2: west }}\n"
        ));
        cloud.add_record(&format!("Z{z}"), &format!("r{z}.example.com."), "east", 100);
        cloud.add_record(&format!("Z{z}"), &format!("r{z}.example.com."), "west", 0);
    }
    text.push_str("steps:\n  - id: shift\n    shift_traffic: { record: [r1, r2, r3, r4, r5], to: us-west-2, ramp: [50, 100], bake: 0s }\n");
    let zones: Vec<String> = (1..=5).map(|z| format!("Z{z}")).collect();
    let weights: &[(&str, i64)] = &[("east", 100), ("west", 0)];
    let records_spec: Vec<(String, String)> = (1..=5)
        .map(|z| (format!("r{z}"), format!("Z{z}")))
        .collect();
    for (r, z) in &records_spec {
        records.push((r.as_str(), z.as_str(), weights));
    }
    let plan = plan_of(&text, &[], &records);
    let r = new_run();
    let start = Instant::now();
    execute_plan(
        &cloud,
        &r.run,
        &plan,
        &Options::default(),
        &Interrupt::default(),
    )
    .await
    .expect("run succeeds");
    let took = start.elapsed();
    // Two increments, each one 60 s sync for all five zones (plus at most one poll
    // pause of 2 s), where one zone after the other would take 5 x 60 s each.
    assert!(took >= Duration::from_secs(120), "{took:?}");
    assert!(took <= Duration::from_secs(2 * (60 + 2)), "{took:?}");
    assert_eq!(
        cloud.calls("change_weights"),
        10,
        "one change per zone per increment"
    );
    for zone in &zones {
        assert_eq!(cloud.weights(zone)["west"], 100, "{zone}");
    }
    // The five changes of an increment are journaled together, before any is sent.
    let evs = events(&r.run);
    let first_applied = evs
        .iter()
        .position(|e| matches!(e, Event::Applied { .. }))
        .expect("applied");
    let intents_before = evs[..first_applied]
        .iter()
        .filter(|e| matches!(e, Event::Intent { .. }))
        .count();
    assert_eq!(intents_before, 5);
}

fn hundred_groups() -> (Plan, MemoryCloud, Vec<String>) {
    let names: Vec<String> = (0..100).map(|i| format!("svc-{i:03}")).collect();
    let text = format!(
        "version: 1\nname: fleet\ngroups:\n  fleet: {{ names: [{}] }}\nsteps:\n  - id: scale\n    scale_up: {{ group: fleet, region: us-west-2, desired: 4, timeout: 10m }}\n",
        names.join(", ")
    );
    let plan = plan_of(
        &text,
        &[("us-west-2", "fleet", names.clone(), cap(1, 2, 10))],
        &[],
    );
    let cloud = MemoryCloud::new(Duration::from_secs(180), Duration::ZERO);
    for name in &names {
        cloud.add_group("us-west-2", name, cap(1, 2, 10));
    }
    (plan, cloud, names)
}

#[tokio::test(start_paused = true)]
async fn a_rollback_of_100_groups_with_3_minute_launches_costs_one_launch_wait() {
    let (plan, cloud, names) = hundred_groups();
    let r = new_run();
    let start = Instant::now();
    execute_plan(
        &cloud,
        &r.run,
        &plan,
        &Options::default(),
        &Interrupt::default(),
    )
    .await
    .expect("run succeeds");
    let run_took = start.elapsed();
    assert!(run_took >= Duration::from_secs(180), "{run_took:?}");
    assert!(
        run_took <= Duration::from_secs(185),
        "one launch wait: {run_took:?}"
    );
    let reads = cloud.calls("groups");
    let start = Instant::now();
    let history = History::from_entries(&r.run.read().expect("journal"));
    let mut journal = Journal::open(&r.run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    let report = rollback(
        &cloud,
        &recorder,
        &Interrupt::default(),
        &Options::default(),
        &plan,
        false,
    )
    .await
    .expect("rollback");
    let took = start.elapsed();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(report.restored, 100);
    // All 100 restores in one wave, one 3-minute wait for all: not 100 of them.
    assert!(took >= Duration::from_secs(180), "{took:?}");
    assert!(took <= Duration::from_secs(185), "{took:?}");
    for name in &names {
        assert_eq!(
            cloud.capacity("us-west-2", name),
            Some(cap(1, 2, 10)),
            "{name}"
        );
    }
    // One batched read a poll, not one per group.
    assert!(
        cloud.calls("groups") - reads < 60,
        "{} group reads",
        cloud.calls("groups") - reads
    );
}

/// Runs `execute` beside `meddle`, which changes the world at `at` into the run.
async fn run_with<F: std::future::Future<Output = ()>>(
    cloud: &MemoryCloud,
    r: &Run,
    options: &Options,
    meddle: F,
) -> Result<(), EngineError> {
    let interrupt = Interrupt::default();
    let (result, ()) = tokio::join!(execute(cloud, &r.run, options, &interrupt), meddle);
    result
}

#[tokio::test(start_paused = true)]
async fn weights_reset_during_a_bake_stop_the_next_increment_and_are_left_as_set() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    let reset = async {
        // 30 s into the first 2 m bake, someone puts the traffic back.
        tokio::time::sleep(Duration::from_secs(30)).await;
        cloud.set_weight("Z1", "east", 100);
        cloud.set_weight("Z1", "west", 0);
    };
    let err = run_with(&cloud, &r, &Options::default(), reset)
        .await
        .expect_err("drift");
    let message = err.to_string();
    assert!(matches!(err, EngineError::Drift { .. }), "{message}");
    assert!(
        message.contains("expects east=50 west=50") && message.contains("live is east=100 west=0"),
        "{message}"
    );
    let untouched = |cloud: &MemoryCloud| {
        assert_eq!(cloud.weights("Z1")["west"], 0, "left as the person set it");
        assert_eq!(
            cloud.calls("change_weights"),
            1,
            "the second increment was never sent"
        );
        assert_eq!(
            cloud.capacity("us-east-1", "api-east"),
            Some(cap(3, 6, 12)),
            "not drained"
        );
    };
    untouched(&cloud);
    // Resume finds the same drift and changes nothing.
    let err = execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect_err("drift again");
    assert!(matches!(err, EngineError::Drift { .. }), "{err}");
    untouched(&cloud);
    // --force accepts what is live and goes on from there.
    let force = Options {
        force: true,
        ..Options::default()
    };
    tokio::time::timeout(
        Duration::from_secs(3600),
        execute(&cloud, &r.run, &force, &Interrupt::default()),
    )
    .await
    .expect("never hangs")
    .expect("forced resume finishes");
    assert_eq!(cloud.weights("Z1")["west"], 100);
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(0, 0, 12)));
    let accepted = events(&r.run).into_iter().any(|e| {
        matches!(e, Event::Reconciled { action, accepted: Some(_), .. } if action == "shift:dns:Z1:1")
    });
    assert!(
        accepted,
        "the live weights were recorded as increment 1's outcome"
    );
}

#[tokio::test(start_paused = true)]
async fn a_target_scaled_down_during_a_bake_stops_traffic_and_the_drain() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    let shrink = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        cloud.set_capacity_now("us-west-2", "api-west", cap(1, 2, 12));
    };
    let err = run_with(&cloud, &r, &Options::default(), shrink)
        .await
        .expect_err("capacity lost");
    assert_eq!(
        err.to_string(),
        "asg api-west (us-west-2) no longer has the capacity step scale gave it: wanted desired at least 8 with at least 8 InService, live desired 2 with 2 InService; no traffic was moved and nothing was drained; restore it and `evac resume`, `evac resume --force` to go on with what is there, or `evac rollback`"
    );
    let untouched = |cloud: &MemoryCloud| {
        assert_eq!(cloud.weights("Z1")["west"], 50, "no more traffic moved");
        assert_eq!(
            cloud.capacity("us-east-1", "api-east"),
            Some(cap(3, 6, 12)),
            "not drained"
        );
    };
    untouched(&cloud);
    let err = execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect_err("resume stops too");
    assert!(matches!(err, EngineError::CapacityLost { .. }), "{err}");
    untouched(&cloud);
    let force = Options {
        force: true,
        ..Options::default()
    };
    tokio::time::timeout(
        Duration::from_secs(3600),
        execute(&cloud, &r.run, &force, &Interrupt::default()),
    )
    .await
    .expect("never hangs")
    .expect("forced resume finishes");
    assert_eq!(cloud.weights("Z1")["west"], 100);
}

#[tokio::test(start_paused = true)]
async fn force_on_an_in_flight_capacity_drift_waits_for_the_live_goal_not_the_old_one() {
    let cloud = cloud(Duration::from_secs(90), Duration::ZERO);
    let r = new_run();
    {
        let mut journal = Journal::open(&r.run).expect("journal");
        journal
            .append(Event::Intent {
                action: "scale:asg:us-west-2:api-west".into(),
                step: "scale".into(),
                target: crate::journal::Target::Capacity {
                    region: "us-west-2".into(),
                    group: "api-west".into(),
                },
                before: crate::journal::Value::Capacity(cap(1, 2, 12)),
                after: crate::journal::Value::Capacity(cap(8, 8, 12)),
                record_sets: vec![],
                increment: None,
            })
            .expect("append");
    }
    // Someone set max 5 meanwhile: 8 will never come.
    cloud.set_capacity_now("us-west-2", "api-west", cap(1, 5, 5));
    let force = Options {
        force: true,
        ..Options::default()
    };
    tokio::time::timeout(
        Duration::from_secs(3600),
        execute(&cloud, &r.run, &force, &Interrupt::default()),
    )
    .await
    .expect("the wait ends: its goal is the accepted value")
    .expect("forced resume finishes");
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(1, 5, 5)));
    assert_eq!(cloud.weights("Z1")["west"], 100);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_during_a_wait_step_stops_the_run_before_the_next_step() {
    use crate::plan::StopRef;
    let text = "version: 1\nname: hold\ngroups:\n  api: { names: [api-west] }\nsteps:\n  - id: hold\n    wait: 30s\n  - id: scale\n    scale_up: { group: api, region: us-west-2, desired: 8 }\n";
    let plan = plan_of(
        text,
        &[(
            "us-west-2",
            "api",
            vec!["api-west".to_owned()],
            cap(1, 2, 12),
        )],
        &[],
    );
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    cloud.set_alarm("us-west-2", "api-5xx-rate", "OK");
    let options = Options {
        stops: vec![StopRef::Alarm {
            region: "us-west-2".into(),
            name: "api-5xx-rate".into(),
        }],
        // Far longer than the wait: only the check at the next step's start sees it.
        stop_poll: Duration::from_secs(3600),
        ..Options::default()
    };
    let r = new_run();
    let interrupt = Interrupt::default();
    let fire = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        cloud.set_alarm("us-west-2", "api-5xx-rate", "ALARM");
    };
    let (result, ()) = tokio::join!(
        execute_plan(&cloud, &r.run, &plan, &options, &interrupt),
        fire
    );
    assert!(
        matches!(result, Err(EngineError::Interrupted)),
        "{result:?}"
    );
    assert!(matches!(
        interrupt.reason(),
        Some(super::interrupt::Reason::StopCondition { .. })
    ));
    assert_eq!(
        cloud.capacity("us-west-2", "api-west"),
        Some(cap(1, 2, 12)),
        "nothing changed"
    );
    assert_eq!(cloud.calls("set_capacity"), 0);
    let evs = events(&r.run);
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Event::StepStarted { step } if step == "scale")),
        "the next step never started: {evs:?}"
    );
}

/// A reporter with a terminal that never answers, or answers `answer` at once.
struct Asking {
    answer: Option<bool>,
    pending: std::sync::Mutex<Vec<tokio::sync::oneshot::Sender<bool>>>,
    restored: std::sync::atomic::AtomicBool,
}

impl super::reporter::Reporter for Asking {
    fn entry(&self, _: &crate::journal::Entry) {}
    fn progress(&self, _: &super::reporter::Progress) {}
    fn ask(&self, _: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        let (send, receive) = tokio::sync::oneshot::channel();
        match self.answer {
            Some(answer) => {
                let _ = send.send(answer);
            }
            None => self.pending.lock().expect("lock").push(send),
        }
        Some(receive)
    }
    fn asked(&self) {
        self.restored
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn gate_plan() -> Plan {
    let text = "version: 1\nname: gate\ngroups:\n  api: { names: [api-west] }\nsteps:\n  - id: gate\n    approve: Go on?\n  - id: scale\n    scale_up: { group: api, region: us-west-2, desired: 8 }\n";
    plan_of(
        text,
        &[(
            "us-west-2",
            "api",
            vec!["api-west".to_owned()],
            cap(1, 2, 12),
        )],
        &[],
    )
}

#[tokio::test(start_paused = true)]
async fn an_alarm_while_an_approval_waits_ends_the_prompt() {
    use crate::plan::StopRef;
    let plan = gate_plan();
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    cloud.set_alarm("us-west-2", "api-5xx-rate", "OK");
    let options = Options {
        stops: vec![StopRef::Alarm {
            region: "us-west-2".into(),
            name: "api-5xx-rate".into(),
        }],
        stop_poll: Duration::from_secs(5),
        ..Options::default()
    };
    let reporter = Asking {
        answer: None,
        pending: Default::default(),
        restored: Default::default(),
    };
    let r = new_run();
    let interrupt = Interrupt::default();
    let mut journal = Journal::open(&r.run).expect("journal");
    let recorder = Recorder::new(&mut journal, History::default(), &reporter);
    let executor = Executor {
        cloud: &cloud,
        recorder: &recorder,
        options: &options,
        interrupt: &interrupt,
    };
    let start = Instant::now();
    let fire = async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        cloud.set_alarm("us-west-2", "api-5xx-rate", "ALARM");
    };
    let (result, ()) = tokio::join!(executor.run(&plan), fire);
    assert!(
        matches!(result, Err(EngineError::Interrupted)),
        "{result:?}"
    );
    assert!(
        start.elapsed() <= Duration::from_secs(65),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(
        interrupt.reason(),
        Some(super::interrupt::Reason::StopCondition { .. })
    ));
    assert!(reporter.restored.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        cloud.calls("set_capacity"),
        0,
        "answering was no longer possible"
    );
}

#[tokio::test(start_paused = true)]
async fn a_declined_approval_is_recorded_as_such_and_asked_again_on_resume() {
    let plan = gate_plan();
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    let run = |answer: bool| {
        let plan = plan.clone();
        let cloud = &cloud;
        let run = &r.run;
        async move {
            let reporter = Asking {
                answer: Some(answer),
                pending: Default::default(),
                restored: Default::default(),
            };
            let history = History::from_entries(&run.read().expect("journal"));
            let mut journal = Journal::open(run).expect("journal");
            let recorder = Recorder::new(&mut journal, history, &reporter);
            let (options, interrupt) = (Options::default(), Interrupt::default());
            Executor {
                cloud,
                recorder: &recorder,
                options: &options,
                interrupt: &interrupt,
            }
            .run(&plan)
            .await
        }
    };
    let err = run(false).await.expect_err("declined");
    assert!(
        matches!(err, EngineError::Declined { ref step } if step == "gate"),
        "{err}"
    );
    assert!(events(&r.run).iter().any(
        |e| matches!(e, Event::ApprovalDeclined { step, by } if step == "gate" && by == "terminal")
    ));
    assert!(
        !events(&r.run)
            .iter()
            .any(|e| matches!(e, Event::Interrupted))
    );
    assert_eq!(cloud.calls("set_capacity"), 0);
    run(true).await.expect("approved on resume");
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(8, 8, 12)));
}

#[tokio::test(start_paused = true)]
async fn traffic_waits_for_capacity_a_scale_up_did_not_wait_for() {
    let text = PLAYBOOK.replace(
        "scale_up: { group: api, region: us-west-2, desired: 8, timeout: 10m }",
        "scale_up: { group: api, region: us-west-2, desired: 8, wait: none }",
    );
    let plan = plan_of(
        &text,
        &[
            (
                "us-west-2",
                "api",
                vec!["api-west".to_owned()],
                cap(1, 2, 12),
            ),
            (
                "us-east-1",
                "src",
                vec!["api-east".to_owned()],
                cap(3, 6, 12),
            ),
        ],
        &[("api", "Z1", &[("east", 100), ("west", 0)])],
    );
    let cloud = cloud(Duration::from_secs(90), Duration::ZERO);
    let r = new_run();
    let interrupt = Interrupt::default();
    let look = async {
        // 60 s into the 90 s launch: the scale-up is done, the capacity is not there.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let early = cloud.weights("Z1")["west"];
        tokio::time::sleep(Duration::from_secs(40)).await;
        (early, cloud.weights("Z1")["west"])
    };
    let options = Options::default();
    let (result, (early, later)) = tokio::join!(
        execute_plan(&cloud, &r.run, &plan, &options, &interrupt),
        look
    );
    result.expect("run succeeds");
    assert_eq!(
        early, 0,
        "no traffic moved before the capacity was in service"
    );
    assert_eq!(later, 50, "the first increment went out once it was");
    assert_eq!(cloud.weights("Z1")["west"], 100);
}

mod extremes {
    //! Extreme values a user can write (or AWS can hold) go through validation, the
    //! plan and the engine without a panic: a located error, or a run that ends.
    use super::*;
    use proptest::prelude::*;

    /// Mostly durations a drill could use, sometimes absurd ones.
    fn duration() -> impl Strategy<Value = String> {
        let unit = prop_oneof![
            Just("ms"),
            Just("s"),
            Just("m"),
            Just("h"),
            Just("d"),
            Just("y")
        ];
        prop_oneof![
            6 => (0u64..120, prop_oneof![Just("s"), Just("m")]).prop_map(|(n, u)| format!("{n}{u}")),
            1 => (prop_oneof![Just(u64::MAX / 2), Just(u64::MAX), any::<u64>()], unit)
                .prop_map(|(n, u)| format!("{n}{u}")),
        ]
    }

    /// Mostly capacities a fleet could have, sometimes the largest AWS could send.
    fn capacity() -> impl Strategy<Value = u32> {
        prop_oneof![
            4 => 0u32..20,
            1 => prop_oneof![Just(u32::MAX / 2), Just(u32::MAX), any::<u32>()],
        ]
    }

    /// One case: durations and capacities, as written or as AWS holds them.
    #[derive(Clone, Debug)]
    struct Extremes {
        bake: String,
        timeout: String,
        wait: String,
        desired: u32,
        drain_to: u32,
        live_desired: u32,
        live_max: u32,
        source_desired: u32,
        percent: u8,
    }

    fn extremes() -> impl Strategy<Value = Extremes> {
        (
            (duration(), duration(), duration()),
            (capacity(), capacity(), capacity(), capacity(), capacity()),
            1u8..=100,
        )
            .prop_map(
                |(
                    (bake, timeout, wait),
                    (desired, drain_to, live_desired, live_max, source_desired),
                    percent,
                )| {
                    Extremes {
                        bake,
                        timeout,
                        wait,
                        desired,
                        drain_to,
                        live_desired,
                        live_max,
                        source_desired,
                        percent,
                    }
                },
            )
    }

    /// Plans and runs one case. A playbook refused with located diagnostics, or a
    /// plan with blockers, is what validation and planning are for: `Ok(false)`.
    /// A run must end (done, timed out or failed); a run that succeeded must leave
    /// all traffic on the target; and whatever it did, its rollback must put every
    /// group and weight back exactly as it found them. `Ok(true)`: the case reached
    /// the engine and held.
    fn run_extremes(x: &Extremes) -> Result<bool, TestCaseError> {
        let Extremes {
            bake,
            timeout,
            wait,
            desired,
            drain_to,
            live_desired,
            live_max,
            source_desired,
            percent,
        } = x;
        let text = format!(
            "version: 1\nname: extreme\ngroups:\n  api: {{ names: [api-west] }}\n  src: {{ names: [api-east] }}\nrecords:\n  api:\n    zone: Z1\n    name: api.example.com.\n    type: A\n    set_identifiers: {{ us-east-1: east, us-west-2: west }}\nsteps:\n  - id: scale\n    scale_up: {{ group: api, region: us-west-2, desired: {desired}, timeout: {timeout}, raise_max: true }}\n  - id: absorb\n    scale_up: {{ group: api, region: us-west-2, absorb: {{ from: us-east-1, percent: {percent} }}, raise_max: true, wait: none }}\n  - id: hold\n    wait: {wait}\n  - id: shift\n    shift_traffic: {{ record: api, to: us-west-2, ramp: [50, 100], bake: {bake}, timeout: {timeout} }}\n  - id: drain\n    drain: {{ group: src, region: us-east-1, to: {drain_to}, timeout: {timeout} }}\n"
        );
        let Ok(playbook) = crate::playbook::load_str("extreme.yaml", &text, &BTreeMap::new())
        else {
            return Ok(false);
        };
        let west = cap(0, (*live_desired).min(*live_max), *live_max);
        let east = cap(0, *source_desired, *source_desired);
        let mut observed = two_regions(west, east);
        // `api` in us-east-1 is what `absorb` takes its share of.
        observed
            .resolved_groups
            .entry("us-east-1".into())
            .or_default()
            .insert("api".to_owned(), vec!["api-east".to_owned()]);
        let plan = build(
            &playbook,
            &observed,
            "extreme.yaml",
            jiff::Timestamp::UNIX_EPOCH,
        );
        let shown = crate::plan::render::human(&plan, false);
        prop_assert!(shown.contains("extreme"), "the plan renders: {shown}");
        if plan.is_blocked() {
            return Ok(false);
        }
        let cloud = MemoryCloud::new(Duration::from_secs(60), Duration::from_secs(5));
        cloud.add_group("us-west-2", "api-west", west);
        cloud.add_group("us-east-1", "api-east", east);
        cloud.add_record("Z1", "api.example.com.", "east", 100);
        cloud.add_record("Z1", "api.example.com.", "west", 0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let r = new_run();
        let options = Options {
            yes: true,
            ..Options::default()
        };
        let ended = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10 * 24 * 3600),
                execute_plan(&cloud, &r.run, &plan, &options, &Interrupt::default()),
            )
            .await
        });
        let Ok(result) = ended else {
            return Err(TestCaseError::fail("the run did not end within ten days"));
        };
        if result.is_ok() {
            let weights = cloud.weights("Z1");
            prop_assert_eq!(
                (weights["east"], weights["west"]),
                (0, 100),
                "a run that succeeded moved all traffic"
            );
        }
        let report = runtime.block_on(roll_back_plan(
            &cloud,
            &r.run,
            &Options::default(),
            &plan,
            false,
        ));
        prop_assert!(report.differences.is_empty(), "{:?}", report.differences);
        prop_assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(west));
        prop_assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(east));
        let weights = cloud.weights("Z1");
        prop_assert_eq!(
            (weights["east"], weights["west"]),
            (100, 0),
            "rollback put the traffic back"
        );
        Ok(true)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        #[test]
        fn extreme_durations_and_capacities_end_and_roll_back_exactly(x in extremes()) {
            run_extremes(&x)?;
        }
    }

    /// The generator is worth its cases: most of them get past validation and the
    /// plan to the engine (counted in this test's own run of 64 cases).
    #[test]
    fn the_extremes_reach_the_engine_often() {
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new(Config {
            cases: 64,
            ..Config::default()
        });
        let reached = std::cell::Cell::new(0u32);
        runner
            .run(&extremes(), |x| {
                if run_extremes(&x)? {
                    reached.set(reached.get() + 1);
                }
                Ok(())
            })
            .expect("every case holds");
        assert!(
            reached.get() >= 16,
            "only {} of 64 cases ran the engine",
            reached.get()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_rollback_that_ended_with_differences_restores_them_when_run_again() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect("run succeeds");
    // During the rollback's first bake, someone drains the source again.
    let meddle = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        cloud.set_capacity_now("us-east-1", "api-east", cap(0, 0, 12));
    };
    let (first, ()) = tokio::join!(roll_back(&cloud, &r.run, false), meddle);
    assert_eq!(
        first.differences,
        ["asg api-east (us-east-1): original min 3 desired 6 max 12, live min 0 desired 0 max 12"]
    );
    let second = roll_back(&cloud, &r.run, false).await;
    assert!(second.differences.is_empty(), "{:?}", second.differences);
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(3, 6, 12)));
}

#[tokio::test(start_paused = true)]
async fn an_alarm_during_a_bake_stops_the_next_increment_even_with_a_long_poll() {
    use crate::plan::StopRef;
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    cloud.set_alarm("us-west-2", "api-5xx-rate", "OK");
    let options = Options {
        stops: vec![StopRef::Alarm {
            region: "us-west-2".into(),
            name: "api-5xx-rate".into(),
        }],
        // Far longer than the run: only the check before the next wave sees it.
        stop_poll: Duration::from_secs(24 * 3600),
        ..Options::default()
    };
    let r = new_run();
    let interrupt = Interrupt::default();
    let fire = async {
        // 10 s into the first 2 m bake.
        tokio::time::sleep(Duration::from_secs(10)).await;
        cloud.set_alarm("us-west-2", "api-5xx-rate", "ALARM");
    };
    let (result, ()) = tokio::join!(execute(&cloud, &r.run, &options, &interrupt), fire);
    assert!(
        matches!(result, Err(EngineError::Interrupted)),
        "{result:?}"
    );
    assert!(matches!(
        interrupt.reason(),
        Some(super::interrupt::Reason::StopCondition { .. })
    ));
    assert_eq!(
        cloud.weights("Z1")["west"],
        50,
        "the second increment never went out"
    );
    assert_eq!(cloud.calls("change_weights"), 1);
}

/// Runs `plan` to its end in `r` with default options.
async fn run_plan(cloud: &MemoryCloud, r: &Run, plan: &Plan) -> Result<(), EngineError> {
    execute_plan(
        cloud,
        &r.run,
        plan,
        &Options::default(),
        &Interrupt::default(),
    )
    .await
}

/// The engine playbook's groups attached to target groups: new west instances pass
/// their health checks `healthy` after they are InService; east's target group
/// holds leaving instances for `drain` (its deregistration delay).
fn balanced_cloud(launch: Duration, healthy: Duration, drain: Duration) -> MemoryCloud {
    use crate::state::Balancer;
    let cloud = cloud(launch, Duration::ZERO);
    cloud.name_zone("Z1", "example.com.");
    let tg = |name: &str| Balancer::TargetGroup {
        arn: format!(
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/{name}/0123456789abcdef"
        ),
    };
    cloud.attach("us-west-2", "api-west", tg("api-west"), healthy, drain);
    cloud.attach("us-east-1", "api-east", tg("api-east"), healthy, drain);
    cloud
}

/// The plan of `text` read from `cloud` through [`crate::plan::observe::Observe`],
/// as `evac plan` reads AWS; it must have no blocker.
async fn observed_plan(cloud: &MemoryCloud, text: &str) -> Plan {
    let plan = observed_plan_as_is(cloud, text).await;
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    plan
}

/// [`observed_plan`], blockers and all.
async fn observed_plan_as_is(cloud: &MemoryCloud, text: &str) -> Plan {
    let playbook =
        crate::playbook::load_str("engine.yaml", text, &BTreeMap::new()).expect("valid playbook");
    let observed = crate::plan::observe::observe(&crate::accounts::Accounts::one(cloud), &playbook)
        .await
        .expect("observed");
    build(
        &playbook,
        &observed,
        "engine.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    )
}

#[tokio::test(start_paused = true)]
async fn a_scale_up_waits_until_healthy_in_its_target_group_and_a_drain_until_deregistered() {
    let (launch, healthy, drain) = (
        Duration::from_secs(90),
        Duration::from_secs(120),
        Duration::from_secs(300),
    );
    let cloud = balanced_cloud(launch, healthy, drain);
    let plan = observed_plan(&cloud, PLAYBOOK).await;
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).expect("step");
    assert!(step("scale").balancers && step("drain").balancers);
    let text = crate::plan::render::human(&plan, false);
    assert!(
        text.contains("target group api-west: 2 of 2 registered instance(s) healthy"),
        "{text}"
    );
    assert!(
        text.contains("wait until InService and healthy in their load balancers"),
        "{text}"
    );
    assert!(
        text.contains("wait until out of their load balancers"),
        "{text}"
    );

    let r = new_run();
    let start = Instant::now();
    run_plan(&cloud, &r, &plan).await.expect("run succeeds");
    // Scale: launch + health checks; shift: 2 x 2 m bakes; drain: out of service at
    // launch, then the deregistration delay. InService alone would be 90 + 240 + 90.
    let least = launch + healthy + Duration::from_secs(240) + launch + drain;
    let took = start.elapsed();
    assert!(took >= least, "{took:?} < {least:?}");
    assert!(took < least + Duration::from_secs(120), "{took:?}");
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(0, 0, 12)));
}

#[tokio::test(start_paused = true)]
async fn new_capacity_that_never_passes_its_health_checks_fails_the_step_naming_the_target_group() {
    let cloud = balanced_cloud(
        Duration::from_secs(60),
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let plan = observed_plan(&cloud, PLAYBOOK).await;
    let r = new_run();
    let err = run_plan(&cloud, &r, &plan).await.expect_err("times out");
    let message = err.to_string();
    assert!(
        message.contains("step scale failed: timed out after 600s: asg api-west (us-west-2) wanted 8 instances healthy in target group api-west, last seen 2 (8 registered)"),
        "{message}"
    );
    // InService was reached: only the load balancer held the step.
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(8, 8, 12)));
}

#[tokio::test(start_paused = true)]
async fn in_service_waits_ignore_load_balancers() {
    let cloud = balanced_cloud(
        Duration::from_secs(60),
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    );
    let text = PLAYBOOK
        .replace(
            "desired: 8, timeout: 10m",
            "desired: 8, timeout: 10m, wait: in_service",
        )
        .replace(
            "to: 0, timeout: 10m",
            "to: 0, timeout: 10m, wait: in_service",
        );
    let plan = observed_plan(&cloud, &text).await;
    assert!(plan.steps.iter().all(|s| !s.balancers));
    let r = new_run();
    run_plan(&cloud, &r, &plan)
        .await
        .expect("run succeeds without waiting for health or deregistration");
}

#[tokio::test(start_paused = true)]
async fn rollback_waits_until_restored_capacity_is_healthy_before_moving_traffic_back() {
    let (launch, healthy) = (Duration::from_secs(60), Duration::from_secs(200));
    let cloud = balanced_cloud(launch, healthy, Duration::ZERO);
    let plan = observed_plan(&cloud, PLAYBOOK).await;
    let r = new_run();
    run_plan(&cloud, &r, &plan).await.expect("run succeeds");
    let history = History::from_entries(&r.run.read().expect("journal"));
    let mut journal = Journal::open(&r.run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    let start = Instant::now();
    let restoring = async {
        rollback(
            &cloud,
            &recorder,
            &Interrupt::default(),
            &Options::default(),
            &plan,
            true,
        )
        .await
        .expect("rollback")
    };
    // While east's restored instances are not yet healthy, traffic stays in west.
    let watch = async {
        tokio::time::sleep(launch + healthy / 2).await;
        cloud.weights("Z1")
    };
    let (report, during) = futures::join!(restoring, watch);
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(during.get("west"), Some(&100), "{during:?}");
    assert!(start.elapsed() >= launch + healthy, "{:?}", start.elapsed());
    assert_eq!(
        cloud.weights("Z1"),
        BTreeMap::from([("east".to_owned(), 100), ("west".to_owned(), 0)])
    );
}

#[tokio::test(start_paused = true)]
async fn a_force_protected_drain_takes_the_protection_off_first_and_converges() {
    let cloud = cloud(Duration::from_secs(60), Duration::ZERO);
    cloud.name_zone("Z1", "example.com.");
    cloud.shape("us-east-1", "api-east", |g| *g.protected = 2);
    let blocked = observed_plan_as_is(&cloud, PLAYBOOK).await;
    assert_eq!(blocked.blockers.len(), 1, "{:?}", blocked.blockers);
    let text = PLAYBOOK.replace(
        "to: 0, timeout: 10m",
        "to: 0, timeout: 10m, force_protected: true",
    );
    let plan = observed_plan(&cloud, &text).await;
    let r = new_run();
    run_plan(&cloud, &r, &plan)
        .await
        .expect("the drain converges once the protection is off");
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(0, 0, 12)));
    let before = events(&r.run).into_iter().find_map(|e| match e {
        Event::Intent {
            target: crate::journal::Target::Protection { .. },
            before,
            ..
        } => Some(before),
        _ => None,
    });
    assert_eq!(
        before,
        Some(crate::journal::Value::Protection {
            protected: vec![
                "i-api-east-protected-0".to_owned(),
                "i-api-east-protected-1".to_owned()
            ]
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_group_found_healthy_is_not_read_again_while_a_straggler_is_waited_for() {
    use crate::state::Balancer;
    let text = r#"
version: 1
name: straggler
groups:
  api: { names: [fast, slow] }
steps:
  - id: scale
    scale_up: { group: api, region: us-west-2, desired: 4, timeout: 10m }
"#;
    let cloud = MemoryCloud::new(Duration::from_secs(30), Duration::ZERO);
    for (name, healthy) in [("fast", 10), ("slow", 300)] {
        cloud.add_group("us-west-2", name, cap(1, 2, 8));
        cloud.attach(
            "us-west-2",
            name,
            Balancer::Classic {
                name: format!("lb-{name}"),
            },
            Duration::from_secs(healthy),
            Duration::ZERO,
        );
    }
    let plan = observed_plan(&cloud, text).await;
    let planned = (cloud.balancer_reads("fast"), cloud.balancer_reads("slow"));
    let r = new_run();
    run_plan(&cloud, &r, &plan).await.expect("run succeeds");
    let fast = cloud.balancer_reads("fast") - planned.0;
    let slow = cloud.balancer_reads("slow") - planned.1;
    // Both are read from when every group is InService (30 s): the fast one until
    // it passes (10 s of health checks, a few rounds), then only the straggler,
    // every round of its five minutes.
    assert!(fast <= 3, "fast read {fast} times, slow {slow}");
    assert!(slow > 10 * fast, "fast read {fast} times, slow {slow}");
}

#[tokio::test(start_paused = true)]
async fn a_force_protected_drain_stops_on_instances_protected_since_the_plan() {
    let cloud = cloud(Duration::from_secs(60), Duration::ZERO);
    cloud.name_zone("Z1", "example.com.");
    cloud.shape("us-east-1", "api-east", |g| *g.protected = 2);
    let text = PLAYBOOK.replace(
        "to: 0, timeout: 10m",
        "to: 0, timeout: 10m, force_protected: true",
    );
    let plan = observed_plan(&cloud, &text).await;
    // Someone protects a third instance after the plan was made.
    cloud.shape("us-east-1", "api-east", |g| *g.protected = 3);
    let r = new_run();
    let err = run_plan(&cloud, &r, &plan).await.expect_err("drift");
    assert!(
        matches!(&err, EngineError::Drift { target, .. } if target == "scale-in protection of asg api-east (us-east-1)"),
        "{err}"
    );
    // Nothing was unprotected, and the source kept its capacity.
    assert_eq!(cloud.calls("set_protection"), 0);
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(3, 6, 12)));
}

/// A drill shifting `names` two-region records of one hosted zone, each set with
/// `values` as its values, all at once in two increments.
async fn one_zone_drill(names: usize, values: &[&str]) -> (MemoryCloud, Plan) {
    let cloud = MemoryCloud::new(Duration::ZERO, Duration::from_secs(30));
    cloud.name_zone("Z1", "example.com.");
    let mut text = String::from("version: 1\nname: big-zone\nrecords:\n");
    for r in 0..names {
        text.push_str(&format!(
            "  r{r}:\n    zone: Z1\n    name: r{r}.example.com.\n    type: A\n    set_identifiers: {{ us-east-1: r{r}-east, us-west-2: r{r}-west }}\n"
        ));
        cloud.add_record_values(
            "Z1",
            &format!("r{r}.example.com."),
            &format!("r{r}-east"),
            100,
            values,
        );
        cloud.add_record_values(
            "Z1",
            &format!("r{r}.example.com."),
            &format!("r{r}-west"),
            0,
            values,
        );
    }
    let all: Vec<String> = (0..names).map(|r| format!("r{r}")).collect();
    text.push_str(&format!(
        "steps:\n  - id: shift\n    shift_traffic: {{ record: [{}], to: us-west-2, ramp: [50, 100], bake: 0s }}\n",
        all.join(", ")
    ));
    let plan = observed_plan_as_is(&cloud, &text).await;
    (cloud, plan)
}

#[tokio::test(start_paused = true)]
async fn the_in_memory_route53_refuses_a_request_past_its_limits() {
    let cloud = MemoryCloud::new(Duration::ZERO, Duration::ZERO);
    let set = |r: usize, value: &str| crate::journal::RecordSetDef {
        name: format!("r{r}.example.com."),
        record_type: "A".into(),
        set_identifier: format!("r{r}"),
        weight: 1,
        ttl: Some(60),
        values: vec![value.to_owned()],
        alias: None,
        health_check_id: None,
    };
    let change = |r: usize, value: &str| super::cloud::WeightChange {
        from: set(r, value),
        to: crate::journal::RecordSetDef {
            weight: 2,
            ..set(r, value)
        },
    };
    for r in 0..500 {
        cloud.add_record_values(
            "Z1",
            &format!("r{r}.example.com."),
            &format!("r{r}"),
            1,
            &["10.0.0.1"],
        );
    }
    // 500 sets of one value, each a DELETE and a CREATE: 1,000 elements, the most
    // one request holds.
    let most: Vec<_> = (0..500).map(|r| change(r, "10.0.0.1")).collect();
    assert!(
        super::cloud::Cloud::change_weights(&cloud, "Z1", &most)
            .await
            .is_ok()
    );
    let over: Vec<_> = (0..501).map(|r| change(r, "10.0.0.1")).collect();
    let err = super::cloud::Cloud::change_weights(&cloud, "Z1", &over)
        .await
        .expect_err("1,002 elements");
    assert!(err.message.starts_with("InvalidChangeBatch"), "{err}");
    // 64 values of 250 characters: 32,000 counted twice.
    let long = "x".repeat(250);
    let chars: Vec<_> = (0..65).map(|r| change(r, &long)).collect();
    let err = super::cloud::Cloud::change_weights(&cloud, "Z1", &chars)
        .await
        .expect_err("32,500 characters");
    assert!(err.message.contains("characters of values"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_drill_of_300_names_in_one_zone_shifts_every_record_in_batches_within_the_limits() {
    let (cloud, plan) = one_zone_drill(300, &["10.0.0.1"]).await;
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    // 600 sets, 1,200 elements counted: two requests an increment, two increments.
    assert_eq!(
        plan.estimate
            .mutating_calls
            .get("route53:ChangeResourceRecordSets"),
        Some(&4)
    );
    let text = crate::plan::render::human(&plan, false);
    assert!(
        text.contains("each increment sends hosted zone Z1 in 2 change batches"),
        "{text}"
    );
    let r = new_run();
    run_plan(&cloud, &r, &plan).await.expect("run");
    assert_eq!(cloud.calls("change_weights"), 4);
    let weights = cloud.weights("Z1");
    for n in 0..300 {
        assert_eq!(weights[&format!("r{n}-east")], 0);
        assert_eq!(weights[&format!("r{n}-west")], 100);
    }
    // Rollback goes back the same way.
    let report = roll_back(&cloud, &r.run, true).await;
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(
        cloud
            .weights("Z1")
            .iter()
            .all(|(id, w)| *w == if id.ends_with("east") { 100 } else { 0 })
    );
}

#[tokio::test(start_paused = true)]
async fn a_drill_of_70_names_with_250_character_values_shifts_every_record() {
    let long = "v".repeat(250);
    let (cloud, plan) = one_zone_drill(70, &[long.as_str()]).await;
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    // 140 sets of 250 characters, counted twice: 70,000, three requests.
    assert_eq!(
        plan.estimate
            .mutating_calls
            .get("route53:ChangeResourceRecordSets"),
        Some(&6)
    );
    let r = new_run();
    run_plan(&cloud, &r, &plan).await.expect("run");
    assert_eq!(cloud.calls("change_weights"), 6);
    assert!(
        cloud
            .weights("Z1")
            .iter()
            .all(|(id, w)| *w == if id.ends_with("west") { 100 } else { 0 })
    );
}

#[tokio::test(start_paused = true)]
async fn groups_that_scale_themselves_during_a_bake_are_left_so_and_rollback_is_exact() {
    // The engine playbook: west scaled to 8 (min 8, max 12), traffic 50 then 100,
    // east drained to 0. During the first bake west's policy scales it out to 11 as
    // traffic arrives, and east's scales it in from 6 to 4 as traffic leaves.
    let cloud = cloud(Duration::from_secs(30), Duration::from_secs(10));
    let r = new_run();
    let scaling = async {
        tokio::time::sleep(Duration::from_secs(100)).await;
        cloud.scale_itself("us-west-2", "api-west", 11);
        cloud.scale_itself("us-east-1", "api-east", 4);
    };
    run_with(&cloud, &r, &Options::default(), scaling)
        .await
        .expect("the drill finishes: a group's own scaling is not drift");
    assert_eq!(
        cloud.capacity("us-west-2", "api-west"),
        Some(cap(8, 11, 12)),
        "the scale-out is left in place"
    );
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(0, 0, 12)));
    assert_eq!(cloud.weights("Z1")["west"], 100);
    // The journal says so, with the cause AWS gives.
    let scaled: Vec<(String, u32, u32, String)> = events(&r.run)
        .into_iter()
        .filter_map(|e| match e {
            Event::ScaledItself {
                group,
                from,
                to,
                cause,
                ..
            } => Some((group, from, to, cause)),
            _ => None,
        })
        .collect();
    assert_eq!(scaled.len(), 2, "{scaled:?}");
    for (group, from, to) in [("api-west", 8, 11), ("api-east", 6, 4)] {
        assert!(
            scaled.iter().any(|(g, f, t, cause)| g == group
                && *f == from
                && *t == to
                && cause.contains(&format!("triggered policy target-tracking changing the desired capacity from {from} to {to}"))),
            "{group}: {scaled:?}"
        );
    }
    // Rollback restores what the journal recorded, exactly: west as it was before
    // the run, east as the drain found it (scaled in to 4 by its own policy).
    let report = roll_back(&cloud, &r.run, false).await;
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(1, 2, 12)));
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(3, 4, 12)));
    assert_eq!(cloud.weights("Z1")["east"], 100);
}

#[tokio::test(start_paused = true)]
async fn a_bound_changed_by_someone_else_during_a_bake_is_drift() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    let meddle = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        // Someone lowers east's max while the drill waits.
        cloud.set_capacity_now("us-east-1", "api-east", cap(3, 6, 9));
    };
    let err = run_with(&cloud, &r, &Options::default(), meddle)
        .await
        .expect_err("drift");
    assert!(matches!(err, EngineError::Drift { .. }), "{err}");
    assert_eq!(
        cloud.capacity("us-east-1", "api-east"),
        Some(cap(3, 6, 9)),
        "not drained"
    );
}

#[tokio::test(start_paused = true)]
async fn a_group_scaling_out_while_its_scale_up_is_waited_for_is_not_drift() {
    // West's instances take 90 s; 30 s in, its policy scales it out from 8 to 10.
    let cloud = cloud(Duration::from_secs(90), Duration::ZERO);
    let r = new_run();
    let scaling = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        cloud.scale_itself("us-west-2", "api-west", 10);
    };
    run_with(&cloud, &r, &Options::default(), scaling)
        .await
        .expect("the scale-up's wait ends at the floor");
    assert_eq!(
        cloud.capacity("us-west-2", "api-west"),
        Some(cap(8, 10, 12))
    );
    assert_eq!(cloud.weights("Z1")["west"], 100);
}

#[tokio::test(start_paused = true)]
async fn a_scale_up_whose_launches_all_fail_stops_early_with_aws_reason() {
    let cloud = cloud(Duration::from_secs(90), Duration::ZERO);
    cloud.fail_launches(
        "us-west-2",
        "api-west",
        "InsufficientInstanceCapacity: no m5.large capacity in us-west-2b",
    );
    let r = new_run();
    let started = Instant::now();
    let err = run_plan(&cloud, &r, &plan())
        .await
        .expect_err("the launches fail");
    let message = err.to_string();
    assert!(
        message.contains("asg api-west (us-west-2): 2 of 8 instances InService, and its last")
            && message.contains(
                "launches failed: InsufficientInstanceCapacity: no m5.large capacity in us-west-2b"
            ),
        "{message}"
    );
    // Well before the step's 10-minute timeout, and no traffic moved.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cloud.weights("Z1")["west"], 0);
    assert!(cloud.calls("activities") > 0);
}

#[tokio::test(start_paused = true)]
async fn slow_launches_that_do_not_fail_are_waited_for() {
    // The same wait with launches that take 90 s and succeed: no early end.
    let cloud = cloud(Duration::from_secs(90), Duration::ZERO);
    let r = new_run();
    run_plan(&cloud, &r, &plan()).await.expect("the run");
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(8, 8, 12)));
}

/// A drill whose groups count desired in units: api-west in vCPUs (instances of 4),
/// api-east by weighted instance types (each 4 units), drained to 6 units.
const UNITS_PLAYBOOK: &str = r#"
version: 1
name: units
groups:
  api: { names: [api-west] }
  src: { names: [api-east] }
records:
  api:
    zone: Z1
    name: api.example.com.
    type: A
    set_identifiers: { us-east-1: east, us-west-2: west }
steps:
  - id: scale
    scale_up: { group: api, region: us-west-2, desired: 30, raise_max: true, timeout: 10m }
  - id: shift
    shift_traffic: { record: api, to: us-west-2, ramp: [50, 100] }
  - id: drain
    drain: { group: src, region: us-east-1, to: 6, timeout: 10m }
"#;

#[tokio::test(start_paused = true)]
async fn waits_count_units_for_groups_counted_in_vcpus_or_weights() {
    use super::cloud::Cloud;
    use crate::state::Unit;
    let cloud = cloud(Duration::from_secs(90), Duration::ZERO);
    cloud.name_zone("Z1", "example.com.");
    cloud.set_capacity_now("us-west-2", "api-west", cap(8, 8, 12));
    cloud.set_capacity_now("us-east-1", "api-east", cap(8, 24, 48));
    cloud.weigh("us-west-2", "api-west", Unit::Vcpu, 4);
    cloud.weigh("us-east-1", "api-east", Unit::Weighted, 4);
    let plan = observed_plan(&cloud, UNITS_PLAYBOOK).await;
    let r = new_run();
    let started = Instant::now();
    run_plan(&cloud, &r, &plan).await.expect("the drill ends");
    // Up: 8 instances of 4 vCPUs (32) pass desired 30. Down: desired 6 of weight-4
    // instances stops at 2 instances (8 units), less than one weight above 6.
    let west = cloud
        .groups("us-west-2", &["api-west".into()])
        .await
        .expect("read");
    assert_eq!(west["api-west"].in_service, 32);
    let east = cloud
        .groups("us-east-1", &["api-east".into()])
        .await
        .expect("read");
    assert_eq!(east["api-east"].in_service, 8);
    assert_eq!(cloud.capacity("us-east-1", "api-east"), Some(cap(6, 6, 48)));
    // Each wait ended with its launch or its drain, far from the 10-minute timeouts.
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_zone_written_by_id_leaves_the_same_physical_zone_in_every_account() {
    // Two groups in two accounts: use1-az1 is us-east-1a in the first and
    // us-east-1b in the second.
    let text = "version: 1\nname: zone\ngroups:\n  api: { names: [api-a, api-b] }\nsteps:\n  - id: leave\n    evacuate_zone: { group: api, region: us-east-1, zone: use1-az1 }\n";
    let playbook =
        crate::playbook::load_str("zone.yaml", text, &BTreeMap::new()).expect("valid playbook");
    let mut observed = Observed::default();
    observed.resolved_groups.insert(
        "us-east-1".into(),
        [(
            "api".to_owned(),
            vec!["api-a".to_owned(), "api-b".to_owned()],
        )]
        .into(),
    );
    let mut groups = BTreeMap::new();
    for (name, subnets) in [
        (
            "api-a",
            [
                ("subnet-a1", "us-east-1a", "use1-az1"),
                ("subnet-a2", "us-east-1b", "use1-az2"),
            ],
        ),
        (
            "api-b",
            [
                ("subnet-b1", "us-east-1a", "use1-az2"),
                ("subnet-b2", "us-east-1b", "use1-az1"),
            ],
        ),
    ] {
        let mut state = group(name, cap(4, 4, 8));
        state.subnets = subnets.iter().map(|s| s.0.to_owned()).collect();
        state.instances_by_zone = subnets.iter().map(|s| (s.1.to_owned(), 2)).collect();
        groups.insert(name.to_owned(), state);
        for (subnet, zone, id) in subnets {
            observed.subnet_zones.insert(subnet.into(), zone.into());
            observed.subnet_zone_ids.insert(subnet.into(), id.into());
        }
    }
    observed.groups.insert("us-east-1".into(), groups);
    let plan = build(
        &playbook,
        &observed,
        "zone.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    );
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    let left: Vec<(String, String, Option<String>, Vec<String>)> = plan.steps[0]
        .changes
        .iter()
        .filter_map(|c| match c {
            crate::plan::Change::ZoneEvacuation {
                group,
                zone,
                zone_id,
                subnets_removed,
                ..
            } => Some((
                group.clone(),
                zone.clone(),
                zone_id.clone(),
                subnets_removed.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        left,
        vec![
            (
                "api-a".into(),
                "us-east-1a".into(),
                Some("use1-az1".into()),
                vec!["subnet-a1".into()]
            ),
            (
                "api-b".into(),
                "us-east-1b".into(),
                Some("use1-az1".into()),
                vec!["subnet-b2".into()]
            ),
        ]
    );
    let shown = crate::plan::render::human(&plan, false);
    assert!(
        shown.contains("asg api-b (us-east-1) leaves us-east-1b (use1-az1)"),
        "{shown}"
    );
}

#[tokio::test(start_paused = true)]
async fn later_waits_poll_often_when_they_are_due_and_see_aws_finish_within_half_a_second() {
    // Route 53 takes 10 s to sync each of four increments; capacity is instant.
    let cloud = cloud(Duration::ZERO, Duration::from_secs(10));
    cloud.name_zone("Z1", "example.com.");
    let text = PLAYBOOK.replace(
        "ramp: [50, 100], bake: 2m",
        "ramp: [25, 50, 75, 100], bake: 0s",
    );
    let plan = observed_plan(&cloud, &text).await;
    let r = new_run();
    let started = Instant::now();
    run_plan(&cloud, &r, &plan).await.expect("the run");
    // The first sync wait backs off (0.25 s, half again each time, up to 2 s) and
    // sees the change at 11.2 s; each later one is polled every 0.5 s from 8 s on
    // and sees it at 10 s. Backing off every time would take 4 x 11.2 s.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(43), "{took:?}");
    assert!(took >= Duration::from_secs(40), "{took:?}");
    assert_eq!(
        cloud.weights("Z1"),
        BTreeMap::from([("east".to_owned(), 0), ("west".to_owned(), 100)])
    );
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_cannot_vouch_for_its_lease_makes_no_aws_write() {
    // State in S3, and a lease that ended while the process was stopped: the run
    // journals its intents and then stops before the first call.
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let mut r = new_run();
    let store: std::sync::Arc<dyn crate::journal::remote::ObjectStore> =
        std::sync::Arc::new(crate::journal::remote::MemoryStore::default());
    r.run.remote = Some(crate::journal::state_dir::RemoteRun {
        store,
        prefix: "runs/test-run/".into(),
        lost: None,
        fence: Some(crate::journal::lease::Fence::until(
            std::time::SystemTime::now() - Duration::from_secs(30),
            Duration::from_secs(20),
        )),
    });
    let err = execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect_err("fenced");
    assert!(
        err.to_string().contains("cannot vouch for its lock"),
        "{err}"
    );
    assert_eq!(cloud.mutations(), 0, "no AWS write");
    assert_eq!(cloud.capacity("us-west-2", "api-west"), Some(cap(1, 2, 12)));
}

#[tokio::test(start_paused = true)]
async fn a_weight_change_raced_by_someone_else_is_refused_by_route53_not_applied() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    cloud.name_zone("Z1", "example.com.");
    // A teammate sets west to 30 after the run read the weights, before its call.
    cloud.race_next_change("Z1", "west", 30);
    let r = new_run();
    let err = run_plan(&cloud, &r, &plan()).await.expect_err("refused");
    assert!(err.to_string().contains("InvalidChangeBatch"), "{err}");
    // The teammate's value stands; the run's 50/50 did not land.
    assert_eq!(
        cloud.weights("Z1"),
        BTreeMap::from([("east".to_owned(), 100), ("west".to_owned(), 30)])
    );
    // Its intent has no outcome: a resume or rollback reads the set live.
    let evs = events(&r.run);
    let weights_intent = evs.iter().find_map(|e| match e {
        Event::Intent {
            action,
            target: crate::journal::Target::Weights { .. },
            ..
        } => Some(action.clone()),
        _ => None,
    });
    let action = weights_intent.expect("the weight change's intent");
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Event::Applied { action: a, .. } if *a == action))
    );
}

#[tokio::test(start_paused = true)]
async fn a_zone_batch_starts_only_once_the_one_before_is_healthy_in_the_load_balancer() {
    let text = "version: 1\nname: zone\ngroups:\n  api: { names: [api-east] }\nsteps:\n  - id: leave\n    evacuate_zone: { group: api, region: us-east-1, zone: us-east-1a, max_out_percent: 25 }\n";
    let playbook =
        crate::playbook::load_str("zone.yaml", text, &BTreeMap::new()).expect("valid playbook");
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let mut state = group("api-east", cap(8, 8, 12));
    state.subnets = zones.iter().map(|z| (*z).to_owned()).collect();
    state.instances_by_zone = [
        ("us-east-1a".to_owned(), 4),
        ("us-east-1b".to_owned(), 2),
        ("us-east-1c".to_owned(), 2),
    ]
    .into();
    let mut observed = Observed::default();
    observed.resolved_groups.insert(
        "us-east-1".into(),
        [("api".to_owned(), vec!["api-east".to_owned()])].into(),
    );
    observed
        .groups
        .insert("us-east-1".into(), [("api-east".to_owned(), state)].into());
    observed.subnet_zones = zones
        .iter()
        .map(|z| ((*z).to_owned(), (*z).to_owned()))
        .collect();
    let plan = build(
        &playbook,
        &observed,
        "zone.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    );
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);

    // New instances come InService after 60 s, and pass the load balancer's
    // health checks 90 s after that.
    let cloud = MemoryCloud::new(Duration::from_secs(60), Duration::ZERO);
    cloud.add_zoned_group(
        "us-east-1",
        "api-east",
        cap(8, 8, 12),
        &[("us-east-1a", 4), ("us-east-1b", 2), ("us-east-1c", 2)],
    );
    cloud.attach(
        "us-east-1",
        "api-east",
        crate::state::Balancer::TargetGroup {
            arn: "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/api/1".into(),
        },
        Duration::from_secs(90),
        Duration::ZERO,
    );
    let r = new_run();
    let start = Instant::now();
    let mut journal = Journal::open(&r.run).expect("journal");
    let recorder = Recorder::new(&mut journal, History::default(), &Silent);
    let (options, interrupt) = (Options::default(), Interrupt::default());
    let executor = Executor {
        cloud: &cloud,
        recorder: &recorder,
        options: &options,
        interrupt: &interrupt,
    };
    executor.run(&plan).await.expect("the zone is evacuated");
    // Two at a time, and never two more while the two before are not healthy.
    assert_eq!(cloud.max_not_serving(), 2, "25% of 8 not serving at most");
    assert!(
        start.elapsed() >= Duration::from_secs(2 * 150),
        "two batches of 60 s InService + 90 s healthy: {:?}",
        start.elapsed()
    );
    assert_eq!(
        cloud.zones("us-east-1", "api-east"),
        BTreeMap::from([("us-east-1b".to_owned(), 4), ("us-east-1c".to_owned(), 4)])
    );
}

mod shifts;

/// Every progress report, kept.
#[derive(Default)]
struct Watching(std::sync::Mutex<Vec<super::reporter::Progress>>);

impl super::reporter::Reporter for Watching {
    fn entry(&self, _: &crate::journal::Entry) {}
    fn progress(&self, progress: &super::reporter::Progress) {
        self.0.lock().expect("lock").push(progress.clone());
    }
    fn ask(&self, _: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn a_drain_is_waited_for_as_capacity_leaving_service() {
    let cloud = cloud(Duration::from_secs(60), Duration::from_secs(1));
    let r = new_run();
    let mut journal = Journal::open(&r.run).expect("journal");
    let watching = Watching::default();
    let recorder = Recorder::new(&mut journal, History::default(), &watching);
    let (options, interrupt) = (Options::default(), Interrupt::default());
    Executor {
        cloud: &cloud,
        recorder: &recorder,
        options: &options,
        interrupt: &interrupt,
    }
    .run(&plan())
    .await
    .expect("the drill runs");
    let seen = watching.0.lock().expect("lock").clone();
    let drain: Vec<&super::reporter::Progress> = seen
        .iter()
        .filter(
            |p| matches!(p, super::reporter::Progress::InService { step, .. } if step == "drain"),
        )
        .collect();
    assert!(
        drain.iter().any(|p| matches!(
            p,
            super::reporter::Progress::InService { leaving, wanted: 0, .. } if *leaving > 0
        )),
        "the drain says what is still leaving: {drain:?}"
    );
    // A scale-up leaves nothing.
    assert!(seen.iter().all(|p| !matches!(
        p,
        super::reporter::Progress::InService { step, leaving, .. } if step == "scale" && *leaving > 0
    )));
}

/// A check step whose plan gives it nothing to watch (an edited plan, another
/// evac's) fails instead of passing without looking.
#[tokio::test(start_paused = true)]
async fn a_check_step_with_nothing_to_watch_fails_instead_of_passing() {
    let mut plan = gate_plan();
    plan.steps.truncate(0);
    plan.steps.push(crate::plan::StepPlan {
        id: "healthy".into(),
        kind: crate::plan::StepKind::Check,
        summary: "check".into(),
        changes: Vec::new(),
        estimate_secs: 0,
        timeout_secs: 60,
        balancers: false,
        skipped: None,
    });
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    let options = Options {
        yes: true,
        ..Options::default()
    };
    let err = execute_plan(&cloud, &r.run, &plan, &options, &Interrupt::default())
        .await
        .expect_err("nothing to watch");
    assert!(
        err.to_string()
            .contains("gives this check step nothing to watch"),
        "{err}"
    );
}
