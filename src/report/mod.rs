//! Drill reports and history: what a run changed, when, how long the evacuation
//! took, and how that compares with the previous run of the same playbook. Built
//! from the run folders alone (journal and plan); no AWS call.

mod build;
mod render;

pub use build::{
    AfterRollback, ChangeRow, Comparison, DrillReport, HistoryRow, Moment, Span, history, report,
};
pub use render::{html, markdown, secs};
