//! One JSON object per line on stdout: every journal entry, and progress.

use crate::engine::reporter::{Progress, Reporter};
use crate::journal::Entry;

/// Writes events as JSON lines.
#[derive(Debug, Default)]
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn entry(&self, entry: &Entry) {
        if let Ok(line) = serde_json::to_string(entry) {
            crate::out!("{line}");
        }
    }

    fn progress(&self, progress: &Progress) {
        let value = serde_json::json!({ "event": "progress", "progress": progress });
        crate::out!("{value}");
    }

    fn ask(&self, question: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        super::ask_terminal_async(question)
    }
}
