//! `evac check` between drills, against the emulator: a ready drill exits 0, one
//! whose stop alarm is missing exits 3, a second check reports nothing new, what
//! changed reaches the playbook's webhook once, and AWS that cannot be read is 1.

mod support;

use std::time::Duration;

use support::{Account, webhook};

const DRILL: &str = "tests/fixtures/check/drill.yaml";

fn check(account: &Account, state: &std::path::Path, url: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", DRILL];
    args.extend(extra);
    let out = account
        .evac_in(state, &args)
        .env("EVAC_TEST_WEBHOOK", url)
        .output()
        .expect("evac check runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// The notifications that arrived within a moment (none is a valid answer: a check
/// sends before it exits, so what was sent is there by now).
fn arrived(bodies: &std::sync::mpsc::Receiver<serde_json::Value>) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Ok(body) = bodies.recv_timeout(Duration::from_millis(200)) {
        out.push(body);
    }
    out
}

#[test]
fn check_exits_0_ready_3_blocked_and_says_only_what_changed_since_the_last_check() {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let (url, bodies) = webhook(200);

    // Ready; the first check has nothing to compare with.
    let (code, out) = check(&account, state.path(), &url, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("ready     checked-drill: 0 blockers"),
        "{out}"
    );
    assert!(out.contains("first check"), "{out}");
    // Its three warnings are new: the team hears of them once.
    let first = arrived(&bodies);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0]
            .to_string()
            .contains("checked-drill is ready (3 new"),
        "{first:?}"
    );

    // Again: nothing new, nothing sent.
    let (code, out) = check(&account, state.path(), &url, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing new since the last check"), "{out}");
    assert_eq!(
        out.lines().count(),
        1,
        "one line for a playbook with nothing new: {out}"
    );
    assert!(arrived(&bodies).is_empty(), "nothing changed, nothing sent");

    // The stop alarm is gone: blocked, the blocker is new, and the team is told.
    let (code, out) = check(
        &account,
        state.path(),
        &url,
        &["--var", "alarm=api-5xx-gone"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("blocked   checked-drill: 1 blocker"),
        "{out}"
    );
    let new: Vec<&str> = out.lines().filter(|l| l.starts_with("  new ")).collect();
    assert_eq!(new.len(), 1, "{out}");
    assert!(
        new[0].contains("blocker") && new[0].contains("api-5xx-gone"),
        "{out}"
    );
    let sent = arrived(&bodies);
    assert_eq!(sent.len(), 1, "one notification: {sent:?}");
    let text = sent[0].to_string();
    assert!(text.contains("checked-drill is blocked (1 new"), "{text}");

    // Still missing: nothing new, exit 3 all the same.
    let (code, out) = check(
        &account,
        state.path(),
        &url,
        &["--var", "alarm=api-5xx-gone"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("nothing new since the last check"), "{out}");
    assert!(arrived(&bodies).is_empty());

    // Back: ready, and the blocker is gone.
    let (code, out) = check(&account, state.path(), &url, &["--output", "json"]);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value =
        serde_json::from_str(out.trim_end()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(json[0]["state"], "ready");
    assert_eq!(json[0]["exit"], 0);
    assert_eq!(json[0]["gone"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(arrived(&bodies).len(), 1, "ready again is news");
}

#[test]
fn aws_that_cannot_be_read_is_exit_1_and_an_invalid_playbook_is_2() {
    let state = tempfile::tempdir().expect("state dir");
    let bad = state.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\nname: bad\nsteps: []\nnope: 1\n").expect("write");
    let out = support::evac()
        .env("AWS_ACCESS_KEY_ID", "none")
        .env("AWS_SECRET_ACCESS_KEY", "none")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("EVAC_REGION_BUDGET", "5s")
        .args(["check", DRILL, "--state-dir"])
        .arg(state.path())
        .output()
        .expect("evac check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("unreadable "), "{stdout}");
    let out = support::evac()
        .args(["check"])
        .arg(&bad)
        .arg(DRILL)
        .arg("--state-dir")
        .arg(state.path())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("EVAC_REGION_BUDGET", "5s")
        .output()
        .expect("evac check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the worst of invalid and unreadable: {stdout}"
    );
    assert!(stdout.starts_with("invalid   "), "{stdout}");
    assert!(
        stdout.contains("\nunreadable "),
        "every playbook is checked: {stdout}"
    );
}
