//! `evac schema`, `evac completions` and `evac man`: what editors, shells and `man`
//! need, generated from the same types and clap definitions as the parser, so they
//! cannot drift from it.

use clap::CommandFactory;

use crate::exit::Exit;

/// Arguments of `evac completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Arguments of `evac man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// One command's page (`evac-run`) instead of evac's.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Writes the playbook JSON Schema to stdout.
pub fn schema() -> Exit {
    crate::shell::out_text(&crate::playbook::playbook_schema());
    Exit::Success
}

/// Writes the completion script to stdout: it asks evac what to complete (commands,
/// options, and run ids from the state dir), so it never goes out of date.
pub fn completions(args: &CompletionsArgs) -> Exit {
    use clap_complete::env::EnvCompleter;
    let shell: &dyn EnvCompleter = match args.shell {
        clap_complete::Shell::Bash => &clap_complete::env::Bash,
        clap_complete::Shell::Zsh => &clap_complete::env::Zsh,
        clap_complete::Shell::Fish => &clap_complete::env::Fish,
        clap_complete::Shell::Elvish => &clap_complete::env::Elvish,
        clap_complete::Shell::PowerShell => &clap_complete::env::Powershell,
        other => {
            crate::say_error!(
                "no completion for {other}: bash, zsh, fish, elvish and powershell have one"
            );
            return Exit::InvalidInput;
        }
    };
    let mut script = Vec::new();
    if let Err(err) = shell.write_registration("COMPLETE", "evac", "evac", "evac", &mut script) {
        crate::say_error!("cannot write the completion script: {err}");
        return Exit::StepFailed;
    }
    crate::shell::out_text(&String::from_utf8_lossy(&script));
    Exit::Success
}

/// Writes a man page (roff) to stdout.
pub fn man(args: &ManArgs) -> Exit {
    let mut command = super::Cli::command();
    command.build();
    let source = format!("evac {}", env!("CARGO_PKG_VERSION"));
    let page = match &args.command {
        None => clap_mangen::Man::new(command).source(source),
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => clap_mangen::Man::new(sub.clone())
                .title(format!("evac-{name}"))
                .source(source),
            None => {
                let names: Vec<String> = command
                    .get_subcommands()
                    .map(|c| c.get_name().to_owned())
                    .filter(|n| n != "help")
                    .collect();
                crate::say_error!(
                    "no command `{name}`: a man page exists for {}",
                    names.join(", ")
                );
                return Exit::InvalidInput;
            }
        },
    };
    let mut roff = Vec::new();
    if let Err(err) = page.render(&mut roff) {
        crate::say_error!("failed to render the man page: {err}");
        return Exit::StepFailed;
    }
    roff.extend_from_slice(exit_status_and_examples(args.command.as_deref()).as_bytes());
    crate::shell::out_text(&String::from_utf8_lossy(&roff));
    Exit::Success
}

/// The EXIT STATUS and EXAMPLES sections of a man page (roff), for `command`
/// (`None`: evac itself).
fn exit_status_and_examples(command: Option<&str>) -> String {
    use crate::exit::Exit;
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (exit, meaning) in [
        (Exit::Success, "success (plan: no blockers)"),
        (
            Exit::StepFailed,
            "a step failed; the run is stopped (and rolled back if asked); a plan that cannot read AWS",
        ),
        (
            Exit::InvalidInput,
            "invalid input: playbook, arguments, unknown run id",
        ),
        (
            Exit::Blocked,
            "the plan found blockers, a lock is held by another run, or a saved plan is stale; nothing was changed",
        ),
        (
            Exit::Interrupted,
            "stopped by a person (Ctrl-C, or an approval answered no); resumable",
        ),
        (
            Exit::NeedsHuman,
            "rollback failed, drift found, or capacity an earlier step gave is gone: a human must look",
        ),
        (
            Exit::StopCondition,
            "a stop condition fired (alarm); the run was halted",
        ),
    ] {
        out.push_str(&format!(".TP\n{}\n{meaning}\n", exit as i32));
    }
    let examples: &[&str] = match command {
        Some("validate") => &[
            "evac validate playbooks/evacuate-region.yaml --var source=us-west-2 --var target=us-east-1",
        ],
        Some("plan") => &[
            "evac plan playbooks/evacuate-region.yaml",
            "evac plan playbooks/evacuate-region.yaml --save drill.plan.json --output markdown",
            "evac plan playbooks/evacuate-region.yaml --region-down us-east-1",
        ],
        Some("run") => &[
            "evac run playbooks/evacuate-region.yaml",
            "evac run --plan drill.plan.json --yes --output json",
            "evac run playbooks/evacuate-region.yaml --region-down us-east-1 --yes",
        ],
        Some("resume") => &["evac resume RUN_ID", "evac resume RUN_ID --skipped --yes"],
        Some("rollback") => &[
            "evac rollback RUN_ID",
            "evac rollback RUN_ID --yes --fast --state-dir s3://drills/evac",
        ],
        Some("status") => &["evac status", "evac status RUN_ID --output json"],
        Some("check") => &[
            "evac check playbooks/*.yaml --state-dir s3://drills/evac",
            "evac check playbooks/evacuate-region.yaml --output json",
        ],
        Some("watch") => &[
            "evac watch latest --state-dir s3://drills/evac",
            "evac watch RUN_ID --output json",
        ],
        Some("report") => &["evac report RUN_ID --output html --out drill.html"],
        _ => &[
            "evac validate playbooks/evacuate-region.yaml",
            "evac plan playbooks/evacuate-region.yaml",
            "evac run playbooks/evacuate-region.yaml",
            "evac rollback RUN_ID",
        ],
    };
    out.push_str(".SH EXAMPLES\n");
    for example in examples {
        // Roff: a leading dot or quote would be a request; hyphens are minus signs.
        out.push_str(&format!(".PP\n.nf\n{}\n.fi\n", example.replace('-', "\\-")));
    }
    out
}
