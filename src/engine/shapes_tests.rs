//! Generated playbooks (`tests/support/shapes.rs`) run on the in-memory cloud: for
//! every shape, the run ends exactly at the plan's final values; a run killed at
//! each of its mutating calls (before the call takes effect, or after it did and
//! before its answer was recorded) and resumed ends the same; rollback, ramped and
//! fast, restores the start exactly; no drift is reported, since nothing outside
//! changed anything.
//!
//! `EVAC_SHAPES` sets how many shapes (default 300), `EVAC_SHAPES_SEED` the first
//! seed (default 1); a failure prints its seed and its playbook.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::EngineError;
use super::execute::{Executor, Options};
use super::interrupt::Interrupt;
use super::recorder::Recorder;
use super::reporter::Silent;
use crate::journal::history::History;
use crate::journal::{Event, Journal, RunDir};
use crate::plan::{Change, Plan, build::build};
use crate::state::Capacity;
use crate::testing::memory::{Crash, MemoryCloud};

#[path = "../../tests/support/shapes.rs"]
mod shapes;

use shapes::Shape;

use super::tests::rollback;

/// What the test compares: every group's capacity and every record set's weight.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    capacity: BTreeMap<(String, String), Capacity>,
    weights: BTreeMap<(String, String), i64>,
}

/// The in-memory hosted zone id of a zone name.
fn zone_id(name: &str) -> String {
    format!(
        "Z{}",
        name.trim_end_matches('.')
            .replace('.', "-")
            .to_ascii_uppercase()
    )
}

fn world(shape: &Shape, seed: u64) -> MemoryCloud {
    let launch = [0, 30, 90][(seed % 3) as usize];
    let sync = [0, 10, 30][(seed / 3 % 3) as usize];
    let cloud = MemoryCloud::new(Duration::from_secs(launch), Duration::from_secs(sync));
    for g in &shape.groups {
        cloud.add_group(
            g.region,
            &g.name,
            Capacity {
                min: g.min,
                desired: g.desired,
                max: g.max,
            },
        );
    }
    for r in &shape.records {
        let id = zone_id(&r.zone);
        cloud.name_zone(&id, &r.zone);
        cloud.add_record(&id, &r.name, &r.set_identifier, r.weight);
    }
    cloud
}

fn state(cloud: &MemoryCloud, shape: &Shape) -> State {
    let mut capacity = BTreeMap::new();
    for g in &shape.groups {
        if let Some(c) = cloud.capacity(g.region, &g.name) {
            capacity.insert((g.region.to_owned(), g.name.clone()), c);
        }
    }
    let mut weights = BTreeMap::new();
    for r in &shape.records {
        let id = zone_id(&r.zone);
        if let Some(w) = cloud.weights(&id).get(&r.set_identifier) {
            weights.insert((id, r.set_identifier.clone()), *w);
        }
    }
    State { capacity, weights }
}

/// The state the plan ends in: `start` with every change's last value.
fn planned_end(plan: &Plan, start: &State) -> State {
    let mut end = start.clone();
    for step in &plan.steps {
        for change in &step.changes {
            match change {
                Change::Capacity {
                    region,
                    group,
                    after,
                    ..
                } => {
                    end.capacity.insert((region.clone(), group.clone()), *after);
                }
                Change::Weights { zone_id, sets, .. } => {
                    for set in sets {
                        if let Some(w) = set.after.last() {
                            end.weights
                                .insert((zone_id.clone(), set.set_identifier.clone()), *w);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    end
}

async fn plan_of(cloud: &MemoryCloud, shape: &Shape) -> Result<Plan, String> {
    let playbook = crate::playbook::load_str("shape.yaml", &shape.playbook, &BTreeMap::new())
        .map_err(|e| format!("the playbook is invalid: {e:?}"))?;
    let observed = crate::plan::observe::observe(&crate::accounts::Accounts::one(cloud), &playbook)
        .await
        .map_err(|e| format!("observe: {e}"))?;
    let plan = build(
        &playbook,
        &observed,
        "shape.yaml",
        jiff::Timestamp::UNIX_EPOCH,
    );
    if !plan.blockers.is_empty() {
        return Err(format!("the plan is blocked: {:#?}", plan.blockers));
    }
    Ok(plan)
}

/// A fresh run folder (on tmpfs where there is one: each wave costs an fsync).
fn new_run(shape: &Shape) -> (tempfile::TempDir, RunDir) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    let run = RunDir::create(dir.path(), "shape-run", &shape.playbook, "{}").expect("run dir");
    Journal::open(&run)
        .expect("journal")
        .append(Event::RunStarted {
            run_id: "shape-run".into(),
            playbook: format!("shape-{}", shape.seed),
            file: "shape.yaml".into(),
            params: BTreeMap::new(),
            user: "test".into(),
            host: "test".into(),
            version: "test".into(),
            caller: None,
        })
        .expect("append");
    (dir, run)
}

fn options() -> Options {
    Options {
        yes: true,
        ..Options::default()
    }
}

/// Runs (or resumes) `plan` in `run`, from what its journal says.
async fn execute(cloud: &MemoryCloud, run: &RunDir, plan: &Plan) -> Result<(), EngineError> {
    let history = History::from_entries(&run.read().expect("journal"));
    let mut journal = Journal::open(run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    let options = options();
    let interrupt = Interrupt::default();
    Executor {
        cloud,
        recorder: &recorder,
        options: &options,
        interrupt: &interrupt,
    }
    .run(plan)
    .await
}

/// Rolls `run` back; returns the differences it found afterwards.
async fn roll_back(
    cloud: &MemoryCloud,
    run: &RunDir,
    plan: &Plan,
    fast: bool,
) -> Result<Vec<String>, EngineError> {
    let history = History::from_entries(&run.read().expect("journal"));
    let mut journal = Journal::open(run).expect("journal");
    let recorder = Recorder::new(&mut journal, history, &Silent);
    let report = rollback(
        cloud,
        &recorder,
        &Interrupt::default(),
        &options(),
        plan,
        fast,
    )
    .await?;
    Ok(report.differences)
}

fn expect_state(
    what: &str,
    cloud: &MemoryCloud,
    shape: &Shape,
    wanted: &State,
) -> Result<(), String> {
    let live = state(cloud, shape);
    if &live == wanted {
        return Ok(());
    }
    let mut out = format!("{what}: live state differs from what it must be:\n");
    for (k, w) in &wanted.capacity {
        let l = live.capacity.get(k);
        if l != Some(w) {
            out.push_str(&format!("  asg {k:?}: wanted {w:?}, live {l:?}\n"));
        }
    }
    for (k, w) in &wanted.weights {
        let l = live.weights.get(k);
        if l != Some(w) {
            out.push_str(&format!("  weight {k:?}: wanted {w}, live {l:?}\n"));
        }
    }
    Err(out)
}

/// Nothing outside the run changed anything, so the journal may say of no group
/// that it scaled itself.
fn nothing_outside(what: &str, run: &RunDir) -> Result<(), String> {
    let odd: Vec<Event> = run
        .read()
        .map_err(|e| format!("{what}: the journal: {e}"))?
        .into_iter()
        .map(|e| e.event)
        .filter(|e| matches!(e, Event::ScaledItself { .. }))
        .collect();
    if odd.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: the journal says groups scaled themselves: {odd:?}"
        ))
    }
}

/// Everything the test checks of one shape.
async fn check(shape: &Shape) -> Result<u32, String> {
    let seed = shape.seed;
    let cloud = world(shape, seed);
    let plan = plan_of(&cloud, shape).await?;
    let start = state(&cloud, shape);
    let end = planned_end(&plan, &start);

    // A run from start to end, then a rollback.
    let (_dir, run) = new_run(shape);
    execute(&cloud, &run, &plan)
        .await
        .map_err(|e| format!("the run failed: {e}"))?;
    expect_state("after the run", &cloud, shape, &end)?;
    nothing_outside("after the run", &run)?;
    let calls = cloud.mutations();
    let fast = seed.is_multiple_of(2);
    let differences = roll_back(&cloud, &run, &plan, fast)
        .await
        .map_err(|e| format!("the rollback (fast: {fast}) failed: {e}"))?;
    if !differences.is_empty() {
        return Err(format!("the rollback found differences: {differences:?}"));
    }
    expect_state(
        &format!("after the rollback (fast: {fast})"),
        &cloud,
        shape,
        &start,
    )?;

    // Killed at every mutating call, then resumed (or rolled back).
    for at in 1..=calls {
        let after = (at + seed as u32) % 2 == 1;
        let cloud = world(shape, seed);
        let (_dir, run) = new_run(shape);
        cloud.crash_at(Some(Crash { at, after }));
        let ended = tokio::select! {
            result = execute(&cloud, &run, &plan) => Some(result),
            () = cloud.crashed() => None,
        };
        if let Some(result) = ended {
            return Err(format!(
                "the run meant to die at mutating call {at} of {calls} ended: {result:?}"
            ));
        }
        cloud.crash_at(None);
        let killed =
            format!("killed at mutating call {at} of {calls} (after it took effect: {after})");
        if at % 4 == 0 {
            // Rolled back as it was left.
            let fast = at % 8 == 0;
            let differences = roll_back(&cloud, &run, &plan, fast)
                .await
                .map_err(|e| format!("{killed}, the rollback (fast: {fast}) failed: {e}"))?;
            if !differences.is_empty() {
                return Err(format!(
                    "{killed}, the rollback found differences: {differences:?}"
                ));
            }
            expect_state(
                &format!("{killed}, then rolled back (fast: {fast})"),
                &cloud,
                shape,
                &start,
            )?;
            continue;
        }
        execute(&cloud, &run, &plan)
            .await
            .map_err(|e| format!("{killed}, the resume failed: {e}"))?;
        expect_state(&format!("{killed}, then resumed"), &cloud, shape, &end)?;
        nothing_outside(&format!("{killed}, then resumed"), &run)?;
        if at % 4 == 1 {
            let fast = at % 8 == 1;
            let differences = roll_back(&cloud, &run, &plan, fast)
                .await
                .map_err(|e| format!("{killed} and resumed, the rollback failed: {e}"))?;
            if !differences.is_empty() {
                return Err(format!(
                    "{killed} and resumed, the rollback found differences: {differences:?}"
                ));
            }
            expect_state(
                &format!("{killed}, resumed, rolled back (fast: {fast})"),
                &cloud,
                shape,
                &start,
            )?;
        }
    }
    Ok(calls)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn generated_playbooks_run_resume_and_roll_back_exactly() {
    let count = env_u64("EVAC_SHAPES", 300);
    let first = env_u64("EVAC_SHAPES_SEED", 1);
    let mut kills = 0;
    let mut failures = Vec::new();
    for seed in first..first + count {
        let shape = shapes::shape(seed);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        match runtime.block_on(check(&shape)) {
            Ok(calls) => kills += calls,
            Err(why) => failures.push(format!(
                "shape seed {seed} (EVAC_SHAPES_SEED={seed} EVAC_SHAPES=1): {why}\n--- playbook ---\n{}",
                shape.playbook
            )),
        }
    }
    let seeds: Vec<&str> = failures
        .iter()
        .filter_map(|f| f.split(' ').nth(2))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {count} generated shapes failed (seeds {}); the first:\n{}",
        failures.len(),
        seeds.join(", "),
        failures[0]
    );
    // Every shape changes something, so each was killed at least once.
    assert!(
        kills >= count as u32,
        "{kills} kill trials over {count} shapes"
    );
    eprintln!("{count} generated shapes, {kills} kill trials: all exact");
}
