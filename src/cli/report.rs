//! `evac report` and `evac history`: drill records from the run folders.

use std::path::PathBuf;

use super::session::StateArgs;
use crate::exit::Exit;
use crate::journal::JournalError;
use crate::journal::StateDir;
use crate::report::{self as drill, history, report};

/// Report formats: `--output`, as on every command (`human` is the Markdown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportOutput {
    /// Markdown, for people and a drill ticket.
    #[value(alias = "markdown")]
    Human,
    /// The report document.
    Json,
    /// One self-contained page with a timeline chart.
    Html,
}

/// Arguments of `evac report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run to report on.
    #[arg(value_name = "RUN_ID", add = super::complete::run_id())]
    pub run_id: String,
    /// Format.
    #[arg(long, value_enum, default_value_t = ReportOutput::Human)]
    pub output: ReportOutput,
    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub latest: super::session::LatestArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Output of `evac history`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryOutput {
    /// A table.
    Human,
    /// A JSON document.
    Json,
}

/// Arguments of `evac history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only runs of this playbook.
    #[arg(long, value_name = "NAME")]
    pub playbook: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = HistoryOutput::Human)]
    pub output: HistoryOutput,
}

fn failed(err: &JournalError) -> Exit {
    crate::say_error!("{err}");
    super::session::journal_exit(err)
}

/// `evac report`.
pub fn run(args: &ReportArgs) -> Exit {
    let state = match args.state.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    // In S3, every run is fetched: the report compares with earlier drills.
    if let Err(err) = state.runs() {
        return failed(&err);
    }
    let report = match report(state.path(), &args.run_id) {
        Ok(report) => report,
        Err(err) => return failed(&err),
    };
    let text = match args.output {
        ReportOutput::Human => drill::markdown(&report),
        ReportOutput::Html => drill::html(&report),
        ReportOutput::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    };
    match &args.out {
        Some(path) => {
            if let Err(err) = inside_state_dir(path, &state) {
                crate::say_error!("{err}");
                return Exit::InvalidInput;
            }
            if let Err(err) = super::output::write_out(path, text.as_bytes()) {
                crate::say_error!("cannot write {}: {err}", path.display());
                return Exit::StepFailed;
            }
            if path.as_os_str() != "-" {
                crate::say!("wrote {}", path.display());
            }
        }
        None => {
            crate::shell::out_text(&text);
        }
    }
    Exit::Success
}

/// Refuses a destination inside the state dir: a report must never overwrite a
/// run's journal, plan or lock.
fn inside_state_dir(path: &std::path::Path, state_dir: &StateDir) -> Result<(), String> {
    if state_dir.is_remote() {
        return Ok(());
    }
    let Ok(state) = state_dir.path().canonicalize() else {
        return Ok(());
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    match parent.canonicalize() {
        Ok(dir) if dir.starts_with(&state) => Err(format!(
            "--out {} is inside the state dir {}: write the report somewhere else",
            path.display(),
            state_dir.location()
        )),
        _ => Ok(()),
    }
}

/// `evac history`.
pub fn list(args: &HistoryArgs) -> Exit {
    let state = match args.state.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    if let Err(err) = state.runs() {
        return failed(&err);
    }
    let rows = match history(state.path(), args.playbook.as_deref()) {
        Ok(rows) => rows,
        Err(err) => return failed(&err),
    };
    match args.output {
        HistoryOutput::Json => crate::out!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ),
        HistoryOutput::Human => {
            let cells: Vec<[String; 7]> = rows
                .iter()
                .map(|r| {
                    let tte = r
                        .time_to_evacuate_secs
                        .map(drill::secs)
                        .unwrap_or_else(|| "-".into());
                    let delta = match r.delta_secs {
                        Some(d) if d <= 0.0 => format!("{} faster", drill::secs(-d)),
                        Some(d) => format!("{} slower", drill::secs(d)),
                        None => "-".into(),
                    };
                    let rto = match &r.rto {
                        None => "-".to_owned(),
                        Some(score) if score.met => {
                            format!("met ({})", drill::secs(score.rto_secs))
                        }
                        Some(score) => format!("missed ({})", drill::secs(score.rto_secs)),
                    };
                    [
                        r.run_id.clone(),
                        r.started_at.clone(),
                        r.playbook.clone(),
                        r.result.clone(),
                        tte,
                        rto,
                        delta,
                    ]
                })
                .collect();
            // Each column as wide as its widest cell: results and names vary; the
            // time to evacuate is aligned right.
            for line in crate::text::columns(
                [
                    "RUN",
                    "STARTED",
                    "PLAYBOOK",
                    "RESULT",
                    "EVACUATION",
                    "RTO",
                    "CHANGE",
                ],
                &cells,
                &[4],
            ) {
                crate::out!("{line}");
            }
        }
    }
    Exit::Success
}
