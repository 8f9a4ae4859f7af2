//! The wave engine against the local emulator, where live AWS is the truth: someone
//! else's change during a bake is drift and is never overwritten; traffic does not
//! move onto capacity that is gone; stop conditions are checked at a step's start
//! and watched while an approval waits on a terminal.

mod support;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::Duration;

use evac::playbook::Region;
use support::{Account, exit_within, until};

const BASE: &str = "tests/fixtures/plan/base.yaml";

struct Drill {
    account: Account,
    state: tempfile::TempDir,
}

fn region(name: &str) -> Region {
    Region::parse(name).expect("region")
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

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.account.process();
        cmd.args(args).arg("--state-dir").arg(self.state.path());
        cmd
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("evac starts")
    }

    fn evac(&self, args: &[&str]) -> (i32, String) {
        let output = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("evac runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn run_id(&self) -> Option<String> {
        support::run_ids(self.state.path()).pop()
    }

    fn journal(&self) -> Vec<serde_json::Value> {
        self.run_id()
            .map(|id| support::journal_so_far(self.state.path(), &id))
            .unwrap_or_default()
    }

    fn wait_for(&self, what: &str, wanted: impl Fn(&serde_json::Value) -> bool) {
        until(what, || self.journal().iter().any(&wanted));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Runtime::new().expect("runtime")
    }

    fn set_alarm(&self, state: aws_sdk_cloudwatch::types::StateValue) {
        self.account.set_alarm(state);
    }

    /// Someone else sets the weights of api.example.com. (set identifier, weight).
    fn set_weights(&self, weights: &[(&str, i64)]) {
        self.account.set_weights(weights);
    }

    /// Someone else sets a group's capacity.
    fn set_capacity(&self, region_name: &str, group: &str, min: i32, desired: i32) {
        Self::runtime().block_on(async {
            self.account
                .context()
                .await
                .autoscaling(&region(region_name))
                .update_auto_scaling_group()
                .auto_scaling_group_name(group)
                .min_size(min)
                .desired_capacity(desired)
                .send()
                .await
                .expect("update group");
        });
    }
}

fn converged(action_prefix: &str, suffix: &str) -> impl Fn(&serde_json::Value) -> bool {
    let (prefix, suffix) = (action_prefix.to_owned(), suffix.to_owned());
    move |e| {
        e["event"] == "converged"
            && e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with(&prefix) && a.ends_with(&suffix))
    }
}

fn has(journal: &[serde_json::Value], event: &str) -> bool {
    journal.iter().any(|e| e["event"] == event)
}

#[test]
fn weights_reset_during_a_bake_stop_the_next_increment_and_stay_as_set() {
    let d = Drill::new();
    let seeded = d.account.world();
    let mut child = d.spawn(&["run", BASE, "--var", "bake=4s", "--yes"]);
    d.wait_for("the first increment", converged("shift:dns:", ":1"));
    // Someone puts the traffic back during the bake.
    d.set_weights(&[("api-use1", 100), ("api-usw2", 0)]);
    let code = exit_within(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("drift on weights in hosted zone")
            && stderr.contains("the journal expects api-use1=50 api-usw2=50")
            && stderr.contains("would set api-use1=0 api-usw2=100")
            && stderr.contains("live is api-use1=100 api-usw2=0"),
        "the three values: {stderr}"
    );
    let after = d.account.world();
    assert_eq!(after.weights["api-use1"], 100, "left as the person set it");
    assert_eq!(after.weights["api-usw2"], 0);
    assert_eq!(
        after.groups["api-us-east-1"], seeded.groups["api-us-east-1"],
        "the source was not drained"
    );
    let journal = d.journal();
    assert!(
        !journal
            .iter()
            .any(|e| e["event"] == "intent"
                && e["action"].as_str().is_some_and(|a| a.ends_with(":2"))),
        "the second increment was never journaled"
    );
    let id = d.run_id().expect("run id");
    // Resume sees the same drift and changes nothing.
    let (code, stderr) = d.evac(&["resume", &id, "--yes"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("drift on weights"), "{stderr}");
    assert_eq!(d.account.world(), after);
    // --force accepts the live weights as the increment's outcome and goes on.
    let mut child = d.spawn(&["resume", &id, "--yes", "--force"]);
    assert_eq!(exit_within(&mut child, Duration::from_secs(60)), 0);
    let done = d.account.world();
    assert_eq!(done.weights["api-usw2"], 100);
    assert_eq!(done.weights["api-use1"], 0);
    assert_eq!(done.groups["api-us-east-1"].1, 0, "drained");
    // Rollback restores what was there before the drill, not what was accepted.
    let (code, stderr) = d.evac(&["rollback", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(d.account.world(), seeded);
}

#[test]
fn a_target_scaled_down_during_a_bake_moves_no_more_traffic_and_drains_nothing() {
    let d = Drill::new();
    let seeded = d.account.world();
    let mut child = d.spawn(&["run", BASE, "--var", "bake=4s", "--yes"]);
    d.wait_for("the first increment", converged("shift:dns:", ":1"));
    let (min, desired, _, _) = seeded.groups["api-us-west-2"].clone();
    d.set_capacity("us-west-2", "api-us-west-2", min, desired);
    let code = exit_within(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "asg api-us-west-2 (us-west-2) no longer has the capacity step scale gave it: wanted desired at least 8 with at least 8 InService, live desired {desired} with {desired} InService"
        )),
        "{stderr}"
    );
    let untouched = |d: &Drill| {
        let world = d.account.world();
        assert_eq!(world.weights["api-usw2"], 50, "no more traffic moved");
        assert_eq!(
            world.groups["api-us-east-1"], seeded.groups["api-us-east-1"],
            "the source was not drained"
        );
    };
    untouched(&d);
    let id = d.run_id().expect("run id");
    let (code, stderr) = d.evac(&["resume", &id, "--yes"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("no longer has the capacity"), "{stderr}");
    untouched(&d);
    let mut child = d.spawn(&["resume", &id, "--yes", "--force"]);
    assert_eq!(
        exit_within(&mut child, Duration::from_secs(60)),
        0,
        "--force goes on and never hangs"
    );
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    // The change an earlier process recorded is said in its words, not by its id.
    assert!(
        stderr.contains("step scale: asg api-us-west-2 (us-west-2): --force: accepted live"),
        "{stderr}"
    );
    assert!(!stderr.contains("scale:asg:"), "{stderr}");
    let done = d.account.world();
    assert_eq!(done.weights["api-usw2"], 100);
    assert_eq!(done.groups["api-us-east-1"].1, 0);
    let journal = d.journal();
    assert!(journal.iter().any(|e| e["event"] == "reconciled"
        && e["action"] == "scale:asg:us-west-2:api-us-west-2"
        && e["accepted"]["desired"] == desired));
}

#[test]
fn an_alarm_during_a_wait_step_stops_the_run_before_the_next_step() {
    let d = Drill::new();
    let seeded = d.account.world();
    // A poll interval far longer than the wait: only the check at the next step's
    // start can see the alarm in time.
    let mut child = d.spawn(&[
        "run",
        "tests/fixtures/waves/hold.yaml",
        "--yes",
        "--stop-poll",
        "1h",
    ]);
    d.wait_for("the wait step", |e| {
        e["event"] == "step_started" && e["step"] == "hold"
    });
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let code = exit_within(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    assert_eq!(code, 6, "{stderr}");
    assert!(
        stderr.contains("stop condition fired: alarm api-5xx-rate (us-west-2) is ALARM"),
        "{stderr}"
    );
    assert_eq!(d.account.world(), seeded, "nothing changed");
    let journal = d.journal();
    assert!(has(&journal, "stop_condition_fired"));
    assert!(
        !journal
            .iter()
            .any(|e| e["event"] == "step_started" && e["step"] == "scale"),
        "the next step never started"
    );
}

#[test]
fn an_alarm_while_an_approval_waits_on_a_terminal_ends_it_with_exit_6() {
    let d = Drill::new();
    let seeded = d.account.world();
    let mut pty = support::pty::Pty::open();
    let mut child =
        pty.spawn(d.command(&["run", "tests/fixtures/waves/gate.yaml", "--stop-poll", "1s"]));
    until("the run's confirmation", || {
        pty.text().contains("against AWS now? [y/N]")
    });
    pty.type_line("y");
    until("the approval's question", || {
        pty.text().contains("Scale up us-west-2? [y/N]")
    });
    d.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let code = exit_within(&mut child, Duration::from_secs(30));
    let screen = pty.text();
    assert_eq!(code, 6, "{screen}");
    assert!(
        screen.contains("stop condition fired: alarm api-5xx-rate (us-west-2) is ALARM"),
        "{screen}"
    );
    assert_eq!(d.account.world(), seeded, "nothing changed");
    let journal = d.journal();
    assert!(has(&journal, "stop_condition_fired"));
    assert!(!has(&journal, "approved"), "nobody approved");
    assert!(!has(&journal, "intent"), "no change was journaled");
}
