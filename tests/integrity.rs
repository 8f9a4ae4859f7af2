//! Integrity as a hostile user would test it, offline (these runs make no AWS call):
//! simultaneous runs, tampered journals, swapped and edited plans.

mod support;

use support::run_ids;

use std::path::Path;
use std::process::{Command, Output, Stdio};

const HOLD: &str = "tests/fixtures/integrity/hold.yaml";
const OTHER: &str = "tests/fixtures/integrity/other.yaml";

/// The evac binary, with no AWS configuration and no endpoint that could be reached.
fn evac(state: &Path) -> Command {
    let probe = support::evac();
    let mut cmd = Command::new(probe.get_program());
    for (key, value) in probe.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.env("AWS_ACCESS_KEY_ID", "offline")
        .env("AWS_SECRET_ACCESS_KEY", "offline")
        .env("EVAC_STATE_DIR", state)
        .stdin(Stdio::null());
    cmd
}

fn run(state: &Path, args: &[&str]) -> (i32, String) {
    let Output { status, stderr, .. } = evac(state).args(args).output().expect("evac runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn of_twenty_pairs_of_simultaneous_runs_exactly_one_runs_each_time() {
    for pair in 0..20 {
        let state = tempfile::tempdir().expect("state dir");
        let spawn = || {
            evac(state.path())
                .args(["run", HOLD, "--yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("evac starts")
        };
        let (a, b) = (spawn(), spawn());
        let outputs = [a, b].map(|c| c.wait_with_output().expect("evac exits"));
        let mut codes: Vec<i32> = outputs
            .iter()
            .map(|o| o.status.code().unwrap_or(-1))
            .collect();
        codes.sort();
        let stderr: Vec<String> = outputs
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect();
        assert_eq!(codes, [0, 3], "pair {pair}: {stderr:?}");
        let refused = stderr
            .iter()
            .find(|e| e.contains("is already running"))
            .unwrap_or_else(|| panic!("pair {pair}: no refusal: {stderr:?}"));
        assert!(
            refused.contains("hold.lock"),
            "names the lock file: {refused}"
        );
        assert_eq!(
            run_ids(state.path()).len(),
            1,
            "pair {pair}: one run folder"
        );
    }
}

/// A finished run of HOLD, and its journal's lines.
fn finished() -> (tempfile::TempDir, String, Vec<String>) {
    let state = tempfile::tempdir().expect("state dir");
    let (code, stderr) = run(state.path(), &["run", HOLD, "--yes", "--var", "pause=0s"]);
    assert_eq!(code, 0, "{stderr}");
    let id = run_ids(state.path()).pop().expect("a run");
    let journal = state.path().join("runs").join(&id).join("journal.jsonl");
    let lines = std::fs::read_to_string(journal)
        .expect("journal")
        .lines()
        .map(str::to_owned)
        .collect();
    (state, id, lines)
}

fn write_journal(state: &Path, id: &str, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    std::fs::write(state.join("runs").join(id).join("journal.jsonl"), text).expect("write");
}

/// A way to tamper with a journal's lines.
type Tamper = Box<dyn Fn(&mut Vec<String>)>;

#[test]
fn a_tampered_journal_is_never_acted_upon_and_names_the_line() {
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "duplicate",
            Box::new(|l: &mut Vec<String>| l.insert(3, l[2].clone())),
            "journal.jsonl:4: entry 3 again, or out of order",
        ),
        (
            "reorder",
            Box::new(|l: &mut Vec<String>| {
                let moved = l.remove(1);
                l.push(moved);
            }),
            "journal.jsonl:2: entry 3 follows entry 1: entry 2 is missing",
        ),
        (
            "edit",
            Box::new(|l: &mut Vec<String>| l[2] = l[2].replace("pause", "pauze")),
            "journal.jsonl:3: entry 3 was edited",
        ),
        (
            "gap",
            Box::new(|l: &mut Vec<String>| {
                l.remove(2);
            }),
            "journal.jsonl:3: entry 4 follows entry 2: entry 3 is missing",
        ),
        (
            "empty",
            Box::new(|l: &mut Vec<String>| l.clear()),
            "journal.jsonl: empty: nothing says what run",
        ),
    ];
    for (name, tamper, message) in cases {
        let (state, id, mut lines) = finished();
        tamper(&mut lines);
        write_journal(state.path(), &id, &lines);
        for command in [
            vec!["rollback", id.as_str(), "--yes"],
            vec!["resume", id.as_str(), "--yes"],
            vec!["status", id.as_str()],
            vec!["report", id.as_str()],
        ] {
            let (code, stderr) = run(state.path(), &command);
            assert_eq!(code, 5, "{name}, {command:?}: {stderr}");
            assert!(stderr.contains(message), "{name}, {command:?}: {stderr}");
        }
    }
    // A run folder without a journal.
    let (state, id, _) = finished();
    std::fs::remove_file(state.path().join("runs").join(&id).join("journal.jsonl")).expect("rm");
    let (code, stderr) = run(state.path(), &["rollback", &id, "--yes"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("journal.jsonl: missing"), "{stderr}");
}

#[test]
fn a_run_whose_plan_was_edited_is_not_resumed() {
    let (state, id, _) = finished();
    let plan = state.path().join("runs").join(&id).join("plan.json");
    let text = std::fs::read_to_string(&plan).expect("plan");
    std::fs::write(&plan, text.replace("\"secs\": 0", "\"secs\": 9")).expect("edit");
    let (code, stderr) = run(state.path(), &["resume", &id, "--yes"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("journal.jsonl:1: the first entry does not match the run's plan.json"),
        "{stderr}"
    );
}

#[test]
fn a_saved_plan_runs_alone_and_is_refused_when_edited_made_for_another_playbook_or_given_vars() {
    let state = tempfile::tempdir().expect("state dir");
    let saved = state.path().join("saved.json");
    let saved = saved.to_str().expect("utf-8");
    let (code, stderr) = run(state.path(), &["plan", HOLD, "--save", saved]);
    assert_eq!(code, 0, "{stderr}");
    // As saved: it runs, with the playbook it holds; no playbook argument needed.
    let (code, stderr) = run(state.path(), &["run", "--plan", saved, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let runs = run_ids(state.path()).len();
    // --var beside --plan is an error, not silently ignored.
    let (code, stderr) = run(
        state.path(),
        &["run", HOLD, "--plan", saved, "--yes", "--var", "pause=3s"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("'--plan <FILE>' cannot be used with '--var <NAME=VALUE>'"),
        "{stderr}"
    );
    // Another playbook.
    let (code, stderr) = run(state.path(), &["run", OTHER, "--plan", saved, "--yes"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("was made for another playbook"), "{stderr}");
    assert!(!stderr.contains("stale"), "{stderr}");
    // Edited.
    let text = std::fs::read_to_string(saved).expect("saved plan");
    std::fs::write(saved, text.replace("\"secs\": 1", "\"secs\": 2")).expect("edit");
    let (code, stderr) = run(state.path(), &["run", HOLD, "--plan", saved, "--yes"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("was edited after it was saved"), "{stderr}");
    assert_eq!(run_ids(state.path()).len(), runs, "nothing ran");
}

#[test]
fn run_folders_are_private_and_links_in_them_are_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("temp dir");
    // A state dir evac creates itself.
    let state = tmp.path().join("state");
    let (code, stderr) = run(&state, &["run", HOLD, "--yes", "--var", "pause=0s"]);
    assert_eq!(code, 0, "{stderr}");
    let id = run_ids(&state).pop().expect("a run");
    let mode = |p: &Path| {
        std::fs::symlink_metadata(p)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    let folder = state.join("runs").join(&id);
    assert_eq!(mode(&state), 0o700, "the state dir");
    assert_eq!(mode(&folder), 0o700, "the run folder");
    for file in ["journal.jsonl", "plan.json", "playbook.yaml"] {
        assert_eq!(mode(&folder.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&state.join("locks/hold.lock")), 0o600, "the lock");
    // A journal replaced by a link to an intact copy is refused, not followed.
    let journal = folder.join("journal.jsonl");
    let elsewhere = tmp.path().join("copy.jsonl");
    std::fs::rename(&journal, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &journal).expect("link");
    let (code, stderr) = run(&state, &["rollback", &id, "--yes"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("journal.jsonl: missing, or not a regular file"),
        "{stderr}"
    );
}

#[test]
fn a_report_never_overwrites_through_a_link_or_inside_the_state_dir() {
    let (state, id, _) = finished();
    let outside = tempfile::tempdir().expect("dir");
    let target = outside.path().join("precious.txt");
    std::fs::write(&target, "keep me").expect("write");
    let link = outside.path().join("report.md");
    std::os::unix::fs::symlink(&target, &link).expect("link");
    let (code, stderr) = run(
        state.path(),
        &["report", &id, "--out", link.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep me");
    let written = std::fs::symlink_metadata(&link).expect("report");
    assert!(written.is_file(), "the link was replaced by the report");
    assert!(
        std::fs::read_to_string(&link)
            .expect("report")
            .contains(&id)
    );
    // Into the state dir: refused, and the run's plan stays intact.
    let plan = state.path().join("runs").join(&id).join("plan.json");
    let before = std::fs::read(&plan).expect("plan");
    let (code, stderr) = run(
        state.path(),
        &["report", &id, "--out", plan.to_str().expect("utf-8")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is inside the state dir"), "{stderr}");
    assert_eq!(std::fs::read(&plan).expect("plan"), before);
}

#[test]
fn extreme_values_are_refused_with_their_place_and_nothing_hangs() {
    let state = tempfile::tempdir().expect("state dir");
    let huge = "tests/fixtures/invalid/huge-duration.yaml";
    for command in [
        vec!["validate", huge],
        vec!["plan", huge],
        vec!["run", huge, "--yes"],
    ] {
        let (code, stderr) = run(state.path(), &command);
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{huge}:12:"))
                && stderr.contains("steps[0].shift_traffic.bake")
                && stderr.contains("longer than the longest allowed, 24h"),
            "{command:?}: {stderr}"
        );
    }
    let (code, stderr) = run(state.path(), &["run", HOLD, "--yes", "--stop-poll", "1ns"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`1ns` is too short"), "{stderr}");
    // Not a regular file: refused at once instead of read forever.
    for path in ["/dev/zero", "tests/fixtures"] {
        let (code, stderr) = run(state.path(), &["validate", path]);
        assert_eq!(code, 2, "{path}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{path}: {stderr}");
    }
    assert!(run_ids(state.path()).is_empty(), "nothing ran");
}

#[test]
fn after_an_unfinished_rollback_every_command_says_to_run_it_again() {
    let (state, id, _) = finished();
    // A rollback that stopped before it finished (killed, or AWS failed under it).
    let run_dir = evac::journal::RunDir::open(state.path(), &id).expect("run");
    evac::journal::Journal::open(&run_dir)
        .expect("journal")
        .append(evac::journal::Event::RollbackStarted { fast: false })
        .expect("append");
    let again = format!("evac rollback {id}` again to finish it");
    let (code, stderr) = run(state.path(), &["resume", &id, "--yes"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&again), "resume: {stderr}");
    let output = evac(state.path())
        .args(["status", &id])
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(status.contains("rollback stopped"), "{status}");
    assert!(status.contains(&again), "status: {status}");
    let output = evac(state.path())
        .args(["report", &id])
        .output()
        .expect("report");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("rollback stopped (run `evac rollback` again to finish it)"),
        "report: {report}"
    );
    let (code, stderr) = run(state.path(), &["rollback", &id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    let output = evac(state.path())
        .args(["status", &id])
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.contains("rolled back") && !status.contains(&again),
        "{status}"
    );
}
