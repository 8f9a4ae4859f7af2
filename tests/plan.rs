//! `evac plan` against the local emulator: what it shows, that it changes nothing,
//! and that a blocker is exit 3. Every blocker, warning and projection is tested on
//! the in-memory cloud in `src/plan/tests.rs`, through the same reads.

mod support;

use evac::playbook::Region;
use support::Account;

const BASE: &str = "tests/fixtures/plan/base.yaml";

fn region(name: &str) -> Region {
    Region::parse(name).expect("valid region")
}

/// Runs `evac plan` for `account` and returns (exit code, stdout, stderr).
fn plan(account: &Account, args: &[&str]) -> (i32, String, String) {
    let output = account
        .command("evac")
        .arg("plan")
        .args(args)
        .output()
        .expect("evac runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn seeded() -> Account {
    let account = Account::fresh();
    account.seed();
    account
}

/// Redacts what differs between runs: hosted zone ids and the state fingerprint.
fn redactions() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9A-Z]{18,32}\b", "[ZONE_ID]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[SHA-256]");
    settings.add_filter(r"\b[0-9]{12}\b", "[ACCOUNT]");
    settings.add_filter(r"http://127\.0\.0\.1:[0-9]+", "[ENDPOINT]");
    settings
}

#[test]
fn example_plan_shows_capacity_and_weights_and_makes_no_mutating_call() {
    let account = seeded();
    let before = account.calls().len();
    let (code, stdout, stderr) = plan(&account, &["playbooks/evacuate-region.yaml"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in [
        "~ asg api-us-west-2 (us-west-2)  min 1 -> 8  desired 2 -> 8  max 12",
        "~ asg worker-us-west-2 (us-west-2)  min 1 -> 5  desired 1 -> 5  max 8",
        "api-use1 (us-east-1)  100 -> 75 -> 50 -> 25 -> 0",
        "api-usw2 (us-west-2)  0 -> 25 -> 50 -> 75 -> 100",
        "www-usw2 (us-west-2)  0 -> 25 -> 50 -> 75 -> 100",
        "~ asg api-us-east-1 (us-east-1)  min 3 -> 0  desired 6 -> 0  max 12",
        "Mutating calls: autoscaling:UpdateAutoScalingGroup 4, route53:ChangeResourceRecordSets 4",
        "Ready: no blockers. Nothing was changed.",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let calls = account.calls().split_off(before);
    assert!(
        calls.iter().any(|c| c.service == "autoscaling"),
        "plan read the groups: {calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.service == "route53"),
        "plan read the records: {calls:?}"
    );
    let mutating: Vec<_> = calls.iter().filter(|c| c.mutating).collect();
    assert!(
        mutating.is_empty(),
        "plan made mutating calls: {mutating:?}"
    );
    redactions().bind(|| insta::assert_snapshot!("example_plan_human", stdout));
}

#[test]
fn json_and_markdown_render_the_same_plan() {
    let account = seeded();
    let (code, json, _) = plan(
        &account,
        &["playbooks/evacuate-region.yaml", "--output", "json"],
    );
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).expect("plan JSON");
    assert_eq!(value["format"], 1);
    let weights = &value["steps"][1]["changes"][0]["sets"][1];
    assert_eq!(weights["set_identifier"], "api-usw2");
    assert_eq!(weights["after"], serde_json::json!([25, 50, 75, 100]));
    let (code, markdown, _) = plan(
        &account,
        &["playbooks/evacuate-region.yaml", "--output", "markdown"],
    );
    assert_eq!(code, 0);
    assert!(
        markdown.contains("| api-usw2 (us-west-2) | 0 | 25 | 50 | 75 | 100 |"),
        "{markdown}"
    );
    redactions().bind(|| {
        insta::assert_snapshot!("example_plan_json", json);
        insta::assert_snapshot!("example_plan_markdown", markdown);
    });
}

#[test]
fn saved_plan_carries_the_state_fingerprint() {
    let account = seeded();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plan.json");
    let file_arg = file.to_str().expect("utf-8 path");
    let (code, _, _) = plan(
        &account,
        &["playbooks/evacuate-region.yaml", "--save", file_arg],
    );
    assert_eq!(code, 0);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("plan saved"))
            .expect("saved plan is JSON");
    let fingerprint = saved["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    assert_eq!(fingerprint.len(), 64);
    // The same state gives the same fingerprint; a changed state another.
    let (_, json, _) = plan(
        &account,
        &["playbooks/evacuate-region.yaml", "--output", "json"],
    );
    let again: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(again["fingerprint"], fingerprint.as_str());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        account
            .context()
            .await
            .autoscaling(&region("us-west-2"))
            .set_desired_capacity()
            .auto_scaling_group_name("api-us-west-2")
            .desired_capacity(3)
            .send()
            .await
            .expect("change desired");
    });
    let (_, json, _) = plan(
        &account,
        &["playbooks/evacuate-region.yaml", "--output", "json"],
    );
    let changed: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_ne!(changed["fingerprint"], fingerprint.as_str());
}

#[test]
fn failback_reuses_the_playbook_with_vars() {
    let account = seeded();
    let failback = [
        "playbooks/evacuate-region.yaml",
        "--var",
        "source=us-west-2",
        "--var",
        "target=us-east-1",
    ];
    // On the seeded world us-east-1 already serves everything: the failback ramp
    // would first move 75% of the traffic away from it, which the plan warns about
    // and the max_increment guardrail blocks.
    let (code, stdout, _) = plan(&account, &failback);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains(
            "the first increment lowers the weight of api-use1 (us-east-1) from 100 to 25"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("increment 1 moves 75 percent of the weight of `api` at once"),
        "{stdout}"
    );

    // After the evacuation has run, the same file plans the way back.
    let state = tempfile::tempdir().expect("state dir");
    let output = account
        .command("evac")
        .args([
            "run",
            "playbooks/evacuate-region.yaml",
            "--var",
            "bake=0s",
            "--yes",
            "--state-dir",
        ])
        .arg(state.path())
        .output()
        .expect("evac runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, stdout, _) = plan(&account, &failback);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("~ asg api-us-east-1 (us-east-1)  min 0 -> 8  desired 0 -> 8  max 12"),
        "{stdout}"
    );
    assert!(
        stdout.contains("api-use1 (us-east-1)  0 -> 25 -> 50 -> 75 -> 100"),
        "{stdout}"
    );
    assert!(
        stdout.contains("~ asg api-us-west-2 (us-west-2)  min 8 -> 0  desired 8 -> 0  max 12"),
        "{stdout}"
    );
}

fn assert_blocked(account: &Account, args: &[&str], message: &str) {
    let (code, stdout, stderr) = plan(account, args);
    assert_eq!(code, 3, "expected exit 3 for {args:?}:\n{stdout}{stderr}");
    assert!(
        stdout.contains(message),
        "missing {message:?} in:\n{stdout}"
    );
    assert!(stdout.contains("Blocked:"), "{stdout}");
}

#[test]
fn blocker_record_not_found() {
    let account = seeded();
    assert_blocked(
        &account,
        &[BASE, "--var", "record_name=nope.example.com."],
        "x shift: record api: record nope.example.com. A not found in zone example.com.",
    );
}

#[test]
fn blocker_stop_condition_alarm_already_firing() {
    let account = seeded();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        account
            .context()
            .await
            .cloudwatch(&region("us-west-2"))
            .set_alarm_state()
            .alarm_name("api-5xx-rate")
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("test")
            .send()
            .await
            .expect("set alarm state");
    });
    assert_blocked(
        &account,
        &[BASE],
        "x alarm api-5xx-rate (us-west-2): stop-condition alarm api-5xx-rate in us-west-2 is already in ALARM",
    );
}

#[test]
fn invalid_playbook_is_exit_2_before_any_aws_call() {
    let account = Account::fresh();
    let (code, _, stderr) = plan(&account, &["tests/fixtures/invalid/bad-region.yaml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid region name `us-east1`"),
        "{stderr}"
    );
    assert!(
        account.calls().is_empty(),
        "no AWS call for an invalid playbook"
    );
}

#[test]
fn unreachable_aws_is_exit_1_with_the_failed_read() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let output = support::evac()
        .args(["plan", "playbooks/evacuate-region.yaml"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        // The refused calls' retries (six attempts, jittered backoff) take 5 to 15 s:
        // past the 10 s region budget, the region would be named as not answering
        // instead (tests/region_down.rs covers that). This test is about the read's
        // own failure.
        .env("EVAC_REGION_BUDGET", "60s")
        .output()
        .expect("evac runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: failed to "), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    // One sentence with the cause and what to check, not the SDK's chain of
    // wrappers.
    assert!(
        stderr.contains("cannot reach AWS (Connection refused")
            && stderr
                .contains("check the network and any proxy (HTTPS_PROXY), and AWS_ENDPOINT_URL"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ConnectorError") && !stderr.contains("dispatch failure"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
}

#[test]
fn a_missing_profile_is_one_line_naming_it() {
    let output = support::evac()
        .env("AWS_PROFILE", "nosuch")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["plan", "playbooks/evacuate-region.yaml"])
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: no AWS credentials for profile `nosuch` (from AWS_PROFILE): it is not in ~/.aws/config or ~/.aws/credentials, or gives no credentials; name a profile that exists, or unset AWS_PROFILE; nothing was changed"
    );
}

#[test]
fn the_recording_is_read_whole_while_other_requests_are_still_being_written() {
    // What concurrent appends leave: an entry whose newline came after another
    // entry, then an entry cut off mid-write.
    let text = "{\"a\":1}\n{\"b\":\"x\"}{\"c\":3}\n\n{\"d\":4}\n{\"e\":\"half";
    let keys: Vec<String> = support::recorded_entries(text)
        .iter()
        .filter_map(|e| e.as_object()?.keys().next().cloned())
        .collect();
    assert_eq!(keys, ["a", "b", "c", "d"]);
}
