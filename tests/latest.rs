//! `latest` wherever a run id is taken: the newest run of the state dir, or of one
//! playbook with `--playbook NAME`. The drills here only wait, so they call no AWS.

mod support;

use support::evac;

fn drill(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!("version: 1\nname: {name}\nsteps:\n  - id: hold\n    wait: 0s\n"),
    )
    .expect("playbook written");
    path.display().to_string()
}

fn out(args: &[&str]) -> (i32, String, String) {
    // Credentials that reach nothing: a drill that only waits calls no AWS.
    let output = evac()
        .env("AWS_ACCESS_KEY_ID", "none")
        .env("AWS_SECRET_ACCESS_KEY", "none")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(args)
        .output()
        .expect("evac runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn latest_is_the_newest_run_of_the_state_dir_or_of_one_playbook() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("state");
    let state = state.display().to_string();
    let first = drill(dir.path(), "first");
    let second = drill(dir.path(), "second");
    // Nothing yet: `latest` names no run, and says where it looked.
    let (code, _, stderr) = out(&["status", "latest", "--state-dir", &state]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("no run in state dir {state}, so none is `latest`")),
        "{stderr}"
    );
    for playbook in [&first, &second] {
        let (code, _, stderr) = out(&["run", playbook, "--yes", "--state-dir", &state]);
        assert_eq!(code, 0, "{stderr}");
    }
    let ids = support::run_ids(std::path::Path::new(&state));
    assert_eq!(ids.len(), 2);
    let (first_id, second_id) = (&ids[0], &ids[1]);
    assert!(first_id.contains("-first-") && second_id.contains("-second-"));

    let (code, stdout, stderr) = out(&[
        "status",
        "latest",
        "--state-dir",
        &state,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(second_id.as_str()), "{stdout}");
    let (code, stdout, stderr) = out(&[
        "status",
        "latest",
        "--playbook",
        "first",
        "--state-dir",
        &state,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(first_id.as_str()) && !stdout.contains(second_id.as_str()),
        "{stdout}"
    );

    let (code, stdout, stderr) = out(&["report", "latest", "--state-dir", &state]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(second_id.as_str()), "{stdout}");

    // A finished run: watch shows it whole and ends at once, as the run ended.
    let (code, stdout, stderr) = out(&[
        "watch",
        "latest",
        "--playbook",
        "first",
        "--state-dir",
        &state,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        events,
        support::journal_so_far(std::path::Path::new(&state), first_id)
    );
    assert!(
        stderr.contains(&format!("run {first_id} succeeded (exit 0)")),
        "{stderr}"
    );

    let (code, _, stderr) = out(&[
        "rollback",
        "latest",
        "--playbook",
        "first",
        "--yes",
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let journal = support::journal_so_far(std::path::Path::new(&state), first_id);
    assert!(
        journal.iter().any(|e| e["event"] == "rollback_started"),
        "the first playbook's run was rolled back"
    );
    let journal = support::journal_so_far(std::path::Path::new(&state), second_id);
    assert!(!journal.iter().any(|e| e["event"] == "rollback_started"));

    // A playbook with no run, and --playbook without `latest`, are refused.
    let (code, _, stderr) = out(&[
        "report",
        "latest",
        "--playbook",
        "third",
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no run of playbook `third`"), "{stderr}");
    let (code, _, stderr) = out(&[
        "report",
        first_id,
        "--playbook",
        "first",
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("give `latest` as the run id"), "{stderr}");
}

#[test]
fn status_and_history_keep_their_columns_aligned_whatever_the_names() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("state").display().to_string();
    let short = drill(dir.path(), "a");
    let long = drill(
        dir.path(),
        "a-playbook-name-far-longer-than-twenty-characters",
    );
    for playbook in [&short, &long] {
        let (code, _, stderr) = out(&["run", playbook, "--yes", "--state-dir", &state]);
        assert_eq!(code, 0, "{stderr}");
    }
    for command in ["status", "history"] {
        let (code, stdout, stderr) = out(&[command, "--state-dir", &state]);
        assert_eq!(code, 0, "{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        // Every column starts where its heading does (the time to evacuate, a
        // number, ends where its heading does).
        let header = lines[0];
        for heading in header.split_whitespace().skip(1) {
            let at = header.find(heading).expect("heading");
            for row in &lines[1..] {
                let aligned = if heading == "EVACUATION" {
                    let end = at + heading.len();
                    row.get(end - 1..end).is_some_and(|c| c != " ")
                        && row.get(end..end + 2) == Some("  ")
                } else {
                    row[..at.min(row.len())].ends_with("  ") && !row[at..].starts_with(' ')
                };
                assert!(
                    aligned,
                    "{command}: column {heading} at {at} misaligned in:\n{stdout}"
                );
            }
        }
    }
}
