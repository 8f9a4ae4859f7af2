//! The real day: the region being left does not answer. Every request signed for
//! it is held unanswered by the test proxy, as an impaired region's APIs do.
//!
//! The drill is the example playbook in its failback direction: leave us-west-2
//! for us-east-1 (Route 53's control plane is in us-east-1, so the region held is
//! never the one traffic changes depend on).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::proxy::{Fault, FaultProxy, Rule};
use support::{Account, exit_within};

const DRILL: &str = "playbooks/evacuate-region.yaml";
const VARS: [&str; 6] = [
    "--var",
    "source=us-west-2",
    "--var",
    "target=us-east-1",
    "--var",
    "bake=1s",
];
const DOWN: &str = "us-west-2";

/// `evac ARGS` for `account`, through `proxy`, with the state in `state`; output to
/// files under `state`'s parent named `log`.
fn through(
    account: &Account,
    proxy: &FaultProxy,
    state: &Path,
    args: &[&str],
    log: &str,
) -> (Command, std::path::PathBuf) {
    let mut cmd = account.process();
    let out = state.with_file_name(log);
    cmd.args(args)
        .arg("--state-dir")
        .arg(state)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out.with_extension("out")).expect("log"))
        .stderr(std::fs::File::create(out.with_extension("err")).expect("log"));
    (cmd, out)
}

fn read(path: &Path, ext: &str) -> String {
    std::fs::read_to_string(path.with_extension(ext)).unwrap_or_default()
}

#[test]
fn a_region_that_does_not_answer_is_named_then_evacuated_from_its_last_known_state_and_failed_back()
{
    let account = Account::fresh();
    account.seed();
    // us-west-2 serves everything; the drill leaves it.
    account.set_weights(&[
        ("api-usw2", 100),
        ("api-use1", 0),
        ("www-usw2", 100),
        ("www-use1", 0),
    ]);
    let before = account.world();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");

    // The day before: a plan, while us-west-2 answers, records what it read there.
    account
        .evac_in(&state, &[&["plan", DRILL][..], &VARS].concat())
        .assert()
        .success();
    let known: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.join("known/us-west-2.json")).expect("us-west-2's last known state"),
    )
    .expect("JSON");
    assert_eq!(
        known["groups"]["api-us-west-2"]["value"]["capacity"]["desired"],
        2
    );
    assert_eq!(
        known["groups"]["worker-us-west-2"]["value"]["capacity"]["desired"],
        1
    );

    // The day: us-west-2 holds every request unanswered.
    let proxy = FaultProxy::start(&account.endpoint, vec![Rule::region(DOWN, Fault::Hold)]);

    // `plan` names the region, with the way forward, and is blocked (exit 3).
    let (mut cmd, log) = through(
        &account,
        &proxy,
        &state,
        &[&["plan", DRILL][..], &VARS].concat(),
        "plan",
    );
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the plan");
    let code = exit_within(&mut child, Duration::from_secs(90));
    let (out, err) = (read(&log, "out"), read(&log, "err"));
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(
        out.contains("us-west-2 is not answering (")
            && out.contains("unanswered after 10s)")
            && out.contains("`--region-down us-west-2`"),
        "{out}"
    );
    eprintln!(
        "plan named the silent region in {:?}:\n{out}",
        started.elapsed()
    );
    assert!(proxy.calls_in(DOWN) > 0, "the plan did try us-west-2");

    // `run --region-down`, with us-west-2 as the configured region too: STS and the
    // credentials must be reached elsewhere.
    let sent_before = proxy.calls_in(DOWN);
    let (mut cmd, log) = through(
        &account,
        &proxy,
        &state,
        &[
            &["run", DRILL][..],
            &VARS,
            &["--region-down", DOWN, "--yes", "--output", "json"],
        ]
        .concat(),
        "run",
    );
    cmd.env("AWS_REGION", DOWN);
    let mut child = cmd.spawn().expect("start the run");
    let code = exit_within(&mut child, Duration::from_secs(180));
    let (out, err) = (read(&log, "out"), read(&log, "err"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        proxy.calls_in(DOWN),
        sent_before,
        "the run sent nothing to the region that is down"
    );

    // The target absorbed the source's last known capacity; all traffic moved;
    // the source was left as it was.
    let after = account.world();
    let desired = |w: &support::World, g: &str| w.groups[g].1;
    assert_eq!(desired(&after, "api-us-east-1"), 6 + 2);
    assert_eq!(desired(&after, "worker-us-east-1"), 4 + 1);
    assert_eq!(desired(&after, "api-us-west-2"), 2);
    assert_eq!(desired(&after, "worker-us-west-2"), 1);
    for (set, weight) in [
        ("api-use1", 100),
        ("api-usw2", 0),
        ("www-use1", 100),
        ("www-usw2", 0),
    ] {
        assert_eq!(after.weights[set], weight, "{set}");
    }

    // The journal: the drain was skipped, as the operator chose; the first change
    // came within 30 s of the start.
    let run_id = support::run_ids(&state).pop().expect("a run");
    let journal = support::journal_so_far(&state, &run_id);
    let skipped: Vec<(&str, &str)> = journal
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .map(|e| {
            (
                e["step"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(skipped, [("drain-source", "us-west-2 is down")]);
    let at = |e: &serde_json::Value| {
        e["at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .expect("entry time")
    };
    let first_change = journal
        .iter()
        .find(|e| e["event"] == "applied")
        .map(at)
        .expect("a change");
    let to_first = first_change.duration_since(at(&journal[0]));
    eprintln!("first change {to_first:#} after the run started");
    assert!(to_first.as_secs() < 30, "{to_first:#}");

    // So does status.
    let status = account
        .evac_in(&state, &["status", &run_id])
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("  skipped  drain-source [drain]"),
        "{status}"
    );

    // The report says the run was made with a region down, and what was skipped.
    let report = account
        .evac_in(&state, &["report", &run_id])
        .output()
        .expect("report");
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains("| region down | us-west-2: nothing sent to it; planned from its last known state, read ")
            && report.contains("| skipped | `drain-source`: us-west-2 is down |"),
        "{report}"
    );

    // us-west-2 answers again. A plain resume changes nothing and says what was
    // skipped; `resume --skipped` drains it, reading it live first.
    proxy.release();
    let (mut cmd, log) = through(
        &account,
        &proxy,
        &state,
        &["resume", &run_id, "--yes"],
        "resume",
    );
    let code = exit_within(
        &mut cmd.spawn().expect("start the resume"),
        Duration::from_secs(60),
    );
    let err = read(&log, "err");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("with 1 step(s) skipped (drain-source: us-west-2 is down)")
            && err.contains(&format!("`evac resume {run_id} --skipped`")),
        "{err}"
    );
    assert_eq!(account.world(), after);
    let (mut cmd, log) = through(
        &account,
        &proxy,
        &state,
        &["resume", &run_id, "--skipped", "--yes"],
        "resume-skipped",
    );
    let code = exit_within(
        &mut cmd.spawn().expect("start the resume"),
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{}\n{}", read(&log, "out"), read(&log, "err"));
    let drained = account.world();
    assert_eq!(desired(&drained, "api-us-west-2"), 0);
    assert_eq!(desired(&drained, "worker-us-west-2"), 0);

    // The rollback fails back, exactly: the drain too.
    let (mut cmd, log) = through(
        &account,
        &proxy,
        &state,
        &["rollback", &run_id, "--yes"],
        "rollback",
    );
    let mut child = cmd.spawn().expect("start the rollback");
    let code = exit_within(&mut child, Duration::from_secs(120));
    assert_eq!(code, 0, "{}\n{}", read(&log, "out"), read(&log, "err"));
    assert_eq!(account.world(), before);
}

#[test]
fn a_region_that_answers_only_with_errors_is_named_with_them() {
    let account = Account::fresh();
    account.seed();
    account.set_weights(&[
        ("api-usw2", 100),
        ("api-use1", 0),
        ("www-usw2", 100),
        ("www-use1", 0),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    // Every request to us-west-2 is answered 503 ServiceUnavailable: an answer,
    // so not silence, and a failure every retry meets.
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::region(DOWN, Fault::ServerError)],
    );
    let (mut cmd, log) = through(
        &account,
        &proxy,
        &state,
        &[&["plan", DRILL][..], &VARS].concat(),
        "plan",
    );
    let mut child = cmd.spawn().expect("start the plan");
    let code = exit_within(&mut child, Duration::from_secs(90));
    let (out, err) = (read(&log, "out"), read(&log, "err"));
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(
        out.contains("us-west-2 is failing (failed to ")
            && out.contains("ServiceUnavailable")
            && out.contains("--region-down us-west-2"),
        "{out}"
    );
    // No earlier plan: nothing is known of us-west-2 to plan it from.
    assert!(out.contains("and there is no last known state"), "{out}");
}
