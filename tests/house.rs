//! What shells and `man` get: completion scripts that parse, man pages that render,
//! and a version that names the commit.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

fn evac(args: &[&str]) -> (i32, String, String) {
    let output = support::evac().args(args).output().expect("evac runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `program args` with `input` on stdin.
fn feed(program: &str, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed by this test: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("output")
}

/// What bash offers for the words typed, through the script `evac completions bash`
/// prints, sourced in a real bash, with evac found on PATH as a user's would be.
fn bash_completes(words: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Vec<String> {
    let (code, script, stderr) = evac(&["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_evac"))
        .parent()
        .expect("the binary's folder");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_TYPE=9\n_clap_complete_evac evac '{current}' '{previous}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cword = words.len() - 1,
        current = words[words.len() - 1],
        previous = words[words.len().saturating_sub(2)],
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("--norc")
        .arg("-c")
        .arg(&program)
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("EVAC_STATE_DIR");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = cmd.output().expect("bash runs");
    assert!(
        output.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_bash_completion_script_parses_and_completes_every_command() {
    let (code, script, stderr) = evac(&["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    let check = feed("bash", &["-n"], &script);
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Every command the parser has, each exactly once, and nothing else that is
    // not an option.
    use clap::CommandFactory;
    let mut expected: Vec<String> = evac::cli::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .chain(["help".to_owned()])
        .collect();
    expected.sort();
    expected.dedup();
    let dir = tempfile::tempdir().expect("dir");
    let mut offered: Vec<String> = bash_completes(&["evac", ""], &[], dir.path())
        .into_iter()
        .filter(|w| !w.starts_with('-'))
        .collect();
    offered.sort();
    assert_eq!(offered, expected);
    assert_eq!(
        bash_completes(&["evac", "roll"], &[], dir.path()),
        ["rollback"]
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let (code, script, stderr) = evac(&["completions", shell]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            script.contains("COMPLETE") && script.contains("evac"),
            "{shell} asks evac: {script}"
        );
    }
}

/// Run ids complete from the state dir (EVAC_STATE_DIR, else `.evac`), newest
/// first, with `latest`, for every command that takes one.
#[test]
fn run_ids_complete_from_the_state_dir() {
    let dir = tempfile::tempdir().expect("dir");
    let playbook = dir.path().join("hold.yaml");
    std::fs::write(
        &playbook,
        "version: 1\nname: hold\nsteps:\n  - id: hold\n    wait: 0s\n",
    )
    .expect("playbook");
    for _ in 0..2 {
        let status = support::evac()
            .current_dir(dir.path())
            .env("AWS_ACCESS_KEY_ID", "none")
            .env("AWS_SECRET_ACCESS_KEY", "none")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env_remove("EVAC_STATE_DIR")
            .args(["run", "hold.yaml", "--yes"])
            .output()
            .expect("evac runs");
        assert!(status.status.success());
    }
    let ids = support::run_ids(&dir.path().join(".evac"));
    assert_eq!(ids.len(), 2);
    let newest_first = vec![ids[1].clone(), ids[0].clone()];
    for command in ["resume", "rollback", "close", "status", "report", "watch"] {
        let offered = bash_completes(&["evac", command, "2"], &[], dir.path());
        assert_eq!(offered, newest_first, "evac {command} 2<TAB>");
    }
    assert_eq!(
        bash_completes(&["evac", "watch", "la"], &[], dir.path()),
        ["latest"]
    );
    // The state dir the environment names, from anywhere.
    let elsewhere = tempfile::tempdir().expect("dir");
    let state = dir.path().join(".evac");
    assert_eq!(
        bash_completes(
            &["evac", "report", "2"],
            &[("EVAC_STATE_DIR", state.to_str().expect("utf-8"))],
            elsewhere.path()
        ),
        newest_first
    );
    assert!(bash_completes(&["evac", "report", "2"], &[], elsewhere.path()).is_empty());
}

#[test]
fn every_man_page_renders() {
    for page in [
        None,
        Some("run"),
        Some("rollback"),
        Some("plan"),
        Some("check"),
        Some("watch"),
    ] {
        let mut args = vec!["man"];
        args.extend(page);
        let (code, roff, stderr) = evac(&args);
        assert_eq!(code, 0, "{stderr}");
        let shown = feed("man", &["-l", "-"], &roff);
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.status.success(),
            "man -l: {}",
            String::from_utf8_lossy(&shown.stderr)
        );
        let title = page.map_or("evac".to_owned(), |p| format!("evac-{p}"));
        assert!(text.contains(&title) && text.contains("SYNOPSIS"), "{text}");
        assert!(
            text.contains("EXIT STATUS") && text.contains("EXAMPLES"),
            "{text}"
        );
        assert!(
            text.contains(&format!("evac {}", env!("CARGO_PKG_VERSION"))),
            "the version in the footer: {text}"
        );
    }
    let (code, _, stderr) = evac(&["man", "nope"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no command `nope`: a man page exists for validate, plan, check, run"),
        "{stderr}"
    );
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let (code, stdout, _) = evac(&["--version"]);
    assert_eq!(code, 0);
    let version = stdout.trim();
    let commit = version
        .strip_prefix(concat!("evac ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|v| v.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    // The commit git says this source is at; a source without git (a tarball) says so.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(hash, head, "{version}"),
        None => assert_eq!(hash, "unknown commit", "{version}"),
    }
}

/// A YAML file as JSON, for the schema validator.
fn yaml_as_json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("playbook");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    serde_json::to_value(yaml).expect("as JSON")
}

fn yaml_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_committed_schema_is_what_evac_schema_prints() {
    let (code, printed, stderr) = evac(&["schema"]);
    assert_eq!(code, 0, "{stderr}");
    let committed = std::fs::read_to_string(evac::playbook::SCHEMA_FILE).expect("committed schema");
    assert_eq!(
        printed, committed,
        "schema/playbook-v1.json is stale: run `evac schema > schema/playbook-v1.json`"
    );
    for example in yaml_files("playbooks") {
        let first = std::fs::read_to_string(&example).expect("example");
        assert!(
            first.starts_with("# yaml-language-server: $schema=../schema/playbook-v1.json\n"),
            "{example} names the schema for editors"
        );
    }
}

#[test]
fn every_valid_playbook_matches_the_schema_and_wrong_fields_or_types_do_not() {
    let (_, schema, _) = evac(&["schema"]);
    let schema: serde_json::Value = serde_json::from_str(&schema).expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    // Every example and every fixture but the invalid ones: evac accepts each (a
    // fixture it refused would not test the schema, so that is a failure too).
    let mut valid = yaml_files("playbooks");
    let mut dirs: Vec<String> = std::fs::read_dir("tests/fixtures")
        .expect("fixtures")
        .flatten()
        .filter(|e| e.path().is_dir() && e.file_name() != "invalid")
        .map(|e| e.path().display().to_string())
        .collect();
    dirs.sort();
    for dir in &dirs {
        valid.extend(yaml_files(dir));
    }
    assert!(valid.len() >= 20, "{valid:?}");
    for file in &valid {
        let output = support::evac()
            .args(["validate", file])
            .output()
            .expect("evac runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{file} is a fixture evac refuses: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let errors: Vec<String> = validator
            .iter_errors(&yaml_as_json(file))
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{file} is valid but the schema says: {errors:?}"
        );
    }
    for file in [
        "tests/fixtures/invalid/unknown-field.yaml",
        "tests/fixtures/invalid/wrong-type.yaml",
        "tests/fixtures/invalid/unknown-step-kind.yaml",
        "tests/fixtures/invalid/percent-out-of-range.yaml",
    ] {
        assert!(
            !validator.is_valid(&yaml_as_json(file)),
            "{file} has a mistake the schema can see"
        );
    }
}

#[test]
fn every_command_that_prints_takes_output_with_the_same_values() {
    for command in [
        "validate", "plan", "run", "resume", "rollback", "close", "status", "report", "history",
    ] {
        let output = support::evac()
            .args([command, "--help"])
            .output()
            .expect("evac runs");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("--output <OUTPUT>"), "{command}:\n{help}");
        assert!(
            help.contains("human") && help.contains("json"),
            "{command} --output takes human and json:\n{help}"
        );
        assert!(!help.contains("--format"), "{command}:\n{help}");
    }
}
