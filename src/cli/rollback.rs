//! `evac rollback`: restore what a run changed.

use std::sync::Arc;

use super::run::read_run;
use super::session::{Out, RateArgs, RunOutput, StateArgs, aws, on_ctrl_c, runtime};
use crate::aws::cloud::AwsCloud;
use crate::engine::error::EngineError;
use crate::engine::execute::Options;
use crate::engine::interrupt::Interrupt;
use crate::engine::recorder::Recorder;
use crate::engine::rollback::rollback;
use crate::exit::Exit;
use crate::journal::RunDir;

/// Arguments of `evac rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The run to roll back (see `evac status`).
    #[arg(value_name = "RUN_ID")]
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
    pub state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunOutput::Human)]
    pub output: RunOutput,
}

/// Rolls a run back: exit 0 when live state matches every recorded original, 5 when
/// it does not or the rollback failed, 4 when interrupted (run it again to go on).
pub fn run(args: &RollbackArgs) -> Exit {
    let state = args.state.dir();
    let run = match RunDir::open(&state, &args.run_id) {
        Ok(run) => run,
        Err(err) => {
            eprintln!("error: {err}");
            return super::session::journal_exit(&err);
        }
    };
    let (history, plan) = match read_run(&run) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let pending = history
        .intents
        .iter()
        .filter(|i| !history.rolled_back.contains(&i.action))
        .count();
    if !args.yes {
        let question = format!(
            "Roll back run {}: restore {pending} recorded change(s)?",
            args.run_id
        );
        match crate::report::ask_terminal(&question) {
            Some(true) => {}
            Some(false) => {
                eprintln!("not rolled back; nothing was changed");
                return Exit::Success;
            }
            None => {
                eprintln!(
                    "error: no terminal to confirm the rollback on: rerun with --yes\nnothing was changed"
                );
                return Exit::InvalidInput;
            }
        }
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(exit) => return exit,
    };
    let out = Out::new(args.output);
    rt.block_on(async {
        let (_lock, mut journal) = match super::session::attach(&state, &run, &plan.playbook.name, &out) {
            Ok(taken) => taken,
            Err(exit) => return exit,
        };
        let recorder = Recorder::new(&mut journal, history, out.reporter());
        if let Err(exit) = super::session::attached(&recorder, "rollback") {
            return exit;
        }
        let cloud = match aws(&args.rates.rates()).await {
            Ok(ctx) => AwsCloud::new(ctx),
            Err(exit) => return exit,
        };
        let interrupt = Arc::new(Interrupt::default());
        on_ctrl_c(interrupt.clone(), args.run_id.clone(), out.printer());
        let options = Options {
            concurrency: args.concurrency.into(),
            ..Options::default()
        };
        match rollback(&cloud, &recorder, &interrupt, &options, &plan, args.fast).await {
            Ok(report) if report.differences.is_empty() => {
                out.say(&format!(
                    "run {} rolled back: {} change(s) restored, {} already in place{}; live state matches the recorded originals",
                    args.run_id,
                    report.restored,
                    report.already,
                    if report.replaced > 0 { format!(", {} replaced instance(s) left in their new zones", report.replaced) } else { String::new() }
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
        }
    })
}
