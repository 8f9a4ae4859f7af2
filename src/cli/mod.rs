//! The command line: clap definitions and one thin module per command.

mod check;
mod close;
mod complete;
mod house;
mod iam;
mod output;
mod plan;
mod report;
mod rollback;
mod run;
mod session;
mod status;
mod validate;
mod watch;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::exit::Exit;
use crate::playbook::parse_var;

/// evac's version and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("EVAC_COMMIT"), ")");

/// Region and availability-zone evacuation drills on AWS.
#[derive(Debug, Parser)]
#[command(name = "evac", version = VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log each AWS call (service, operation, region, latency, retries) to stderr;
    /// -vv adds the AWS SDK's own debug log. EVAC_LOG (or RUST_LOG), e.g.
    /// `evac=info,aws_config=debug`, chooses exactly what is logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The named profile of ~/.aws/config to call AWS with (drill and state
    /// bucket alike); wins over AWS_PROFILE
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check playbooks offline: syntax, fields, references, ramps, regions.
    Validate(ValidateArgs),
    /// Preview a run against live AWS state, read-only: every change, blockers, estimates.
    Plan(plan::PlanArgs),
    /// Plan playbooks read-only for cron and CI: one line each, then what is new since the last check.
    Check(check::CheckArgs),
    /// Run a playbook: plan, confirm, then execute step by step with a durable journal.
    Run(run::RunArgs),
    /// Continue an interrupted or failed run from its journal.
    Resume(run::ResumeArgs),
    /// Restore everything a run changed, newest change first, and verify it.
    Rollback(rollback::RollbackArgs),
    /// Close an unfinished run on purpose, leaving AWS as it is; recorded in its journal.
    Close(close::CloseArgs),
    /// Show every run, or one run's steps and changes.
    Status(status::StatusArgs),
    /// Follow a run live from its state dir (local or S3), from any machine, to its end.
    Watch(watch::WatchArgs),
    /// A drill's record: timeline, time to evacuate, changes, against the last run.
    Report(report::ReportArgs),
    /// Every run with its result and time to evacuate, against the previous one.
    History(report::HistoryArgs),
    /// Print the least-privilege IAM policy (JSON) that plan, or run + resume + rollback, need for a playbook.
    IamPolicy(iam::IamPolicyArgs),
    /// Print the JSON Schema of playbooks (format 1), for editors; committed as schema/playbook-v1.json.
    Schema,
    /// Print a shell completion script: `evac completions bash > /etc/bash_completion.d/evac`.
    Completions(house::CompletionsArgs),
    /// Print the man page of evac, or of one command, as roff: `evac man run | man -l -`.
    Man(house::ManArgs),
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: text on a terminal.
    Human,
    /// For programs: JSON on stdout.
    Json,
}

/// Parameter overrides shared by every command that loads a playbook.
#[derive(Debug, clap::Args)]
pub struct VarArgs {
    /// Override a playbook parameter (repeatable), e.g. --var target=us-east-1.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, serde_yaml::Value)>,
    /// Override playbook parameters from a YAML file of `NAME: VALUE` lines
    /// (repeatable; a later file wins, and --var wins over every file)
    #[arg(long = "var-file", value_name = "FILE", value_parser = crate::playbook::parse_var_file)]
    pub var_files: Vec<Vec<(String, serde_yaml::Value)>>,
}

impl VarArgs {
    /// The overrides as a map: the files in order, then each --var; a later value
    /// for the same name wins.
    pub fn to_map(&self) -> std::collections::BTreeMap<String, serde_yaml::Value> {
        self.var_files
            .iter()
            .flatten()
            .chain(&self.vars)
            .cloned()
            .collect()
    }
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// Playbook files to check.
    #[arg(required = true, value_name = "PLAYBOOK")]
    playbooks: Vec<PathBuf>,
    #[command(flatten)]
    vars: VarArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
}

/// Lets a closed pipe on stdout end the process quietly, as it ends `cat` or `grep`,
/// instead of a panic on the failed write. Only for commands that change nothing:
/// a run must never die because the reader of its events went away.
pub fn quiet_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default has no precondition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// What is logged: EVAC_LOG, else RUST_LOG, else what `-v` asks for, else nothing.
/// The SigV4 signer's log is always off: at trace level it shows signed headers.
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    let asked = ["EVAC_LOG", "RUST_LOG"].iter().find_map(|v| {
        std::env::var(v)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| (*v, s))
    });
    let spec = match (asked, verbose) {
        (Some((_, spec)), _) => spec,
        (None, 0) => return,
        (None, 1) => "evac=info".to_owned(),
        (None, _) => "evac=debug,aws_config=debug,aws_smithy_runtime=debug".to_owned(),
    };
    let targets: Targets = spec.parse().unwrap_or_else(|err| {
        say_warning!("cannot read the log filter `{spec}` ({err}): logging evac's AWS calls only; write it as TARGET=LEVEL,..., e.g. evac=info");
        Targets::new().with_target("evac", LevelFilter::INFO)
    });
    let subscriber = tracing_subscriber::fmt()
        .with_writer(crate::shell::LogWriter)
        .with_ansi(false)
        .finish()
        .with(targets.with_target("aws_sigv4", LevelFilter::OFF));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Parses the command line, runs the command and returns how it ended.
pub fn main() -> Exit {
    // A shell asking what to complete (`COMPLETE=bash evac -- ...`): answer, and end.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Some(name) = &cli.profile {
        crate::aws::use_profile(name);
    }
    if matches!(
        cli.command,
        Command::Validate(_)
            | Command::Plan(_)
            | Command::Check(_)
            | Command::Status(_)
            | Command::Watch(_)
            | Command::Report(_)
            | Command::History(_)
            | Command::Schema
            | Command::IamPolicy(_)
            | Command::Completions(_)
            | Command::Man(_)
    ) {
        quiet_on_closed_pipe();
    }
    let mut cli = cli;
    // `latest` as a run id: the newest run of the state dir (of --playbook NAME).
    let resolved = match &mut cli.command {
        Command::Resume(a) => session::resolve_run(&a.exec.state, &mut a.run_id, &a.latest),
        Command::Rollback(a) => session::resolve_run(&a.state, &mut a.run_id, &a.latest),
        Command::Close(a) => session::resolve_run(&a.state, &mut a.run_id, &a.latest),
        Command::Report(a) => session::resolve_run(&a.state, &mut a.run_id, &a.latest),
        Command::Watch(a) => session::resolve_run(&a.state, &mut a.run_id, &a.latest),
        Command::Status(a) => match &mut a.run_id {
            Some(id) => session::resolve_run(&a.state, id, &a.latest),
            None => Ok(()),
        },
        _ => Ok(()),
    };
    if let Err(exit) = resolved {
        return exit;
    }
    match cli.command {
        Command::Validate(args) => validate::run(&args.playbooks, &args.vars, args.output),
        Command::Plan(args) => plan::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Resume(args) => run::resume(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::Close(args) => close::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Report(args) => report::run(&args),
        Command::History(args) => report::list(&args),
        Command::Schema => house::schema(),
        Command::IamPolicy(args) => iam::run(&args),
        Command::Completions(args) => house::completions(&args),
        Command::Man(args) => house::man(&args),
    }
}

/// Loads a playbook, printing its problems to stderr when it is invalid. Returns it
/// with the text it was loaded from: the file is read once, so what is hashed and
/// kept with a run is what was loaded.
pub fn load_or_report(
    path: &std::path::Path,
    vars: &VarArgs,
) -> Option<(crate::playbook::Playbook, String)> {
    let loaded = crate::playbook::read_playbook(path).and_then(|text| {
        crate::playbook::load_str(&path.display().to_string(), &text, &vars.to_map())
            .map(|playbook| (playbook, text))
    });
    match loaded {
        Ok(loaded) => Some(loaded),
        Err(crate::playbook::LoadError::Invalid {
            text, diagnostics, ..
        }) => {
            for diag in &diagnostics {
                crate::say!("{}", diag.render(Some(&text)));
            }
            crate::say_error!(
                "{} is not a valid playbook; nothing was read from AWS",
                path.display()
            );
            None
        }
        Err(err) => {
            crate::say_error!("{err}");
            None
        }
    }
}
