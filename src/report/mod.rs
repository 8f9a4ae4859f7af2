//! Reporters: how a run looks on a terminal (progress bars on stderr) and to a
//! program (one JSON event per line on stdout). The engine only sees the
//! [`Reporter`](crate::engine::reporter::Reporter) trait.

mod json;
mod terminal;

pub use json::JsonReporter;
pub use terminal::{Printer, TerminalReporter};

use std::io::{BufRead, IsTerminal, Write};

/// Asks a yes/no question on the terminal; `None` when stdin or stderr is not one.
pub fn ask_terminal(question: &str) -> Option<bool> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok()?;
    Some(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Asks a yes/no question on the terminal without blocking the caller: the question
/// is written now, the answer is read on a thread of its own and sent back. `None`
/// when stdin or stderr is not a terminal. A question left unanswered (the run was
/// stopped meanwhile) leaves its thread waiting until the process ends.
pub fn ask_terminal_async(question: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let (send, receive) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let yes = std::io::stdin().lock().read_line(&mut answer).is_ok()
            && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
        let _ = send.send(yes);
    });
    Some(receive)
}
