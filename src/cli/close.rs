//! `evac close`: end an unfinished run on purpose, leaving AWS as it is.

use super::session::{Out, RunOutput, StateArgs, runtime};
use crate::exit::Exit;
use crate::journal::Event;

/// Arguments of `evac close`.
#[derive(Debug, clap::Args)]
pub struct CloseArgs {
    /// The run to close (see `evac status`).
    #[arg(value_name = "RUN_ID", add = super::complete::run_id())]
    pub run_id: String,
    /// Why it is closed, kept in its journal.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Close without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub latest: super::session::LatestArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunOutput::Human)]
    pub output: RunOutput,
}

/// Closes a run: its journal records who closed it and why, and nothing in AWS is
/// touched. A closed run no longer holds back the playbook's next plan or run, and
/// is not resumed. Exit 0 (also when there was nothing to close), 2 for an unknown
/// run or no terminal to ask on, 3 when another process holds the run.
pub fn run(args: &CloseArgs) -> Exit {
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
        let (_lock, mut journal, history) =
            match super::session::attach(&state, &run, &plan.playbook.name, &out) {
                Ok(taken) => taken,
                Err(exit) => return exit,
            };
        if let Some((by, _)) = &history.closed {
            out.say(&format!("run {} was already closed by {by}; nothing to do", args.run_id));
            return Exit::Success;
        }
        let Some(why) = history.unfinished() else {
            out.say(&format!(
                "run {} finished (it succeeded, or was rolled back and verified); nothing to close",
                args.run_id
            ));
            return Exit::Success;
        };
        let left = crate::engine::rollback::pending(&history);
        out.say(&format!(
            "run {}: {why}; closing it leaves AWS as it is, with {} change(s) of the run in place:",
            args.run_id,
            left.len()
        ));
        for p in &left {
            out.say(&format!(
                "  = {}: {}",
                crate::journal::show_target(&p.target),
                crate::journal::show(&p.left)
            ));
        }
        if !args.yes
            && let Some(exit) = super::session::confirm(
                &format!("Close run {} and leave AWS as it is?", args.run_id),
                "closed",
                "the close on",
                "rerun with --yes to close without asking",
            )
        {
            return exit;
        }
        let by = crate::journal::user_name();
        let written = journal
            .append_all(vec![
                Event::Attached {
                    pid: std::process::id(),
                    command: "close".to_owned(),
                    user: by.clone(),
                },
                Event::Closed {
                    by,
                    reason: args.reason.clone(),
                },
            ])
            .map(|_| ());
        let exit = match written {
            Ok(()) => {
                out.say(&format!(
                    "run {} closed; AWS was not touched. `evac rollback {}` still restores its changes if you want them back",
                    args.run_id, args.run_id
                ));
                Exit::Success
            }
            Err(err) => {
                crate::say_error!("{err}");
                Exit::StepFailed
            }
        };
        super::session::flush_journal(&mut journal, exit, &out, &args.run_id, &args.state)
    })
}
