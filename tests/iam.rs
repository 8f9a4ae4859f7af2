//! `evac iam-policy`: every AWS call that plan, run and rollback of the example
//! drills make, as the emulator recorded it, is allowed by the policy printed for
//! the playbook; and the policy allows no action evac did not call.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::{Account, Call};

/// A policy statement, as `evac iam-policy` prints it.
#[derive(Debug, serde::Deserialize)]
struct Statement {
    #[serde(rename = "Sid")]
    sid: String,
    #[serde(rename = "Action")]
    action: Vec<String>,
    #[serde(rename = "Resource")]
    resource: Vec<String>,
    #[serde(rename = "Condition", default)]
    condition: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, serde::Deserialize)]
struct Policy {
    #[serde(rename = "Statement")]
    statement: Vec<Statement>,
}

/// What IAM authorizes a call against: the action, the resources it touches, and
/// the condition keys it brings.
#[derive(Debug)]
struct Request {
    action: String,
    resources: Vec<String>,
    keys: BTreeMap<String, Vec<String>>,
}

/// `*` in a pattern matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

/// The values between `<tag>` and `</tag>` in an XML body.
fn xml_values(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    body.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&format!("</{tag}>")).next())
        .map(str::to_owned)
        .collect()
}

/// The values of a query parameter (`AlarmNames.member.1=...`) whose name starts with
/// `prefix`.
fn query_values(body: &str, prefix: &str) -> Vec<String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.replace("%3A", ":").replace("%2F", "/"))
        .collect()
}

impl Request {
    /// The request IAM sees for a recorded call, in a drill that started with
    /// `fleet` (the groups' tags are the conditions' keys).
    fn of(call: &Call, account: &str, fleet: &Fleet) -> Self {
        let region = call.region.as_str();
        let mut keys = BTreeMap::new();
        let (action, resources) = match call.service.as_str() {
            "route53" => {
                let (method, path) = call.operation.split_once(' ').unwrap_or_default();
                let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
                let zone = |id: &str| format!("arn:aws:route53:::hostedzone/{id}");
                match (method, parts.as_slice()) {
                    ("GET", [_, "hostedzonesbyname"]) => {
                        ("ListHostedZonesByName", vec!["*".to_owned()])
                    }
                    ("GET", [_, "hostedzone"]) => ("ListHostedZones", vec!["*".to_owned()]),
                    ("GET", [_, "hostedzone", id]) => ("GetHostedZone", vec![zone(id)]),
                    ("GET", [_, "hostedzone", id, "rrset"]) => {
                        ("ListResourceRecordSets", vec![zone(id)])
                    }
                    ("POST", [_, "hostedzone", id, "rrset"]) => {
                        let names = xml_values(&call.body, "Name")
                            .iter()
                            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                            .collect();
                        keys.insert(
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames".to_owned(),
                            names,
                        );
                        keys.insert(
                            "route53:ChangeResourceRecordSetsActions".to_owned(),
                            xml_values(&call.body, "Action"),
                        );
                        keys.insert(
                            "route53:ChangeResourceRecordSetsRecordTypes".to_owned(),
                            xml_values(&call.body, "Type"),
                        );
                        ("ChangeResourceRecordSets", vec![zone(id)])
                    }
                    ("GET", [_, "change", id]) => {
                        ("GetChange", vec![format!("arn:aws:route53:::change/{id}")])
                    }
                    ("GET", [_, "healthcheck", id]) => (
                        "GetHealthCheck",
                        vec![format!("arn:aws:route53:::healthcheck/{id}")],
                    ),
                    ("GET", [_, "healthcheck", id, "status"]) => (
                        "GetHealthCheckStatus",
                        vec![format!("arn:aws:route53:::healthcheck/{id}")],
                    ),
                    _ => panic!("a Route 53 call this test does not know: {call:?}"),
                }
            }
            "monitoring" => {
                let alarms = query_values(&call.body, "AlarmNames.member.")
                    .iter()
                    .map(|name| format!("arn:aws:cloudwatch:{region}:{account}:alarm:{name}"))
                    .collect();
                (call.operation.as_str(), alarms)
            }
            "autoscaling" if call.operation.starts_with("Describe") => {
                (call.operation.as_str(), vec!["*".to_owned()])
            }
            "autoscaling" => {
                let mut groups = query_values(&call.body, "AutoScalingGroupName");
                // Terminating names an instance: IAM checks its group.
                for instance in query_values(&call.body, "InstanceId") {
                    let group = fleet
                        .instances
                        .get(&instance)
                        .unwrap_or_else(|| panic!("instance {instance} of no group"));
                    groups.push(group.clone());
                }
                for group in &groups {
                    for (key, value) in fleet
                        .tags
                        .get(&(region.to_owned(), group.clone()))
                        .into_iter()
                        .flatten()
                    {
                        keys.insert(format!("aws:ResourceTag/{key}"), vec![value.clone()]);
                    }
                }
                let arns = groups
                    .iter()
                    .map(|g| format!("arn:aws:autoscaling:{region}:{account}:autoScalingGroup:0000-uuid:autoScalingGroupName/{g}"))
                    .collect::<Vec<_>>();
                (
                    call.operation.as_str(),
                    if arns.is_empty() {
                        vec!["*".to_owned()]
                    } else {
                        arns
                    },
                )
            }
            // An applied quota is authorized against its ARN.
            "servicequotas" if call.operation == "GetServiceQuota" => {
                let field = |name: &str| {
                    call.body
                        .split(&format!("\"{name}\":\""))
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .unwrap_or_default()
                        .to_owned()
                };
                (
                    "GetServiceQuota",
                    vec![format!(
                        "arn:aws:servicequotas:{region}:{account}:{}/{}",
                        field("ServiceCode"),
                        field("QuotaCode")
                    )],
                )
            }
            _ => (call.operation.as_str(), vec!["*".to_owned()]),
        };
        let prefix = match call.service.as_str() {
            "monitoring" => "cloudwatch",
            other => other,
        };
        Request {
            action: format!("{prefix}:{action}"),
            resources,
            keys,
        }
    }

    fn allowed_by(&self, s: &Statement) -> bool {
        s.action.contains(&self.action)
            && self
                .resources
                .iter()
                .all(|r| s.resource.iter().any(|p| glob(p, r)))
            && s.condition.iter().all(|(operator, keys)| {
                keys.iter().all(|(key, wanted)| {
                    let wanted: Vec<String> = match wanted {
                        serde_json::Value::Array(values) => values
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect(),
                        serde_json::Value::String(one) => vec![one.clone()],
                        _ => Vec::new(),
                    };
                    let got = self.keys.get(key).cloned().unwrap_or_default();
                    match operator.as_str() {
                        "StringEquals" => got.len() == 1 && wanted.contains(&got[0]),
                        "ForAllValues:StringEquals" => got.iter().all(|g| wanted.contains(g)),
                        "StringLike" => {
                            !got.is_empty() && got.iter().all(|g| wanted.iter().any(|w| glob(w, g)))
                        }
                        other => panic!("a condition operator this test does not know: {other}"),
                    }
                })
            })
    }
}

fn policy(account: &Account, playbook: &str, vars: &[&str], purpose: &str) -> Policy {
    let mut cmd = account.command("evac");
    cmd.args(["iam-policy", playbook, "--for", purpose]);
    for var in vars {
        cmd.args(["--var", var]);
    }
    let out = cmd.output().expect("iam-policy");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a policy document")
}

/// The groups as a drill starts.
#[derive(Default)]
struct Fleet {
    /// Every group's tags, by region and name.
    tags: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// The group of every instance.
    instances: BTreeMap<String, String>,
}

fn fleet(account: &Account) -> Fleet {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let ctx = account.context().await;
            let mut out = Fleet::default();
            for region in ["us-east-1", "us-west-2"] {
                let answer = ctx
                    .autoscaling(&evac::playbook::Region::parse(region).expect("region"))
                    .describe_auto_scaling_groups()
                    .send()
                    .await
                    .expect("describe");
                for g in answer.auto_scaling_groups() {
                    let tags = g
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                        .collect();
                    let name = g.auto_scaling_group_name().unwrap_or_default().to_owned();
                    for instance in g.instances() {
                        let id = instance.instance_id().unwrap_or_default().to_owned();
                        out.instances.insert(id, name.clone());
                    }
                    out.tags.insert((region.to_owned(), name), tags);
                }
            }
            out
        })
}

/// An ARC zonal shift call the fake answered, as IAM authorizes it: by the
/// resource it names.
fn arc_request(call: &support::arc::ArcCall) -> Request {
    Request {
        action: format!("arc-zonal-shift:{}", call.operation),
        resources: vec!["*".to_owned()],
        keys: BTreeMap::from([(
            "arc-zonal-shift:ResourceIdentifier".to_owned(),
            vec![call.resource.clone()],
        )]),
    }
}

/// Plans, runs and rolls back `playbook`; checks every call against the policies.
fn every_call_is_allowed_and_every_action_called(playbook: &str, vars: &[&str]) {
    let mut account = Account::fresh();
    account.seed();
    // The groups a drill changes sit behind load balancers of both kinds; in
    // us-east-1 an ALB (which ARC manages) is in front of worker-us-east-1 too.
    account.attach_target_group("us-west-2", "api-us-west-2", "api-usw2");
    account.attach_classic("us-east-1", "api-us-east-1", "api-use1");
    account.alb_in_front("us-east-1", &["worker-us-east-1"], "front");
    let arc = support::arc::FakeArc::start(std::time::Duration::ZERO);
    arc.any_load_balancer();
    account.arc = Some(arc.url.clone());
    let fleet = fleet(&account);
    let for_plan = policy(&account, playbook, vars, "plan");
    let for_run = policy(&account, playbook, vars, "run");
    let state = tempfile::tempdir().expect("state dir");
    let with_vars = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        for var in vars {
            all.extend(["--var".to_owned(), (*var).to_owned()]);
        }
        all
    };

    let start = account.calls().len();
    account
        .command("evac")
        .args(with_vars(&["plan", playbook]))
        .assert()
        .success();
    let planned = account.calls().split_off(start);
    let arc_planned = arc.calls();
    account
        .command("evac")
        .args(with_vars(&["run", playbook, "--yes"]))
        .arg("--state-dir")
        .arg(state.path())
        .assert()
        .success();
    let id = support::run_ids(state.path()).pop().expect("a run");
    account
        .evac_in(state.path(), &["rollback", &id, "--yes"])
        .assert()
        .success();
    let all = account.calls().split_off(start);

    let arc_all = arc.calls();
    for (policy, calls, arc_calls, purpose) in [
        (&for_plan, &planned, &arc_planned, "plan"),
        (&for_run, &all, &arc_all, "run"),
    ] {
        let mut called = BTreeSet::new();
        let requests = calls
            .iter()
            .map(|call| Request::of(call, &account.id, &fleet))
            .chain(arc_calls.iter().map(arc_request));
        for request in requests {
            called.insert(request.action.clone());
            // AWS allows GetCallerIdentity to everyone; the policy leaves it out.
            if request.action == "sts:GetCallerIdentity" {
                continue;
            }
            assert!(
                policy.statement.iter().any(|s| request.allowed_by(s)),
                "{playbook} --for {purpose}: not allowed: {request:?}\n{policy:#?}"
            );
        }
        for statement in &policy.statement {
            assert!(
                !statement
                    .resource
                    .iter()
                    .any(|r| r.ends_with(":hostedzone/*")),
                "the zone was looked up: {statement:?}"
            );
            for action in &statement.action {
                assert!(!action.contains('*'), "{}: {action}", statement.sid);
                // Read only while a scale-up's instances lag, which they never do
                // in the instant emulator (engine tests cover it).
                if action == "autoscaling:DescribeScalingActivities" {
                    continue;
                }
                // Called only when a shift would expire before the drill ends
                // (tests/zone.rs covers it).
                if action == "arc-zonal-shift:UpdateZonalShift" {
                    continue;
                }
                // Read only for weighted sets that carry a health check, which the
                // seeded ones do not (plan tests cover them).
                if statement.sid.ends_with("HealthChecksOfWeightedSets") {
                    continue;
                }
                // Both kinds of load balancer are allowed, as a group's kind is known
                // only once it is read: one of them called is enough.
                if statement.sid == "ReadLoadBalancerHealth"
                    && statement.action.iter().any(|a| called.contains(a))
                {
                    continue;
                }
                assert!(
                    called.contains(action),
                    "{playbook} --for {purpose}: {} allows {action}, which was never called; called: {called:?}",
                    statement.sid
                );
            }
        }
    }
}

#[test]
fn the_region_drills_calls_are_exactly_what_its_policy_allows() {
    every_call_is_allowed_and_every_action_called("playbooks/evacuate-region.yaml", &["bake=0s"]);
}

#[test]
fn the_zone_drills_calls_are_exactly_what_its_policy_allows() {
    every_call_is_allowed_and_every_action_called(
        "playbooks/evacuate-zone.yaml",
        &["steady_for=1s"],
    );
}
