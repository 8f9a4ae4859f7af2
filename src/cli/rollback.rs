//! `evac rollback`: restore what a run changed.

use std::sync::Arc;

use super::session::{Out, RateArgs, RunOutput, StateArgs, aws, on_ctrl_c, runtime};
use crate::engine::error::EngineError;
use crate::engine::execute::Options;
use crate::engine::interrupt::Interrupt;
use crate::engine::recorder::Recorder;
use crate::engine::route::Routed;
use crate::exit::Exit;

/// Arguments of `evac rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The run to roll back (see `evac status`).
    #[arg(value_name = "RUN_ID", add = super::complete::run_id())]
    pub run_id: String,
    /// Roll back without asking.
    #[arg(long)]
    pub yes: bool,
    /// Put weights back in one change per hosted zone instead of ramping back with bakes.
    #[arg(long)]
    pub fast: bool,
    /// At most this many restores of one wave in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    #[command(flatten)]
    pub rates: RateArgs,
    #[command(flatten)]
    pub latest: super::session::LatestArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunOutput::Human)]
    pub output: RunOutput,
}

/// Rolls a run back: exit 0 when live state matches every recorded original, 5 when
/// it does not or the rollback failed, 4 when interrupted (run it again to go on).
pub fn run(args: &RollbackArgs) -> Exit {
    crate::aws::log::tag_calls_with_run(&args.run_id);
    // The lock is taken before the journal is read: a rollback refused by the lock
    // lists nothing, and the changes listed and restored are all those in the
    // journal once no other process can add to it.
    let (state, run, plan) = match super::session::existing_run(&args.state, &args.run_id) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(exit) => return exit,
    };
    let out = Out::new(args.output);
    rt.block_on(async {
        let (_lock, mut journal, history) = match super::session::attach(&state, &run, &plan.playbook.name, &out) {
            Ok(taken) => taken,
            Err(exit) => return exit,
        };
        let restores = to_restore(&history);
        // Resources, as listed: replaced instances stay where they are.
        let to_do = restores.iter().filter(|l| l.starts_with('~')).count();
        // Every resource the run changed, rolled back already or not.
        let touched = crate::engine::rollback::pending(&crate::journal::history::History {
            rolled_back: Default::default(),
            ..history.clone()
        })
        .iter()
        .filter(|p| !matches!(p.target, crate::journal::Target::Instance { .. }))
        .count();
        if restores.is_empty() {
            out.say(&format!("run {}: nothing recorded is left to restore; checking live state against the originals", args.run_id));
        } else {
            let staying = restores.len() - to_do;
            out.say(&format!(
                "run {}: {to_do} to restore{}, newest first (recorded value -> original):",
                args.run_id,
                if staying > 0 {
                    format!(" ({staying} replaced instance(s) stay in their new zones)")
                } else {
                    String::new()
                }
            ));
            for line in &restores {
                out.say(&format!("  {line}"));
            }
        }
        if !args.yes {
            let question = format!(
                "Roll back run {}: restore {} resource(s) as listed?",
                args.run_id,
                to_do
            );
            if let Some(exit) = super::session::confirm(
                &question,
                "rolled back",
                "the rollback on",
                "rerun with --yes",
            ) {
                return exit;
            }
        }
        let notifier = crate::notify::Notifier::new(out.reporter(), plan.notify.as_ref(), &args.run_id, &plan.playbook.name);
        let recorder = Recorder::new(&mut journal, history, &notifier);
        if let Err(exit) = super::session::attached(&recorder, "rollback") {
            return exit;
        }
        let cloud = match aws(&args.rates.rates()).await {
            Ok(ctx) => Routed::new(
                super::session::clouds(ctx, plan.account_specs(), &args.run_id).await,
                plan.routes.clone(),
            ),
            Err(exit) => return exit,
        };
        let interrupt = Arc::new(Interrupt::default());
        on_ctrl_c(interrupt.clone(), args.run_id.clone());
        let options = Options {
            run_id: args.run_id.clone(),
            concurrency: args.concurrency.into(),
            ..Options::default()
        };
        let executor = crate::engine::execute::Executor {
            cloud: &cloud,
            recorder: &recorder,
            options: &options,
            interrupt: &interrupt,
        };
        let exit = match executor.rollback(&plan, args.fast).await {
            Ok(report) if report.differences.is_empty() => {
                for g in &report.gone {
                    out.say(&format!("not restored: {g}"));
                }
                let replaced = if report.replaced > 0 {
                    format!(", {} replaced instance(s) left in their new zones", report.replaced)
                } else {
                    String::new()
                };
                // The same count as the list above: resources, each restored once
                // whatever number of waves it took.
                let done = if to_do == 0 {
                    format!("all {touched} already in place")
                } else if report.restored == 0 {
                    format!("{to_do} restored (all were already in place)")
                } else {
                    format!("{to_do} restored")
                };
                out.say(&format!(
                    "run {} rolled back: {done}{replaced}; live state matches the recorded originals",
                    args.run_id,
                ));
                Exit::Success
            }
            Ok(report) => {
                for d in &report.differences {
                    out.say(&format!("difference: {d}"));
                }
                out.say(&format!(
                    "error: live state differs from the recorded originals after the rollback: a human must look, then run `evac rollback {}` again to restore them",
                    args.run_id
                ));
                Exit::NeedsHuman
            }
            Err(EngineError::Interrupted) => {
                out.say(&format!("rollback interrupted; run `evac rollback {}` again to go on", args.run_id));
                Exit::Interrupted
            }
            Err(err) => {
                out.say(&format!("error: rollback failed: {err}\nrun `evac rollback {}` again once the cause is fixed", args.run_id));
                Exit::NeedsHuman
            }
        };
        let exit = super::session::flush_journal(&mut journal, exit, &out, &args.run_id, &args.state);
        notifier.finish();
        exit
    })
}

/// What the rollback will do, one line per resource, newest change first: the value
/// the run left (or `--force` accepted) -> the original, the `before` of the run's
/// first change to it (weights: to each record set). Replaced instances are said to
/// stay where they are.
fn to_restore(history: &crate::journal::history::History) -> Vec<String> {
    use crate::journal::Target;
    use crate::journal::{show, show_target};
    crate::engine::rollback::pending(history)
        .into_iter()
        .map(|p| {
            if matches!(p.target, Target::Instance { .. }) {
                format!(
                    "= {}: stays in its new zone (the group keeps its capacity)",
                    show_target(&p.target)
                )
            } else {
                format!(
                    "~ {} (step {}): {} -> {}",
                    show_target(&p.target),
                    p.step,
                    show(&p.left),
                    show(&p.original)
                )
            }
        })
        .collect()
}
