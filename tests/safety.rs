//! Stop conditions, `check` steps, preflight blockers and guardrails, against the
//! local emulator.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

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

    fn evac(&self, args: &[&str]) -> (i32, String, String) {
        let output = self
            .account
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

    fn state_arg(&self) -> String {
        self.state.path().display().to_string()
    }

    fn journal(&self) -> Vec<serde_json::Value> {
        let runs = self.state.path().join("runs");
        let Some(run) = std::fs::read_dir(runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
        else {
            return Vec::new();
        };
        std::fs::read_to_string(run.path().join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn wait_for(&self, wanted: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.journal().iter().any(&wanted) {
            assert!(
                Instant::now() < deadline,
                "the journal never showed the wanted entry"
            );
            std::thread::yield_now();
        }
    }

    fn set_alarm(&self, state: aws_sdk_cloudwatch::types::StateValue) {
        self.account.set_alarm(state);
    }

    /// Starts `evac run` in the background; stderr is captured.
    fn spawn_run(&self, extra: &[&str]) -> std::process::Child {
        let mut cmd = self.account.process();
        cmd.args([
            "run",
            BASE,
            "--var",
            "bake=30s",
            "--yes",
            "--stop-poll",
            "1s",
            "--state-dir",
            &self.state_arg(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("evac starts")
    }
}

fn first_increment_converged(e: &serde_json::Value) -> bool {
    e["event"] == "converged"
        && e["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("shift:dns:") && a.ends_with(":1"))
}

#[test]
fn an_alarm_during_a_bake_halts_the_run_with_exit_6_and_names_the_alarm() {
    let d = Drill::new();
    let child = d.spawn_run(&[]);
    d.wait_for(first_increment_converged);
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let output = child.wait_with_output().expect("evac exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("stop condition fired: alarm api-5xx-rate (us-west-2) is ALARM"),
        "{stderr}"
    );
    let journal = d.journal();
    let fired: Vec<_> = journal
        .iter()
        .filter(|e| e["event"] == "stop_condition_fired")
        .collect();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0]["condition"], "alarm api-5xx-rate (us-west-2)");
    assert_eq!(fired[0]["state"], "ALARM");
    // Halted inside the 30 s bake: the first increment never finished baking.
    assert!(
        !journal.iter().any(|e| e["event"] == "baked"),
        "halted before the bake ended"
    );
    assert_eq!(
        journal.last().map(|e| e["outcome"].clone()),
        Some("halted".into())
    );
    assert_eq!(
        d.account.world().weights["api-usw2"],
        50,
        "left where it halted"
    );
}

#[test]
fn an_alarm_with_rollback_on_failure_restores_the_seeded_state_exactly() {
    let d = Drill::new();
    let seeded = d.account.world();
    let child = d.spawn_run(&["--rollback-on-failure"]);
    d.wait_for(first_increment_converged);
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let output = child.wait_with_output().expect("evac exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert_eq!(d.account.world(), seeded);
    let journal = d.journal();
    assert!(journal.iter().any(|e| e["event"] == "stop_condition_fired"));
    assert_eq!(
        journal.last().map(|e| e["verified"].clone()),
        Some(true.into())
    );
}

#[test]
fn a_check_that_never_turns_ok_fails_at_its_timeout() {
    let d = Drill::new();
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let seeded = d.account.world();
    let state = d.state_arg();
    let (code, _, stderr) = d.evac(&[
        "run",
        "tests/fixtures/safety/check-never-ok.yaml",
        "--yes",
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "step target-healthy failed: timed out after 3s: waiting for alarm api-5xx-rate (us-west-2) to be OK for 1s; last seen ALARM"
        ),
        "{stderr}"
    );
    assert_eq!(d.account.world(), seeded, "a check changes nothing");
}

#[test]
fn a_stop_alarm_given_on_the_command_line_is_checked_before_the_run() {
    let d = Drill::new();
    let seeded = d.account.world();
    let state = d.state_arg();
    let (code, _, stderr) = d.evac(&[
        "run",
        BASE,
        "--yes",
        "--stop-when-alarm",
        "us-west-2:no-such-alarm",
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("stop-condition alarm no-such-alarm not found in us-west-2"),
        "{stderr}"
    );
    let (code, _, stderr) = d.evac(&[
        "run",
        BASE,
        "--yes",
        "--stop-when-alarm",
        "us-west2:x",
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("invalid region name `us-west2`"),
        "{stderr}"
    );
    assert_eq!(d.account.world(), seeded, "neither run changed anything");
}

#[test]
fn guardrail_an_increment_larger_than_max_increment_is_a_blocker() {
    let d = Drill::new();
    let (code, stdout, _) = d.evac(&["plan", "tests/fixtures/safety/big-step.yaml"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains(
            "x shift: record api: increment 1 moves 100 percent of the weight of `api` at once (from 0% to 100% on us-west-2), more than max_increment 50"
        ),
        "{stdout}"
    );
}

#[test]
fn preflight_traffic_to_a_region_without_capacity_is_a_blocker() {
    let d = Drill::new();
    let (code, stdout, _) = d.evac(&["plan", "tests/fixtures/safety/shift-to-empty.yaml"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains(
            "x shift: record api (us-west-2): after this step us-west-2 still gets weight 100 of 100 of `api` but its groups (api-us-west-2) have desired 0"
        ),
        "{stdout}"
    );
}

#[test]
fn resume_watches_the_stop_conditions_too() {
    let d = Drill::new();
    let mut child = d.spawn_run(&[]);
    d.wait_for(first_increment_converged);
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let run_id = support::run_ids(d.state.path()).pop().expect("a run");
    let state = d.state_arg();
    let (code, _, stderr) = d.evac(&[
        "resume",
        &run_id,
        "--yes",
        "--stop-poll",
        "1s",
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 6, "{stderr}");
    assert!(
        stderr.contains("stop condition fired: alarm api-5xx-rate (us-west-2) is ALARM"),
        "{stderr}"
    );
    assert_eq!(
        d.account.world().weights["api-usw2"],
        50,
        "nothing more was shifted"
    );
}

#[test]
fn a_stop_alarm_given_on_the_command_line_applies_to_a_saved_plan() {
    let d = Drill::new();
    let seeded = d.account.world();
    let state = d.state_arg();
    let hold = "tests/fixtures/integrity/hold.yaml";
    let saved = d.state.path().join("saved.json");
    let saved = saved.to_str().expect("utf-8");
    let (code, _, stderr) = d.evac(&["plan", hold, "--save", saved]);
    assert_eq!(code, 0, "{stderr}");
    // The alarm is in ALARM: with it, the saved plan is blocked, not called stale.
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let with_alarm = [
        "run",
        hold,
        "--plan",
        saved,
        "--yes",
        "--stop-when-alarm",
        "us-west-2:api-5xx-rate",
        "--state-dir",
        &state,
    ];
    let (code, _, stderr) = d.evac(&with_alarm);
    assert_eq!(code, 3, "{stderr}");
    assert!(!stderr.contains("stale"), "{stderr}");
    assert!(stderr.contains("api-5xx-rate"), "{stderr}");
    // Back to OK: the saved plan runs, watching the alarm.
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Ok);
    let (code, stdout, stderr) = d.evac(&[&with_alarm[..], &["--output", "json"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let plan: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "plan")
        .expect("the plan event");
    assert_eq!(
        plan["plan"]["stop_conditions"],
        serde_json::json!([{ "kind": "alarm", "region": "us-west-2", "name": "api-5xx-rate" }])
    );
    assert_eq!(
        d.account.world(),
        seeded,
        "a drill that only waits changes nothing"
    );
}
