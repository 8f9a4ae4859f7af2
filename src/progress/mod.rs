//! Reporters: how a run looks on a terminal (progress bars on stderr) and to a
//! program (one JSON event per line on stdout). The engine only sees the
//! [`Reporter`](crate::engine::reporter::Reporter) trait.

mod json;
mod terminal;

pub use json::JsonReporter;
pub use terminal::TerminalReporter;

use std::io::{BufRead, IsTerminal};

/// Writes `question` to the terminal; false when stdin or stderr is not one (nobody
/// to ask).
fn prompt(question: &str) -> bool {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    crate::shell::err_text(&format!("{question} [y/N] "));
    true
}

/// Reads the answer to a question: yes for `y` or `yes`; `None` when stdin fails.
fn read_answer() -> Option<bool> {
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok()?;
    Some(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Asks a yes/no question on the terminal; `None` when stdin or stderr is not one.
pub fn ask_terminal(question: &str) -> Option<bool> {
    if !prompt(question) {
        return None;
    }
    read_answer()
}

/// Asks a yes/no question on the terminal without blocking the caller: the question
/// is written now, the answer is read on a thread of its own and sent back. `None`
/// when stdin or stderr is not a terminal. A question left unanswered (the run was
/// stopped meanwhile) leaves its thread waiting until the process ends.
pub fn ask_terminal_async(question: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
    if !prompt(question) {
        return None;
    }
    let (send, receive) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = send.send(read_answer().unwrap_or(false));
    });
    Some(receive)
}
