//! Engine tests on an in-memory cloud and paused time: slow convergence, timeouts,
//! throttling, failures, resume and rollback, which the emulator cannot produce.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::cloud::Retrying;
use super::execute::{EngineError, Executor, Options, Recorder};
use super::history::History;
use super::interrupt::Interrupt;
use super::memory::MemoryCloud;
use super::reporter::Silent;
use super::rollback::rollback;
use crate::journal::{Event, Journal, RunDir};
use crate::plan::{Plan, build::build};
use crate::state::{Capacity, GroupState, Observed, WeightedSet, ZoneLookup};

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
        zones: vec![],
        subnets: vec![],
        suspended_processes: vec![],
        tags: BTreeMap::new(),
    }
}

/// The plan of PLAYBOOK against a world where east serves everything.
fn plan() -> Plan {
    let playbook = crate::playbook::load_str("engine.yaml", PLAYBOOK, &BTreeMap::new())
        .expect("valid playbook");
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
        [("api-west".to_owned(), group("api-west", cap(1, 2, 12)))].into(),
    );
    observed.groups.insert(
        "us-east-1".into(),
        [("api-east".to_owned(), group("api-east", cap(3, 6, 12)))].into(),
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
            },
            WeightedSet {
                set_identifier: "west".into(),
                weight: Some(0),
                ttl: Some(60),
            },
        ],
    );
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

fn new_run() -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = RunDir::create(dir.path(), "test-run", PLAYBOOK, "{}").expect("run dir");
    Run { _dir: dir, run }
}

async fn execute<C: super::cloud::Cloud>(
    cloud: &C,
    run: &RunDir,
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
    executor.run(&plan()).await
}

async fn roll_back<C: super::cloud::Cloud>(
    cloud: &C,
    run: &RunDir,
    fast: bool,
) -> super::rollback::RollbackReport {
    let history = History::from_entries(&run.read().expect("journal"));
    let mut journal = Journal::open(run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    rollback(
        cloud,
        &recorder,
        &Interrupt::default(),
        &Options::default(),
        &plan(),
        fast,
    )
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
    assert_eq!(cloud.calls("upsert_weights"), 2);
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
async fn throttling_is_retried_and_the_run_ends_in_the_planned_state() {
    let memory = cloud(Duration::ZERO, Duration::ZERO);
    memory.fail("set_capacity", 3, true);
    memory.fail("upsert_weights", 2, true);
    let retrying = Retrying::new(memory, 5, Duration::from_millis(200));
    let r = new_run();
    execute(
        &retrying,
        &r.run,
        &Options::default(),
        &Interrupt::default(),
    )
    .await
    .expect("run succeeds");
    assert_eq!(retrying.retries(), 5);
    assert_eq!(
        retrying.inner().capacity("us-west-2", "api-west"),
        Some(cap(8, 8, 12))
    );
    assert_eq!(retrying.inner().weights("Z1")["west"], 100);
}

#[tokio::test(start_paused = true)]
async fn a_5xx_that_does_not_clear_fails_the_step_and_rollback_restores_everything() {
    let retrying = Retrying::new(
        cloud(Duration::from_secs(30), Duration::ZERO),
        3,
        Duration::from_millis(100),
    );
    let r = new_run();
    let full = plan();
    let mut first_two = full.clone();
    first_two.steps.truncate(2);
    {
        let mut journal = Journal::open(&r.run).expect("journal");
        let recorder = Recorder::new(&mut journal, History::default(), &Silent);
        let (options, interrupt) = (Options::default(), Interrupt::default());
        let executor = Executor {
            cloud: &retrying,
            recorder: &recorder,
            options: &options,
            interrupt: &interrupt,
        };
        executor
            .run(&first_two)
            .await
            .expect("scale and shift succeed");
        // From the drain on, every capacity update answers 500.
        retrying.inner().fail("set_capacity", u32::MAX, true);
        let err = executor.run(&full).await.expect_err("the drain fails");
        assert_eq!(
            err.to_string(),
            "step drain failed: failed to set_capacity: Throttling: Rate exceeded",
            "retried, then reported with AWS's answer"
        );
    }
    assert_eq!(retrying.retries(), 2, "three attempts in all");
    retrying.inner().fail("set_capacity", 0, true);
    let report = roll_back(&retrying, &r.run, false).await;
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(
        retrying.inner().capacity("us-west-2", "api-west"),
        Some(cap(1, 2, 12))
    );
    assert_eq!(
        retrying.inner().capacity("us-east-1", "api-east"),
        Some(cap(3, 6, 12))
    );
    assert_eq!(
        retrying.inner().weights("Z1"),
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
    let writes = cloud.calls("set_capacity") + cloud.calls("upsert_weights");
    let second = roll_back(&cloud, &r.run, false).await;
    assert_eq!(
        cloud.calls("set_capacity") + cloud.calls("upsert_weights"),
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
        cloud.calls("upsert_weights"),
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
            })
            .expect("append");
    }
    // Someone else changed the group meanwhile: drift.
    cloud.add_group("us-west-2", "api-west", cap(1, 5, 12));
    let err = execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect_err("drift");
    assert!(matches!(err, EngineError::Drift { .. }), "{err}");
    assert!(err.to_string().contains("min 1 desired 5 max 12"), "{err}");
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
            .any(|e| matches!(e, Event::Approved { by, .. } if by == "--yes"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_rollback_puts_weights_back_in_one_change_per_zone() {
    let cloud = cloud(Duration::ZERO, Duration::ZERO);
    let r = new_run();
    execute(&cloud, &r.run, &Options::default(), &Interrupt::default())
        .await
        .expect("run succeeds");
    let writes = cloud.calls("upsert_weights");
    let start = Instant::now();
    let report = roll_back(&cloud, &r.run, true).await;
    assert!(report.differences.is_empty());
    assert_eq!(
        cloud.calls("upsert_weights") - writes,
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
