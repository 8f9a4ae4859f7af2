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

fn runs(state: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state.join("runs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn journal(state: &Path, id: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(state.join("runs").join(id).join("journal.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect()
}

fn at(e: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339_weak(e["at"].as_str().expect("at")).expect("time")
}

fn secs(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).expect("ordered").as_secs_f64()
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
    let id = runs(state.path()).pop().expect("a run");
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
    let (code, json, stderr) = evac(&account, state.path(), &["report", &id, "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("report JSON");
    let entries = journal(state.path(), &id);
    let first_change = entries
        .iter()
        .find(|e| e["event"] == "applied")
        .expect("a change");
    let evacuated = entries
        .iter()
        .rev()
        .find(|e| {
            e["event"] == "converged"
                && e["action"].as_str().is_some_and(|a| {
                    a.starts_with("shift-traffic:") || a.starts_with("drain-source:")
                })
        })
        .expect("the evacuation ended");
    let expected = secs(at(first_change), at(evacuated));
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
    s.add_filter(r"sha256 `[0-9a-f]{12}`", "sha256 `[SHA]`");
    s.add_filter(r"\b[0-9A-Z]{18,32}\b", "[ZONE_ID]");
    s.add_filter(r#""(user|host|version)": "[^"]*""#, r#""$1": "[REDACTED]""#);
    s.add_filter(r"ran by \| .* \|", "ran by | [REDACTED] |");
    s
}

#[test]
fn markdown_and_json_reports_snapshot() {
    let (account, state, id) = drill();
    let (_, markdown, _) = evac(&account, state.path(), &["report", &id]);
    let (_, json, _) = evac(&account, state.path(), &["report", &id, "--format", "json"]);
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
        let id = runs(path).pop().expect("a run");
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
    let failed = runs(path).pop().expect("the failed run");
    // Bakes long enough to outweigh the pacing of the first run's back-to-back calls.
    let second = run("2s");
    let (code, json, _) = evac(&account, path, &["history", "--output", "json"]);
    assert_eq!(code, 0);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).expect("history JSON");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["run_id"].as_str()).collect();
    assert_eq!(ids, [first.as_str(), failed.as_str(), second.as_str()]);
    assert_eq!(rows[0]["result"], "succeeded, rolled back");
    assert_eq!(rows[1]["result"], "failed, rolled back");
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
    let (t1, t2) = (
        rows[0]["time_to_evacuate_secs"].as_f64().expect("t1"),
        rows[2]["time_to_evacuate_secs"].as_f64().expect("t2"),
    );
    assert_eq!(
        rows[0]["delta_secs"],
        serde_json::Value::Null,
        "nothing before the first"
    );
    let delta = rows[2]["delta_secs"].as_f64().expect("delta");
    assert!((delta - (t2 - t1)).abs() < 1e-9, "{delta} != {t2} - {t1}");
    assert!(
        delta > 3.0,
        "four 2 s bakes made the second run slower: {delta}"
    );
    let (_, only, _) = evac(
        &account,
        path,
        &["history", "--playbook", "check-fails", "--output", "json"],
    );
    let only: Vec<serde_json::Value> = serde_json::from_str(&only).expect("JSON");
    assert_eq!(only.len(), 1);
    let (_, table, _) = evac(&account, path, &["history"]);
    assert!(table.contains("slower"), "{table}");
    let (_, markdown, _) = evac(&account, path, &["report", &second]);
    assert!(
        markdown.contains(&format!("slower than run {first}")),
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
            "--format",
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
    let shot = state.path().join("report.png");
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
            "--window-size=1000,1400",
        ])
        .arg(format!(
            "--user-data-dir={}",
            state.path().join("profile").display()
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
    let step = info.color_type.samples();
    let count = |rgb: (u8, u8, u8)| {
        pixels[..info.buffer_size()]
            .chunks(step)
            .filter(|p| (p[0], p[1], p[2]) == rgb)
            .count()
    };
    assert!(count((0x2b, 0x6c, 0xb0)) > 500, "step bars are drawn");
    assert!(count((0x2f, 0x85, 0x5a)) > 50, "increment bars are drawn");
    assert!(count((0xc5, 0x30, 0x30)) > 100, "the rollback bar is drawn");
}

fn which(binary: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(binary))
        .find(|p| p.is_file())
}
