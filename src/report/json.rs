//! One JSON object per line on stdout: every journal entry, and progress.

use std::io::Write;

use crate::engine::reporter::{Progress, Reporter};
use crate::journal::Entry;

/// Writes events as JSON lines.
#[derive(Debug, Default)]
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn entry(&self, entry: &Entry) {
        if let Ok(line) = serde_json::to_string(entry) {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }

    fn progress(&self, progress: &Progress) {
        let value = serde_json::json!({ "event": "progress", "progress": progress });
        let _ = writeln!(std::io::stdout().lock(), "{value}");
    }

    fn ask(&self, question: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        super::ask_terminal_async(question)
    }
}
