//! Notifications: a run's events reach an SNS topic in the emulator (read back from
//! its request recording) and a webhook served by the test; a webhook that fails
//! is said on the terminal and does not stop the run.

mod support;

use support::{Account, webhook};

const DRILL: &str = "tests/fixtures/notify/notify.yaml";

/// Creates an SNS topic in the account; its ARN.
fn topic(account: &Account) -> String {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            account
                .context()
                .await
                .sns("us-east-1")
                .create_topic()
                .name("drills")
                .send()
                .await
                .expect("create topic")
                .topic_arn()
                .unwrap_or_default()
                .to_owned()
        })
}

/// Runs the drill notifying the topic `arn` and the webhook at `url`; it succeeds,
/// and its stderr is returned.
fn run_notifying(account: &Account, state: &std::path::Path, arn: &str, url: &str) -> String {
    let out = account
        .evac_in(
            state,
            &["run", DRILL, "--yes", "--var", &format!("topic={arn}")],
        )
        .env("EVAC_TEST_WEBHOOK", url)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

#[test]
fn a_runs_events_reach_the_sns_topic_and_the_webhook() {
    let account = Account::fresh();
    let arn = topic(&account);
    let (url, bodies) = webhook(200);
    let state = tempfile::tempdir().expect("state dir");
    let before = account.calls().len();
    let stderr = run_notifying(&account, state.path(), &arn, &url);
    assert!(!stderr.contains("notification to"), "{stderr}");
    let id = support::run_ids(state.path()).pop().expect("a run");
    let kinds = [
        "run_started",
        "step_started",
        "step_finished",
        "step_started",
        "step_finished",
        "run_finished",
    ];

    let got: Vec<serde_json::Value> = bodies.try_iter().collect();
    let seen: Vec<&str> = got
        .iter()
        .filter_map(|b| b["evac"]["kind"].as_str())
        .collect();
    assert_eq!(seen, kinds, "{got:#?}");
    let last = &got[kinds.len() - 1];
    assert_eq!(
        last["text"],
        format!("evac: notify run {id}: run ended: succeeded")
    );
    assert_eq!(last["evac"]["run_id"], id.as_str());
    assert_eq!(last["evac"]["event"]["event"], "run_finished");

    let published: Vec<serde_json::Value> = account
        .calls()
        .split_off(before)
        .iter()
        .filter(|c| c.service == "sns" && c.operation == "Publish")
        .map(|c| {
            let message = c
                .body
                .split('&')
                .find_map(|kv| kv.strip_prefix("Message="))
                .unwrap_or_default();
            let message = url::form_urlencoded::parse(format!("m={message}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            serde_json::from_str(&message).expect("a JSON message")
        })
        .collect();
    let seen: Vec<&str> = published
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    assert_eq!(seen, kinds, "{published:#?}");
    assert!(published.iter().all(|m| m["run_id"] == id.as_str()));
}

#[test]
fn a_failing_webhook_is_said_and_the_run_goes_on() {
    let account = Account::fresh();
    let arn = topic(&account);
    let (url, _bodies) = webhook(500);
    let state = tempfile::tempdir().expect("state dir");
    let stderr = run_notifying(&account, state.path(), &arn, &url);
    assert!(
        stderr.contains(
            "warning: notification to the webhook failed: http status: 500; the drill goes on"
        ),
        "{stderr}"
    );
    let journal = support::journal_so_far(state.path(), &support::run_ids(state.path())[0]);
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "run_finished" && e["outcome"] == "succeeded")
    );
}

#[test]
fn a_runs_events_are_put_on_the_eventbridge_bus() {
    let account = Account::fresh();
    let state = tempfile::tempdir().expect("state dir");
    let before = account.calls().len();
    let out = account
        .evac_in(
            state.path(),
            &["run", "tests/fixtures/notify/eventbridge.yaml", "--yes"],
        )
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("notification to"), "{stderr}");
    let put: Vec<String> = account
        .calls()
        .split_off(before)
        .iter()
        .filter(|c| c.service == "events")
        .filter_map(|c| {
            let body: serde_json::Value = serde_json::from_str(&c.body).ok()?;
            body["Entries"][0]["DetailType"].as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(
        put,
        [
            "evac run_started",
            "evac step_started",
            "evac step_finished",
            "evac run_finished"
        ]
    );
}
