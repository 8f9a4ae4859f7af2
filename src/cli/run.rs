//! `evac run` and `evac resume`: execute a plan with a durable journal.

use std::path::PathBuf;
use std::sync::Arc;

use super::session::{
    Out, RateArgs, RunOutput, StateArgs, aws, exit_of, next_steps, on_ctrl_c, runtime,
};
use super::{VarArgs, load_or_report};
use crate::accounts::Accounts;
use crate::aws::cloud::AwsCloud;
use crate::engine::error::EngineError;
use crate::engine::execute::{Executor, Options};
use crate::engine::interrupt::Interrupt;
use crate::engine::interrupt::Reason;
use crate::engine::recorder::Recorder;
use crate::engine::route::Routed;
use crate::exit::Exit;
use crate::journal::history::History;
use crate::journal::{Event, Journal, Outcome, RunDir, new_run_id};
use crate::notify::Notifier;
use crate::plan::observe::Reads;
use crate::plan::{Plan, build::build, render};
use crate::playbook::{AlarmRef, HumanDuration, Region, StopCondition};

/// Arguments of `evac run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The playbook to run (not needed with --plan: a saved plan holds its playbook).
    #[arg(value_name = "PLAYBOOK", required_unless_present = "plan")]
    pub playbook: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Run without asking: confirms the run and answers every `approve` step.
    #[arg(long)]
    pub yes: bool,
    /// Run this plan (saved by `evac plan --save`) with the playbook and params it was
    /// made with; refused when the live state has changed since it was made. A
    /// PLAYBOOK given too must be the one planned.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["vars", "var_files"])]
    pub plan: Option<PathBuf>,
    /// Also halt when this CloudWatch alarm is in ALARM (repeatable), e.g. us-west-2:api-5xx-rate.
    #[arg(long, value_name = "REGION:NAME", value_parser = parse_alarm)]
    pub stop_when_alarm: Vec<(Region, String)>,
    #[command(flatten)]
    pub regions: super::session::RegionArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// Arguments of `evac resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run to continue (see `evac status`).
    #[arg(value_name = "RUN_ID", add = super::complete::run_id())]
    pub run_id: String,
    /// Resume without asking, and answer every remaining `approve` step.
    #[arg(long)]
    pub yes: bool,
    /// Accept live values that drifted from the journal instead of stopping.
    #[arg(long)]
    pub force: bool,
    /// Run the steps the run skipped because a region was down (`--region-down`),
    /// now that it answers: each reads the region live first, and stops on drift
    #[arg(long)]
    pub skipped: bool,
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub latest: super::session::LatestArgs,
}

/// What `run` and `resume` share: how the steps are executed and reported.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Roll the run back automatically when a step fails or a stop condition fires.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// At most this many changes of one wave in flight at once (group updates, hosted
    /// zone changes, zonal shifts, instance replacements)
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// How often stop conditions are polled while the run waits or bakes.
    #[arg(long = "stop-poll", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub stop_poll: HumanDuration,
    #[command(flatten)]
    pub rates: RateArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunOutput::Human)]
    pub output: RunOutput,
}

impl ExecArgs {
    /// The engine options for a plan.
    fn options(&self, yes: bool, force: bool, plan: &Plan, run_id: &str) -> Options {
        Options {
            run_id: run_id.to_owned(),
            yes,
            force,
            concurrency: self.concurrency.into(),
            stops: plan.stop_conditions.clone(),
            stop_poll: self.stop_poll.0,
            operator: crate::journal::user_name(),
            finish_skipped: false,
        }
    }
}

/// The shortest `--stop-poll`: polling faster would spend the APIs' rates on
/// stop conditions alone.
const MIN_STOP_POLL: std::time::Duration = std::time::Duration::from_millis(500);

fn parse_duration(text: &str) -> Result<HumanDuration, String> {
    HumanDuration::parse(text).and_then(|d| {
        if d.0 < MIN_STOP_POLL {
            Err(format!(
                "`{text}` is too short: poll stop conditions every 500ms or more"
            ))
        } else {
            Ok(d)
        }
    })
}

fn parse_alarm(text: &str) -> Result<(Region, String), String> {
    let (region, name) = text
        .split_once(':')
        .ok_or_else(|| format!("invalid alarm `{text}`: write REGION:NAME"))?;
    if name.is_empty() {
        return Err(format!("invalid alarm `{text}`: the alarm name is empty"));
    }
    Ok((Region::parse(region)?, name.to_owned()))
}

/// `evac run`.
pub fn run(args: &RunArgs) -> Exit {
    let loaded = match (&args.playbook, &args.plan) {
        (Some(path), _) => load_or_report(path, &args.vars).map(|(p, t)| (p, t, path.clone())),
        (None, Some(plan)) => match planned_playbook(plan) {
            Ok(loaded) => Some(loaded),
            Err(err) => {
                crate::say_error!("{err}\nnothing was changed");
                return Exit::InvalidInput;
            }
        },
        (None, None) => {
            crate::say_error!(
                "name a PLAYBOOK to run, or a plan saved by `evac plan --save` with --plan FILE"
            );
            return Exit::InvalidInput;
        }
    };
    let Some((mut playbook, text, playbook_path)) = loaded else {
        return Exit::InvalidInput;
    };
    for (region, name) in &args.stop_when_alarm {
        playbook.stop_when.push(StopCondition::Alarm(AlarmRef {
            region: region.clone(),
            name: name.clone(),
            account: None,
        }));
    }
    if let Err(exit) = args.regions.check(&playbook) {
        return exit;
    }
    let digest = crate::journal::hex_digest(text.as_bytes());
    let saved: Option<Plan> = match &args.plan {
        None => None,
        Some(path) => match saved_plan(path, &playbook_path, &digest) {
            Ok(plan) => Some(plan),
            Err(err) => {
                crate::say_error!("{err}\nnothing was changed");
                return Exit::InvalidInput;
            }
        },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(exit) => return exit,
    };
    let out = Out::new(args.exec.output);
    rt.block_on(async {
        // The lock comes first: a plan made while another run is changing things
        // would be wrong anyway.
        let state = match args.exec.state.open() {
            Ok(state) => state,
            Err(exit) => return exit,
        };
        let run_id = new_run_id(&playbook.name);
        crate::aws::log::tag_calls_with_run(&run_id);
        let _lock = match super::session::lock(&state, &playbook.name, &run_id, &out) {
            Ok(lock) => lock,
            Err(exit) => return exit,
        };
        // Read with the lock held: no run of this playbook can start or end meanwhile.
        let unfinished = match super::session::unfinished_runs(
            &state,
            &playbook.name,
            &args.exec.state.flag(),
        ) {
            Ok(found) => found,
            Err(err) => {
                crate::say_error!(
                    "cannot look for unfinished runs of {}: {err}\nnothing was changed",
                    playbook.name
                );
                return Exit::StepFailed;
            }
        };
        let ctx = match aws(&args.exec.rates.rates()).await {
            Ok(ctx) => ctx,
            Err(exit) => return exit,
        };
        let clouds = super::session::clouds(ctx, &playbook.accounts, &run_id).await;
        // A saved plan read the lifecycle hooks (one call per group, the slowest read
        // at fleet size, and only ever a warning) and showed them: its run does not
        // read them again, and compares the rest.
        // With a region down, the run is the real day's: it does not spend one call
        // per changed group on hooks that only ever warn (`plan` reads them).
        let reads = Reads {
            lifecycle_hooks: match &saved {
                Some(s) => s.fingerprint_without_hooks.is_empty(),
                None => args.regions.down.is_empty(),
            },
        };
        let observed = match super::session::read_world(
            &clouds,
            &playbook,
            reads,
            &args.regions,
            &state,
        )
        .await
        {
            Ok(observed) => observed,
            Err(err) => {
                crate::say_error!("{err}\nnothing was changed");
                return Exit::StepFailed;
            }
        };
        let fresh = build(
            &playbook,
            &observed,
            &playbook_path.display().to_string(),
            jiff::Timestamp::now(),
        );
        let mut plan = match saved {
            Some(saved) => {
                // What the saved plan depends on, observed now: the playbook as it was
                // planned, without this command line's stop conditions.
                let mut planned = playbook.clone();
                planned
                    .stop_when
                    .truncate(planned.stop_when.len() - args.stop_when_alarm.len());
                let now = build(
                    &planned,
                    &without_alarms(&observed, &planned, &args.stop_when_alarm),
                    &playbook_path.display().to_string(),
                    jiff::Timestamp::now(),
                );
                from_saved(
                    saved,
                    &now,
                    fresh,
                    reads.lifecycle_hooks,
                    &args.stop_when_alarm,
                )
            }
            None => fresh,
        };
        plan.blockers.extend(unfinished);
        plan.playbook.sha256 = digest.clone();
        plan.seal();
        if args.exec.output == RunOutput::Json {
            // A reader that went away must not stop the run: the write may fail.
            crate::out!("{}", serde_json::json!({ "event": "plan", "plan": &plan }));
        } else {
            crate::shell::err_text(&render::human(&plan, crate::shell::colour()));
        }
        if plan.is_blocked() {
            crate::say_error!("the plan has blockers; nothing was changed");
            return Exit::Blocked;
        }
        if !args.yes
            && let Some(exit) = super::session::confirm(
                &format!(
                    "Run {} step(s) of {} against AWS now?",
                    plan.steps.len(),
                    plan.playbook.name
                ),
                "run",
                "the run on",
                "rerun with --yes to run without asking",
            )
        {
            return exit;
        }
        let plan_json = serde_json::to_string_pretty(&plan).unwrap_or_default();
        let run = match state.create_run(&run_id, &text, &plan_json) {
            Ok(run) => run,
            Err(err) => {
                crate::say_error!("cannot create the run folder: {err}\nnothing was changed");
                return Exit::StepFailed;
            }
        };
        let mut journal = match Journal::open(&run) {
            Ok(journal) => journal,
            Err(err) => {
                crate::say_error!("cannot open the journal: {err}\nnothing was changed");
                return Exit::StepFailed;
            }
        };
        journal.on_unsent(super::session::say_unsent);
        let notifier = Notifier::new(
            out.reporter(),
            plan.notify.as_ref(),
            &run_id,
            &plan.playbook.name,
        );
        let recorder = Recorder::new(&mut journal, History::default(), &notifier);
        let started = recorder.log(Event::RunStarted {
            run_id: run_id.clone(),
            playbook: plan.playbook.name.clone(),
            file: plan.playbook.file.clone(),
            params: plan.playbook.params.clone(),
            user: crate::journal::user_name(),
            host: crate::journal::host_name(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            caller: plan.caller.clone(),
        });
        if let Err(err) = started.and_then(|()| {
            recorder.log(Event::Attached {
                pid: std::process::id(),
                command: "run".into(),
                user: crate::journal::user_name(),
            })
        }) {
            crate::say_error!("{err}\nnothing was changed");
            return Exit::StepFailed;
        }
        let journal_at = match &run.remote {
            Some(remote) => format!("{}/{}journal/", state.location(), remote.prefix),
            None => run.journal_path().display().to_string(),
        };
        out.say(&format!("run {run_id} (journal: {journal_at})"));
        let options = args.exec.options(args.yes, false, &plan, &run_id);
        let exit = execute(
            clouds,
            &recorder,
            &plan,
            &options,
            args.exec.rollback_on_failure,
            &out,
            &run_id,
            &args.exec.state,
        )
        .await;
        let exit =
            super::session::flush_journal(&mut journal, exit, &out, &run_id, &args.exec.state);
        notifier.finish();
        exit
    })
}

/// `evac resume`.
pub fn resume(args: &ResumeArgs) -> Exit {
    crate::aws::log::tag_calls_with_run(&args.run_id);
    let (state, run, plan) = match super::session::existing_run(&args.exec.state, &args.run_id) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(exit) => return exit,
    };
    let out = Out::new(args.exec.output);
    rt.block_on(async {
        let (_lock, mut journal, history) =
            match super::session::attach(&state, &run, &plan.playbook.name, &out) {
                Ok(taken) => taken,
                Err(exit) => return exit,
            };
        if history.rollback_unfinished() {
            crate::say_error!(
                "a rollback of run {id} was started and has not finished: run `evac rollback {id}` again to finish it; a rolled-back run is not resumed",
                id = args.run_id
            );
            return Exit::InvalidInput;
        }
        if history.rollback_started {
            crate::say_error!(
                "run {} has been rolled back; start a new run instead",
                args.run_id
            );
            return Exit::InvalidInput;
        }
        if let Some((by, _)) = &history.closed {
            crate::say_error!(
                "run {} was closed by {by}: a closed run is not resumed; start a new run instead",
                args.run_id
            );
            return Exit::InvalidInput;
        }
        if args.skipped && history.skipped_steps.is_empty() {
            crate::say!(
                "run {} skipped no step; nothing to resume with --skipped",
                args.run_id
            );
            return Exit::Success;
        }
        if history.outcome == Some(Outcome::Succeeded) && !args.skipped {
            let skipped = &history.skipped_steps;
            if skipped.is_empty() {
                crate::say!("run {} already finished; nothing to resume", args.run_id);
            } else {
                crate::say!(
                    "run {id} already finished, with {} step(s) skipped ({}); once their region answers, `evac resume {id} --skipped` runs them",
                    skipped.len(),
                    skipped
                        .iter()
                        .map(|(step, why)| format!("{step}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                    id = args.run_id
                );
            }
            return Exit::Success;
        }
        // Said once the run is this process's: another holder's run is not described.
        for line in found(&history, &plan) {
            out.say(&line);
        }
        // Like `run`: nothing changes in AWS before the operator says so.
        if !args.yes
            && let Some(exit) = super::session::confirm(
                &format!(
                    "Resume run {} of {} against AWS now?",
                    args.run_id, plan.playbook.name
                ),
                "resumed",
                "the resume on",
                "rerun with --yes to resume without asking",
            )
        {
            return exit;
        }
        let notifier = Notifier::new(
            out.reporter(),
            plan.notify.as_ref(),
            &args.run_id,
            &plan.playbook.name,
        );
        let recorder = Recorder::new(&mut journal, history, &notifier);
        if let Err(exit) = super::session::attached(&recorder, "resume") {
            return exit;
        }
        let mut options = args.exec.options(args.yes, args.force, &plan, &args.run_id);
        options.finish_skipped = args.skipped;
        let clouds = match aws(&args.exec.rates.rates()).await {
            Ok(ctx) => super::session::clouds(ctx, plan.account_specs(), &args.run_id).await,
            Err(exit) => return exit,
        };
        let exit = execute(
            clouds,
            &recorder,
            &plan,
            &options,
            args.exec.rollback_on_failure,
            &out,
            &args.run_id,
            &args.exec.state,
        )
        .await;
        let exit = super::session::flush_journal(&mut journal, exit, &out, &args.run_id, &args.exec.state);
        notifier.finish();
        exit
    })
}

/// What resume found in the journal, said before it acts: how the run stopped,
/// which steps are done, what is in flight (checked against live AWS first), and
/// where it goes on.
fn found(history: &History, plan: &Plan) -> Vec<String> {
    let how = match history.outcome {
        Some(Outcome::Halted) => "was halted by a stop condition",
        Some(Outcome::Interrupted) => "was interrupted",
        Some(Outcome::Declined) => "stopped at a declined approval",
        Some(Outcome::Failed) => "failed",
        Some(Outcome::Succeeded) => "finished",
        None => "ended without finishing (its process was killed or its machine went down)",
    };
    let done: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| history.finished_steps.contains(&s.id))
        .map(|s| s.id.as_str())
        .collect();
    let mut lines = vec![format!(
        "resuming run of {}: it {how}; steps done: {} of {}{}",
        plan.playbook.name,
        done.len(),
        plan.steps.len(),
        if done.is_empty() {
            String::new()
        } else {
            format!(" ({})", done.join(", "))
        }
    )];
    let unsent = history
        .intents
        .iter()
        .filter(|i| !history.applied.contains_key(&i.action))
        .count();
    let unsettled = history
        .intents
        .iter()
        .filter(|i| {
            history.applied.contains_key(&i.action) && !history.converged.contains(&i.action)
        })
        .count();
    lines.push(format!(
        "  {} change(s) recorded: {} in effect, {} sent and not yet in effect, {} recorded but maybe not sent; each is checked against live AWS before anything else",
        history.intents.len(),
        history.intents.len() - unsent - unsettled,
        unsettled,
        unsent
    ));
    for step in &history.declined {
        lines.push(format!(
            "  step {step}: its approval was declined; it is asked again"
        ));
    }
    if let Some(next) = plan
        .steps
        .iter()
        .find(|s| !history.finished_steps.contains(&s.id))
    {
        lines.push(format!("  going on with step {}", next.id));
    }
    lines
}

/// The playbook a saved plan was made from, loaded from the text the plan holds
/// with the params it was made with; the file it names is not read.
fn planned_playbook(
    path: &std::path::Path,
) -> Result<(crate::playbook::Playbook, String, PathBuf), String> {
    let plan = read_saved(path)?;
    let file = path.display();
    if plan.playbook.source.is_empty() {
        return Err(format!(
            "the saved plan {file} does not hold its playbook: name the playbook too (`evac run PLAYBOOK --plan {file}`), or save the plan again"
        ));
    }
    let vars = plan
        .playbook
        .params
        .iter()
        .map(|(k, v)| crate::playbook::parse_var(&format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let playbook = crate::playbook::load_str(&plan.playbook.file, &plan.playbook.source, &vars)
        .map_err(|err| {
            format!("the playbook held by the saved plan {file} does not load: {err}")
        })?;
    Ok((
        playbook,
        plan.playbook.source.clone(),
        PathBuf::from(&plan.playbook.file),
    ))
}

/// Reads a plan saved by `evac plan --save`: whole, unedited, from this version.
fn read_saved(path: &std::path::Path) -> Result<Plan, String> {
    let file = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read the saved plan {file}: {e}"))?;
    let plan: Plan = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{file} is not a plan saved by `evac plan --save`: {e}"))?;
    if !plan.is_intact() {
        return Err(format!(
            "the saved plan {file} was edited after it was saved (its digest does not match its content); make a new one with `evac plan --save`"
        ));
    }
    if plan.evac_version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "the saved plan {file} was made by evac {}, this is evac {}; make a new one with `evac plan --save`",
            plan.evac_version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    Ok(plan)
}

/// Reads a plan saved by `evac plan --save` and checks that it is the plan of this
/// playbook, as it was saved. Its params cannot differ: `--var` is refused beside
/// `--plan`, so the params are the playbook's defaults, which its hash covers.
fn saved_plan(
    path: &std::path::Path,
    playbook_path: &std::path::Path,
    digest: &str,
) -> Result<Plan, String> {
    let file = path.display();
    let plan = read_saved(path)?;
    if plan.playbook.sha256 != digest {
        return Err(format!(
            "the saved plan {file} was made for another playbook: `{}` from {} (sha256 {}), not {} (sha256 {}); plan this playbook with `evac plan --save`",
            plan.playbook.name,
            plan.playbook.file,
            &plan.playbook.sha256.get(..12).unwrap_or_default(),
            playbook_path.display(),
            &digest.get(..12).unwrap_or_default()
        ));
    }
    Ok(plan)
}

/// `observed` without the alarms only this command line's `--stop-when-alarm` adds.
fn without_alarms(
    observed: &crate::state::Observed,
    planned: &crate::playbook::Playbook,
    extra: &[(Region, String)],
) -> crate::state::Observed {
    let mut out = observed.clone();
    let named = |region: &Region, name: &str| {
        planned.stop_when.iter().any(|c| matches!(c, StopCondition::Alarm(a) if &a.region == region && a.name == name))
            || planned.steps.iter().any(|s| matches!(&s.action, crate::playbook::Action::Check(c) if c.alarm.as_ref().is_some_and(|a| &a.region == region && a.name == name)))
    };
    for (region, name) in extra {
        if !named(region, name)
            && let Some(alarms) = out.alarms.get_mut(region.as_str())
        {
            alarms.remove(name);
            if alarms.is_empty() {
                out.alarms.remove(region.as_str());
            }
        }
    }
    out
}

/// The plan a run of a saved plan goes by: the saved one, with this command line's
/// stop conditions (the fresh plan says whether they can be watched), and blocked,
/// as the printed plan then shows, when a value it shows has changed since it was
/// made (`now` is the playbook as planned, observed now).
fn from_saved(
    mut saved: Plan,
    now: &Plan,
    mut fresh: Plan,
    hooks_read: bool,
    alarms: &[(Region, String)],
) -> Plan {
    let (was, is) = if hooks_read {
        (&saved.fingerprint, &now.fingerprint)
    } else {
        (
            &saved.fingerprint_without_hooks,
            &now.fingerprint_without_hooks,
        )
    };
    if was != is {
        let what = crate::plan::first_difference(&saved, now)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        saved.blockers.push(crate::plan::Finding {
            step: None,
            resource: Some("saved plan".into()),
            message: format!(
                "the saved plan is stale: a value it shows has changed since it was made{what}; run `evac plan --save` again"
            ),
        });
    }
    for stop in &fresh.stop_conditions {
        if !saved.stop_conditions.contains(stop) {
            saved.stop_conditions.push(stop.clone());
        }
    }
    saved.stop_live = fresh.stop_live.clone();
    saved.blockers.extend(fresh.blockers.drain(..).filter(|b| {
        b.resource.as_ref().is_some_and(|r| {
            alarms
                .iter()
                .any(|(region, name)| r == &format!("alarm {name} ({region})"))
        })
    }));
    saved
}

/// Reads a run's history and plan.
pub fn read_run(run: &RunDir) -> Result<(History, Plan), Exit> {
    let entries = run.read().map_err(|err| {
        crate::say_error!("{err}");
        super::session::journal_exit(&err)
    })?;
    let plan: Plan = crate::journal::read_nofollow(&run.plan_path())
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|err| {
            crate::say_error!("cannot read the plan of run {}: {err}", run.id);
            Exit::NeedsHuman
        })?;
    if !plan.is_intact() {
        crate::say_error!(
            "{}: the plan of run {} was edited after the run started (its digest does not match its content); nothing is acted upon: a human must look",
            run.plan_path().display(),
            run.id
        );
        return Err(Exit::NeedsHuman);
    }
    Ok((History::from_entries(&entries), plan))
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    clouds: Accounts<AwsCloud>,
    recorder: &Recorder<'_>,
    plan: &Plan,
    options: &Options,
    rollback_on_failure: bool,
    out: &Out,
    run_id: &str,
    state_args: &StateArgs,
) -> Exit {
    let cloud = Routed::new(clouds, plan.routes.clone());
    let interrupt = Arc::new(Interrupt::default());
    let target = on_ctrl_c(interrupt.clone(), run_id.to_owned());
    let executor = Executor {
        cloud: &cloud,
        recorder,
        options,
        interrupt: &interrupt,
    };
    let result = executor.run(plan).await;
    let finish = |outcome, exit: Exit| {
        recorder.log(Event::RunFinished {
            outcome,
            exit: Some(exit.code()),
        })
    };
    match result {
        Ok(()) => {
            if let Err(err) = finish(Outcome::Succeeded, Exit::Success) {
                out.say(&format!("error: {err}"));
                return Exit::StepFailed;
            }
            out.say(&format!("run {run_id} succeeded"));
            Exit::Success
        }
        Err(EngineError::Interrupted) => match interrupt.reason() {
            Some(Reason::StopCondition { condition, state }) => {
                let _ = finish(Outcome::Halted, Exit::StopCondition);
                out.say(&format!(
                    "error: stop condition fired: {condition} is {state}; the run was halted"
                ));
                if rollback_on_failure {
                    return roll_back_after(
                        &cloud,
                        recorder,
                        options,
                        plan,
                        out,
                        run_id,
                        state_args,
                        Exit::StopCondition,
                        &target,
                    )
                    .await;
                }
                next_steps(out, run_id, state_args);
                Exit::StopCondition
            }
            _ => {
                let _ = recorder.log(Event::Interrupted);
                let _ = finish(Outcome::Interrupted, Exit::Interrupted);
                out.say(&format!(
                    "run {run_id} interrupted; the journal is consistent"
                ));
                next_steps(out, run_id, state_args);
                Exit::Interrupted
            }
        },
        Err(err @ EngineError::Declined { .. }) => {
            let _ = finish(Outcome::Declined, Exit::Interrupted);
            out.say(&format!("run {run_id} stopped: {err}"));
            next_steps(out, run_id, state_args);
            Exit::Interrupted
        }
        Err(err) => {
            out.say(&format!("error: {err}"));
            let _ = finish(Outcome::Failed, exit_of(&err));
            if rollback_on_failure && !matches!(err, EngineError::Journal(_)) {
                return roll_back_after(
                    &cloud,
                    recorder,
                    options,
                    plan,
                    out,
                    run_id,
                    state_args,
                    exit_of(&err),
                    &target,
                )
                .await;
            }
            next_steps(out, run_id, state_args);
            exit_of(&err)
        }
    }
}

/// `--rollback-on-failure`: rolls back, then exits with `exit` when live state matches
/// the originals, 4 when the rollback was interrupted (Ctrl-C, a stop signal), 5
/// when it does not match or the rollback failed.
#[allow(clippy::too_many_arguments)]
async fn roll_back_after<C: crate::engine::cloud::Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    options: &Options,
    plan: &Plan,
    out: &Out,
    run_id: &str,
    state: &StateArgs,
    exit: Exit,
    signals: &super::session::StopTarget,
) -> Exit {
    out.say(&format!(
        "rolling back run {run_id} (--rollback-on-failure)"
    ));
    // The run's interrupt is set: the rollback gets its own, which stop signals
    // now reach.
    let fresh = Arc::new(Interrupt::default());
    signals.set(fresh.clone());
    let executor = crate::engine::execute::Executor {
        cloud,
        recorder,
        options,
        interrupt: &fresh,
    };
    match executor.rollback(plan, false).await {
        Ok(report) if report.differences.is_empty() => {
            for g in &report.gone {
                out.say(&format!("not restored: {g}"));
            }
            out.say(&format!(
                "run {run_id} was rolled back; live state matches the recorded originals"
            ));
            exit
        }
        Ok(report) => {
            for d in &report.differences {
                out.say(&format!("difference: {d}"));
            }
            out.say(&format!(
                "error: rollback finished but live state differs from the originals: a human must look, then run `evac rollback {run_id}` again to restore them"
            ));
            Exit::NeedsHuman
        }
        Err(crate::engine::error::EngineError::Interrupted) => {
            out.say(&format!(
                "rollback interrupted; run `evac rollback {run_id}` again to go on"
            ));
            next_steps(out, run_id, state);
            Exit::Interrupted
        }
        Err(err) => {
            out.say(&format!("error: rollback failed: {err}"));
            next_steps(out, run_id, state);
            Exit::NeedsHuman
        }
    }
}
