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
        &["report", &id, "--format", "json"],
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
    // S3 through a proxy that fails every write from the 6th on: the lock, the
    // playbook, the plan, the first wave's intent and what followed it get
    // through; the run's last write is its 8th or later. The lease is long, so no
    // renewal moves the count.
    let proxy = FaultProxy::start(
        &team.account.endpoint,
        vec![Rule::from(
            "PutObject",
            support::proxy::Fault::ServerError,
            6,
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
