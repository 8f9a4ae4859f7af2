//! `evac report` and `evac history` from real emulator runs: figures checked against
//! the journal's own timestamps, snapshots with times redacted, and the HTML page
//! rendered in headless Chromium.

mod support;

use std::path::Path;
use std::time::SystemTime;

use support::Account;

fn evac(account: &Account, state: &Path, args: &[&str]) -> (i32, String, String) {
    let output = account
        .command("evac")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .expect("evac runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn journal(state: &Path, id: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(state.join("runs").join(id).join("journal.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect()
}

fn at(e: &serde_json::Value) -> SystemTime {
    evac::journal::parse_time(e["at"].as_str().expect("at")).expect("time")
}

fn secs(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).expect("ordered").as_secs_f64()
}

/// When traffic had left, as the journal tells it: the last change of `steps`
/// (actions starting so) in effect, or the last weight change in sync plus the
/// records' TTL (60 s in the seeded world: resolvers keep old answers that long),
/// whichever is later.
fn evacuated_at(entries: &[serde_json::Value], steps: &[&str], shift: &str) -> SystemTime {
    let last = |prefixes: &[&str]| {
        entries
            .iter()
            .rev()
            .find(|e| {
                e["event"] == "converged"
                    && e["action"]
                        .as_str()
                        .is_some_and(|a| prefixes.iter().any(|p| a.starts_with(p)))
            })
            .map(at)
    };
    let done = last(steps).expect("the evacuation ended");
    match last(&[shift]) {
        Some(synced) => done.max(synced + std::time::Duration::from_secs(60)),
        None => done,
    }
}

/// A drill that evacuated and was rolled back.
fn drill() -> (Account, tempfile::TempDir, String) {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let (code, _, stderr) = evac(
        &account,
        state.path(),
        &[
            "run",
            "playbooks/evacuate-region.yaml",
            "--var",
            "bake=1s",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let id = support::run_ids(state.path()).pop().expect("a run");
    let (code, _, stderr) = evac(
        &account,
        state.path(),
        &["rollback", &id, "--yes", "--fast"],
    );
    assert_eq!(code, 0, "{stderr}");
    (account, state, id)
}

#[test]
fn report_figures_match_the_journal() {
    let (account, state, id) = drill();
    let (code, json, stderr) = evac(&account, state.path(), &["report", &id, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("report JSON");
    let entries = journal(state.path(), &id);
    let first_change = entries
        .iter()
        .find(|e| e["event"] == "applied")
        .expect("a change");
    let evacuated = evacuated_at(
        &entries,
        &["shift-traffic:", "drain-source:"],
        "shift-traffic:",
    );
    let expected = secs(at(first_change), evacuated);
    let reported = report["time_to_evacuate_secs"]
        .as_f64()
        .expect("time to evacuate");
    assert!(
        (reported - expected).abs() < 0.001,
        "reported {reported}, journal says {expected}"
    );
    assert!(
        reported >= 4.0,
        "four 1 s bakes happen inside the evacuation: {reported}"
    );
    let started = entries
        .iter()
        .find(|e| e["event"] == "rollback_started")
        .expect("rollback started");
    let finished = entries
        .iter()
        .find(|e| e["event"] == "rollback_finished")
        .expect("rollback finished");
    let fail_back = report["time_to_fail_back_secs"]
        .as_f64()
        .expect("time to fail back");
    assert!((fail_back - secs(at(started), at(finished))).abs() < 0.001);
    assert_eq!(report["result"], "succeeded, rolled back");
    let timeline = report["timeline"].as_array().expect("timeline");
    let count = |kind: &str| timeline.iter().filter(|s| s["kind"] == kind).count();
    assert_eq!(
        (
            count("step"),
            count("increment"),
            count("bake"),
            count("rollback")
        ),
        (4, 4, 4, 1)
    );
    let changes = report["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 8);
    assert!(changes.iter().all(|c| c["rolled_back"] == true));
    assert!(changes.iter().all(|c| c["rollback"] == "restored"));
    assert_eq!(report["time_stopped_secs"], 0.0, "never stopped");
    assert_eq!(
        report["previous"],
        serde_json::Value::Null,
        "the first run of this playbook"
    );
}

fn redactions() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(
        r"\d{8}T\d{6}(\.\d{3})?Z-[a-z0-9.-]+-[0-9a-f]{4}",
        "[RUN_ID]",
    );
    s.add_filter(r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "[TIME]");
    s.add_filter(r#""(\w+_secs)": [0-9.e-]+"#, r#""$1": "[SECS]""#);
    s.add_filter(r"\+?\d+m\d\ds|\+?\d+\.\ds", "[SECS]");
    s.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    s.add_filter(r"\b[0-9]{12}\b", "[ACCOUNT]");
    s.add_filter(r"sha256 `[0-9a-f]{12}`", "sha256 `[SHA]`");
    s.add_filter(r"\b[0-9A-Z]{18,32}\b", "[ZONE_ID]");
    s.add_filter(r#""(user|host|version)": "[^"]*""#, r#""$1": "[REDACTED]""#);
    s.add_filter(r"ran by \| .* \|", "ran by | [REDACTED] |");
    s.add_filter(
        r#"started by [^"\n]* on [^"\s]+"#,
        "started by [USER] on [HOST]",
    );
    s.add_filter(
        r#"approved by [^"\n]* with --yes"#,
        "approved by [USER] with --yes",
    );
    s
}

#[test]
fn markdown_and_json_reports_snapshot() {
    let (account, state, id) = drill();
    let (_, markdown, _) = evac(&account, state.path(), &["report", &id]);
    let (_, json, _) = evac(&account, state.path(), &["report", &id, "--output", "json"]);
    // The groups of a step are updated concurrently, so their changes can be
    // journaled in either order: the changes are sorted before the snapshot, and the
    // Markdown is snapshotted up to its changes table.
    redactions().bind(|| {
        insta::assert_snapshot!(
            "report_markdown",
            markdown.split("## Changes").next().unwrap_or_default()
        );
        let mut value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        if let Some(changes) = value["changes"].as_array_mut() {
            changes.sort_by_key(|c| {
                (
                    c["step"].to_string(),
                    c["resource"].to_string(),
                    c["before"].to_string(),
                )
            });
        }
        insta::assert_snapshot!(
            "report_json",
            serde_json::to_string_pretty(&value).expect("json")
        );
    });
}

#[test]
fn history_lists_runs_in_order_with_deltas_including_failed_and_rolled_back() {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let path = state.path();
    let run = |bake: &str| {
        let (code, _, stderr) = evac(
            &account,
            path,
            &[
                "run",
                "playbooks/evacuate-region.yaml",
                "--var",
                &format!("bake={bake}"),
                "--yes",
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        let id = support::run_ids(path).pop().expect("a run");
        let (code, _, stderr) = evac(&account, path, &["rollback", &id, "--yes", "--fast"]);
        assert_eq!(code, 0, "{stderr}");
        id
    };
    let first = run("0s");
    let (code, _, _) = evac(
        &account,
        path,
        &[
            "run",
            "tests/fixtures/run/check-fails.yaml",
            "--yes",
            "--rollback-on-failure",
        ],
    );
    assert_eq!(code, 1);
    let failed = support::run_ids(path).pop().expect("the failed run");
    // Bakes long enough to outweigh the pacing of the first run's back-to-back calls.
    let second = run("2s");
    let third = run("0s");
    let (code, json, _) = evac(&account, path, &["history", "--output", "json"]);
    assert_eq!(code, 0);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).expect("history JSON");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["run_id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            first.as_str(),
            failed.as_str(),
            second.as_str(),
            third.as_str()
        ]
    );
    assert_eq!(rows[0]["result"], "succeeded, rolled back");
    assert_eq!(
        rows[1]["result"],
        "failed at step never-alarms, rolled back"
    );
    // Its shift finished before its check failed: the traffic did move.
    assert!(
        rows[1]["time_to_evacuate_secs"].as_f64().is_some(),
        "{:?}",
        rows[1]
    );
    assert_eq!(
        rows[1]["delta_secs"],
        serde_json::Value::Null,
        "no earlier run of check-fails"
    );
    let (t1, t2, t3) = (
        rows[0]["time_to_evacuate_secs"].as_f64().expect("t1"),
        rows[2]["time_to_evacuate_secs"].as_f64().expect("t2"),
        rows[3]["time_to_evacuate_secs"].as_f64().expect("t3"),
    );
    assert_eq!(
        rows[0]["delta_secs"],
        serde_json::Value::Null,
        "nothing before the first"
    );
    assert_eq!(
        rows[2]["delta_secs"],
        serde_json::Value::Null,
        "the only earlier run has other params: no delta"
    );
    let delta = rows[3]["delta_secs"].as_f64().expect("delta");
    assert!((delta - (t3 - t1)).abs() < 1e-9, "{delta} != {t3} - {t1}");
    let (_, only, _) = evac(
        &account,
        path,
        &["history", "--playbook", "check-fails", "--output", "json"],
    );
    let only: Vec<serde_json::Value> = serde_json::from_str(&only).expect("JSON");
    assert_eq!(only.len(), 1);
    let (_, table, _) = evac(&account, path, &["history"]);
    assert!(
        table.contains("slower") || table.contains("faster"),
        "{table}"
    );
    // The report of a run with other params compares, and says it is not like for
    // like.
    assert!(
        t2 > t1,
        "four 2 s bakes made the second run slower: {t2} vs {t1}"
    );
    let (_, markdown, _) = evac(&account, path, &["report", &second]);
    assert!(
        markdown.contains(&format!("slower than run {first}"))
            && markdown.contains("not like for like: bake=0s there, bake=2s here"),
        "{markdown}"
    );
}

#[test]
fn the_html_report_is_self_contained_and_draws_its_timeline_in_chromium() {
    let (account, state, id) = drill();
    // Reports are written outside the state dir (evac refuses to write inside it).
    let out = tempfile::tempdir().expect("report dir");
    let page = out.path().join("report.html");
    let (code, _, stderr) = evac(
        &account,
        state.path(),
        &[
            "report",
            &id,
            "--output",
            "html",
            "--out",
            page.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(&page).expect("html written");
    for outside in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<img",
    ] {
        assert!(
            !html.contains(outside),
            "the page refers outside itself: {outside}"
        );
    }
    assert!(
        html.contains("<svg") && html.contains("class=\"bar step\""),
        "the timeline is drawn"
    );

    let pixels = Screenshot::of(&page);
    let count = |rgb| pixels.count(rgb);
    assert!(count((0x2b, 0x6c, 0xb0)) > 500, "step bars are drawn");
    assert!(count((0x2f, 0x85, 0x5a)) > 50, "increment bars are drawn");
    assert!(count((0xc5, 0x30, 0x30)) > 100, "the rollback bar is drawn");
    assert!(
        html.matches("<text class=\"tick\"").count() > 2,
        "the time axis has more than two ticks"
    );
    assert!(
        html.contains("class=\"legend\""),
        "a legend says what colours mean"
    );
}

/// A page as headless Chrome or Chromium draws it.
struct Screenshot {
    pixels: Vec<u8>,
    samples: usize,
}

impl Screenshot {
    fn of(page: &Path) -> Self {
        // ./scripts/test finds the browser (EVAC_BROWSER, else an installed one).
        let chromium = std::env::var_os("EVAC_BROWSER")
            .filter(|b| !b.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| {
                ["chromium", "chromium-browser", "google-chrome"]
                    .iter()
                    .find_map(|b| which(b))
            })
            .unwrap_or_else(|| {
                panic!("no Chrome or Chromium: set EVAC_BROWSER, or run ./scripts/test, which finds or installs one")
            });
        let scratch = tempfile::tempdir().expect("browser dir");
        let shot = scratch.path().join("report.png");
        let output = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1000,2000",
            ])
            .arg(format!(
                "--user-data-dir={}",
                scratch.path().join("profile").display()
            ))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        assert!(
            shot.exists(),
            "no screenshot: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&shot).expect("png"),
        ));
        let mut reader = decoder.read_info().expect("png header");
        let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut pixels).expect("png frame");
        pixels.truncate(info.buffer_size());
        Screenshot {
            pixels,
            samples: info.color_type.samples(),
        }
    }

    /// How many pixels have this colour.
    fn count(&self, rgb: (u8, u8, u8)) -> usize {
        self.pixels
            .chunks(self.samples)
            .filter(|p| (p[0], p[1], p[2]) == rgb)
            .count()
    }
}

fn which(binary: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(binary))
        .find(|p| p.is_file())
}

const BASE: &str = "tests/fixtures/plan/base.yaml";

/// The report of `id` in every format: JSON (parsed), Markdown, and the HTML page
/// as written.
fn reports(
    account: &Account,
    state: &Path,
    id: &str,
) -> (serde_json::Value, String, String, tempfile::TempDir) {
    let (code, json, stderr) = evac(account, state, &["report", id, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, markdown, stderr) = evac(account, state, &["report", id]);
    assert_eq!(code, 0, "{stderr}");
    let out = tempfile::tempdir().expect("report dir");
    let page = out.path().join("report.html");
    let (code, _, stderr) = evac(
        account,
        state,
        &[
            "report",
            id,
            "--output",
            "html",
            "--out",
            page.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(&page).expect("html");
    (
        serde_json::from_str(&json).expect("report JSON"),
        markdown,
        html,
        out,
    )
}

/// Starts `evac run BASE --yes` in the background with short bakes.
fn start(account: &Account, state: &Path) -> std::process::Child {
    let mut cmd = account.process();
    cmd.args([
        "run",
        BASE,
        "--var",
        "bake=2s",
        "--yes",
        "--stop-poll",
        "1s",
        "--state-dir",
    ])
    .arg(state)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("evac starts")
}

fn first(
    entries: &[serde_json::Value],
    what: impl Fn(&serde_json::Value) -> bool,
) -> &serde_json::Value {
    entries.iter().find(|e| what(e)).expect("the entry")
}

fn kinds(report: &serde_json::Value, field: &str) -> Vec<String> {
    report[field]
        .as_array()
        .expect(field)
        .iter()
        .map(|m| m["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn an_interrupted_and_resumed_run_reports_the_stop_apart_from_the_evacuation() {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let mut child = start(&account, state.path());
    support::until("the first bake", || support::in_first_bake(state.path()));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sends SIGINT to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    assert_eq!(
        support::exit_within(&mut child, std::time::Duration::from_secs(60)),
        4
    );
    let id = support::run_ids(state.path()).pop().expect("a run");
    let (code, _, stderr) = evac(&account, state.path(), &["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    // Resume first says what it found.
    assert!(
        stderr.contains(
            "resuming run of plan-fixture: it was interrupted; steps done: 1 of 3 (scale)"
        ) && stderr.contains("going on with step shift"),
        "{stderr}"
    );

    let (report, markdown, html, _dir) = reports(&account, state.path(), &id);
    assert_eq!(report["result"], "interrupted, resumed, succeeded");
    let moments = kinds(&report, "moments");
    for kind in ["started", "interrupted", "resumed", "succeeded"] {
        assert!(moments.contains(&kind.to_owned()), "{kind} in {moments:?}");
    }
    // The time stopped is from the end of the interrupted process to the resume's
    // start, and is not counted in the time to evacuate.
    let entries = journal(state.path(), &id);
    let stopped_at = at(first(&entries, |e| e["event"] == "run_finished"));
    let resumed_at = at(first(&entries, |e| {
        e["event"] == "attached" && e["command"] == "resume"
    }));
    let stopped = secs(stopped_at, resumed_at);
    let reported_stop = report["time_stopped_secs"].as_f64().expect("time stopped");
    assert!(
        (reported_stop - stopped).abs() < 0.001,
        "{reported_stop} vs {stopped}"
    );
    let applied = at(first(&entries, |e| e["event"] == "applied"));
    let evacuated = evacuated_at(&entries, &["shift:", "drain:"], "shift:");
    let tte = report["time_to_evacuate_secs"].as_f64().expect("evacuated");
    assert!(
        (tte - (secs(applied, evacuated) - stopped)).abs() < 0.001,
        "{tte} is the window less the stop"
    );
    let timeline = report["timeline"].as_array().expect("timeline");
    let stop = timeline
        .iter()
        .find(|s| s["kind"] == "stopped")
        .expect("a stopped span");
    assert_eq!(stop["label"], "stopped: interrupted");
    let stop_end = stop["end_secs"].as_f64().expect("end");
    for bake in timeline.iter().filter(|s| s["kind"] == "bake") {
        let (from, to) = (
            bake["start_secs"].as_f64().expect("s"),
            bake["end_secs"].as_f64().expect("e"),
        );
        assert!(
            to <= stop["start_secs"].as_f64().expect("s") || from >= stop_end - 1e-6,
            "a bake does not span the stop: {bake}"
        );
    }
    assert!(
        markdown.contains("| result | interrupted, resumed, succeeded |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| time stopped |")
            && markdown.contains("not counted in time to evacuate"),
        "{markdown}"
    );
    assert!(
        markdown.contains("interrupted (Ctrl-C)") && markdown.contains("resumed ("),
        "{markdown}"
    );
    assert!(
        html.contains("stopped: interrupted") && html.contains("interrupted, resumed, succeeded")
    );
    let page = _dir.path().join("report.html");
    assert!(
        Screenshot::of(&page).count((0xa0, 0xae, 0xc0)) > 20,
        "the stop is drawn"
    );
}

#[test]
fn a_halted_resumed_and_rolled_back_run_says_so_and_prints_the_condition() {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let set_alarm = |value| account.set_alarm(value);
    let mut child = start(&account, state.path());
    support::until("the first bake", || support::in_first_bake(state.path()));
    set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    assert_eq!(
        support::exit_within(&mut child, std::time::Duration::from_secs(60)),
        6
    );
    set_alarm(aws_sdk_cloudwatch::types::StateValue::Ok);
    let id = support::run_ids(state.path()).pop().expect("a run");
    let (code, _, stderr) = evac(&account, state.path(), &["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = evac(
        &account,
        state.path(),
        &["rollback", &id, "--yes", "--fast"],
    );
    assert_eq!(code, 0, "{stderr}");

    let (report, markdown, html, dir) = reports(&account, state.path(), &id);
    let result =
        "halted by alarm api-5xx-rate (us-west-2) in ALARM, resumed, succeeded, rolled back";
    assert_eq!(report["result"], result);
    let moments = kinds(&report, "moments");
    for kind in [
        "stop_condition",
        "halted",
        "resumed",
        "succeeded",
        "rollback",
        "rolled_back",
    ] {
        assert!(moments.contains(&kind.to_owned()), "{kind} in {moments:?}");
    }
    assert!(report["time_stopped_secs"].as_f64().expect("stopped") > 0.0);
    assert!(
        markdown.contains(&format!("| result | {result} |")),
        "{markdown}"
    );
    assert!(
        markdown.contains("stop condition: alarm api-5xx-rate (us-west-2) in ALARM"),
        "{markdown}"
    );
    // Printed on the chart, not only in a tooltip.
    assert!(
        html.contains("<text class=\"stop\"")
            && html.contains("stop condition: alarm api-5xx-rate (us-west-2) is ALARM"),
        "the condition is printed on the chart"
    );
    assert!(html.contains(result));
    let shot = Screenshot::of(&dir.path().join("report.html"));
    assert!(
        shot.count((0xe5, 0x3e, 0x3e)) > 20,
        "the stop-condition line and its label are drawn"
    );
    assert!(shot.count((0xa0, 0xae, 0xc0)) > 20, "the stop is drawn");
}

#[test]
fn a_declined_approval_and_its_resume_show_who_answered() {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = account.process();
    cmd.args(["run", "tests/fixtures/waves/gate.yaml", "--state-dir"])
        .arg(state.path());
    let mut pty = support::pty::Pty::open();
    let mut child = pty.spawn(cmd);
    support::until("the run's confirmation", || {
        pty.text().contains("against AWS now? [y/N]")
    });
    pty.type_line("y");
    support::until("the approval's question", || {
        pty.text().contains("Scale up us-west-2? [y/N]")
    });
    pty.type_line("n");
    assert_eq!(
        support::exit_within(&mut child, std::time::Duration::from_secs(30)),
        4,
        "{}",
        pty.text()
    );
    let id = support::run_ids(state.path()).pop().expect("a run");
    let (code, _, stderr) = evac(&account, state.path(), &["resume", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");

    let user = evac::journal::user_name();
    let (report, markdown, html, dir) = reports(&account, state.path(), &id);
    let result = format!("stopped: approval of step gate declined by {user}, resumed, succeeded");
    assert_eq!(report["result"], result.as_str());
    let texts: Vec<&str> = report["moments"]
        .as_array()
        .expect("moments")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(
        texts.contains(&format!("step gate declined by {user}").as_str()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!("step gate approved by {user} with --yes").as_str()),
        "{texts:?}"
    );
    assert_eq!(report["user"], user.as_str());
    assert!(
        markdown.contains(&format!("| result | {result} |")),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("step gate declined by {user}")),
        "{markdown}"
    );
    assert!(html.contains(&format!("step gate declined by {user}")));
    let shot = Screenshot::of(&dir.path().join("report.html"));
    assert!(shot.count((0xa0, 0xae, 0xc0)) > 20, "the stop is drawn");
}

#[test]
fn a_drill_is_scored_against_its_rto_with_its_phases() {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let dir = tempfile::tempdir().expect("dir");
    let text = std::fs::read_to_string("playbooks/evacuate-region.yaml").expect("playbook");
    let with_rto = |rto: &str| {
        let path = dir.path().join(format!("rto-{rto}.yaml"));
        std::fs::write(
            &path,
            text.replacen("\ngroups:", &format!("\nrto: {rto}\n\ngroups:"), 1),
        )
        .expect("written");
        path.display().to_string()
    };
    // The plan scores its estimate: the seeded drill takes minutes (2m bakes, a 60 s
    // TTL), well over 1s and within 1h.
    let (code, plan, _) = evac(&account, state.path(), &["plan", &with_rto("1s")]);
    assert_eq!(code, 0, "{plan}");
    assert!(
        plan.contains("RTO: 1s; estimated time to evacuate") && plan.contains("over it by"),
        "{plan}"
    );
    assert!(plan.contains("is over the rto of 1s by"), "{plan}");
    let playbook = with_rto("1h");
    let (code, plan, _) = evac(&account, state.path(), &["plan", &playbook]);
    assert_eq!(code, 0, "{plan}");
    assert!(
        plan.contains("RTO: 1h; estimated time to evacuate") && plan.contains("within it by"),
        "{plan}"
    );

    let (code, _, stderr) = evac(
        &account,
        state.path(),
        &["run", &playbook, "--var", "bake=1s", "--yes"],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, json, stderr) = evac(
        &account,
        state.path(),
        &["report", "latest", "--output", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("report JSON");
    let tte = report["time_to_evacuate_secs"].as_f64().expect("evacuated");
    assert_eq!(report["rto"]["rto_secs"], 3600.0);
    assert_eq!(report["rto"]["met"], true);
    let by = report["rto"]["by_secs"].as_f64().expect("by");
    assert!(
        (by - (3600.0 - tte)).abs() < 0.001,
        "{by} to spare of {tte}"
    );
    // The phases: the scale-up, the shifts (the last one's 60 s TTL included), the
    // drain; each as long as its steps.
    let phases: Vec<(String, f64)> = report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap_or_default().to_owned(),
                p["duration_secs"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    let names: Vec<&str> = phases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["capacity", "traffic", "drain"], "{phases:?}");
    let step = |id: &str| {
        report["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .find(|s| s["kind"] == "step" && s["label"] == id)
            .map(|s| {
                s["end_secs"].as_f64().unwrap_or(0.0) - s["start_secs"].as_f64().unwrap_or(0.0)
            })
            .expect("the step's span")
    };
    assert!(
        (phases[0].1 - step("scale-target")).abs() < 0.001,
        "{phases:?}"
    );
    assert!(
        (phases[1].1 - (step("shift-traffic") + 60.0)).abs() < 0.001,
        "{phases:?}"
    );
    assert!(
        (phases[2].1 - step("drain-source")).abs() < 0.001,
        "{phases:?}"
    );
    let (code, markdown, _) = evac(&account, state.path(), &["report", "latest"]);
    assert_eq!(code, 0);
    assert!(markdown.contains("| rto | 60m00s: met, "), "{markdown}");
    assert!(markdown.contains("| phases | capacity "), "{markdown}");
    let (code, history, _) = evac(&account, state.path(), &["history"]);
    assert_eq!(code, 0);
    assert!(history.contains("met (60m00s)"), "{history}");
}
