//! Team state in S3 (`--state-dir s3://BUCKET/PREFIX`) against the local emulator:
//! a run killed on one machine is rolled back from another, two runs at once never
//! both run, an expired lease has exactly one taker, and a run whose state store
//! stops answering stops before its next change and is resumed once it answers.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::proxy::{FaultProxy, Rule};
use support::{Account, Bucket, until};

const BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/plan/base.yaml");
const HOLD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/team/hold.yaml");

/// An account with a bucket for team state.
struct Team {
    account: Account,
    bucket: Bucket,
}

impl Team {
    fn new(seeded: bool) -> Self {
        let account = Account::fresh();
        if seeded {
            account.seed();
        }
        let bucket = account.bucket(&format!("drill-state-{}", account.id));
        Team { account, bucket }
    }

    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket.name)
    }

    /// evac with its state in `prefix`, run from `dir`, as host `host` when given
    /// (in a UTS namespace of its own: another machine, as far as evac can tell).
    fn command(&self, prefix: &str, dir: &Path, host: Option<&str>, args: &[&str]) -> Command {
        let evac = self.account.process();
        let mut cmd = match host {
            None => std::process::Command::new(evac.get_program()),
            Some(host) => {
                let mut cmd = std::process::Command::new("unshare");
                cmd.args(["-u", "sh", "-c", "hostname \"$0\" && exec \"$@\"", host])
                    .arg(evac.get_program());
                cmd
            }
        };
        for (key, value) in evac.get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.args(args)
            .env("EVAC_STATE_DIR", self.url(prefix))
            .env("EVAC_LOCK_LEASE", "3s")
            // A taker also waits out the longest call a holder may have in flight.
            .env("EVAC_CALL_TIMEOUT", "3s")
            .current_dir(dir)
            .stdin(Stdio::null());
        cmd
    }

    fn evac(
        &self,
        prefix: &str,
        dir: &Path,
        host: Option<&str>,
        args: &[&str],
    ) -> (i32, String, String) {
        let output = self
            .command(prefix, dir, host, args)
            .output()
            .expect("evac runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn spawn(&self, prefix: &str, dir: &Path, args: &[&str]) -> Child {
        self.command(prefix, dir, None, args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("evac starts")
    }

    /// When the lease of `playbook`'s lock in `prefix` ends, as its holder wrote it.
    fn lease_end(&self, prefix: &str, playbook: &str) -> Option<jiff::Timestamp> {
        let body = self
            .bucket
            .get(&format!("{prefix}/locks/{playbook}.lock"))?;
        let holder: serde_json::Value = serde_json::from_slice(&body).ok()?;
        holder["expires"].as_str()?.parse().ok()
    }
}

/// Waits for two runs started at once: their exit codes, lowest first, and what
/// they printed.
fn both_end(mut first: Child, mut second: Child) -> ([i32; 2], String) {
    let mut codes = [
        support::exit_within(&mut first, Duration::from_secs(60)),
        support::exit_within(&mut second, Duration::from_secs(60)),
    ];
    codes.sort();
    let mut stderr = String::new();
    for child in [&mut first, &mut second] {
        if let Some(mut pipe) = child.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
        }
    }
    (codes, stderr)
}

fn in_first_bake(journal: &[serde_json::Value]) -> bool {
    journal.iter().any(|e| {
        e["event"] == "converged"
            && e["action"]
                .as_str()
                .is_some_and(|a| a.contains("shift:dns:") && a.ends_with(":1"))
    })
}

#[test]
fn a_run_killed_on_one_machine_is_rolled_back_exactly_from_another() {
    let team = Team::new(true);
    let seeded = team.account.world();
    let (here, there) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );

    let mut a = team.spawn(
        "prod",
        here.path(),
        &["run", BASE, "--var", "bake=30s", "--yes"],
    );
    until("the first bake, in S3", || {
        team.bucket
            .run_ids("prod")
            .first()
            .is_some_and(|id| in_first_bake(&team.bucket.journal("prod", id)))
    });
    a.kill().expect("kill -9");
    a.wait().expect("reaped");
    let id = team.bucket.run_ids("prod").pop().expect("the run is in S3");
    assert_eq!(
        team.account.world().weights["api-usw2"],
        50,
        "killed mid-ramp"
    );

    // Another machine: the dead run's lease is still on, and says so.
    let (code, _, stderr) = team.evac(
        "prod",
        there.path(),
        Some("drill-b"),
        &["rollback", &id, "--yes"],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("lease ends at"), "{stderr}");
    assert!(
        stderr.contains("and 3s more for a call it may have in flight"),
        "{stderr}"
    );
    let end = team.lease_end("prod", "plan-fixture").expect("a lease");
    // The lease, and then the longest call the dead holder may have sent.
    let takeover = end
        .checked_add(jiff::SignedDuration::from_secs(3))
        .expect("time");
    until("the dead run's lease and its last call's time end", || {
        jiff::Timestamp::now() > takeover
    });

    let (code, _, stderr) = team.evac(
        "prod",
        there.path(),
        Some("drill-b"),
        &["rollback", &id, "--yes"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("took over the lock of run"), "{stderr}");
    assert_eq!(team.account.world(), seeded, "rolled back exactly");
    let journal = team.bucket.journal("prod", &id);
    assert_eq!(
        journal.last().map(|e| e["verified"].clone()),
        Some(true.into())
    );
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "attached" && e["command"] == "rollback"),
        "the rollback is in the run's journal in S3"
    );

    // There, the run shows in status, history and its report.
    let (code, stdout, stderr) = team.evac(
        "prod",
        there.path(),
        Some("drill-b"),
        &["status", "--output", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("status json");
    assert_eq!(rows[0]["run_id"], id.as_str());
    assert_eq!(rows[0]["state"], "rolled back");
    let (code, stdout, stderr) = team.evac("prod", there.path(), Some("drill-b"), &["history"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&id), "{stdout}");
    let (code, stdout, stderr) = team.evac(
        "prod",
        there.path(),
        None,
        &["report", &id, "--output", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("report json");
    assert_eq!(report["run_id"], id.as_str());

    for dir in [here.path(), there.path()] {
        let left: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "S3 mode wrote {left:?} in {}",
            dir.display()
        );
    }
}

#[test]
fn of_two_runs_started_at_once_exactly_one_runs_ten_times_over() {
    let team = Team::new(false);
    let dir = tempfile::tempdir().expect("dir");
    // Ten pairs at once, each pair on its own prefix.
    let pairs: Vec<(Child, Child)> = (0..10)
        .map(|i| {
            let prefix = format!("pair-{i}");
            let args = ["run", HOLD, "--yes"];
            (
                team.spawn(&prefix, dir.path(), &args),
                team.spawn(&prefix, dir.path(), &args),
            )
        })
        .collect();
    for (i, (first, second)) in pairs.into_iter().enumerate() {
        let (codes, stderr) = both_end(first, second);
        assert_eq!(codes, [0, 3], "pair {i}: {stderr}");
        assert!(stderr.contains("is already running"), "pair {i}: {stderr}");
        let runs = team.bucket.run_ids(&format!("pair-{i}"));
        assert_eq!(
            runs.len(),
            1,
            "pair {i}: one run, and the other created nothing: {runs:?}"
        );
        assert!(
            team.bucket
                .get(&format!("pair-{i}/locks/hold.lock"))
                .is_none(),
            "pair {i}: the lock was released"
        );
    }
}

#[test]
fn an_expired_lease_is_taken_over_by_exactly_one_of_two_takers() {
    let team = Team::new(false);
    let dir = tempfile::tempdir().expect("dir");
    for i in 0..5 {
        let prefix = format!("takeover-{i}");
        let dead = serde_json::json!({
            "run_id": "20261126T000000.000Z-hold-dead",
            "host": "gone-host",
            "pid": 4242,
            "since": "2026-11-26T00:00:00.000Z",
            "user": "alice",
            "expires": "2026-11-26T00:02:00.000Z",
        });
        team.bucket.put(
            &format!("{prefix}/locks/hold.lock"),
            dead.to_string().as_bytes(),
        );
        let args = ["run", HOLD, "--yes"];
        let first = team.spawn(&prefix, dir.path(), &args);
        let second = team.spawn(&prefix, dir.path(), &args);
        let (codes, stderr) = both_end(first, second);
        assert_eq!(codes, [0, 3], "round {i}: {stderr}");
        assert_eq!(
            stderr
                .matches("took over the lock of run 20261126T000000.000Z-hold-dead")
                .count(),
            1,
            "round {i}: exactly one taker: {stderr}"
        );
        assert_eq!(team.bucket.run_ids(&prefix).len(), 1, "round {i}");
    }
}

#[test]
fn a_state_store_that_stops_answering_stops_the_run_before_its_next_change() {
    let team = Team::new(true);
    let dir = tempfile::tempdir().expect("dir");
    // S3 through a proxy that fails every write from the 8th on: the lock, the
    // last known state of the two regions read, the playbook, the plan, the first
    // wave's intent and what followed it get through; the run's last write is its
    // 10th or later. The lease is long, so no renewal moves the count.
    let proxy = FaultProxy::start(
        &team.account.endpoint,
        vec![Rule::from(
            "PutObject",
            support::proxy::Fault::ServerError,
            8,
        )],
    );
    let before = team.account.calls().len();
    let mut cmd = team.command(
        "prod",
        dir.path(),
        None,
        &["run", BASE, "--var", "bake=0s", "--yes"],
    );
    cmd.env("AWS_ENDPOINT_URL_S3", &proxy.url)
        .env("EVAC_LOCK_LEASE", "2m");
    let output = cmd.output().expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PutObject") || stderr.contains("s3://"),
        "{stderr}"
    );

    // Every change made was recorded in S3 before it was made: the calls the
    // emulator saw are the intents S3 holds, and the world is what they say.
    let id = team.bucket.run_ids("prod").pop().expect("the run is in S3");
    let journal = team.bucket.journal("prod", &id);
    let intents = journal.iter().filter(|e| e["event"] == "intent").count();
    let mutating = team.account.calls()[before..]
        .iter()
        .filter(|c| c.mutating && c.service != "s3")
        .count();
    assert!(intents > 0, "the run got going before S3 failed");
    assert_eq!(
        mutating, intents,
        "a change without its intent in S3: {journal:?}"
    );
    assert!(journal.iter().all(|e| e["event"] != "run_finished"));

    // S3 answers again: resume finishes the run.
    let (code, _, stderr) = team.evac("prod", dir.path(), None, &["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let world = team.account.world();
    assert_eq!(world.weights["api-usw2"], 100);
    assert_eq!(world.weights["api-use1"], 0);
}

#[test]
fn s3_answers_lost_after_they_took_effect_end_as_if_they_had_come() {
    // Each of the run's first S3 writes, and its lock's delete, takes effect and
    // its answer is lost; the SDK tries again, S3 answers 412 (or 404 for the
    // delete), and the run reads the object back: it is its own write.
    let team = Team::new(true);
    for (operation, nth) in [
        ("PutObject", 1),
        ("PutObject", 2),
        ("PutObject", 4),
        ("PutObject", 6),
        ("DeleteObject", 1),
    ] {
        let prefix = format!("lost-{}-{nth}", operation.to_lowercase());
        let dir = tempfile::tempdir().expect("dir");
        let proxy = FaultProxy::start(
            &team.account.endpoint,
            vec![Rule::nth(operation, support::proxy::Fault::LoseAnswer, nth)],
        );
        let mut cmd = team.command(
            &prefix,
            dir.path(),
            None,
            &["run", BASE, "--var", "bake=0s", "--yes"],
        );
        cmd.env("AWS_ENDPOINT_URL_S3", &proxy.url);
        let output = cmd.output().expect("evac runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{operation} {nth}: {stderr}");
        assert!(
            proxy.injected().get(operation).is_some_and(|n| *n == 1),
            "{operation} {nth}: the answer was lost"
        );
        assert_eq!(
            team.account.world().weights["api-usw2"],
            100,
            "{operation} {nth}"
        );
        // The lock is gone: the next run starts at once.
        assert!(
            team.bucket
                .get(&format!("{prefix}/locks/plan-fixture.lock"))
                .is_none(),
            "{operation} {nth}: the lock was left behind"
        );
        // Put the world back for the next round.
        let id = team.bucket.run_ids(&prefix).pop().expect("the run");
        let (code, _, stderr) = team.evac(&prefix, dir.path(), None, &["rollback", &id, "--yes"]);
        assert_eq!(code, 0, "{operation} {nth}: {stderr}");
    }
}

/// The paused-holder trials: which of the holder's writes it is stopped at, and
/// what the taker does.
fn trial_plan(i: usize) -> (u32, &'static str) {
    // The run writes four intents to S3 (scale, the two increments, drain); each
    // taker kind meets each of them.
    (
        1 + (i % 4) as u32,
        if i.is_multiple_of(2) {
            "rollback"
        } else {
            "resume"
        },
    )
}

/// A holder process that is continued, killed and reaped whatever way its trial
/// ends.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Holder {
    /// Waits until `proxy` holds the holder's answer to `what`, then stops the
    /// holder (SIGSTOP) and lets the answer go: it arrives while the holder is
    /// stopped. Returns the holder's pid.
    fn stop_when_held(
        &mut self,
        proxy: &FaultProxy,
        log: &Path,
        what: &str,
    ) -> Result<u32, String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while proxy.paused() == 0 {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Err(format!(
                    "the holder ended ({status}) before {what} was held: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                ));
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("{what} never came"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = self.0.id();
        signal(pid, "STOP");
        proxy.release();
        Ok(pid)
    }
}

/// Runs `trial` 0..20, four at a time, and fails with every trial that failed.
fn twenty_trials(trial: fn(usize) -> Result<(), String>) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..4)
            .map(|lane| {
                scope.spawn(move || {
                    (0..20)
                        .filter(|i| i % 4 == lane)
                        .filter_map(|i| trial(i).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        lanes
            .into_iter()
            .flat_map(|lane| lane.join().expect("trials run"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of 20 trials failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// One trial with S3 state: the holder (host alpha) is stopped right after its
/// `k`th intent is in S3 and before its AWS call, a teammate (host beta) takes the
/// run over once the lease and the call time have passed and finishes it by
/// `taker`, then the holder is continued. Returns what went wrong, if anything.
fn paused_holder_trial_in_s3(i: usize) -> Result<(), String> {
    let (k, taker) = trial_plan(i);
    let team = Team::new(true);
    let seeded = team.account.world();
    let prefix = format!("paused-{i}");
    let (here, there) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let proxy = FaultProxy::start(
        &team.account.endpoint,
        vec![
            Rule::nth("PutObject", support::proxy::Fault::Pause, k).holding("\"event\":\"intent\""),
        ],
    );
    let log = here.path().join("holder.log");
    // Half the holders wait for their held answer for as long as the stop lasts and
    // then meet the fence; the other half may give up on it at the 3 s call timeout
    // as they wake: either way they make no AWS write.
    let patient = (i / 4).is_multiple_of(2);
    let mut holder = team
        .command(
            &prefix,
            here.path(),
            Some("alpha"),
            &["run", BASE, "--var", "bake=0s", "--yes"],
        )
        .env("AWS_ENDPOINT_URL_S3", &proxy.url)
        .env("EVAC_CALL_TIMEOUT", if patient { "60s" } else { "3s" })
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .map(Holder)
        .expect("the holder starts");
    // Stopped with its intent in S3 and the answer on its way: a closed lid.
    let pid = holder
        .stop_when_held(&proxy, &log, &format!("the write of intent {k}"))
        .map_err(|e| format!("trial {i}: {e}"))?;
    let id = team
        .bucket
        .run_ids(&prefix)
        .pop()
        .ok_or(format!("trial {i}: no run in S3"))?;
    let end = team
        .lease_end(&prefix, "plan-fixture")
        .ok_or(format!("trial {i}: no lease"))?;
    let takeover = end
        .checked_add(jiff::SignedDuration::from_secs(3))
        .expect("time");
    until("the stopped holder's lease and call time end", || {
        jiff::Timestamp::now() > takeover
    });
    let (code, _, stderr) = team.evac(&prefix, there.path(), Some("beta"), &[taker, &id, "--yes"]);
    if code != 0 {
        return Err(format!(
            "trial {i}: {taker} by the taker exited {code}: {stderr}"
        ));
    }
    let left = team.account.world();
    let expected = if taker == "rollback" {
        seeded.clone()
    } else {
        let mut done = seeded.clone();
        done.weights.insert("api-use1".into(), 0);
        done.weights.insert("api-usw2".into(), 100);
        done
    };
    if taker == "rollback" && left != expected {
        return Err(format!(
            "trial {i}: the rollback left {left:?}, not {seeded:?}"
        ));
    }
    if taker == "resume" && left.weights != expected.weights {
        return Err(format!(
            "trial {i}: the resume left weights {:?}",
            left.weights
        ));
    }
    let writes = |team: &Team| {
        team.account
            .calls()
            .iter()
            .filter(|c| c.mutating && c.service != "s3")
            .count()
    };
    let writes_before = writes(&team);

    // The holder wakes.
    signal(pid, "CONT");
    let code = support::exit_within(&mut holder.0, Duration::from_secs(60));
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    // A patient holder meets the fence. An impatient one's call timeout and its
    // held answer race as it wakes: whichever comes first, it makes no write.
    let refused = said.contains("cannot vouch for its lock")
        || (!patient && said.contains("did not answer in time"));
    if code != 1 || !refused {
        return Err(format!("trial {i}: the woken holder exited {code}: {said}"));
    }
    if writes(&team) != writes_before {
        return Err(format!("trial {i}: the woken holder wrote to AWS: {said}"));
    }
    if team.account.world() != left {
        return Err(format!("trial {i}: AWS is not as the taker left it"));
    }
    // What the team sees is what AWS holds.
    let (code, stdout, stderr) = team.evac(
        &prefix,
        there.path(),
        Some("beta"),
        &["status", "--output", "json"],
    );
    if code != 0 {
        return Err(format!("trial {i}: status exited {code}: {stderr}"));
    }
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("status json");
    let state = rows[0]["state"].as_str().unwrap_or_default().to_owned();
    let wanted = if taker == "rollback" {
        "rolled back"
    } else {
        "succeeded"
    };
    if state != wanted {
        return Err(format!("trial {i}: status says {state}, not {wanted}"));
    }
    Ok(())
}

#[test]
fn a_holder_stopped_between_intent_and_call_makes_no_aws_write_once_taken_over_in_s3() {
    twenty_trials(paused_holder_trial_in_s3);
}

/// One trial with a local state dir: the holder is stopped in the middle of its
/// `k`th AWS write (sent, its answer held). Nobody can take the run over while the
/// process exists, stopped or not: a teammate is refused and told the process is
/// stopped and how to continue or interrupt it. Continued, the holder finishes,
/// and the teammate's rollback is exact.
fn paused_holder_trial_local(i: usize) -> Result<(), String> {
    let (k, _) = trial_plan(i);
    let account = support::Account::fresh();
    account.seed();
    let seeded = account.world();
    let state = tempfile::tempdir().expect("state dir");
    let (operation, nth) = match k {
        1 => ("UpdateAutoScalingGroup", 1),
        2 => ("ChangeResourceRecordSets", 1),
        3 => ("ChangeResourceRecordSets", 2),
        _ => ("UpdateAutoScalingGroup", 2),
    };
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::nth(operation, support::proxy::Fault::Pause, nth)],
    );
    let log = state.path().join("holder.log");
    let mut holder = account
        .process()
        .args(["run", BASE, "--var", "bake=0s", "--yes", "--state-dir"])
        .arg(state.path())
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .map(Holder)
        .expect("the holder starts");
    let pid = holder
        .stop_when_held(&proxy, &log, &format!("{operation} {nth}"))
        .map_err(|e| format!("trial {i}: {e}"))?;
    let id = support::run_ids(state.path())
        .pop()
        .ok_or(format!("trial {i}: no run"))?;
    let taker = |args: &[&str]| {
        let output = account
            .process()
            .args(args)
            .arg("--state-dir")
            .arg(state.path())
            .stdin(Stdio::null())
            .output()
            .expect("evac runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = taker(&["rollback", &id, "--yes"]);
    if code != 3
        || !stderr.contains("its process is stopped")
        || !stderr.contains(&format!("kill -CONT {pid}"))
    {
        signal(pid, "CONT");
        return Err(format!(
            "trial {i}: the teammate was not refused as it should be ({code}): {stderr}"
        ));
    }
    if !support::journal_so_far(state.path(), &id)
        .iter()
        .all(|e| e["command"] != "rollback")
    {
        return Err(format!(
            "trial {i}: the refused rollback wrote to the journal"
        ));
    }
    signal(pid, "CONT");
    let code = support::exit_within(&mut holder.0, Duration::from_secs(60));
    if code != 0 {
        return Err(format!(
            "trial {i}: the continued holder exited {code}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ));
    }
    let world = account.world();
    if world.weights["api-usw2"] != 100 || world.weights["api-use1"] != 0 {
        return Err(format!(
            "trial {i}: the holder left weights {:?}",
            world.weights
        ));
    }
    let (code, stderr) = taker(&["rollback", &id, "--yes"]);
    if code != 0 {
        return Err(format!("trial {i}: the rollback exited {code}: {stderr}"));
    }
    if account.world() != seeded {
        return Err(format!("trial {i}: the rollback was not exact"));
    }
    Ok(())
}

#[test]
fn a_holder_stopped_in_a_local_state_dir_is_never_taken_over_and_is_told_apart() {
    twenty_trials(paused_holder_trial_local);
}

#[test]
fn a_journal_write_s3_never_answers_ends_by_itself_and_the_run_is_resumed_from_another_host() {
    // From the run's second intent write on, S3 holds every journal write with an
    // intent unanswered for an hour, retries included. With a 3 s call timeout
    // (1 s per attempt) the write ends by itself, the run stops before the change
    // that intent announced, and lets go of its lease.
    let team = Team::new(true);
    let dir = tempfile::tempdir().expect("dir");
    let proxy = FaultProxy::start(
        &team.account.endpoint,
        vec![
            Rule::from(
                "PutObject",
                support::proxy::Fault::Latency(Duration::from_secs(3600)),
                2,
            )
            .holding("\"event\":\"intent\""),
        ],
    );
    let before = team.account.calls().len();
    let started = std::time::Instant::now();
    let output = team
        .command(
            "hole",
            dir.path(),
            None,
            &["run", BASE, "--var", "bake=0s", "--yes"],
        )
        .env("AWS_ENDPOINT_URL_S3", &proxy.url)
        .env("EVAC_ATTEMPT_TIMEOUT", "1s")
        .output()
        .expect("evac runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not answer in time"), "{stderr}");
    assert!(
        proxy.injected().get("PutObject").is_some_and(|n| *n >= 1),
        "{stderr}"
    );
    eprintln!("the run ended {:.1}s after it began", took.as_secs_f64());

    // The change the held intent announced was never made: only the first
    // intent's call reached AWS.
    let mutating = team.account.calls()[before..]
        .iter()
        .filter(|c| c.mutating && c.service != "s3")
        .count();
    assert_eq!(mutating, 1, "only the scale-up was sent");
    assert_eq!(team.account.world().weights["api-usw2"], 0);

    // The run let go of its lease as it stopped: another host goes on at once.
    let id = team.bucket.run_ids("hole").pop().expect("the run is in S3");
    let (code, _, stderr) = team.evac("hole", dir.path(), Some("beta"), &["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let world = team.account.world();
    assert_eq!(world.weights["api-usw2"], 100);
    assert_eq!(world.weights["api-use1"], 0);
}

#[test]
fn the_state_bucket_is_reached_in_its_own_region_and_keeps_each_regions_last_known_state() {
    let team = Team::new(true);
    let dir = tempfile::tempdir().expect("dir");
    // us-west-2 holds every request signed for it, S3's too; the bucket is in
    // us-east-1, and the configured region is us-west-2.
    let proxy = FaultProxy::start(
        &team.account.endpoint,
        vec![Rule::region("us-west-2", support::proxy::Fault::Hold)],
    );
    let plan = |extra: &[&str]| {
        let mut cmd = team.command(
            "prod",
            dir.path(),
            None,
            &[&["plan", BASE][..], extra].concat(),
        );
        cmd.env("AWS_ENDPOINT_URL_S3", &proxy.url)
            .env("AWS_REGION", "us-west-2");
        cmd.output().expect("evac runs")
    };
    let output = plan(&["--state-region", "us-east-1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(proxy.calls_in("us-west-2"), 0, "{stderr}");
    let known: serde_json::Value = serde_json::from_slice(
        &team
            .bucket
            .get("prod/known/us-east-1.json")
            .expect("us-east-1's last known state in the bucket"),
    )
    .expect("JSON");
    assert_eq!(
        known["groups"]["api-us-east-1"]["value"]["capacity"]["desired"],
        6
    );
    assert!(team.bucket.get("prod/known/us-west-2.json").is_some());

    // Without it, S3 is asked in the configured region, which holds it: the plan
    // cannot look for unfinished runs, and says so.
    let output = plan(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(proxy.calls_in("us-west-2") > 0, "{stderr}");
    assert!(
        stdout.contains("unfinished runs of this playbook were not looked for"),
        "{stdout}\n{stderr}"
    );
}

/// `evac watch latest` from another folder (state in S3) follows a drill to its end:
/// every entry of the run's journal in its JSON, in order, every step started and
/// finished, the run's own exit code, and an end that comes from the run releasing
/// its lock (the lease here is a minute: waiting it out would show).
#[test]
fn watch_latest_follows_a_drill_in_s3_from_another_folder_to_its_end() {
    let team = Team::new(true);
    let (here, there) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let mut run = team
        .command(
            "prod",
            here.path(),
            None,
            &["run", BASE, "--var", "bake=2s", "--yes"],
        )
        .env("EVAC_LOCK_LEASE", "60s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("evac starts");
    until("the run is in S3", || {
        !team.bucket.run_ids("prod").is_empty()
    });
    let watch = team
        .command(
            "prod",
            there.path(),
            None,
            &["watch", "latest", "--output", "json", "--every", "200ms"],
        )
        .env("EVAC_LOCK_LEASE", "60s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("evac watch starts");
    let run_code = support::exit_within(&mut run, Duration::from_secs(120));
    let run_ended = std::time::Instant::now();
    let output = watch.wait_with_output().expect("watch ends");
    let lag = run_ended.elapsed();
    eprintln!("watch ended {lag:?} after the run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(run_code, 0, "the drill succeeds");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        lag < Duration::from_secs(30),
        "watch ended {lag:?} after the run: it waited for the lease, not the run"
    );
    let id = team.bucket.run_ids("prod").pop().expect("the run");
    assert!(
        stderr.contains(&format!("run {id} succeeded (exit 0)")),
        "{stderr}"
    );

    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let entries: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["event"] != "progress").collect();
    assert_eq!(
        entries.into_iter().cloned().collect::<Vec<_>>(),
        team.bucket.journal("prod", &id),
        "every journal entry, once, in order"
    );
    for step in ["scale", "shift", "drain"] {
        for event in ["step_started", "step_finished"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l["event"] == event && l["step"] == step),
                "{event} {step}"
            );
        }
    }
    for increment in [1, 2] {
        assert!(
            lines
                .iter()
                .any(|l| l["progress"]["progress"] == "increment"
                    && l["progress"]["increment"] == increment
                    && l["progress"]["of"] == 2),
            "increment {increment}/2 is shown"
        );
    }
    assert_eq!(
        lines
            .iter()
            .rev()
            .find(|l| l["event"] != "progress")
            .map(|l| l["exit"].clone()),
        Some(0.into()),
        "the run's end, with its exit code"
    );
    assert!(
        std::fs::read_dir(there.path())
            .expect("dir")
            .next()
            .is_none(),
        "watch wrote nothing where it ran"
    );
}
