//! What `run`, `resume` and `rollback` share: the state dir, the reporter, the
//! runtime, Ctrl-C handling and how an engine result becomes an exit code.

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::aws::cloud::AwsCloud;
use crate::aws::pace::Rates;
use crate::aws::{AwsContext, Settings};
use crate::engine::error::EngineError;
use crate::engine::interrupt::Interrupt;
use crate::engine::reporter::Reporter;
use crate::exit::Exit;
use crate::journal::{Location, StateDir, parse_location};
use crate::playbook::{AccountSpec, HumanDuration};
use crate::progress::{JsonReporter, TerminalReporter};

/// Output of commands that report progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunOutput {
    /// Progress bars on stderr (plain lines when it is not a terminal).
    Human,
    /// One JSON event per line on stdout.
    Json,
}

/// Where runs are kept.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// Where runs, journals and locks are kept: a folder, or s3://BUCKET/PREFIX for
    /// state the whole team shares [default: .evac]
    #[arg(long, env = "EVAC_STATE_DIR", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub state_dir: Option<String>,
    /// With state in S3: how long a lock outlives a holder that stopped renewing it
    /// (killed, or its machine gone); the holder renews it every third of this
    #[arg(
        long,
        env = "EVAC_LOCK_LEASE",
        value_name = "DURATION",
        default_value = "2m",
        value_parser = parse_lease
    )]
    pub lock_lease: HumanDuration,
    /// With state in S3: a role to assume for it, when the bucket is in another
    /// account than the drill's credentials
    #[arg(long, env = "EVAC_STATE_ROLE", value_name = "ROLE_ARN", value_parser = parse_role)]
    pub state_role: Option<String>,
    /// With state in S3: the bucket's region, reached whatever region is down
    /// [default: AWS_REGION, else the profile's]
    #[arg(long, env = "EVAC_STATE_REGION", value_name = "REGION", value_parser = parse_region)]
    pub state_region: Option<String>,
}

fn parse_region(text: &str) -> Result<String, String> {
    crate::playbook::Region::parse(text).map(|r| r.to_string())
}

fn parse_role(text: &str) -> Result<String, String> {
    if crate::playbook::is_role_arn(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an IAM role ARN: write arn:aws:iam::ACCOUNT_ID:role/NAME"
        ))
    }
}

fn parse_lease(text: &str) -> Result<HumanDuration, String> {
    HumanDuration::parse(text).and_then(|d| {
        if d.0 < std::time::Duration::from_secs(1) {
            Err(format!("`{text}` is too short: a lease lasts 1s or more"))
        } else {
            Ok(d)
        }
    })
}

impl StateArgs {
    /// The state dir: --state-dir, else EVAC_STATE_DIR, else `.evac`; in S3 when
    /// it is an `s3://` address (a bad one is exit 2).
    pub fn open(&self) -> Result<StateDir, Exit> {
        let text = self.state_dir.as_deref().unwrap_or(".evac");
        let location = parse_location(text).map_err(|why| {
            crate::say_error!("{why}");
            Exit::InvalidInput
        })?;
        let (bucket, prefix) = match location {
            Location::Local(path) => return Ok(StateDir::local(path)),
            Location::S3 { bucket, prefix } => (bucket, prefix),
        };
        let store = crate::aws::s3::S3Store::connect(
            &bucket,
            &prefix,
            self.state_region.as_deref(),
            self.state_role.as_deref(),
        )
        .map_err(|why| {
            crate::say_error!("{why}");
            Exit::StepFailed
        })?;
        StateDir::remote(Arc::new(store), self.lock_lease.0).map_err(|err| {
            crate::say_error!("{err}");
            Exit::StepFailed
        })
    }

    /// `--state-dir VALUE` as given, for commands printed to the operator.
    pub fn flag(&self) -> String {
        let mut flags = self
            .state_dir
            .as_ref()
            .map(|d| format!(" --state-dir {d}"))
            .unwrap_or_default();
        if let Some(role) = &self.state_role {
            flags.push_str(&format!(" --state-role {role}"));
        }
        if let Some(region) = &self.state_region {
            flags.push_str(&format!(" --state-region {region}"));
        }
        flags
    }
}

/// The reporter for an output mode, with a way to print human lines.
pub enum Out {
    /// For people.
    Human(TerminalReporter),
    /// For programs.
    Json(JsonReporter),
}

impl Out {
    /// The reporter of `output`.
    pub fn new(output: RunOutput) -> Self {
        match output {
            RunOutput::Human => Out::Human(TerminalReporter::new()),
            RunOutput::Json => Out::Json(JsonReporter),
        }
    }

    /// The engine's view of it.
    pub fn reporter(&self) -> &dyn Reporter {
        match self {
            Out::Human(r) => r,
            Out::Json(r) => r,
        }
    }

    /// A line for people (stderr, above the progress bars); JSON mode keeps stdout for
    /// events only.
    pub fn say(&self, text: &str) {
        crate::say!("{text}");
    }
}

/// A runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Runtime::new().map_err(|err| {
        crate::say_error!("failed to start the async runtime: {err}");
        Exit::StepFailed
    })
}

/// The clouds of a playbook's named accounts beside the ambient one: role sessions
/// are named after `run` (a run id, or `plan`).
pub fn clouds<'a>(
    ctx: AwsContext,
    accounts: impl IntoIterator<Item = (&'a String, &'a AccountSpec)>,
    run: &str,
) -> impl Future<Output = Accounts<AwsCloud>> {
    let session = crate::aws::session_name(run);
    let accounts: Vec<(String, AccountSpec)> = accounts
        .into_iter()
        .map(|(name, spec)| (name.clone(), spec.clone()))
        .collect();
    async move {
        let mut named = std::collections::BTreeMap::new();
        for (name, spec) in accounts {
            named.insert(name, AwsCloud::new(ctx.for_account(&spec, &session).await));
        }
        Accounts {
            ambient: AwsCloud::new(ctx),
            named,
        }
    }
}

/// How a command talks to AWS: one context (one pace per API) for all its calls,
/// with credentials checked first. Missing credentials are one line naming the fix
/// (exit 1: AWS could not be read; nothing was changed).
pub async fn aws(rates: &Rates) -> Result<AwsContext, Exit> {
    let ctx = AwsContext::load_with(
        None,
        &Settings {
            rates: Some(rates.clone()),
        },
    )
    .await;
    match ctx.check_credentials().await {
        Ok(()) => Ok(ctx),
        Err(why) => {
            crate::say_error!("{why}; nothing was changed");
            Err(Exit::StepFailed)
        }
    }
}

/// Regions that do not answer.
#[derive(Debug, Default, clap::Args)]
pub struct RegionArgs {
    /// A region that is down (repeatable): nothing is read from it or sent to it.
    /// It is planned from its last known state in the state dir (what `plan` and
    /// `run` read there last); the steps that would change, or wait on, something
    /// there are skipped and reported; its stop conditions are not watched
    #[arg(long = "region-down", value_name = "REGION", value_parser = parse_region)]
    pub down: Vec<String>,
}

impl RegionArgs {
    /// Refuses a region the playbook does not use (a typo would otherwise do
    /// nothing), and keeps this process's AWS calls away from the regions down.
    pub fn check(&self, playbook: &crate::playbook::Playbook) -> Result<(), Exit> {
        let used = playbook.regions();
        for region in &self.down {
            if !used.contains(region) {
                crate::say_error!(
                    "--region-down {region}: the playbook uses no such region (it uses {}); nothing was changed",
                    used.iter().cloned().collect::<Vec<_>>().join(", ")
                );
                return Err(Exit::InvalidInput);
            }
        }
        let instead: Vec<String> = used.into_iter().collect();
        crate::aws::avoid_regions(&self.down, &instead);
        Ok(())
    }
}

/// Reads what `playbook` needs: live, except in the regions down; a region that
/// stays silent past its budget is given up on. Those regions get the values of
/// their last known state in `state`. What was read live is recorded there as the
/// newest known state of its region (a failure to record is said, not fatal).
pub async fn read_world<C: crate::plan::observe::Observe>(
    clouds: &Accounts<C>,
    playbook: &crate::playbook::Playbook,
    reads: crate::plan::observe::Reads,
    regions: &RegionArgs,
    state: &StateDir,
) -> Result<crate::state::Observed, crate::plan::observe::ObserveError> {
    let reach = crate::plan::observe::Reach {
        down: regions.down.iter().cloned().collect(),
        ..Default::default()
    };
    let mut observed =
        crate::plan::observe::observe_reaching(clouds, playbook, reads, &reach).await?;
    if !observed.unread.is_empty() {
        let mut records = std::collections::BTreeMap::new();
        for region in observed.unread.keys() {
            match crate::plan::known::load(state, region) {
                Ok(Some(record)) => {
                    records.insert(region.clone(), record);
                }
                Ok(None) => {}
                Err(err) => crate::say!(
                    "warning: the last known state of {region} cannot be read from {}: {err}",
                    state.location()
                ),
            }
        }
        crate::plan::observe::fill_from_records(&mut observed, playbook, &records, reads).await?;
    }
    if let Err(err) = crate::plan::known::save(state, playbook, &observed, jiff::Timestamp::now()) {
        crate::say!(
            "warning: what was read was not recorded as the regions' last known state in {}: {err}",
            state.location()
        );
    }
    Ok(observed)
}

/// How fast evac may call each AWS API.
#[derive(Debug, clap::Args)]
pub struct RateArgs {
    /// Requests per second to one AWS API, as SERVICE=N (repeatable): route53 (per
    /// account; default 5, AWS's limit), autoscaling, ec2, cloudwatch,
    /// elasticloadbalancing (per account and region; default 20)
    #[arg(long = "rate", value_name = "SERVICE=N", value_parser = Rates::parse_one)]
    pub rates: Vec<(crate::aws::pace::Service, f64)>,
}

impl RateArgs {
    /// The rates given, defaults for the rest.
    pub fn rates(&self) -> Rates {
        Rates(self.rates.iter().copied().collect())
    }
}

/// What a stop signal stops: the interrupt of the work going on now (the run, then
/// the rollback `--rollback-on-failure` starts after it).
#[derive(Clone, Debug)]
pub struct StopTarget(Arc<std::sync::Mutex<Arc<Interrupt>>>);

impl StopTarget {
    /// Stops go to `interrupt`.
    pub fn new(interrupt: Arc<Interrupt>) -> Self {
        StopTarget(Arc::new(std::sync::Mutex::new(interrupt)))
    }

    /// From now on, stops go to `interrupt`.
    pub fn set(&self, interrupt: Arc<Interrupt>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = interrupt;
    }

    fn get(&self) -> Arc<Interrupt> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The next stop signal: Ctrl-C (SIGINT), SIGTERM, SIGHUP (the terminal closed) or
/// SIGQUIT, by name; `None` when none can be listened for.
struct Signals {
    #[cfg(unix)]
    unix: Vec<(tokio::signal::unix::Signal, &'static str)>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = [
                (SignalKind::terminate(), "SIGTERM"),
                (SignalKind::hangup(), "SIGHUP"),
                (SignalKind::quit(), "SIGQUIT"),
            ]
            .into_iter()
            .filter_map(|(kind, name)| signal(kind).ok().map(|s| (s, name)))
            .collect();
            Signals { unix }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) -> Option<&'static str> {
        #[cfg(unix)]
        {
            let others = futures::future::select_all(
                self.unix
                    .iter_mut()
                    .map(|(s, name)| Box::pin(async move { s.recv().await.map(|_| *name) })),
            );
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.ok().map(|()| "Ctrl-C"),
                (got, _, _) = others => got,
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }
}

/// Installs the handling of stop signals: Ctrl-C, SIGTERM, SIGHUP (a closed
/// terminal) and SIGQUIT alike. The first stops the work of `target` after the
/// call in flight, which journals the interruption, releases the lock and exits 4;
/// a second exits at once (the journal is consistent at every line).
pub fn on_signals(target: StopTarget, run_id: String) {
    tokio::spawn(async move {
        let mut signals = Signals::new();
        let Some(first) = signals.next().await else {
            return;
        };
        crate::say!("{first}: stopping after the call in flight (Ctrl-C again to exit at once)...");
        target.get().trigger();
        if signals.next().await.is_some() {
            crate::say!(
                "exiting now; the journal is consistent:\n  evac resume {run_id}\n  evac rollback {run_id}"
            );
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
    });
}

/// [`on_signals`] for one interrupt.
pub fn on_ctrl_c(interrupt: Arc<Interrupt>, run_id: String) -> StopTarget {
    let target = StopTarget::new(interrupt);
    on_signals(target.clone(), run_id);
    target
}

/// The commands that continue or undo a run.
pub fn next_steps(out: &Out, run_id: &str, state: &StateArgs) {
    let dir = state.flag();
    out.say(&format!("to continue: evac resume {run_id}{dir}"));
    out.say(&format!("to undo:     evac rollback {run_id}{dir}"));
}

/// Waits until the journal is wholly where the state is kept. In S3, entries other
/// than intents are sent behind the run's back; when the last of them cannot be,
/// the record there ends early: say so, and that a resume or rollback completes it
/// from live state (exit 1 instead of 0).
pub fn flush_journal(
    journal: &mut crate::journal::Journal,
    exit: Exit,
    out: &Out,
    run_id: &str,
    state: &StateArgs,
) -> Exit {
    match journal.finish() {
        Ok(()) => exit,
        Err(err) => {
            crate::say_error!("{err}");
            out.say(&format!(
                "the state store's record of run {run_id} ends before its last entries; once it answers, a resume or rollback reads live state and completes it"
            ));
            next_steps(out, run_id, state);
            if exit == Exit::Success {
                Exit::StepFailed
            } else {
                exit
            }
        }
    }
}

/// The exit code of a run folder that cannot be used: an unknown run id is invalid
/// input; a missing, empty, corrupt or tampered journal needs a human.
pub fn journal_exit(err: &crate::journal::JournalError) -> Exit {
    use crate::journal::JournalError;
    match err {
        JournalError::UnknownRun { .. }
        | JournalError::NoRuns { .. }
        | JournalError::HalfMade { .. } => Exit::InvalidInput,
        JournalError::Missing { .. }
        | JournalError::Tampered { .. }
        | JournalError::OutOfOrder { .. }
        | JournalError::Corrupt { .. } => Exit::NeedsHuman,
        JournalError::Io { .. } | JournalError::Remote { .. } | JournalError::Unvouched { .. } => {
            Exit::StepFailed
        }
        JournalError::Conflict { .. } | JournalError::LockLost { .. } => Exit::NeedsHuman,
    }
}

/// The exit code of an engine error.
pub fn exit_of(err: &EngineError) -> Exit {
    match err {
        EngineError::Step { .. } | EngineError::Aws { .. } | EngineError::Journal(_) => {
            Exit::StepFailed
        }
        EngineError::Interrupted | EngineError::Declined { .. } => Exit::Interrupted,
        EngineError::Drift { .. } | EngineError::CapacityLost { .. } => Exit::NeedsHuman,
    }
}

/// Said when a journal is dropped before its last entries reached S3.
pub fn say_unsent(err: &crate::journal::JournalError) {
    crate::say_warning!("the last journal entries may not be in S3: {err}");
}

/// Takes the playbook's lock for `run_id`: a live holder is exit 3, a dead one is
/// taken over with a warning.
pub fn lock(
    state: &StateDir,
    playbook: &str,
    run_id: &str,
    out: &Out,
) -> Result<crate::journal::Lock, Exit> {
    match state.lock(playbook, run_id) {
        Ok(lock) => {
            if let Some(dead) = &lock.took_over {
                out.say(&format!(
                    "warning: took over the lock of run {} (pid {} on {}), which ended without releasing it",
                    dead.run_id, dead.pid, dead.host
                ));
            }
            Ok(lock)
        }
        Err(err @ crate::journal::LockError::Held { .. }) => {
            crate::say_error!("{err}\nnothing was changed");
            Err(Exit::Blocked)
        }
        Err(err) => {
            crate::say_error!("{err}");
            Err(Exit::StepFailed)
        }
    }
}

/// Takes over an existing run (for `resume` and `rollback`): its lock and its
/// journal, open for appending.
pub fn attach(
    state: &StateDir,
    run: &crate::journal::RunDir,
    playbook: &str,
    out: &Out,
) -> Result<
    (
        crate::journal::Lock,
        crate::journal::Journal,
        crate::journal::history::History,
    ),
    Exit,
> {
    let lock = lock(state, playbook, &run.id, out)?;
    // In S3, read the run again now that it is this process's: what is appended
    // follows what S3 holds, and stops if the lock is lost.
    let run = if state.is_remote() {
        state.open_run(&run.id).map_err(|err| {
            crate::say_error!("{err}");
            journal_exit(&err)
        })?
    } else {
        run.clone()
    };
    // The journal is read once the lock is held: nothing another process appended
    // before it let go is missed (a run that finished while this one waited, the
    // last changes of a rollback).
    let entries = run.read().map_err(|err| {
        crate::say_error!("{err}");
        journal_exit(&err)
    })?;
    let mut journal = crate::journal::Journal::open(&run).map_err(|err| {
        crate::say_error!("{err}");
        Exit::StepFailed
    })?;
    journal.on_unsent(say_unsent);
    Ok((
        lock,
        journal,
        crate::journal::history::History::from_entries(&entries),
    ))
}

/// Records which process took the run over, and why.
pub fn attached(
    recorder: &crate::engine::recorder::Recorder<'_>,
    command: &str,
) -> Result<(), Exit> {
    recorder
        .log(crate::journal::Event::Attached {
            pid: std::process::id(),
            command: command.to_owned(),
            user: crate::journal::user_name(),
        })
        .map_err(|err| {
            crate::say_error!("{err}");
            Exit::StepFailed
        })
}

/// The runs of `playbook` in `state` that did not finish and were not closed, each
/// as a plan blocker naming the ways out. A run in that state left AWS part-way:
/// a new run planned over it would take its changes for the world as it is (absorb
/// the source's capacity twice, ramp from where it stopped).
pub fn unfinished_runs(
    state: &StateDir,
    playbook: &str,
    flags: &str,
) -> Result<Vec<crate::plan::Finding>, crate::journal::JournalError> {
    let mut found = Vec::new();
    for run in state.runs()? {
        let Ok(entries) = run.read() else {
            // A run that cannot be read is named by status and report; it is not
            // this playbook's as far as can be told.
            continue;
        };
        let of_playbook = entries.iter().any(|e| {
            matches!(&e.event, crate::journal::Event::RunStarted { playbook: p, .. } if p == playbook)
        });
        if !of_playbook {
            continue;
        }
        let history = crate::journal::history::History::from_entries(&entries);
        if let Some(why) = history.unfinished() {
            let id = &run.id;
            found.push(crate::plan::Finding {
                step: None,
                resource: Some(format!("run {id}")),
                message: format!(
                    "run {id} of this playbook did not finish: {why}; AWS may be part-way through it. Finish it with `evac resume {id}{flags}`, undo it with `evac rollback {id}{flags}`, or close it as it is with `evac close {id}{flags}`"
                ),
            });
        }
    }
    Ok(found)
}

/// An existing run to take over (`resume`, `rollback`, `close`): its state dir, its
/// folder, and its plan, which names the playbook whose lock is taken first. Its
/// journal is read only once the lock is held ([`attach`]).
/// Which run `latest` stands for.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LatestArgs {
    /// With `latest` as the run id: the newest run of this playbook (its `name:`),
    /// not of the whole state dir
    #[arg(long = "playbook", value_name = "NAME")]
    pub playbook: Option<String>,
}

/// Puts the run id `run_id` stands for in its place: `latest` becomes the newest
/// run of the state dir (of `--playbook NAME`). Exit 2, said, when there is none.
pub fn resolve_run(
    state: &StateArgs,
    run_id: &mut String,
    latest: &LatestArgs,
) -> Result<(), Exit> {
    if run_id != crate::journal::state_dir::LATEST {
        if latest.playbook.is_some() {
            crate::say_error!(
                "--playbook picks which run `latest` is: give `latest` as the run id, or leave --playbook out"
            );
            return Err(Exit::InvalidInput);
        }
        return Ok(());
    }
    let dir = state.open()?;
    *run_id = dir
        .resolve(run_id, latest.playbook.as_deref())
        .map_err(|err| {
            crate::say_error!("{err}");
            journal_exit(&err)
        })?;
    Ok(())
}

pub fn existing_run(
    state: &StateArgs,
    run_id: &str,
) -> Result<(StateDir, crate::journal::RunDir, crate::plan::Plan), Exit> {
    let state = state.open()?;
    let run = state.open_run(run_id).map_err(|err| {
        crate::say_error!("{err}");
        journal_exit(&err)
    })?;
    let (_, plan) = super::run::read_run(&run)?;
    Ok((state, run, plan))
}

/// Asks `question` on the terminal before a command changes anything. `None`: go
/// on. Otherwise the exit to end with, said: 0 after a no (`not DONE; nothing was
/// changed`), 2 without a terminal (`no terminal to confirm ...`, with `how` naming
/// `--yes`).
pub fn confirm(question: &str, done: &str, on: &str, how: &str) -> Option<Exit> {
    match crate::progress::ask_terminal(question) {
        Some(true) => None,
        Some(false) => {
            crate::say!("not {done}; nothing was changed");
            Some(Exit::Success)
        }
        None => {
            crate::say_error!("no terminal to confirm {on}: {how}\nnothing was changed");
            Some(Exit::InvalidInput)
        }
    }
}
