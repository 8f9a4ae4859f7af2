//! `evac plan`: observe AWS read-only and show what a run would change.

use std::path::{Path, PathBuf};

use super::{VarArgs, load_or_report};
use crate::exit::Exit;
use crate::plan::observe::Reads;
use crate::plan::timing::Timing;
use crate::plan::{Plan, build::build_with, render};

/// How a plan is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanOutput {
    /// Grouped by step, before -> after; colour on a terminal.
    Human,
    /// The plan document (format 1, see docs/plan-json.md).
    Json,
    /// For a drill ticket.
    Markdown,
}

/// Arguments of `evac plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The playbook to plan.
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanOutput::Human)]
    pub output: PlanOutput,
    /// Also write the plan as JSON, with the fingerprint of the observed state, to FILE.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// What the duration estimate assumes of AWS, as KEY=DURATION,... with launch
    /// (default 5m), sync (60s), drain (2m), healthy (2m30s), deregister (5m) and
    /// latency (50ms)
    #[arg(long, value_name = "KEY=DURATION,...", value_parser = parse_assume)]
    pub assume: Option<Timing>,
    #[command(flatten)]
    pub rates: super::session::RateArgs,
    #[command(flatten)]
    pub regions: super::session::RegionArgs,
    /// Where runs are kept: unfinished runs of the playbook there are blockers; the
    /// last known state of each region read is recorded there.
    #[command(flatten)]
    pub state: super::session::StateArgs,
}

fn parse_assume(text: &str) -> Result<Timing, String> {
    Timing::default().assume(text)
}

/// Plans the playbook: exit 0 without blockers, 3 with, 2 for invalid input, 1 when
/// AWS could not be read.
pub fn run(args: &PlanArgs) -> Exit {
    let state = match args.state.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    let timing = Timing {
        rates: args.rates.rates(),
        ..args.assume.clone().unwrap_or_default()
    };
    let (plan, text) = match make(
        &args.playbook,
        &args.vars,
        &args.regions,
        &state,
        &args.state.flag(),
        &timing,
    ) {
        Ok(made) => made,
        Err(exit) => return exit,
    };
    if let Some(path) = &args.save
        && let Err(err) = save(&plan, &text, path)
    {
        crate::say_error!("failed to save the plan to {}: {err}", path.display());
        return Exit::StepFailed;
    }
    let text = match args.output {
        PlanOutput::Human => render::human(&plan, crate::shell::colour_out()),
        PlanOutput::Markdown => render::markdown(&plan),
        PlanOutput::Json => match serde_json::to_string_pretty(&plan) {
            Ok(json) => json + "\n",
            Err(err) => {
                crate::say_error!("failed to encode the plan as JSON: {err}");
                return Exit::StepFailed;
            }
        },
    };
    crate::shell::out_text(&text);
    if plan.is_blocked() {
        Exit::Blocked
    } else {
        Exit::Success
    }
}

/// Loads a playbook and plans it against live AWS state, read-only, with the
/// playbook's unfinished runs in `state` as blockers: the sealed plan and the
/// playbook's text. Exit 2 for an invalid playbook (its problems said), 1 when AWS
/// could not be read.
pub fn make(
    path: &Path,
    vars: &VarArgs,
    regions: &super::session::RegionArgs,
    state: &crate::journal::StateDir,
    state_flag: &str,
    timing: &Timing,
) -> Result<(Plan, String), Exit> {
    let Some((playbook, text)) = load_or_report(path, vars) else {
        return Err(Exit::InvalidInput);
    };
    regions.check(&playbook)?;
    let runtime = super::session::runtime()?;
    let observed = runtime.block_on(async {
        let ctx = super::session::aws(&timing.rates).await?;
        let clouds = super::session::clouds(ctx, &playbook.accounts, "plan").await;
        Ok(super::session::read_world(&clouds, &playbook, Reads::default(), regions, state).await)
    });
    let observed = match observed {
        Err(exit) => return Err(exit),
        Ok(Ok(observed)) => observed,
        Ok(Err(err)) => {
            crate::say_error!("{err}");
            crate::say!(
                "nothing was changed; check credentials, region access and the endpoint, then plan again"
            );
            return Err(Exit::StepFailed);
        }
    };
    let mut plan = build_with(
        &playbook,
        &observed,
        &path.display().to_string(),
        jiff::Timestamp::now(),
        timing,
    );
    match super::session::unfinished_runs(state, &playbook.name, state_flag) {
        Ok(found) => plan.blockers.extend(found),
        Err(err) => plan.warnings.push(crate::plan::Finding {
            step: None,
            resource: Some(format!("state dir {}", state.location())),
            message: format!(
                "unfinished runs of this playbook were not looked for: {err}; `evac run` will refuse until it can read them"
            ),
        }),
    }
    // The playbook's hash ties a saved plan to it.
    plan.playbook.sha256 = crate::journal::hex_digest(text.as_bytes());
    plan.seal();
    Ok((plan, text))
}

/// Writes the plan, with the playbook's text so that `evac run --plan FILE` needs
/// nothing else, atomically: a reader never sees half a file.
fn save(plan: &Plan, text: &str, path: &Path) -> std::io::Result<()> {
    let mut plan = plan.clone();
    plan.playbook.source = text.to_owned();
    plan.seal();
    let mut json = serde_json::to_vec_pretty(&plan)?;
    json.push(b'\n');
    super::output::write_out(path, &json)
}
