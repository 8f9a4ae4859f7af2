//! Calls AWS never answers, against the local emulator behind a proxy that holds
//! them: they end by themselves at the call timeout, and the first Ctrl-C ends a run
//! waiting on one within seconds, leaving a journal from which rollback is exact.

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::proxy::{Fault, FaultProxy, Rule};
use support::{Account, exit_within, until};

const BASE: &str = "tests/fixtures/plan/base.yaml";

/// Starts `evac run BASE --yes ARGS` through `proxy`, its stderr to `log`.
fn run_through(
    account: &Account,
    proxy: &FaultProxy,
    (state, log): (&Path, &Path),
    args: &[&str],
    env: &[(&str, &str)],
) -> Child {
    let mut cmd = account.process();
    cmd.args(["run", BASE, "--yes"])
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start the run")
}

/// Waits until the run's first weight change is journaled and held at the proxy;
/// returns the run id.
fn until_the_change_is_held(
    child: &mut Child,
    proxy: &FaultProxy,
    state: &Path,
    log: &Path,
) -> String {
    until("the weight change is sent and held", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the run ended ({status}) before its change was held:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        proxy
            .injected()
            .get("ChangeResourceRecordSets")
            .is_some_and(|n| *n >= 1)
    });
    support::run_ids(state).pop().expect("a run")
}

/// Sends Ctrl-C (SIGINT) to `child` and waits at most 15 s for it to end: its
/// exit code, how long it took, and what it printed to `log`.
fn ctrl_c(child: &mut Child, log: &Path) -> (i32, Duration, String) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let asked = Instant::now();
    // SAFETY: sends SIGINT to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let code = exit_within(child, Duration::from_secs(15));
    let took = asked.elapsed();
    (code, took, std::fs::read_to_string(log).unwrap_or_default())
}

/// Rolls the run back straight against the emulator and checks it restored `seeded`
/// exactly.
fn rolls_back_to(account: &Account, state: &Path, id: &str, seeded: &support::World) {
    let output = account
        .process()
        .args(["rollback", id, "--yes", "--state-dir"])
        .arg(state)
        .output()
        .expect("rollback runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(&account.world(), seeded);
}

#[test]
fn the_first_ctrl_c_during_a_call_that_never_answers_ends_the_run_within_15_s() {
    let account = Account::fresh();
    account.seed();
    let seeded = account.world();
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::nth(
            "ChangeResourceRecordSets",
            Fault::Latency(Duration::from_secs(3600)),
            1,
        )],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, log) = (dir.path().join("state"), dir.path().join("run.log"));
    let mut child = run_through(&account, &proxy, (&state, &log), &[], &[]);
    let id = until_the_change_is_held(&mut child, &proxy, &state, &log);
    let (code, took, stderr) = ctrl_c(&mut child, &log);
    assert_eq!(code, 4, "{stderr}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    // The change sent and never answered has its intent and no outcome: resume and
    // rollback read it live.
    let journal = support::journal_so_far(&state, &id);
    let held = journal
        .iter()
        .find(|e| e["event"] == "intent" && e["target"]["kind"] == "weights")
        .and_then(|e| e["action"].as_str())
        .expect("the held change's intent")
        .to_owned();
    assert!(
        !journal
            .iter()
            .any(|e| e["event"] == "applied" && e["action"] == held.as_str()),
        "the unanswered change is not recorded as applied"
    );
    let tail: Vec<&serde_json::Value> = journal.iter().rev().take(2).collect();
    assert_eq!(tail[1]["event"], "interrupted");
    assert_eq!(tail[0]["outcome"], "interrupted");
    // Straight to the emulator now: the rollback restores the seeded world exactly.
    rolls_back_to(&account, &state, &id, &seeded);
}

#[test]
fn a_call_that_never_answers_ends_by_itself_at_the_call_timeout() {
    let account = Account::fresh();
    account.seed();
    let seeded = account.world();
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::from(
            "ChangeResourceRecordSets",
            Fault::Latency(Duration::from_secs(3600)),
            1,
        )],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, log) = (dir.path().join("state"), dir.path().join("run.log"));
    let started = Instant::now();
    let mut child = run_through(
        &account,
        &proxy,
        (&state, &log),
        &[],
        &[("EVAC_ATTEMPT_TIMEOUT", "1s"), ("EVAC_CALL_TIMEOUT", "3s")],
    );
    // Nobody touches it: the call gives up after 3 s, and the run fails (exit 1)
    // saying AWS did not answer.
    let code = exit_within(&mut child, Duration::from_secs(60));
    assert!(
        proxy
            .injected()
            .get("ChangeResourceRecordSets")
            .is_some_and(|n| *n >= 1),
        "the change was held"
    );
    let id = support::run_ids(&state).pop().expect("a run");
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr.contains("did not answer in time"), "{stderr}");
    rolls_back_to(&account, &state, &id, &seeded);
}

#[test]
fn ctrl_c_during_the_rollback_of_rollback_on_failure_is_honoured() {
    // The run's second weight change is refused, so the run fails and
    // --rollback-on-failure rolls it back; the rollback's own weight change is
    // then held unanswered. Ctrl-C there ends the process within
    // seconds, exit 4, and a later rollback is exact.
    let account = Account::fresh();
    account.seed();
    let seeded = account.world();
    let op = "ChangeResourceRecordSets";
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![
            Rule::nth(op, Fault::Invalid, 2),
            Rule::from(op, Fault::Latency(Duration::from_secs(3600)), 3),
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, log) = (dir.path().join("state"), dir.path().join("run.log"));
    let mut child = run_through(
        &account,
        &proxy,
        (&state, &log),
        &["--var", "bake=0s", "--rollback-on-failure"],
        &[],
    );
    until("the rollback's weight change is sent and held", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the run ended ({status}) before its rollback's change was held:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        // The refusal, then the rollback's call held.
        proxy.injected().get(op).is_some_and(|n| *n >= 2)
            && support::run_ids(&state).pop().is_some_and(|id| {
                support::journal_so_far(&state, &id)
                    .iter()
                    .any(|e| e["event"] == "rollback_intent")
            })
    });
    let id = support::run_ids(&state).pop().expect("a run");
    let (code, took, stderr) = ctrl_c(&mut child, &log);
    assert_eq!(code, 4, "{stderr}");
    eprintln!("the rollback ended {:.1}s after Ctrl-C", took.as_secs_f64());
    assert!(stderr.contains("evac rollback"), "{stderr}");
    rolls_back_to(&account, &state, &id, &seeded);
}
