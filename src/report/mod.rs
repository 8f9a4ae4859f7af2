//! Reporters: how a run looks on a terminal (progress bars on stderr) and to a
//! program (one JSON event per line on stdout). The engine only sees the
//! [`Reporter`](crate::engine::reporter::Reporter) trait.

mod json;
mod terminal;

pub use json::JsonReporter;
pub use terminal::TerminalReporter;

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
