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
    for command in [
        "validate", "plan", "run", "resume", "rollback", "status", "report", "history",
    ] {
        assert!(script.contains(command), "{command} is completed");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let (code, script, _) = evac(&["completions", shell]);
        assert_eq!(code, 0);
        assert!(script.contains("rollback"), "{shell}");
    }
}

#[test]
fn every_man_page_renders() {
    for page in [None, Some("run"), Some("rollback"), Some("plan")] {
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
    }
    let (code, _, stderr) = evac(&["man", "nope"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no command `nope`: a man page exists for validate, plan, run"),
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
    assert!(
        hash == "unknown commit"
            || (hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{version}"
    );
}
