//! Throttling and 5xx answers, injected by a proxy between evac and the emulator:
//! the run ends in the planned state, the rollback in the seeded state, and the
//! journal misses nothing.

mod support;

use std::collections::BTreeMap;

use support::Account;
use support::proxy::{Fault, FaultProxy, Rule};

#[test]
fn a_run_and_its_rollback_survive_throttling_and_5xx() {
    let account = Account::fresh();
    account.seed();
    let seeded = account.world();
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![
            Rule::rate("UpdateAutoScalingGroup", Fault::Throttle, 34),
            Rule::rate("ChangeResourceRecordSets", Fault::ServerError, 34),
            Rule::nth(
                "ChangeResourceRecordSets",
                Fault::Latency(std::time::Duration::from_millis(300)),
                2,
            ),
            Rule::rate("DescribeAutoScalingGroups", Fault::Throttle, 10),
            Rule::rate("ListResourceRecordSets", Fault::ServerError, 10),
            Rule::rate("GetChange", Fault::Drop, 10),
        ],
    );
    let state = tempfile::tempdir().expect("state dir");
    let evac = |args: &[&str]| {
        let output = account
            .command("evac")
            .env("AWS_ENDPOINT_URL", &proxy.url)
            .args(args)
            .arg("--state-dir")
            .arg(state.path())
            .output()
            .expect("evac runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = evac(&[
        "run",
        "playbooks/evacuate-region.yaml",
        "--var",
        "bake=0s",
        "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let after = account.world();
    assert_eq!(after.groups["api-us-west-2"], (8, 8, 12, vec![]));
    assert_eq!(after.groups["worker-us-west-2"], (5, 5, 8, vec![]));
    assert_eq!(after.groups["api-us-east-1"], (0, 0, 12, vec![]));
    assert_eq!(after.groups["worker-us-east-1"], (0, 0, 8, vec![]));
    let planned: BTreeMap<String, i64> = [
        ("api-use1", 0),
        ("api-usw2", 100),
        ("www-use1", 0),
        ("www-usw2", 100),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    assert_eq!(after.weights, planned);
    let injected = proxy.injected();
    assert!(
        injected.get("UpdateAutoScalingGroup").copied().unwrap_or(0) > 0,
        "{injected:?}"
    );
    assert!(
        injected
            .get("ChangeResourceRecordSets")
            .copied()
            .unwrap_or(0)
            > 0,
        "{injected:?}"
    );

    let run_id = support::run_ids(state.path()).pop().expect("a run");
    let journal = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(
            state
                .path()
                .join("runs")
                .join(&run_id)
                .join("journal.jsonl"),
        )
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect()
    };
    let entries = journal();
    let actions: Vec<&str> = entries
        .iter()
        .filter(|e| e["event"] == "intent")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions.len(), 8, "4 groups and 4 increments");
    for action in &actions {
        for event in ["applied", "converged"] {
            assert!(
                entries
                    .iter()
                    .any(|e| e["event"] == event && e["action"] == *action),
                "{action} has no {event}"
            );
        }
    }
    // One change batch accepted per increment, whatever was retried before it.
    let accepted = entries
        .iter()
        .filter(|e| e["event"] == "applied" && e["change_id"].is_string())
        .count();
    assert_eq!(accepted, 4);

    let (code, stderr) = evac(&["rollback", &run_id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(account.world(), seeded);
    let entries = journal();
    for action in &actions {
        assert!(
            entries
                .iter()
                .any(|e| e["event"] == "rollback_converged" && e["action"] == *action),
            "{action} was not rolled back"
        );
    }
    let calls = proxy.calls();
    assert!(
        calls["UpdateAutoScalingGroup"] > 8,
        "retried through the faults: {calls:?}"
    );
}

#[test]
fn verbose_logs_each_aws_call_with_its_retries_and_no_credentials() {
    let account = Account::fresh();
    account.seed();
    // The first DescribeAutoScalingGroups is throttled, then retried.
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::nth("DescribeAutoScalingGroups", Fault::Throttle, 1)],
    );
    let output = account
        .command("evac")
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env_remove("EVAC_LOG")
        .env_remove("RUST_LOG")
        .args(["plan", "playbooks/evacuate-region.yaml", "-v"])
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let calls: Vec<&str> = stderr.lines().filter(|l| l.contains("evac::aws")).collect();
    let total: u32 = proxy.calls().values().sum();
    // One line per call, each retry counted in its call's line, not a line of its own.
    let retried = calls
        .iter()
        .filter(|l| {
            l.contains("operation=\"DescribeAutoScalingGroups\"") && l.contains("retries=1")
        })
        .count();
    assert_eq!(retried, 1, "{stderr}");
    assert_eq!(calls.len() as u32, total - 1, "{stderr}");
    for line in &calls {
        for field in [
            "service=",
            "operation=",
            "region=",
            "latency_ms=",
            "retries=",
            "status=",
        ] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
    assert!(
        calls
            .iter()
            .any(|l| l.contains("service=\"Route 53\"") || l.contains("service=\"route53\"")),
        "{stderr}"
    );
    for secret in [&account.access_key, &account.secret_key] {
        assert!(!stderr.contains(secret.as_str()), "a credential was logged");
    }
    // Without -v nothing is logged.
    let quiet = account
        .command("evac")
        .env_remove("EVAC_LOG")
        .env_remove("RUST_LOG")
        .args(["plan", "playbooks/evacuate-region.yaml"])
        .output()
        .expect("evac runs");
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("evac::aws"));
}

/// A step AWS keeps refusing ends with AWS's error code and its kind in the journal
/// and the JSON output, so automation decides on `kind`, never on the text.
#[test]
fn a_step_aws_keeps_throttling_fails_with_its_code_and_kind_in_the_json() {
    let account = Account::fresh();
    account.seed();
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::rate("UpdateAutoScalingGroup", Fault::Throttle, 100)],
    );
    let state = tempfile::tempdir().expect("state dir");
    let output = account
        .command("evac")
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .args([
            "run",
            "playbooks/evacuate-region.yaml",
            "--var",
            "bake=0s",
            "--yes",
            "--output",
            "json",
            "--state-dir",
        ])
        .arg(state.path())
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let failed: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{stderr}");
    assert_eq!(failed[0]["code"], "Throttling", "{}", failed[0]);
    assert_eq!(failed[0]["kind"], "throttled", "{}", failed[0]);
}
