//! What an operator sees on a real terminal (a pseudo-terminal, played through a
//! terminal emulator): messages printed while the progress bars are live must still
//! be on the final screen.

mod support;

use std::process::Child;
use std::time::Duration;

use support::pty::Pty;
use support::{Account, exit_within, until};

const BASE: &str = "tests/fixtures/plan/base.yaml";

/// A seeded account, a state dir, and `evac run` of BASE started on a terminal.
fn drill_on_terminal(pty: &mut Pty) -> (Account, tempfile::TempDir, Child) {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = account.process();
    cmd.env("TERM", "xterm-256color").args([
        "run",
        BASE,
        "--var",
        "bake=30s",
        "--yes",
        "--stop-poll",
        "1s",
        "--state-dir",
        state.path().to_str().expect("utf-8"),
    ]);
    let child = pty.spawn(cmd);
    (account, state, child)
}

#[test]
fn a_halt_shows_its_reason_on_the_final_screen() {
    let mut pty = Pty::open();
    let (account, state, mut child) = drill_on_terminal(&mut pty);
    until("the first bake", || support::in_first_bake(state.path()));
    account.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let code = exit_within(&mut child, Duration::from_secs(60));
    let screen = pty.screen();
    assert_eq!(code, 6, "{screen}");
    assert!(
        screen.contains("stop condition fired: alarm api-5xx-rate (us-west-2) is ALARM"),
        "the reason is on the final screen:\n{screen}"
    );
    assert!(
        screen.contains("✓ scale: done"),
        "a finished step's verdict stays after later messages:\n{screen}"
    );
    assert!(screen.contains("to undo:"), "{screen}");
}

#[test]
fn ctrl_c_shows_what_it_does_on_the_final_screen() {
    let mut pty = Pty::open();
    let (account, state, mut child) = drill_on_terminal(&mut pty);
    until("the first bake", || support::in_first_bake(state.path()));
    // The bake shows its countdown, not the wait for INSYNC that came before it.
    until("the bake's countdown", || {
        pty.screen().contains("increment 1/2 in sync; baking,")
    });
    let screen = pty.screen();
    assert!(!screen.contains("waiting for INSYNC"), "{screen}");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sends SIGINT to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let code = exit_within(&mut child, Duration::from_secs(60));
    let screen = pty.screen();
    assert_eq!(code, 4, "{screen}");
    assert!(
        screen.contains("stopping after the call in flight (Ctrl-C again to exit at once)"),
        "{screen}"
    );
    assert!(screen.contains("to continue: evac resume"), "{screen}");

    // The rollback lists what it restores, then shows its progress like a run and
    // ends on its verdict.
    let id = support::run_ids(state.path()).pop().expect("the run");
    let mut pty = Pty::open();
    let mut cmd = account.process();
    cmd.env("TERM", "xterm-256color").args([
        "rollback",
        &id,
        "--state-dir",
        state.path().to_str().expect("utf-8"),
    ]);
    let mut child = pty.spawn(cmd);
    until("the rollback's question", || {
        pty.text().contains("resource(s) as listed? [y/N]")
    });
    pty.type_line("y");
    let code = exit_within(&mut child, Duration::from_secs(60));
    let screen = pty.screen();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("to restore, newest first (recorded value -> original):"),
        "{screen}"
    );
    assert!(
        screen.contains("✓ rollback: live state matches the recorded originals"),
        "{screen}"
    );
}

/// `evac watch latest` on a terminal of its own shows the runner's display (steps,
/// increments and the bake countdown, the stop condition) as the run goes, and ends
/// with the run and with its exit code.
#[test]
fn watch_shows_the_runners_display_on_its_own_terminal_and_ends_with_the_run() {
    let mut run_pty = Pty::open();
    let (account, state, mut run) = drill_on_terminal(&mut run_pty);
    until("the run exists", || {
        !support::run_ids(state.path()).is_empty()
    });
    let mut watch_pty = Pty::open();
    let mut cmd = account.process();
    cmd.env("TERM", "xterm-256color").args([
        "watch",
        "latest",
        "--every",
        "200ms",
        "--state-dir",
        state.path().to_str().expect("utf-8"),
    ]);
    let mut watch = watch_pty.spawn(cmd);
    until("the watcher shows the first bake counting down", || {
        let screen = watch_pty.screen();
        screen.contains("increment 1/2 in sync; baking") && screen.contains("✓ scale: done")
    });
    account.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let run_code = exit_within(&mut run, Duration::from_secs(60));
    let watch_code = exit_within(&mut watch, Duration::from_secs(30));
    let screen = watch_pty.screen();
    assert_eq!(run_code, 6);
    assert_eq!(watch_code, 6, "the run's own exit code:\n{screen}");
    for shown in [
        "✓ scale: done",
        "stop condition fired: alarm api-5xx-rate (us-west-2) is ALARM",
        "was halted by a stop condition (exit 6)",
    ] {
        assert!(screen.contains(shown), "{shown}:\n{screen}");
    }
}
