//! Shared test support: the evac binaries, and fresh accounts in the local emulator.
#![allow(dead_code)]

pub mod arc;
pub mod proxy;
pub mod pty;
pub mod shapes;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use evac::aws::AwsContext;

/// The `evac` binary, with no AWS configuration leaking in from the machine.
pub fn evac() -> Command {
    let mut cmd = Command::cargo_bin("evac").expect("the evac binary is built");
    cmd.env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
    cmd
}

/// The `evac-seed` binary, with no AWS configuration leaking in from the machine.
pub fn evac_seed() -> Command {
    let mut cmd = Command::cargo_bin("evac-seed").expect("the evac-seed binary is built");
    cmd.env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// The same program with the same environment as a std `Command`: for a child to
/// wait on, signal, or put on a terminal.
pub fn process(cmd: &Command) -> std::process::Command {
    let mut out = std::process::Command::new(cmd.get_program());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => out.env(key, v),
            None => out.env_remove(key),
        };
    }
    out
}

/// The run ids in a state dir, oldest first; none when it has no runs folder. A
/// run folder still being made (`.making-...`, renamed once whole) is not a run.
pub fn run_ids(state: &std::path::Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state.join("runs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The entries of a run's journal read so far (none while it does not exist; a
/// line being written is skipped).
pub fn journal_so_far(state: &std::path::Path, run_id: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(state.join("runs").join(run_id).join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether a run of tests/fixtures/plan/base.yaml in `state` has converged its
/// first ramp increment: its first bake has begun.
pub fn in_first_bake(state: &std::path::Path) -> bool {
    run_ids(state).iter().any(|id| {
        std::fs::read_to_string(state.join("runs").join(id).join("journal.jsonl")).is_ok_and(|j| {
            j.lines().any(|l| {
                l.contains("\"event\":\"converged\"")
                    && l.contains("shift:dns:")
                    && l.contains(":1\"")
            })
        })
    })
}

/// The emulator's endpoint. Tests that need it fail here, loudly, when it is not
/// running: a skipped test is not a passing test.
pub fn endpoint() -> String {
    match std::env::var("EVAC_TEST_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "EVAC_TEST_ENDPOINT is not set: this test needs the local AWS emulator; run the suite with ./scripts/test"
        ),
    }
}

/// An emulated AWS account of its own, so tests running in parallel against one
/// emulator never see each other's resources.
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// The emulator's endpoint.
    pub endpoint: String,
    /// An access key that the emulator maps to this account.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// The fake ARC zonal shift service its evac commands reach, if any.
    pub arc: Option<String>,
}

static NEXT_ACCOUNT: AtomicU32 = AtomicU32::new(0);

impl Account {
    /// Creates a new account: an IAM user and access key made in it (the emulator
    /// maps every request signed with that key to the account).
    pub fn fresh() -> Self {
        let endpoint = endpoint();
        let n = NEXT_ACCOUNT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:06}{:06}", std::process::id() % 1_000_000, n);
        let iam = |body: &str| -> String {
            let mut response = ureq::post(format!("{endpoint}/"))
                .header("x-moto-account-id", &id)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header(
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
                )
                .send(body)
                .unwrap_or_else(|e| panic!("IAM call to the emulator at {endpoint} failed: {e}"));
            response
                .body_mut()
                .read_to_string()
                .expect("IAM answered with text")
        };
        iam("Action=CreateUser&UserName=evac&Version=2010-05-08");
        let key = iam("Action=CreateAccessKey&UserName=evac&Version=2010-05-08");
        let field = |name: &str| {
            let open = format!("<{name}>");
            let start = key
                .find(&open)
                .map(|i| i + open.len())
                .expect("field in CreateAccessKey answer");
            let end = key[start..]
                .find('<')
                .map(|i| start + i)
                .expect("closing tag");
            key[start..end].to_owned()
        };
        Account {
            access_key: field("AccessKeyId"),
            secret_key: field("SecretAccessKey"),
            id,
            endpoint,
            arc: None,
        }
    }

    /// SDK configuration for this account.
    pub async fn context(&self) -> AwsContext {
        AwsContext::with_static_credentials(&self.endpoint, &self.access_key, &self.secret_key)
            .await
    }

    /// A command for one of the project's binaries, pointed at this account.
    pub fn command(&self, bin: &str) -> Command {
        let mut cmd = if bin == "evac" { evac() } else { evac_seed() };
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(url) = &self.arc {
            cmd.env("AWS_ENDPOINT_URL_ARC_ZONAL_SHIFT", url);
        }
        cmd
    }

    /// Seeds the standard demo world into this account with the `evac-seed` binary.
    pub fn seed(&self) {
        self.command("evac-seed").assert().success();
    }

    /// `evac ARGS --state-dir STATE` for this account.
    pub fn evac_in(&self, state: &std::path::Path, args: &[&str]) -> Command {
        let mut cmd = self.command("evac");
        cmd.args(args).arg("--state-dir").arg(state);
        cmd
    }

    /// Seeds a world of one's own into this account.
    pub fn seed_spec(&self, spec: &evac::seed::WorldSpec) {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async { evac::seed::seed(&self.context().await, spec).await })
            .expect("seeded");
    }

    /// `evac` for this account as a std `Command` (see [`process`]).
    pub fn process(&self) -> std::process::Command {
        process(&self.command("evac"))
    }

    /// Someone sets the weights of api.example.com. (set identifier, weight).
    pub fn set_weights(&self, weights: &[(&str, i64)]) {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                let route53 = self.context().await.route53();
                let (zone_id, sets) = example_zone(&route53).await;
                let mut batch = ChangeBatch::builder();
                for set in &sets {
                    let Some(weight) = weights
                        .iter()
                        .find(|(id, _)| set.set_identifier() == Some(*id))
                        .map(|(_, w)| *w)
                    else {
                        continue;
                    };
                    let mut set = set.clone();
                    set.weight = Some(weight);
                    batch = batch.changes(
                        Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(set)
                            .build()
                            .expect("change"),
                    );
                }
                route53
                    .change_resource_record_sets()
                    .hosted_zone_id(&zone_id)
                    .change_batch(batch.build().expect("batch"))
                    .send()
                    .await
                    .expect("set weights");
            });
    }

    /// A target group `name` in the VPC of `group`, attached to it.
    pub fn attach_target_group(&self, region: &str, group: &str, name: &str) {
        let region = evac::playbook::Region::parse(region).expect("region");
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                let ctx = self.context().await;
                let subnets = group_subnets(&ctx, &region, group).await;
                let vpc = subnets[0].vpc_id().expect("vpc");
                let arn = target_group(&ctx, &region, vpc, name).await;
                attach(&ctx, &region, group, &arn).await;
            });
    }

    /// An Application Load Balancer `name` in the subnets of `groups`' first group,
    /// forwarding to one target group attached to every group of `groups`; returns
    /// its ARN and the zone ids of its subnets.
    pub fn alb_in_front(&self, region: &str, groups: &[&str], name: &str) -> (String, Vec<String>) {
        let region = evac::playbook::Region::parse(region).expect("region");
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
                let ctx = self.context().await;
                let subnets = group_subnets(&ctx, &region, groups[0]).await;
                let vpc = subnets[0].vpc_id().expect("vpc");
                let zone_ids = subnets
                    .iter()
                    .filter_map(|s| s.availability_zone_id().map(str::to_owned))
                    .collect();
                let elbv2 = ctx.elbv2(&region);
                let lb = elbv2
                    .create_load_balancer()
                    .name(name)
                    .set_subnets(Some(
                        subnets
                            .iter()
                            .filter_map(|s| s.subnet_id().map(str::to_owned))
                            .collect(),
                    ))
                    .send()
                    .await
                    .expect("load balancer");
                let lb_arn = lb.load_balancers()[0]
                    .load_balancer_arn()
                    .expect("arn")
                    .to_owned();
                let tg_arn = target_group(&ctx, &region, vpc, &format!("{name}-tg")).await;
                elbv2
                    .create_listener()
                    .load_balancer_arn(&lb_arn)
                    .protocol(ProtocolEnum::Http)
                    .port(80)
                    .default_actions(
                        Action::builder()
                            .r#type(ActionTypeEnum::Forward)
                            .target_group_arn(&tg_arn)
                            .build(),
                    )
                    .send()
                    .await
                    .expect("listener");
                for group in groups {
                    attach(&ctx, &region, group, &tg_arn).await;
                }
                (lb_arn, zone_ids)
            })
    }

    /// A Classic Load Balancer `name`, attached to `group`.
    pub fn attach_classic(&self, region: &str, group: &str, name: &str) {
        let region = evac::playbook::Region::parse(region).expect("region");
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                let ctx = self.context().await;
                ctx.elb(&region)
                    .create_load_balancer()
                    .load_balancer_name(name)
                    .availability_zones(format!("{region}a"))
                    .listeners(
                        aws_sdk_elasticloadbalancing::types::Listener::builder()
                            .protocol("HTTP")
                            .load_balancer_port(80)
                            .instance_port(80)
                            .build()
                            .expect("listener"),
                    )
                    .send()
                    .await
                    .expect("load balancer");
                ctx.autoscaling(&region)
                    .attach_load_balancers()
                    .auto_scaling_group_name(group)
                    .load_balancer_names(name)
                    .send()
                    .await
                    .expect("attach the load balancer");
            });
    }

    /// Someone sets the seeded stop-condition alarm (api-5xx-rate in us-west-2).
    pub fn set_alarm(&self, state: aws_sdk_cloudwatch::types::StateValue) {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                self.context()
                    .await
                    .cloudwatch(&evac::playbook::Region::parse("us-west-2").expect("region"))
                    .set_alarm_state()
                    .alarm_name("api-5xx-rate")
                    .state_value(state)
                    .state_reason("drill test")
                    .send()
                    .await
                    .expect("set alarm state");
            });
    }
}

/// One request the emulator recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The signing service (`autoscaling`, `route53`, `monitoring`, `ec2`).
    pub service: String,
    /// The operation: `Action=` of query APIs, `METHOD /path` of Route 53.
    pub operation: String,
    /// Whether it can change anything.
    pub mutating: bool,
    /// Its User-Agent header.
    pub user_agent: String,
    /// The access key it was signed with.
    pub access_key: String,
    /// The region of its signature.
    pub region: String,
    /// Its body, decoded (the parameters of query APIs).
    pub body: String,
}

/// Every request the emulator recorded so far, whoever made it.
pub fn recorded_calls() -> Vec<Call> {
    use base64::Engine as _;
    let text = ureq::get(format!(
        "{}/moto-api/recorder/download-recording",
        endpoint()
    ))
    .call()
    // The recording holds every request of the test binary's accounts, S3 bodies
    // included: far past ureq's 10 MiB default.
    .and_then(|mut r| r.body_mut().with_config().limit(1 << 30).read_to_string())
    .unwrap_or_else(|e| panic!("cannot download the emulator's recording: {e}"));
    let mut calls = Vec::new();
    for entry in recorded_entries(&text) {
        let auth = entry["headers"]["Authorization"]
            .as_str()
            .unwrap_or_default();
        let Some(scope) = auth.split("Credential=").nth(1) else {
            continue;
        };
        let mut scope = scope.split('/');
        let access_key = scope.next().unwrap_or_default().to_owned();
        let region = scope.nth(1).unwrap_or_default().to_owned();
        let service = scope.next().unwrap_or_default().to_owned();
        let method = entry["method"].as_str().unwrap_or_default().to_owned();
        let body = match (entry["body"].as_str(), entry["body_encoded"].as_bool()) {
            (Some(b), Some(true)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default(),
            (Some(b), _) => b.to_owned(),
            _ => String::new(),
        };
        let action = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(str::to_owned);
        // JSON protocols name the operation in a header: `Service.Operation`.
        let action = action.or_else(|| {
            entry["headers"]["X-Amz-Target"]
                .as_str()
                .and_then(|t| t.rsplit('.').next())
                .map(str::to_owned)
        });
        let (operation, mutating) = match action {
            Some(action) => {
                let read = ["Describe", "List", "Get"]
                    .iter()
                    .any(|p| action.starts_with(p));
                (action, !read)
            }
            None => {
                let url = entry["url"].as_str().unwrap_or_default();
                let path = url
                    .splitn(4, '/')
                    .nth(3)
                    .map(|p| format!("/{p}"))
                    .unwrap_or_default();
                let path = path.split('?').next().unwrap_or_default().to_owned();
                (format!("{method} {path}"), method != "GET")
            }
        };
        calls.push(Call {
            service,
            operation,
            mutating,
            user_agent: entry["headers"]["User-Agent"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            access_key,
            region,
            body,
        });
    }
    calls
}

impl Account {
    /// Every request this account made so far, as the emulator recorded them.
    pub fn calls(&self) -> Vec<Call> {
        recorded_calls()
            .into_iter()
            .filter(|c| c.access_key == self.access_key)
            .collect()
    }
}

/// The entries of the emulator's recording. The emulator appends one JSON object per
/// request from many threads at once, and other tests' requests are still arriving
/// while this one reads: an entry too large for one buffered write can have another
/// entry written between its JSON and its newline, and the last entry can be half
/// written. So the text is read as a stream of JSON values, not as lines, and a value
/// cut off at the end of the file (a request still being recorded, never one of this
/// test's, which have all been answered) ends the stream.
pub fn recorded_entries(text: &str) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        match value {
            Ok(entry) => entries.push(entry),
            Err(e) if e.is_eof() => break,
            Err(e) => panic!("the emulator's recording is not a stream of JSON objects: {e}"),
        }
    }
    entries
}

/// The seeded hosted zone example.com.: its id and its record sets (one page holds
/// them all).
async fn example_zone(
    route53: &aws_sdk_route53::Client,
) -> (String, Vec<aws_sdk_route53::types::ResourceRecordSet>) {
    let zone = route53
        .list_hosted_zones_by_name()
        .dns_name("example.com.")
        .send()
        .await
        .expect("zones");
    let zone_id = zone.hosted_zones()[0].id().to_owned();
    let sets = route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .expect("records");
    (zone_id, sets.resource_record_sets().to_vec())
}

/// Min, desired, max and suspended processes of a group.
pub type GroupCapacity = (i32, i32, i32, Vec<String>);

/// Everything a drill touches in the seeded world, read live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    /// Every group of us-east-1, us-west-2 and eu-west-1.
    pub groups: std::collections::BTreeMap<String, GroupCapacity>,
    /// Every weighted set of example.com. by set identifier.
    pub weights: std::collections::BTreeMap<String, i64>,
}

impl Account {
    /// Reads the live state of the seeded world.
    pub fn world(&self) -> World {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                let ctx = self.context().await;
                let mut groups = std::collections::BTreeMap::new();
                for region in ["us-east-1", "us-west-2", "eu-west-1"] {
                    let answer = ctx
                        .autoscaling(&evac::playbook::Region::parse(region).expect("region"))
                        .describe_auto_scaling_groups()
                        .send()
                        .await
                        .expect("describe groups");
                    for g in answer.auto_scaling_groups() {
                        let mut suspended: Vec<String> = g
                            .suspended_processes()
                            .iter()
                            .filter_map(|p| p.process_name().map(str::to_owned))
                            .collect();
                        suspended.sort();
                        groups.insert(
                            g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                            (
                                g.min_size().unwrap_or(-1),
                                g.desired_capacity().unwrap_or(-1),
                                g.max_size().unwrap_or(-1),
                                suspended,
                            ),
                        );
                    }
                }
                let (_, sets) = example_zone(&ctx.route53()).await;
                let weights = sets
                    .iter()
                    .filter_map(|s| Some((s.set_identifier()?.to_owned(), s.weight()?)))
                    .collect();
                World { groups, weights }
            })
    }
}

/// The ids of a group's instances, as described, in order.
pub async fn group_instances(client: &aws_sdk_autoscaling::Client, group: &str) -> Vec<String> {
    client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("describe")
        .auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// Polls `check` until it holds, for at most a minute (a condition, not a sleep).
pub fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child to exit, for at most `limit`: a hang is a failure, not a wait.
pub fn exit_within(child: &mut std::process::Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("evac did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bucket of an account, for state in S3.
pub struct Bucket {
    /// The bucket's name.
    pub name: String,
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Runtime,
}

impl Account {
    /// Creates a bucket in this account.
    pub fn bucket(&self, name: &str) -> Bucket {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let credentials = aws_credential_types::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "evac-test",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        runtime
            .block_on(client.create_bucket().bucket(name).send())
            .expect("create bucket");
        Bucket {
            name: name.to_owned(),
            client,
            runtime,
        }
    }
}

impl Bucket {
    /// Every key under `prefix`, in order.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .runtime
            .block_on(
                self.client
                    .list_objects_v2()
                    .bucket(&self.name)
                    .prefix(prefix)
                    .send(),
            )
            .expect("list")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    /// The content of `key`, if it exists.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let answer = self
            .runtime
            .block_on(self.client.get_object().bucket(&self.name).key(key).send())
            .ok()?;
        let body = self.runtime.block_on(answer.body.collect()).ok()?;
        Some(body.into_bytes().to_vec())
    }

    /// Writes `key` unconditionally.
    pub fn put(&self, key: &str, body: &[u8]) {
        self.runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.name)
                    .key(key)
                    .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
                    .send(),
            )
            .expect("put");
    }

    /// The run ids under `prefix` (`PREFIX/runs/RUN/...`), oldest first.
    pub fn run_ids(&self, prefix: &str) -> Vec<String> {
        let runs = format!("{prefix}/runs/");
        let mut ids: Vec<String> = self
            .keys(&runs)
            .iter()
            .filter_map(|k| k.strip_prefix(&runs)?.split('/').next().map(str::to_owned))
            .collect();
        ids.dedup();
        ids
    }

    /// The journal of a run as S3 holds it: its parts in order, one entry a line.
    pub fn journal(&self, prefix: &str, run_id: &str) -> Vec<serde_json::Value> {
        self.keys(&format!("{prefix}/runs/{run_id}/journal/"))
            .iter()
            .filter_map(|k| self.get(k))
            .flat_map(|body| {
                String::from_utf8_lossy(&body)
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect::<Vec<serde_json::Value>>()
            })
            .collect()
    }
}

/// Every weighted set's weight in every hosted zone of `route53`'s account, by set
/// identifier, every page read (the emulator repeats items across pages inside
/// weighted sets: a set read twice is kept once).
pub async fn all_weights(
    route53: &aws_sdk_route53::Client,
) -> std::collections::BTreeMap<String, i64> {
    let zones = route53.list_hosted_zones().send().await.expect("zones");
    let mut weights = std::collections::BTreeMap::new();
    for zone in zones.hosted_zones() {
        let zone = zone.id().trim_start_matches("/hostedzone/").to_owned();
        let mut next: Option<(String, aws_sdk_route53::types::RrType, Option<String>)> = None;
        loop {
            let mut call = route53.list_resource_record_sets().hosted_zone_id(&zone);
            if let Some((name, kind, id)) = next.take() {
                call = call
                    .start_record_name(name)
                    .start_record_type(kind)
                    .set_start_record_identifier(id);
            }
            let page = call.send().await.expect("list record sets");
            for set in page.resource_record_sets() {
                if let (Some(id), Some(w)) = (set.set_identifier(), set.weight()) {
                    weights.insert(id.to_owned(), w);
                }
            }
            if !page.is_truncated() {
                break;
            }
            next = page.next_record_name().map(|n| {
                (
                    n.to_owned(),
                    page.next_record_type().cloned().expect("a type"),
                    page.next_record_identifier().map(str::to_owned),
                )
            });
        }
    }
    weights
}

/// The subnets of `group`'s VPCZoneIdentifier, as EC2 describes them.
async fn group_subnets(
    ctx: &AwsContext,
    region: &evac::playbook::Region,
    group: &str,
) -> Vec<aws_sdk_ec2::types::Subnet> {
    let described = ctx
        .autoscaling(region)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("describe the group");
    let ids: Vec<String> = described.auto_scaling_groups()[0]
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::to_owned)
        .collect();
    ctx.ec2(region)
        .describe_subnets()
        .set_subnet_ids(Some(ids))
        .send()
        .await
        .expect("subnets")
        .subnets()
        .to_vec()
}

/// A target group `name` (HTTP, port 80) in `vpc`; its ARN.
async fn target_group(
    ctx: &AwsContext,
    region: &evac::playbook::Region,
    vpc: &str,
    name: &str,
) -> String {
    let created = ctx
        .elbv2(region)
        .create_target_group()
        .name(name)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .send()
        .await
        .expect("target group");
    created.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_owned()
}

/// Attaches target group `arn` to `group`.
async fn attach(ctx: &AwsContext, region: &evac::playbook::Region, group: &str, arn: &str) {
    ctx.autoscaling(region)
        .attach_load_balancer_target_groups()
        .auto_scaling_group_name(group)
        .target_group_arns(arn)
        .send()
        .await
        .expect("attach the target group");
}

/// A webhook on loopback answering every POST with `status`; the bodies it got
/// arrive on the receiver.
pub fn webhook(status: u16) -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{BufRead, Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if let Ok(value) = serde_json::from_slice(&body) {
                let _ = tx.send(value);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, rx)
}
