//! Checks that need the whole playbook: references, ramps, regions used by steps.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::diagnostic::Diagnostics;
use super::diagnostic::closest;
use super::model::{AccountSpec, Action, GroupSpec, RecordSpec, ShiftTo, StopCondition};
use super::parts::StepParts;
use super::path::YamlPath;
use super::types::{Names, Region};

/// The parts of a playbook that decoded, with the index each step had in the file.
pub struct Parts<'a> {
    /// Decoded account definitions.
    pub accounts: &'a BTreeMap<String, AccountSpec>,
    /// Every account name written, including those whose definition did not decode.
    pub declared_accounts: BTreeSet<String>,
    /// Decoded group definitions.
    pub groups: &'a BTreeMap<String, GroupSpec>,
    /// Decoded record definitions.
    pub records: &'a BTreeMap<String, RecordSpec>,
    /// Decoded stop conditions, with the index each had in the file.
    pub stop_when: &'a [(usize, StopCondition)],
    /// Every group name written, including those whose definition did not decode.
    pub declared_groups: BTreeSet<String>,
    /// Every record name written, including those whose definition did not decode.
    pub declared_records: BTreeSet<String>,
    /// What decoded of each step, with its index in `steps`.
    pub steps: &'a [(usize, StepParts)],
    /// Whether the playbook has a `steps` field at all.
    pub steps_present: bool,
    /// The largest share one ramp increment may move.
    pub max_increment: i64,
}

/// Reports every cross-field problem of `parts`.
pub fn check(parts: &Parts<'_>, diags: &mut Diagnostics<'_>) {
    let root = YamlPath::root();
    for (name, account) in parts.accounts {
        check_account(name, account, &root.key("accounts").key(name), diags);
    }
    for (name, group) in parts.groups {
        let path = root.key("groups").key(name);
        check_group(name, group, &path, diags);
        check_account_ref(group.account.as_deref(), parts, &path, diags);
    }
    for (name, record) in parts.records {
        let path = root.key("records").key(name);
        check_record(name, record, &path, diags);
        check_account_ref(record.account.as_deref(), parts, &path, diags);
        if let Some(groups) = &record.groups {
            check_refs(
                groups,
                &parts.declared_groups,
                "group",
                &path.key("groups"),
                diags,
            );
        }
    }
    for (index, condition) in parts.stop_when {
        let path = root.key("stop_when").index(*index);
        let (account, path) = match condition {
            StopCondition::Alarm(a) => (a.account.as_deref(), path.key("alarm")),
            StopCondition::HealthCheck(h) => (h.account.as_deref(), path.key("health_check")),
        };
        check_account_ref(account, parts, &path, diags);
    }
    if parts.steps_present && parts.steps.is_empty() && diags.is_empty() {
        diags
            .error(&root.key("steps"), "the playbook has no steps")
            .help("add at least one step");
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, step) in parts.steps {
        let path = root.key("steps").index(*index);
        if let Some(id) = &step.id {
            if let Some(first) = seen.get(id.as_str()) {
                let earlier = diags.place(&root.key("steps").index(*first).key("id"));
                let diag = diags
                    .error(&path.key("id"), format!("duplicate step id `{id}`"))
                    .help(format!(
                        "steps[{first}] already uses it; step ids must be unique"
                    ));
                if let Some(pos) = earlier {
                    diag.related(pos, "first used here");
                }
            } else {
                seen.insert(id.as_str(), *index);
            }
        }
        let Some(action) = &step.action else { continue };
        let start = diags.len();
        check_action(&action.value, &path, parts, diags);
        if !action.removed.is_empty() {
            // The action was decoded with problem fields left out (and reported). Keep
            // only findings below the step kind that do not concern those fields:
            // "nothing to scale to" after leaving out `absorb` would be noise.
            let removed = action.removed.clone();
            diags.retain_since(start, |d| {
                !removed.iter().any(|r| d.path.starts_with(&r.to_string()))
                    && d.path.matches('.').count() > path.to_string().matches('.').count() + 1
            });
        }
    }
}

/// The longest and shortest role sessions AWS grants (the longest also depends on
/// the role's own maximum).
const SESSION_MIN_SECS: u64 = 15 * 60;
const SESSION_MAX_SECS: u64 = 12 * 60 * 60;

fn check_account(name: &str, account: &AccountSpec, path: &YamlPath, diags: &mut Diagnostics<'_>) {
    match &account.role_arn {
        None => {
            if account.profile.is_none() {
                diags
                    .error(path, format!("account `{name}` says neither how to reach it nor as whom"))
                    .help("add `role_arn: arn:aws:iam::ACCOUNT_ID:role/NAME` (a role to assume) or `profile: NAME` (a profile of ~/.aws/config)");
            }
            for (field, set) in [
                ("external_id", account.external_id.is_some()),
                ("duration", account.duration.is_some()),
            ] {
                if set {
                    diags
                        .error(&path.key(field), format!("`{field}` is for assuming a role, and account `{name}` has no `role_arn`"))
                        .help("add the `role_arn` to assume, or remove this field");
                }
            }
        }
        Some(arn) => {
            if !is_role_arn(arn) {
                diags
                    .error(&path.key("role_arn"), format!("`{arn}` is not an IAM role ARN"))
                    .help("a role ARN reads arn:aws:iam::ACCOUNT_ID:role/NAME, with a 12-digit account id");
            }
        }
    }
    if let Some(duration) = account.duration {
        let secs = duration.0.as_secs();
        if !(SESSION_MIN_SECS..=SESSION_MAX_SECS).contains(&secs) {
            diags
                .error(&path.key("duration"), format!("a role session of {duration} is outside what AWS grants"))
                .help("give between 15m and 12h (and no more than the role's maximum session duration)");
        }
    }
}

/// `arn:PARTITION:iam::ACCOUNT_ID:role/PATH/NAME`.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty())
    )
}

/// Reports an `account:` that names no account of the playbook.
fn check_account_ref(
    account: Option<&str>,
    parts: &Parts<'_>,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) {
    let Some(name) = account else { return };
    if !parts.declared_accounts.contains(name) {
        undefined(
            name,
            &parts.declared_accounts,
            "account",
            "this playbook defines no accounts: add it under `accounts:` with its `role_arn` or `profile`, or remove `account:` to use the ambient credentials",
            &path.key("account"),
            diags,
        );
    }
}

fn check_group(name: &str, group: &GroupSpec, path: &YamlPath, diags: &mut Diagnostics<'_>) {
    match (&group.names, &group.tags) {
        (Some(_), Some(_)) => {
            diags
                .error(path, format!("group `{name}` has both `names` and `tags`"))
                .help("select its Auto Scaling groups either by names or by tags");
        }
        (None, None) => {
            diags
                .error(path, format!("group `{name}` selects nothing"))
                .help("add `names: [...]` or `tags: {...}`");
        }
        (Some(names), None) if names.is_empty() => {
            diags.error(&path.key("names"), "the list of names is empty");
        }
        (None, Some(tags)) if tags.is_empty() => {
            diags.error(
                &path.key("tags"),
                "no tags given: a group needs at least one tag to match",
            );
        }
        _ => {}
    }
}

fn check_record(name: &str, record: &RecordSpec, path: &YamlPath, diags: &mut Diagnostics<'_>) {
    if record.set_identifiers.len() < 2 {
        diags
            .error(&path.key("set_identifiers"), format!("record `{name}` needs a set identifier for at least two regions"))
            .help("weighted routing moves traffic between regions: name the set identifier each region serves");
    }
    let mut by_id: HashMap<&str, &str> = HashMap::new();
    for (region, id) in &record.set_identifiers {
        if let Some(other) = by_id.insert(id.as_str(), region.as_str()) {
            diags.error(
                &path.key("set_identifiers").key(region.as_str()),
                format!("set identifier `{id}` is used for both {other} and {region}"),
            );
        }
    }
    if !record.name.ends_with('.') {
        diags
            .error(
                &path.key("name"),
                format!("record name `{}` is not fully qualified", record.name),
            )
            .help(format!("end it with a dot: `{}.`", record.name));
    }
}

/// Reports names in `names` that are not declared.
fn check_refs(
    names: &Names,
    declared: &BTreeSet<String>,
    kind: &str,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) {
    let single = names.0.len() == 1;
    for (i, name) in names.iter().enumerate() {
        if declared.contains(name) {
            continue;
        }
        let at = if single { path.clone() } else { path.index(i) };
        let none = format!("this playbook defines no {kind}s: add one under `{kind}s:`");
        undefined(name, declared, kind, &none, &at, diags);
    }
}

/// Reports `name`, a `kind` (group, record, account) the playbook does not define at
/// `at`: with the defined ones and the closest of them, or `none_defined` when there
/// are none.
fn undefined(
    name: &str,
    declared: &BTreeSet<String>,
    kind: &str,
    none_defined: &str,
    at: &YamlPath,
    diags: &mut Diagnostics<'_>,
) {
    let mut help = if declared.is_empty() {
        none_defined.to_owned()
    } else {
        format!(
            "defined {kind}s: {}",
            declared.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    if let Some(guess) = closest(name, declared.iter().map(String::as_str)) {
        help = format!("did you mean `{guess}`? {help}");
    }
    diags
        .error(at, format!("undefined {kind} `{name}`"))
        .help(help);
}

fn check_action(action: &Action, path: &YamlPath, parts: &Parts<'_>, diags: &mut Diagnostics<'_>) {
    match action {
        Action::ScaleUp(s) => {
            let path = path.key("scale_up");
            check_refs(
                &s.group,
                &parts.declared_groups,
                "group",
                &path.key("group"),
                diags,
            );
            match (&s.absorb, s.desired) {
                (Some(_), Some(_)) => {
                    diags.error(&path, "`absorb` and `desired` both set").help(
                        "choose one: absorb a share of the source's capacity, or set desired",
                    );
                }
                (None, None) => {
                    diags
                        .error(&path, "nothing to scale to")
                        .help("add `absorb: { from: REGION, percent: 100 }` or `desired: N`");
                }
                (Some(absorb), None) if absorb.from == s.region => {
                    diags.error(
                        &path.key("absorb").key("from"),
                        format!(
                            "a group cannot absorb its own region's capacity ({})",
                            s.region
                        ),
                    );
                }
                _ => {}
            }
        }
        Action::ShiftTraffic(s) => {
            let path = path.key("shift_traffic");
            check_refs(
                &s.record,
                &parts.declared_records,
                "record",
                &path.key("record"),
                diags,
            );
            // Every region the step names, with where it is written.
            let mut regions: Vec<(&Region, YamlPath)> = Vec::new();
            match (&s.from, &s.to) {
                (None, None) => {
                    diags
                        .error(&path, "the shift says neither where traffic goes nor where it leaves")
                        .help("add `to: REGION` (ramp its share up), or `from: REGION` (ramp its weight away to the other regions)");
                }
                (None, Some(ShiftTo::Split(_))) => {
                    diags
                        .error(&path.key("to"), "a split `to:` shares out what leaves a region, and the shift has no `from`")
                        .help("add `from: REGION`, the region whose weight is moved away");
                }
                (Some(from), to) => {
                    regions.push((from, path.key("from")));
                    match to {
                        Some(ShiftTo::Region(to)) if to == from => {
                            diags.error(
                                &path.key("to"),
                                format!("the shift moves weight from {from} to itself"),
                            );
                        }
                        Some(ShiftTo::Region(to)) => regions.push((to, path.key("to"))),
                        Some(ShiftTo::Split(split)) => {
                            let sum: u32 = split.values().map(|p| u32::from(p.get())).sum();
                            if sum != 100 {
                                diags
                                    .error(&path.key("to"), format!("the split adds up to {sum} percent"))
                                    .help("give each region its share of the weight moved away, adding up to 100");
                            }
                            for region in split.keys() {
                                if region == from {
                                    diags.error(&path.key("to").key(region.as_str()), format!("the split sends weight back to {from}, the region it leaves"));
                                }
                                regions.push((region, path.key("to").key(region.as_str())));
                            }
                        }
                        None => {}
                    }
                }
                (None, Some(ShiftTo::Region(to))) => regions.push((to, path.key("to"))),
            }
            for name in s.record.iter() {
                let Some(record) = parts.records.get(name) else {
                    continue;
                };
                for (region, at) in &regions {
                    if !record.set_identifiers.contains_key(*region) {
                        diags
                            .error(
                                at,
                                format!(
                                    "record `{name}` has no set identifier for region {region}"
                                ),
                            )
                            .help(format!(
                                "add `{region}: SET_ID` under records.{name}.set_identifiers"
                            ));
                    }
                }
            }
            // With `from`, the ramp is a share of the source's weight, and how much of
            // the total each increment moves depends on live weights: the plan checks
            // it against max_increment.
            let max_increment = if s.from.is_some() {
                i64::MAX
            } else {
                parts.max_increment
            };
            check_ramp(&s.ramp, &path.key("ramp"), max_increment, diags);
        }
        Action::Drain(d) => {
            check_refs(
                &d.group,
                &parts.declared_groups,
                "group",
                &path.key("drain").key("group"),
                diags,
            );
        }
        Action::EvacuateZone(z) => {
            let path = path.key("evacuate_zone");
            check_refs(
                &z.group,
                &parts.declared_groups,
                "group",
                &path.key("group"),
                diags,
            );
            if !z.zone.in_region(&z.region) {
                diags
                    .error(
                        &path.key("zone"),
                        format!("zone {} is not in region {}", z.zone, z.region),
                    )
                    .help(format!(
                        "zones of {} are named like {}a, with ids like {}-az1",
                        z.region,
                        z.region,
                        z.region.short()
                    ));
            }
            // Load balancers to shift: an Application or Network Load Balancer of
            // the step's region, by ARN.
            for (i, arn) in z.load_balancers.iter().enumerate() {
                let parts: Vec<&str> = arn.splitn(6, ':').collect();
                let fits = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[2] == "elasticloadbalancing"
                    && (parts[5].starts_with("loadbalancer/app/")
                        || parts[5].starts_with("loadbalancer/net/"));
                let at = path.key("load_balancers").index(i);
                if !fits {
                    diags.error(&at, format!("{arn} is not the ARN of an Application or Network Load Balancer"))
                        .help("zonal shift moves those: write arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID");
                } else if parts[3] != z.region.as_str() {
                    diags.error(
                        &at,
                        format!(
                            "load balancer {arn} is in {}, not in the step's region {}",
                            parts[3], z.region
                        ),
                    );
                }
            }
        }
        Action::Check(c) => {
            let path = path.key("check");
            if let Some(a) = &c.alarm {
                check_account_ref(a.account.as_deref(), parts, &path.key("alarm"), diags);
            }
            if let Some(h) = &c.health_check {
                check_account_ref(
                    h.account.as_deref(),
                    parts,
                    &path.key("health_check"),
                    diags,
                );
            }
            let watched: Vec<&str> = [
                ("alarm", c.alarm.is_some()),
                ("health_check", c.health_check.is_some()),
                ("metric", c.metric.is_some()),
                ("share", c.share.is_some()),
            ]
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();
            match watched.as_slice() {
                [] => {
                    diags.error(&path, "nothing to check").help(
                        "add `alarm: { region: REGION, name: NAME }`, `health_check: { id: ID }`, `metric: { region, namespace, name, ... }` or `share: { of: METRIC, among: [METRIC, ...] }`",
                    );
                }
                [_] => {}
                several => {
                    diags.error(
                        &path,
                        format!(
                            "a check watches one thing, and this one sets {}",
                            several
                                .iter()
                                .map(|w| format!("`{w}`"))
                                .collect::<Vec<_>>()
                                .join(" and ")
                        ),
                    );
                }
            }
            if let Some(metric) = &c.metric {
                check_metric(metric, parts, &path.key("metric"), diags);
            }
            if let Some(share) = &c.share {
                let at = path.key("share");
                check_metric(&share.of, parts, &at.key("of"), diags);
                for (i, metric) in share.among.iter().enumerate() {
                    check_metric(metric, parts, &at.key("among").index(i), diags);
                }
            }
            let thresholds = c.above.is_some() as usize + c.below.is_some() as usize;
            match (watched.first().copied(), c.state) {
                (Some("alarm"), Some(state)) if !state.is_alarm_state() => {
                    diags
                        .error(
                            &path.key("state"),
                            "an alarm's state is OK, ALARM or INSUFFICIENT_DATA",
                        )
                        .help("`healthy` and `unhealthy` are for health checks");
                }
                (Some("health_check"), Some(state)) if state.is_alarm_state() => {
                    diags
                        .error(
                            &path.key("state"),
                            "a health check's state is healthy or unhealthy",
                        )
                        .help("OK, ALARM and INSUFFICIENT_DATA are for alarms");
                }
                (Some("alarm" | "health_check"), None) => {
                    diags
                        .error(&path, "missing field `state`")
                        .help("say the state to wait for: OK, ALARM, INSUFFICIENT_DATA, healthy or unhealthy");
                }
                (Some("metric" | "share"), Some(_)) => {
                    diags
                        .error(&path.key("state"), "a metric has no state")
                        .help("wait for it to be `above: N` or `below: N`");
                }
                (Some("metric" | "share"), None) if thresholds != 1 => {
                    diags
                        .error(
                            &path,
                            "a metric check needs exactly one of `above` and `below`",
                        )
                        .help("e.g. `above: 1000`, or for a share `above: 90` (percent)");
                }
                _ => {}
            }
            if thresholds > 0 && matches!(watched.first().copied(), Some("alarm" | "health_check"))
            {
                diags
                    .error(&path, "`above` and `below` are for metric checks")
                    .help("an alarm or health check waits for a `state`");
            }
            if c.hold >= c.timeout {
                diags
                    .error(
                        &path.key("timeout"),
                        format!("timeout {} is not longer than `for: {}`", c.timeout, c.hold),
                    )
                    .help("the state must be able to hold for `for` before the timeout ends");
            }
        }
        Action::Approve(message) => {
            if message.trim().is_empty() {
                diags
                    .error(&path.key("approve"), "the approval question is empty")
                    .help("say what is being approved");
            }
        }
        Action::Wait(_) => {}
    }
}

/// Where notifications go: at least one place, a topic ARN, one webhook URL.
pub fn check_notify(notify: &super::model::Notify, path: &YamlPath, diags: &mut Diagnostics<'_>) {
    if notify.sns.is_none() && notify.eventbridge.is_none() && notify.webhook.is_none() {
        diags
            .error(path, "`notify` names nowhere to send the drill's events")
            .help("add `sns: TOPIC_ARN`, `eventbridge: { bus, region }` or `webhook: { url_env: NAME }`");
    }
    if let Some(arn) = &notify.sns {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let valid = matches!(parts.as_slice(), ["arn", partition, "sns", region, account, name]
            if partition.starts_with("aws") && !region.is_empty() && account.len() == 12 && !name.is_empty());
        if !valid {
            diags
                .error(&path.key("sns"), format!("`{arn}` is not an SNS topic ARN"))
                .help("a topic ARN reads arn:aws:sns:REGION:ACCOUNT_ID:NAME");
        }
    }
    if let Some(hook) = &notify.webhook {
        match (&hook.url, &hook.url_env) {
            (Some(url), None) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                diags
                    .error(
                        &path.key("webhook").key("url"),
                        format!("`{url}` is not an http(s) URL"),
                    )
                    .help("write https://...");
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                diags
                    .error(
                        &path.key("webhook"),
                        "a webhook is exactly one of `url` and `url_env`",
                    )
                    .help(
                        "`url_env: NAME` keeps a secret URL out of the playbook, plan and journal",
                    );
            }
        }
    }
}

/// A metric's statistic and period, and its account.
fn check_metric(
    metric: &super::model::MetricRef,
    parts: &Parts<'_>,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) {
    const STATS: [&str; 5] = ["Sum", "Average", "Minimum", "Maximum", "SampleCount"];
    if !STATS.contains(&metric.stat.as_str()) {
        diags
            .error(
                &path.key("stat"),
                format!(
                    "unknown statistic `{}` of metric {}",
                    metric.stat, metric.name
                ),
            )
            .help("write Sum, Average, Minimum, Maximum or SampleCount");
    }
    let secs = metric.period.0.as_secs();
    if !(matches!(secs, 1 | 5 | 10 | 30) || (secs > 0 && secs.is_multiple_of(60))) {
        diags
            .error(
                &path.key("period"),
                format!(
                    "period {} of metric {} is not one CloudWatch keeps",
                    metric.period, metric.name
                ),
            )
            .help("write 1s, 5s, 10s, 30s or whole minutes");
    }
    check_account_ref(metric.account.as_deref(), parts, path, diags);
}

/// A ramp is the target's share after each increment: whole percentages in 1..=100,
/// strictly increasing.
fn check_ramp(ramp: &[i64], path: &YamlPath, max_increment: i64, diags: &mut Diagnostics<'_>) {
    if ramp.is_empty() {
        diags
            .error(path, "the ramp is empty")
            .help("list the target's share after each increment, e.g. [25, 50, 100]");
        return;
    }
    let mut previous: Option<i64> = None;
    for (i, &value) in ramp.iter().enumerate() {
        if !(1..=100).contains(&value) {
            diags
                .error(
                    &path.index(i),
                    format!("ramp value {value} is out of range"),
                )
                .help("each value is the target's share in percent, from 1 to 100");
        } else if let Some(prev) = previous.filter(|p| value <= *p) {
            diags
                .error(&path.index(i), format!("the ramp must increase strictly, but {value} follows {prev}"))
                .help("list the target's share after each increment in increasing order, e.g. [25, 50, 100]");
        } else if let Some(prev) = previous.filter(|p| value - *p > max_increment) {
            diags
                .error(
                    &path.index(i),
                    format!("the step from {prev} to {value} moves {} percent of the weight at once, more than max_increment {max_increment}", value - prev),
                )
                .help("add an increment in between, or raise `max_increment` at the top of the playbook");
        }
        previous = Some(value);
    }
}
