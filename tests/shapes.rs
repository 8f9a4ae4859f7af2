//! Playbooks as teams write them, end to end against the emulator: generated shapes
//! run and roll back exactly; two shift steps over one hosted zone, interrupted by
//! kill -9 mid-ramp, hold back the next plan and run until resumed, rolled back or
//! closed; a named profile is the identity a drill runs as; state dir near-misses
//! are refused.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
use evac::plan::{Change as PlanChange, Plan};
use evac::playbook::Region;
use support::proxy::{Fault, FaultProxy, Rule};
use support::shapes::{self, SOURCE, Shape, TARGET};
use support::{Account, exit_within, until};

/// What a drill touches, read live: (min, desired, max) per group, weight per set
/// identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Live {
    groups: BTreeMap<String, (i32, i32, i32)>,
    weights: BTreeMap<String, i64>,
}

/// The world of `groups` (name, region, min, desired, max) and weighted records
/// (zone, label, weight per region) created in `account` by the seeder, with each
/// record set's weight then set as given.
fn seed(account: &Account, shape: &Shape) {
    use evac::seed::{GroupSeed, RecordSeed, RegionSeed, WorldSpec, ZoneSeed};
    let mut zones: BTreeMap<String, Vec<RecordSeed>> = BTreeMap::new();
    for r in &shape.records {
        let label = r.name.split('.').next().unwrap_or_default().to_owned();
        let records = zones.entry(r.zone.clone()).or_default();
        if !records.iter().any(|x| x.label == label) {
            records.push(RecordSeed {
                label,
                cname: false,
            });
        }
    }
    let regions = [SOURCE, TARGET]
        .iter()
        .enumerate()
        .map(|(octet, region)| RegionSeed {
            region: Region::parse(region).expect("region"),
            octet: octet as u8,
            weight: 0,
            groups: shape
                .groups
                .iter()
                .filter(|g| g.region == *region)
                .map(|g| GroupSeed {
                    service: g.name.trim_end_matches(&format!("-{region}")).to_owned(),
                    min: g.min as i32,
                    desired: g.desired as i32,
                    max: g.max as i32,
                })
                .collect(),
        })
        .collect();
    account.seed_spec(&WorldSpec {
        zones: zones
            .into_iter()
            .map(|(name, records)| ZoneSeed { name, records })
            .collect(),
        regions,
        ttl: 60,
        fleet: "shapes".into(),
    });
    let weights: BTreeMap<&str, i64> = shape
        .records
        .iter()
        .map(|r| (r.set_identifier.as_str(), r.weight))
        .collect();
    block_on(async {
        let route53 = account.context().await.route53();
        for zone_id in zone_ids(&route53).await.into_values() {
            let sets = route53
                .list_resource_record_sets()
                .hosted_zone_id(&zone_id)
                .send()
                .await
                .expect("list sets");
            let changes: Vec<Change> = sets
                .resource_record_sets()
                .iter()
                .filter_map(|set| {
                    let weight = weights.get(set.set_identifier()?)?;
                    let mut set = set.clone();
                    set.weight = Some(*weight);
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(set)
                        .build()
                        .ok()
                })
                .collect();
            if changes.is_empty() {
                continue;
            }
            route53
                .change_resource_record_sets()
                .hosted_zone_id(&zone_id)
                .change_batch(
                    ChangeBatch::builder()
                        .set_changes(Some(changes))
                        .build()
                        .expect("batch"),
                )
                .send()
                .await
                .expect("set weights");
        }
    });
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

/// Hosted zone ids by name.
async fn zone_ids(route53: &aws_sdk_route53::Client) -> BTreeMap<String, String> {
    route53
        .list_hosted_zones()
        .send()
        .await
        .expect("zones")
        .hosted_zones()
        .iter()
        .map(|z| {
            (
                z.name().to_owned(),
                z.id().trim_start_matches("/hostedzone/").to_owned(),
            )
        })
        .collect()
}

fn live(account: &Account) -> Live {
    block_on(async {
        let ctx = account.context().await;
        let mut groups = BTreeMap::new();
        for region in [SOURCE, TARGET] {
            let answer = ctx
                .autoscaling(&Region::parse(region).expect("region"))
                .describe_auto_scaling_groups()
                .send()
                .await
                .expect("describe groups");
            for g in answer.auto_scaling_groups() {
                groups.insert(
                    g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                    (
                        g.min_size().unwrap_or(-1),
                        g.desired_capacity().unwrap_or(-1),
                        g.max_size().unwrap_or(-1),
                    ),
                );
            }
        }
        let weights = support::all_weights(&ctx.route53()).await;
        Live { groups, weights }
    })
}

/// `start` with every change of `plan` at its last value.
fn planned_end(plan: &Plan, start: &Live) -> Live {
    let mut end = start.clone();
    for step in &plan.steps {
        for change in &step.changes {
            match change {
                PlanChange::Capacity { group, after, .. } => {
                    end.groups.insert(
                        group.clone(),
                        (after.min as i32, after.desired as i32, after.max as i32),
                    );
                }
                PlanChange::Weights { sets, .. } => {
                    for set in sets {
                        if let Some(w) = set.after.last() {
                            end.weights.insert(set.set_identifier.clone(), *w);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    end
}

fn read_plan(json: &[u8]) -> Plan {
    serde_json::from_slice(json).expect("the plan document")
}

/// The one run id in `state` made since `before` ids were there.
fn new_run(state: &Path, before: &[String]) -> String {
    let ids: Vec<String> = support::run_ids(state)
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(ids.len(), 1, "one new run: {ids:?}");
    ids[0].clone()
}

#[test]
fn generated_shapes_run_and_roll_back_exactly_against_the_emulator() {
    // The first few two-region shapes from seed 1 (the emulator's seeder makes every
    // record in every region of its world).
    let chosen: Vec<Shape> = (1..)
        .map(shapes::shape)
        .filter(Shape::two_regions)
        .take(4)
        .collect();
    for (i, shape) in chosen.iter().enumerate() {
        let seed_no = shape.seed;
        let account = Account::fresh();
        seed(&account, shape);
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("shape.yaml");
        std::fs::write(&file, shape.quick()).expect("write the playbook");
        let state = dir.path().join("state");
        let file = file.to_str().expect("path");
        let start = live(&account);

        let planned = account
            .evac_in(&state, &["plan", file, "--output", "json"])
            .output()
            .expect("plan");
        assert_eq!(
            planned.status.code(),
            Some(0),
            "seed {seed_no}: {}\n{}",
            String::from_utf8_lossy(&planned.stdout),
            shape.quick()
        );
        let end = planned_end(&read_plan(&planned.stdout), &start);
        assert_ne!(end, start, "seed {seed_no}: the shape changes something");

        let ran = account
            .evac_in(&state, &["run", file, "--yes"])
            .output()
            .expect("run");
        assert_eq!(
            ran.status.code(),
            Some(0),
            "seed {seed_no}: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert_eq!(live(&account), end, "seed {seed_no}: after the run");

        let run_id = new_run(&state, &[]);
        let mut rollback = vec!["rollback", run_id.as_str(), "--yes"];
        if i % 2 == 1 {
            rollback.push("--fast");
        }
        let rolled = account
            .evac_in(&state, &rollback)
            .output()
            .expect("rollback");
        assert_eq!(
            rolled.status.code(),
            Some(0),
            "seed {seed_no}: {}",
            String::from_utf8_lossy(&rolled.stdout)
        );
        assert_eq!(live(&account), start, "seed {seed_no}: after the rollback");
    }
}

/// Two services in one hosted zone, moved one at a time, one of them in two steps:
/// the shape most teams write first.
const ONE_AT_A_TIME: &str = "version: 1
name: one-at-a-time
groups:
  checkout: { names: { us-east-1: [checkout-us-east-1], us-west-2: [checkout-us-west-2] } }
  search: { names: { us-east-1: [search-us-east-1], us-west-2: [search-us-west-2] } }
records:
  checkout: { zone: shop.example., name: checkout.shop.example., type: A, set_identifiers: { us-east-1: checkout-use1, us-west-2: checkout-usw2 } }
  search: { zone: shop.example., name: search.shop.example., type: A, set_identifiers: { us-east-1: search-use1, us-west-2: search-usw2 } }
steps:
  - id: scale
    scale_up: { group: [checkout, search], region: us-west-2, absorb: { from: us-east-1, percent: 100 } }
  - id: checkout
    shift_traffic: { record: checkout, to: us-west-2, ramp: [50, 100], bake: 0s }
  - id: search-half
    shift_traffic: { record: search, to: us-west-2, ramp: [25, 50], bake: 0s }
  - id: search-rest
    shift_traffic: { record: search, to: us-west-2, ramp: [75, 100], bake: 0s }
  - id: drain
    drain: { group: [checkout, search], region: us-east-1, to: 0 }
";

/// The world of ONE_AT_A_TIME: east serves both on 4 instances each.
fn one_at_a_time(account: &Account) {
    let shape = Shape {
        seed: 0,
        playbook: ONE_AT_A_TIME.into(),
        groups: ["checkout", "search"]
            .iter()
            .flat_map(|s| {
                [(SOURCE, 4), (TARGET, 1)].map(|(region, desired)| shapes::GroupSeed {
                    region,
                    name: format!("{s}-{region}"),
                    min: 1,
                    desired,
                    max: 20,
                })
            })
            .collect(),
        records: ["checkout", "search"]
            .iter()
            .flat_map(|s| {
                [(SOURCE, "use1", 100), (TARGET, "usw2", 0)].map(|(region, short, weight)| {
                    shapes::RecordSeed {
                        zone: "shop.example.".into(),
                        name: format!("{s}.shop.example."),
                        set_identifier: format!("{s}-{short}"),
                        region,
                        weight,
                    }
                })
            })
            .collect(),
    };
    seed(account, &shape);
}

/// Starts ONE_AT_A_TIME through a proxy that never forwards the `nth`
/// ChangeResourceRecordSets, waits until that change's intent is journaled, then
/// kills the run with SIGKILL. Returns the run id.
fn killed_mid_ramp(account: &Account, file: &str, state: &Path, nth: u32) -> String {
    let proxy = FaultProxy::start(
        &account.endpoint,
        vec![Rule::nth(
            "ChangeResourceRecordSets",
            Fault::Latency(Duration::from_secs(3600)),
            nth,
        )],
    );
    let before = support::run_ids(state);
    let log = state.with_extension(format!("run-{nth}.log"));
    let mut child = account
        .process()
        .args(["run", file, "--yes", "--state-dir"])
        .arg(state)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start the run");
    until("the held change's intent is journaled", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the run ended ({status}) before its change {nth} was held:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        support::run_ids(state)
            .iter()
            .filter(|id| !before.contains(id))
            .any(|id| {
                support::journal_so_far(state, id)
                    .iter()
                    .filter(|e| e["event"] == "intent" && e["target"]["kind"] == "weights")
                    .count()
                    >= nth as usize
            })
    });
    child.kill().expect("kill -9");
    assert_eq!(exit_within(&mut child, Duration::from_secs(10)), -1);
    new_run(state, &before)
}

/// Runs of the ONE_AT_A_TIME drill and what `evac plan` says.
struct Drill {
    account: Account,
    _dir: tempfile::TempDir,
    file: String,
    state: std::path::PathBuf,
}

impl Drill {
    fn new() -> Self {
        let account = Account::fresh();
        one_at_a_time(&account);
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("one-at-a-time.yaml");
        std::fs::write(&file, ONE_AT_A_TIME).expect("write");
        let state = dir.path().join("state");
        Drill {
            account,
            file: file.to_str().expect("path").to_owned(),
            _dir: dir,
            state,
        }
    }

    fn evac(&self, args: &[&str]) -> std::process::Output {
        self.account
            .evac_in(&self.state, args)
            .output()
            .expect("evac")
    }

    /// The run's own plan, as it recorded it.
    fn run_plan(&self, run_id: &str) -> Plan {
        read_plan(
            &std::fs::read(self.state.join("runs").join(run_id).join("plan.json"))
                .expect("plan.json"),
        )
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn two_shift_steps_over_one_zone_killed_mid_ramp_block_the_next_run_then_resume_exactly() {
    let d = Drill::new();
    let start = live(&d.account);
    // The 4th change: search-half's second increment, after checkout's two and its
    // first (each step's records and the other's share one zone).
    let run_id = killed_mid_ramp(&d.account, &d.file, &d.state, 4);
    let mid = live(&d.account);
    assert_eq!(mid.weights["checkout-usw2"], 100, "checkout moved");
    assert_eq!(mid.weights["search-usw2"], 25, "search part-way");

    // plan names the run and the ways out; run refuses and changes nothing.
    let planned = d.evac(&["plan", &d.file]);
    assert_eq!(planned.status.code(), Some(3), "{}", text(&planned));
    let said = text(&planned);
    for part in [
        format!("run {run_id} of this playbook did not finish"),
        format!("evac resume {run_id}"),
        format!("evac rollback {run_id}"),
        format!("evac close {run_id}"),
    ] {
        assert!(said.contains(&part), "missing {part:?} in:\n{said}");
    }
    let proxy = FaultProxy::start(&d.account.endpoint, vec![]);
    let runs_before = support::run_ids(&d.state);
    let mut refused = d.account.evac_in(&d.state, &["run", &d.file, "--yes"]);
    refused.env("AWS_ENDPOINT_URL", &proxy.url);
    let refused = refused.output().expect("run");
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let mutating: Vec<String> = proxy
        .calls()
        .into_keys()
        .filter(|op| {
            [
                "ChangeResourceRecordSets",
                "UpdateAutoScalingGroup",
                "SetDesiredCapacity",
            ]
            .contains(&op.as_str())
        })
        .collect();
    assert!(mutating.is_empty(), "no mutating call: {mutating:?}");
    assert_eq!(support::run_ids(&d.state), runs_before, "no run was made");
    assert_eq!(live(&d.account), mid);

    // Resumed, the run ends exactly where its plan says, with no false drift.
    let resumed = d.evac(&["resume", &run_id, "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    let end = planned_end(&d.run_plan(&run_id), &start);
    assert_eq!(live(&d.account), end);
    assert_eq!(end.weights["search-usw2"], 100);
    assert_eq!(end.groups["search-us-east-1"], (0, 0, 20));

    // Rolled back, ramped, the start comes back exactly; then plan is clear.
    let rolled = d.evac(&["rollback", &run_id, "--yes"]);
    assert_eq!(rolled.status.code(), Some(0), "{}", text(&rolled));
    assert_eq!(live(&d.account), start);
    let planned = d.evac(&["plan", &d.file]);
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
}

#[test]
fn a_run_killed_mid_ramp_rolls_back_fast_exactly_or_is_closed_as_it_is() {
    let d = Drill::new();
    let start = live(&d.account);
    // The 5th change: search-rest's first increment.
    let run_id = killed_mid_ramp(&d.account, &d.file, &d.state, 5);
    assert_eq!(live(&d.account).weights["search-usw2"], 50);
    let rolled = d.evac(&["rollback", &run_id, "--yes", "--fast"]);
    assert_eq!(rolled.status.code(), Some(0), "{}", text(&rolled));
    assert_eq!(
        live(&d.account),
        start,
        "every record set of the zone restored"
    );
    assert_eq!(d.evac(&["plan", &d.file]).status.code(), Some(0));

    // Killed again, then closed: AWS is left as it is, and the plan is clear.
    let run_id = killed_mid_ramp(&d.account, &d.file, &d.state, 2);
    let mid = live(&d.account);
    let closed = d.evac(&["close", &run_id, "--yes", "--reason", "finished by hand"]);
    assert_eq!(closed.status.code(), Some(0), "{}", text(&closed));
    assert_eq!(live(&d.account), mid, "closing changes nothing in AWS");
    let journal = support::journal_so_far(&d.state, &run_id);
    let last = journal.last().expect("an entry");
    assert_eq!(last["event"], "closed");
    assert_eq!(last["reason"], "finished by hand");
    let planned = d.evac(&["plan", &d.file]);
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
    let status = text(&d.evac(&["status"]));
    assert!(
        status
            .lines()
            .any(|l| l.contains(&run_id) && l.contains("closed")),
        "{status}"
    );
    let history = text(&d.evac(&["history"]));
    assert!(
        history.contains("closed by") && history.contains("AWS left as it was"),
        "{history}"
    );
    let resumed = d.evac(&["resume", &run_id, "--yes"]);
    assert_eq!(resumed.status.code(), Some(2), "{}", text(&resumed));
    assert!(text(&resumed).contains("a closed run is not resumed"));
}

#[test]
fn resume_asks_before_it_changes_aws_and_needs_yes_without_a_terminal() {
    let d = Drill::new();
    let run_id = killed_mid_ramp(&d.account, &d.file, &d.state, 3);
    let mid = live(&d.account);
    let resumed = d.evac(&["resume", &run_id]);
    assert_eq!(resumed.status.code(), Some(2), "{}", text(&resumed));
    let said = text(&resumed);
    assert!(said.contains("resuming run of one-at-a-time"), "{said}");
    assert!(
        said.contains("rerun with --yes to resume without asking"),
        "{said}"
    );
    assert_eq!(live(&d.account), mid, "nothing changed");
}

/// An AWS shared credentials file with one profile.
fn credentials_file(dir: &Path, profile: &str, account: &Account) -> std::path::PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        format!(
            "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            account.access_key, account.secret_key
        ),
    )
    .expect("write credentials");
    path
}

#[test]
fn a_named_profile_wins_over_environment_keys_and_a_missing_one_is_an_error() {
    // The environment's keys are one account's; the profile `drills` is another's,
    // where the world is.
    let env_account = Account::fresh();
    let drills = Account::fresh();
    drills.seed();
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = credentials_file(dir.path(), "drills", &drills);
    let plan = |extra: &[&str], aws_profile: Option<&str>| {
        let mut cmd = env_account.command("evac");
        cmd.args(extra)
            .args(["plan", "playbooks/evacuate-region.yaml", "--state-dir"])
            .arg(dir.path().join("state"))
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        if let Some(p) = aws_profile {
            cmd.env("AWS_PROFILE", p);
        }
        cmd.output().expect("plan")
    };
    let out = plan(&["--profile", "drills"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "(account {}), credentials from profile `drills` (--profile)",
            drills.id
        )),
        "{said}"
    );

    for (flags, env, names) in [
        (
            vec!["--profile", "nosuch"],
            None,
            "profile `nosuch` (from --profile)",
        ),
        (
            vec![],
            Some("nosuch"),
            "profile `nosuch` (from AWS_PROFILE)",
        ),
    ] {
        let out = plan(&flags, env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(names), "{}", text(&out));
    }

    // AWS_PROFILE that exists comes after the environment's keys, as in the CLI.
    let out = plan(&[], Some("drills"));
    let said = text(&out);
    assert!(
        said.contains(&format!("(account {})", env_account.id))
            && said.contains("they come before AWS_PROFILE=drills"),
        "{said}"
    );
}

#[test]
fn state_dir_near_misses_and_empty_values_are_refused_with_the_fix() {
    let cwd = tempfile::tempdir().expect("temp dir");
    for (value, says) in [
        ("s3:/bucket/x", "write s3://bucket/x"),
        ("S3://bucket/x", "write s3://bucket/x"),
        ("s3:bucket", "write s3://bucket"),
        ("", "the state dir is empty"),
    ] {
        for by_env in [false, true] {
            let mut cmd = support::evac();
            cmd.current_dir(cwd.path()).arg("status");
            if by_env {
                cmd.env("EVAC_STATE_DIR", value);
            } else {
                cmd.args(["--state-dir", value]);
            }
            let out = cmd.output().expect("status");
            assert_eq!(out.status.code(), Some(2), "{value:?}: {}", text(&out));
            assert!(text(&out).contains(says), "{value:?}: {}", text(&out));
        }
    }
    let left: Vec<_> = std::fs::read_dir(cwd.path())
        .expect("read")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "nothing made in the current directory: {left:?}"
    );
}
