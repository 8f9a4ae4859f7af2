//! `evac check`: a read-only plan of each playbook, made for cron and CI, that says
//! what changed since the last check.
//!
//! Each playbook is planned as `evac plan` plans it. Its blockers and warnings are
//! compared with those of the last check of the same playbook, kept in the state dir
//! (`checks/NAME.json`, local or S3), and only what is new, changed or gone is
//! printed under its one line. When something changed, the playbook's `notify:`
//! targets get one `check_changed` event. Exit 0 when every playbook is ready, 3 when
//! one is blocked, 1 when one could not be read (AWS, or the state dir), 2 when one
//! is not a valid playbook.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::VarArgs;
use super::session::{RateArgs, RegionArgs, StateArgs};
use crate::exit::Exit;
use crate::plan::Plan;
use crate::plan::timing::Timing;

/// Output of `evac check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckOutput {
    /// One line per playbook, then what is new, changed or gone.
    Human,
    /// A JSON document: one object per playbook.
    Json,
}

/// Arguments of `evac check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The playbooks to check.
    #[arg(value_name = "PLAYBOOK", required = true)]
    pub playbooks: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub rates: RateArgs,
    /// Where runs are kept (an unfinished run is a blocker), and each check's
    /// findings, to say what changed next time.
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckOutput::Human)]
    pub output: CheckOutput,
}

/// A blocker or warning, as kept between checks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seen {
    /// `blocker` or `warning`.
    pub kind: String,
    /// The step it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The resource, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What it says.
    pub message: String,
}

impl Seen {
    /// What it is about: two findings about the same thing with different messages
    /// are one finding that changed.
    fn about(&self) -> (&str, Option<&str>, Option<&str>) {
        (&self.kind, self.step.as_deref(), self.resource.as_deref())
    }

    fn line(&self) -> String {
        let mut at = String::new();
        if let Some(step) = &self.step {
            at.push_str(&format!("step {step}: "));
        }
        if let Some(resource) = &self.resource {
            at.push_str(&format!("{resource}: "));
        }
        crate::text::one_line(&format!("{}: {at}{}", self.kind, self.message)).into_owned()
    }
}

/// What a check of one playbook found, as kept in the state dir.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    /// When (RFC 3339).
    checked_at: String,
    /// The playbook file.
    file: String,
    /// `ready` or `blocked`.
    state: String,
    /// Its blockers and warnings, sorted.
    findings: Vec<Seen>,
}

/// What changed since the last check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Changes {
    /// Findings not there last time.
    pub new: Vec<Seen>,
    /// Findings about the same thing that say something else now: (then, now).
    pub changed: Vec<(Seen, Seen)>,
    /// Findings gone since last time.
    pub gone: Vec<Seen>,
}

impl Changes {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.changed.is_empty() && self.gone.is_empty()
    }
}

/// Compares this check's findings with the last one's.
pub fn compare(last: &[Seen], now: &[Seen]) -> Changes {
    let mut changes = Changes::default();
    let mut then: Vec<&Seen> = last.iter().filter(|f| !now.contains(f)).collect();
    for finding in now.iter().filter(|f| !last.contains(f)) {
        match then.iter().position(|t| t.about() == finding.about()) {
            Some(i) => changes
                .changed
                .push((then.remove(i).clone(), finding.clone())),
            None => changes.new.push(finding.clone()),
        }
    }
    changes.gone = then.into_iter().cloned().collect();
    changes
}

/// One playbook's result.
#[derive(Debug, Serialize)]
struct Checked {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    playbook: Option<String>,
    /// `ready`, `blocked`, `unreadable` or `invalid`.
    state: &'static str,
    exit: u8,
    blockers: usize,
    warnings: usize,
    /// The estimated time to evacuate.
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rto_secs: Option<u64>,
    /// Whether an earlier check of it was found to compare with.
    first: bool,
    #[serde(flatten)]
    changes: Changes,
}

/// Checks every playbook; the worst exit: 2 (invalid), then 1 (unreadable), then 3
/// (blocked), else 0.
pub fn run(args: &CheckArgs) -> Exit {
    let state = match args.state.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    let timing = Timing {
        rates: args.rates.rates(),
        ..Timing::default()
    };
    let mut results = Vec::new();
    for path in &args.playbooks {
        let made = super::plan::make(
            path,
            &args.vars,
            &RegionArgs::default(),
            &state,
            &args.state.flag(),
            &timing,
        );
        let checked = match made {
            Ok((plan, _)) => check_one(&state, path, &plan),
            Err(exit) => Checked {
                file: path.display().to_string(),
                playbook: None,
                state: if exit == Exit::InvalidInput {
                    "invalid"
                } else {
                    "unreadable"
                },
                exit: exit.code(),
                blockers: 0,
                warnings: 0,
                estimate_secs: None,
                rto_secs: None,
                first: true,
                changes: Changes::default(),
            },
        };
        if args.output == CheckOutput::Human {
            crate::shell::out_text(&human(&checked));
        }
        results.push(checked);
    }
    if args.output == CheckOutput::Json {
        match serde_json::to_string_pretty(&results) {
            Ok(json) => crate::shell::out_text(&(json + "\n")),
            Err(err) => {
                crate::say_error!("failed to encode the checks as JSON: {err}");
                return Exit::StepFailed;
            }
        }
    }
    let worst = |code: Exit| results.iter().any(|r| r.exit == code.code());
    [Exit::InvalidInput, Exit::StepFailed, Exit::Blocked]
        .into_iter()
        .find(|code| worst(*code))
        .unwrap_or(Exit::Success)
}

/// Compares one plan with the last check of its playbook, keeps it as the last,
/// and notifies when something changed.
fn check_one(state: &crate::journal::StateDir, path: &std::path::Path, plan: &Plan) -> Checked {
    let name = plan.playbook.name.clone();
    let key = format!("checks/{name}.json");
    let mut findings: Vec<Seen> = plan
        .blockers
        .iter()
        .map(|f| seen("blocker", f))
        .chain(plan.warnings.iter().map(|f| seen("warning", f)))
        .collect();
    findings.sort();
    findings.dedup();
    let (word, exit) = if plan.is_blocked() {
        ("blocked", Exit::Blocked)
    } else {
        ("ready", Exit::Success)
    };
    let last: Option<Record> = match state.read_doc(&key) {
        Ok(body) => body.and_then(|b| serde_json::from_slice(&b).ok()),
        Err(why) => {
            crate::say_warning!(
                "the last check of {name} could not be read ({why}): everything is shown as new"
            );
            None
        }
    };
    let changes = compare(
        last.as_ref().map(|r| r.findings.as_slice()).unwrap_or(&[]),
        &findings,
    );
    let record = Record {
        checked_at: jiff::Timestamp::now().to_string(),
        file: path.display().to_string(),
        state: word.to_owned(),
        findings: findings.clone(),
    };
    if let Ok(body) = serde_json::to_vec_pretty(&record)
        && let Err(why) = state.update_doc(&key, |_| body.clone())
    {
        crate::say_warning!(
            "this check of {name} was not kept ({why}): the next one shows the same again"
        );
    }
    let state_changed = last.as_ref().is_some_and(|l| l.state != record.state);
    if !changes.is_empty() || state_changed {
        notify(plan, &record, &changes);
    }
    Checked {
        file: path.display().to_string(),
        playbook: Some(name),
        state: word,
        exit: exit.code(),
        blockers: plan.blockers.len(),
        warnings: plan.warnings.len(),
        estimate_secs: Some(
            plan.estimate
                .traffic_gone_secs
                .unwrap_or(plan.estimate.duration_secs),
        ),
        rto_secs: plan.rto_secs,
        first: last.is_none(),
        changes,
    }
}

fn seen(kind: &str, finding: &crate::plan::Finding) -> Seen {
    Seen {
        kind: kind.to_owned(),
        step: finding.step.clone(),
        resource: finding.resource.clone(),
        message: finding.message.clone(),
    }
}

/// The playbook's line, then what changed.
fn human(checked: &Checked) -> String {
    let name = checked.playbook.as_deref().unwrap_or(&checked.file);
    let counts = |n: usize, what: &str| match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    };
    let mut out = match checked.state {
        "ready" | "blocked" => format!(
            "{:<10}{name}: {}, {}",
            checked.state,
            counts(checked.blockers, "blocker"),
            counts(checked.warnings, "warning")
        ),
        "invalid" => format!(
            "invalid   {name}: not a valid playbook (its problems are above); run `evac validate {}`",
            checked.file
        ),
        _ => format!("unreadable {name}: AWS or the state dir could not be read (said above)"),
    };
    if let (Some(estimate), Some(rto)) = (checked.estimate_secs, checked.rto_secs) {
        let fits = if estimate <= rto { "within" } else { "over" };
        out.push_str(&format!(
            "; estimated time to evacuate {} {fits} RTO {}",
            crate::plan::render::duration(estimate),
            crate::plan::render::duration(rto)
        ));
    }
    let changes = &checked.changes;
    if checked.state == "ready" || checked.state == "blocked" {
        if changes.is_empty() {
            out.push_str(if checked.first {
                "; first check"
            } else {
                "; nothing new since the last check"
            });
        } else if checked.first {
            out.push_str("; first check:");
        } else {
            out.push_str("; since the last check:");
        }
    }
    out.push('\n');
    for finding in &changes.new {
        out.push_str(&format!("  new      {}\n", finding.line()));
    }
    for (then, now) in &changes.changed {
        out.push_str(&format!(
            "  changed  {}\n           was: {}\n",
            now.line(),
            crate::text::one_line(&then.message)
        ));
    }
    for finding in &changes.gone {
        out.push_str(&format!("  gone     {}\n", finding.line()));
    }
    out
}

/// Tells the playbook's `notify:` targets what changed.
fn notify(plan: &Plan, record: &Record, changes: &Changes) {
    let Some(targets) = &plan.notify else {
        return;
    };
    let summary = format!(
        "evac check: {} is {} ({} new, {} changed, {} gone since the last check)",
        plan.playbook.name,
        record.state,
        changes.new.len(),
        changes.changed.len(),
        changes.gone.len()
    );
    let event = serde_json::json!({
        "event": "check_changed",
        "playbook": plan.playbook.name,
        "state": record.state,
        "checked_at": record.checked_at,
        "changes": changes,
        "findings": record.findings,
    });
    let silent = crate::engine::reporter::Silent;
    let notifier = crate::notify::Notifier::new(&silent, Some(targets), "", &plan.playbook.name);
    notifier.send_one("check_changed", summary, Some(event));
    notifier.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: &str, resource: &str, message: &str) -> Seen {
        Seen {
            kind: kind.into(),
            step: None,
            resource: Some(resource.into()),
            message: message.into(),
        }
    }

    #[test]
    fn a_check_says_what_is_new_changed_and_gone_and_nothing_else() {
        let last = vec![
            f("blocker", "alarm a", "not found"),
            f("warning", "asg x", "desired 4 of max 4"),
            f("warning", "asg y", "no scaling policy"),
        ];
        let now = vec![
            f("blocker", "alarm a", "not found"),
            f("warning", "asg x", "desired 6 of max 6"),
            f("blocker", "quota", "too few vCPUs"),
        ];
        let changes = compare(&last, &now);
        assert_eq!(changes.new, vec![f("blocker", "quota", "too few vCPUs")]);
        assert_eq!(
            changes.changed,
            vec![(
                f("warning", "asg x", "desired 4 of max 4"),
                f("warning", "asg x", "desired 6 of max 6")
            )]
        );
        assert_eq!(
            changes.gone,
            vec![f("warning", "asg y", "no scaling policy")]
        );
        assert!(compare(&now, &now).is_empty());
    }
}
