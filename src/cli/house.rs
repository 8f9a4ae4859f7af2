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

/// Writes the completion script to stdout.
pub fn completions(args: &CompletionsArgs) -> Exit {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "evac", &mut script);
    crate::shell::out_text(&String::from_utf8_lossy(&script));
    Exit::Success
}

/// Writes a man page (roff) to stdout.
pub fn man(args: &ManArgs) -> Exit {
    let mut command = super::Cli::command();
    command.build();
    let page = match &args.command {
        None => clap_mangen::Man::new(command),
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => clap_mangen::Man::new(sub.clone()).title(format!("evac-{name}")),
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
    crate::shell::out_text(&String::from_utf8_lossy(&roff));
    Exit::Success
}
