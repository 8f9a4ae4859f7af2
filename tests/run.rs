//! `evac run`, `resume`, `rollback` and `status` against the local emulator: each
//! test asserts live AWS state and the journal.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use evac::playbook::Region;
use support::Account;

const BASE: &str = "tests/fixtures/plan/base.yaml";

struct Drill {
    account: Account,
    state: tempfile::TempDir,
}

impl Drill {
    fn new() -> Self {
        let account = Account::fresh();
        account.seed();
        Drill {
            account,
            state: tempfile::tempdir().expect("state dir"),
        }
    }

    fn state(&self) -> &Path {
        self.state.path()
    }

    /// Runs an evac command to its end: (exit code, stdout, stderr).
    fn evac(&self, args: &[&str]) -> (i32, String, String) {
        let output = self
            .account
            .command("evac")
            .args(args)
            .arg("--state-dir")
            .arg(self.state())
            .output()
            .expect("evac runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Starts an evac command in the background.
    fn spawn(&self, args: &[&str]) -> Child {
        self.spawn_with(args, Stdio::null())
    }

    /// Starts an evac command in the background with its stderr going to `stderr`.
    fn spawn_with(&self, args: &[&str], stderr: Stdio) -> Child {
        let mut cmd = self.account.process();
        cmd.args(args)
            .arg("--state-dir")
            .arg(self.state())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("evac starts")
    }

    fn run_ids(&self) -> Vec<String> {
        support::run_ids(self.state())
    }

    fn journal(&self, run_id: &str) -> Vec<serde_json::Value> {
        support::journal_so_far(self.state(), run_id)
    }

    /// Waits until the single run's journal has an entry matching `wanted`.
    fn wait_for(&self, wanted: impl Fn(&serde_json::Value) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(id) = self.run_ids().first().cloned()
                && self.journal(&id).iter().any(&wanted)
            {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "the journal never showed the wanted entry"
            );
            std::thread::yield_now();
        }
    }
}

fn is(event: &str) -> impl Fn(&serde_json::Value) -> bool + '_ {
    move |e| e["event"] == event
}

fn converged(prefix: &str) -> impl Fn(&serde_json::Value) -> bool + '_ {
    move |e| {
        e["event"] == "converged" && e["action"].as_str().is_some_and(|a| a.starts_with(prefix))
    }
}

fn group(min: i32, desired: i32, max: i32) -> support::GroupCapacity {
    (min, desired, max, vec![])
}

#[test]
fn a_full_run_ends_with_the_planned_capacity_and_weights() {
    let d = Drill::new();
    let before = d.account.calls().len();
    let (code, stdout, stderr) = d.evac(&[
        "run",
        "playbooks/evacuate-region.yaml",
        "--var",
        "bake=0s",
        "--yes",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let after = d.account.world();
    assert_eq!(after.groups["api-us-west-2"], group(8, 8, 12));
    assert_eq!(after.groups["worker-us-west-2"], group(5, 5, 8));
    assert_eq!(after.groups["api-us-east-1"], group(0, 0, 12));
    assert_eq!(after.groups["worker-us-east-1"], group(0, 0, 8));
    let weights: BTreeMap<String, i64> = [
        ("api-use1", 0),
        ("api-usw2", 100),
        ("www-use1", 0),
        ("www-usw2", 100),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    assert_eq!(after.weights, weights);
    // One change batch per hosted zone per increment: 1 zone x 4 increments.
    let batches = d.account.calls()[before..]
        .iter()
        .filter(|c| c.operation.ends_with("/rrset") && c.mutating)
        .count();
    assert_eq!(batches, 4);
    // --output json: one event per line, ending with the run's outcome.
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event per line"))
        .collect();
    assert_eq!(events[0]["event"], "plan", "the plan comes first");
    assert_eq!(events[0]["plan"]["format"], 1);
    assert_eq!(events[1]["event"], "run_started");
    assert_eq!(
        events.last().map(|e| e["outcome"].clone()),
        Some("succeeded".into())
    );
    let id = d.run_ids().pop().expect("a run");
    let journal = d.journal(&id);
    assert_eq!(
        journal.iter().filter(|e| e["event"] == "intent").count(),
        8,
        "4 groups + 4 increments"
    );
    let (code, status, _) = d.evac(&["status"]);
    assert_eq!(code, 0);
    assert!(
        status.contains(&id) && status.contains("succeeded"),
        "{status}"
    );
}

#[test]
fn kill_9_during_a_bake_then_resume_ends_in_the_same_state() {
    let d = Drill::new();
    let mut child = d.spawn(&["run", BASE, "--var", "bake=3s", "--yes"]);
    let id = d.wait_for(converged("shift:dns:"));
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let mid = d.account.world();
    assert_eq!(mid.weights["api-usw2"], 50, "killed during the first bake");
    let (code, _, stderr) = d.evac(&["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let end = d.account.world();
    assert_eq!(end.weights["api-usw2"], 100);
    assert_eq!(end.weights["api-use1"], 0);
    assert_eq!(end.groups["api-us-west-2"], group(8, 8, 12));
    assert_eq!(end.groups["api-us-east-1"], group(0, 0, 12));
    let increments = d
        .journal(&id)
        .iter()
        .filter(|e| {
            e["event"] == "applied" && e["action"].as_str().is_some_and(|a| a.contains(":dns:"))
        })
        .count();
    assert_eq!(increments, 2, "no increment was sent twice");
}

#[test]
fn kill_9_during_a_bake_then_rollback_restores_the_seeded_state_exactly() {
    let d = Drill::new();
    let seeded = d.account.world();
    let mut child = d.spawn(&["run", BASE, "--var", "bake=3s", "--yes"]);
    let id = d.wait_for(converged("shift:dns:"));
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let (code, _, stderr) = d.evac(&["rollback", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(d.account.world(), seeded);
    let journal = d.journal(&id);
    assert_eq!(
        journal.last().map(|e| e["verified"].clone()),
        Some(true.into())
    );

    // A second rollback changes nothing.
    let before = d.account.calls().len();
    let (code, _, stderr) = d.evac(&["rollback", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let mutating: Vec<_> = d.account.calls()[before..]
        .iter()
        .filter(|c| c.mutating)
        .cloned()
        .collect();
    assert!(
        mutating.is_empty(),
        "a second rollback made mutating calls: {mutating:?}"
    );
}

#[test]
fn a_rollback_killed_halfway_completes_when_run_again() {
    let d = Drill::new();
    let seeded = d.account.world();
    let (code, _, stderr) = d.evac(&["run", BASE, "--var", "bake=2s", "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let id = d.run_ids().pop().expect("a run");
    let mut child = d.spawn(&["rollback", &id, "--yes"]);
    // The first weight restore is followed by a 2 s bake: kill it there.
    d.wait_for(|e| {
        e["event"] == "rollback_applied"
            && e["action"].as_str().is_some_and(|a| a.contains(":dns:"))
    });
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    assert_ne!(d.account.world(), seeded, "killed halfway");
    let (code, _, stderr) = d.evac(&["rollback", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(d.account.world(), seeded);
}

#[test]
fn a_failing_step_with_rollback_on_failure_restores_the_seeded_state() {
    let d = Drill::new();
    let seeded = d.account.world();
    let (code, _, stderr) = d.evac(&[
        "run",
        "tests/fixtures/run/check-fails.yaml",
        "--yes",
        "--rollback-on-failure",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("step never-alarms failed: timed out after 2s: waiting for alarm api-5xx-rate (us-west-2) to be ALARM for 0s; last seen OK"),
        "{stderr}"
    );
    assert!(
        stderr.contains("was rolled back; live state matches the recorded originals"),
        "{stderr}"
    );
    assert_eq!(d.account.world(), seeded);
    let id = d.run_ids().pop().expect("a run");
    let (_, status, _) = d.evac(&["status", &id]);
    assert!(
        status.contains("rolled back") && status.contains("failed   never-alarms [check]"),
        "{status}"
    );
}

#[test]
fn a_second_concurrent_run_is_refused_with_the_holder() {
    let d = Drill::new();
    let mut first = d.spawn(&["run", BASE, "--var", "bake=30s", "--yes"]);
    let id = d.wait_for(is("run_started"));
    // In its first 30 s bake, the first run changes nothing for a while.
    d.wait_for(converged("shift:dns:"));
    let before = d.account.world();
    let (code, _, stderr) = d.evac(&["run", BASE, "--var", "bake=30s", "--yes"]);
    assert_eq!(
        d.account.world(),
        before,
        "the refused run changed nothing in AWS"
    );
    first.kill().expect("stop the first run");
    first.wait().expect("reaped");
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "playbook `plan-fixture` is already running: run {id}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    assert_eq!(d.run_ids().len(), 1, "the refused run left nothing behind");
}

#[test]
fn without_a_terminal_and_without_yes_nothing_runs_and_nothing_hangs() {
    let d = Drill::new();
    let seeded = d.account.world();
    let (code, _, stderr) = d.evac(&["run", "playbooks/evacuate-region.yaml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no terminal to confirm the run on: rerun with --yes"),
        "{stderr}"
    );
    assert!(d.run_ids().is_empty());
    assert_eq!(d.account.world(), seeded);
}

#[test]
fn a_blocked_plan_changes_nothing_and_exits_3() {
    let d = Drill::new();
    let seeded = d.account.world();
    let (code, _, stderr) = d.evac(&["run", "tests/fixtures/plan/drain-first.yaml", "--yes"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("the plan has blockers; nothing was changed"),
        "{stderr}"
    );
    assert_eq!(d.account.world(), seeded);
}

#[test]
fn a_saved_plan_is_refused_once_the_state_changed() {
    let d = Drill::new();
    let plan = d.state().join("plan.json");
    let plan = plan.to_str().expect("utf-8");
    // `plan` takes no --state-dir, so it is run without the helper.
    let output = d
        .account
        .command("evac")
        .args(["plan", BASE, "--save", plan])
        .output()
        .expect("plan");
    assert_eq!(output.status.code(), Some(0));
    let seeded = d.account.world();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            d.account
                .context()
                .await
                .autoscaling(&Region::parse("us-west-2").expect("region"))
                .set_desired_capacity()
                .auto_scaling_group_name("api-us-west-2")
                .desired_capacity(3)
                .send()
                .await
                .expect("change desired");
        });
    let mut expected = seeded;
    if let Some(group) = expected.groups.get_mut("api-us-west-2") {
        group.1 = 3;
    }
    assert_eq!(d.account.world(), expected, "the test's own change is live");
    let (code, _, stderr) = d.evac(&["run", BASE, "--plan", plan, "--yes"]);
    assert_eq!(code, 3, "{stderr}");
    // The printed plan shows why it is refused: a blocker, like any other.
    assert!(
        stderr.contains("x saved plan: the saved plan is stale")
            && stderr.contains("the plan has blockers; nothing was changed"),
        "{stderr}"
    );
    // It names the value that changed.
    assert!(
        stderr.contains("before.desired was 2 when planned, 3 now"),
        "{stderr}"
    );
    assert_eq!(
        d.account.world(),
        expected,
        "evac changed nothing beyond the test's own change"
    );
}

#[test]
fn unknown_run_ids_are_invalid_input() {
    let d = Drill {
        account: Account::fresh(),
        state: tempfile::tempdir().expect("state dir"),
    };
    for command in [
        vec!["resume", "no-such-run", "--yes"],
        vec!["rollback", "no-such-run", "--yes"],
        vec!["status", "no-such-run"],
    ] {
        let (code, _, stderr) = d.evac(&command);
        assert_eq!(code, 2, "{command:?}: {stderr}");
        let state = d.state.path().display().to_string();
        assert!(
            stderr.contains(&format!("no run `no-such-run` in state dir {state}"))
                && stderr.contains("--state-dir DIR|s3://BUCKET/PREFIX"),
            "{stderr}"
        );
    }
}

#[test]
fn the_first_ctrl_c_stops_after_the_call_in_flight_and_prints_the_commands() {
    let d = Drill::new();
    let child = d.spawn_with(&["run", BASE, "--var", "bake=4s", "--yes"], Stdio::piped());
    let id = d.wait_for(converged("shift:dns:"));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sends SIGINT to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let output = child.wait_with_output().expect("evac exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&format!("evac resume {id}")), "{stderr}");
    assert!(stderr.contains(&format!("evac rollback {id}")), "{stderr}");
    let journal = d.journal(&id);
    let tail: Vec<&serde_json::Value> = journal.iter().rev().take(2).collect();
    assert_eq!(tail[1]["event"], "interrupted");
    assert_eq!(tail[0]["outcome"], "interrupted");
    assert_eq!(
        d.account.world().weights["api-usw2"],
        50,
        "stopped where it was"
    );
    let (code, _, stderr) = d.evac(&["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(d.account.world().weights["api-usw2"], 100);
}

#[test]
fn sigterm_sighup_and_sigquit_stop_a_run_as_ctrl_c_does_and_resume_finishes_it() {
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        let d = Drill::new();
        let child = d.spawn_with(&["run", BASE, "--var", "bake=4s", "--yes"], Stdio::piped());
        let id = d.wait_for(converged("shift:dns:"));
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: sends a signal to the child this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let output = child.wait_with_output().expect("evac exits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(4), "signal {signal}: {stderr}");
        assert!(stderr.contains(&format!("evac resume {id}")), "{stderr}");
        let journal = d.journal(&id);
        let tail: Vec<&serde_json::Value> = journal.iter().rev().take(2).collect();
        assert_eq!(tail[1]["event"], "interrupted", "signal {signal}");
        assert_eq!(tail[0]["outcome"], "interrupted", "signal {signal}");
        assert_eq!(
            d.account.world().weights["api-usw2"],
            50,
            "stopped where it was"
        );
        // The lock was released: resume takes it at once and finishes.
        let (code, _, stderr) = d.evac(&["resume", &id, "--yes"]);
        assert_eq!(code, 0, "signal {signal}: {stderr}");
        assert_eq!(d.account.world().weights["api-usw2"], 100);
    }
}

#[test]
fn output_without_a_terminal_names_steps_and_resources_never_internal_ids() {
    let d = Drill::new();
    let (code, _, stderr) = d.evac(&[
        "run",
        "playbooks/evacuate-region.yaml",
        "--var",
        "bake=0s",
        "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    // Each change is said by its step (and increment), resource and value.
    assert!(
        stderr.contains(
            "  step scale-target: asg api-us-west-2 (us-west-2) -> min 8 desired 8 max 12"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("  step shift-traffic increment 1: weights in hosted zone "),
        "{stderr}"
    );
    for internal in [":asg:", ":dns:", "  applied "] {
        assert!(!stderr.contains(internal), "{internal} in:\n{stderr}");
    }
}
