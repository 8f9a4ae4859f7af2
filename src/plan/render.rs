//! Views of a [`Plan`]: for a terminal and for a drill ticket (Markdown). JSON is
//! the plan itself, serialised.

use std::fmt::Write as _;
use std::time::Duration;

use console::Style;

use super::model::{Change, Finding, Plan, SetWeights};
use crate::playbook::HumanDuration;
use crate::state::Capacity;

pub fn duration(secs: u64) -> String {
    HumanDuration(Duration::from_secs(secs)).to_string()
}

/// Colours for the human view; plain when colour is off.
struct Palette {
    change: Style,
    bad: Style,
    warn: Style,
    dim: Style,
    bold: Style,
}

impl Palette {
    fn new(colour: bool) -> Self {
        let style = |s: Style| s.force_styling(colour);
        Self {
            change: style(Style::new().yellow()),
            bad: style(Style::new().red()),
            warn: style(Style::new().yellow()),
            dim: style(Style::new().dim()),
            bold: style(Style::new().bold()),
        }
    }
}

fn arrow(before: u32, after: u32) -> String {
    if before == after {
        before.to_string()
    } else {
        format!("{before} -> {after}")
    }
}

fn capacity_line(before: &Capacity, after: &Capacity) -> String {
    format!(
        "min {}  desired {}  max {}",
        arrow(before.min, after.min),
        arrow(before.desired, after.desired),
        arrow(before.max, after.max)
    )
}

fn weights_line(set: &SetWeights) -> String {
    let mut values = vec![set.before.to_string()];
    values.extend(set.after.iter().map(i64::to_string));
    values.join(" -> ")
}

fn finding_line(f: &Finding) -> String {
    let mut out = String::new();
    if let Some(step) = &f.step {
        let _ = write!(out, "{step}: ");
    }
    if let Some(resource) = &f.resource {
        let _ = write!(out, "{resource}: ");
    }
    out.push_str(&f.message);
    out
}

fn calls_line(plan: &Plan) -> String {
    if plan.estimate.mutating_calls.is_empty() {
        return "none".to_owned();
    }
    plan.estimate
        .mutating_calls
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per stop condition: what it is, its state when planned, when it fires.
fn stop_lines(plan: &Plan) -> Vec<String> {
    plan.stop_conditions
        .iter()
        .map(|stop| {
            let name = stop.to_string();
            let live = plan.stop_live.get(&name).map_or("not read", String::as_str);
            format!(
                "{name}: {live} now; halts the run when {}",
                stop.fires_when()
            )
        })
        .collect()
}

/// The terminal view: grouped by step, `~` for a change, `-` for a removal, before
/// -> after everywhere. `colour` is decided by the caller (terminal, NO_COLOR).
pub fn human(plan: &Plan, colour: bool) -> String {
    let p = Palette::new(colour);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} ({})",
        p.bold.apply_to("Plan:"),
        plan.playbook.name,
        plan.playbook.file
    );
    if !plan.playbook.params.is_empty() {
        let params: Vec<String> = plan
            .playbook
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "  params: {}", params.join(" "));
    }
    if let Some(caller) = &plan.caller {
        let _ = writeln!(out, "  as: {caller}");
    }
    for (name, account) in &plan.accounts {
        let _ = writeln!(out, "  as {name}: {}", account_line(account));
    }
    for (region, unread) in &plan.unread {
        let _ = writeln!(
            out,
            "  {}: {}",
            p.warn
                .apply_to(format!("{region} {}", unread_label(unread))),
            unread_line(region, unread)
        );
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}. {}: {}",
            i + 1,
            p.bold.apply_to(&step.id),
            step.summary
        );
        if let Some(why) = &step.skipped {
            let _ = writeln!(
                out,
                "   {}",
                p.warn.apply_to(format!("skipped: {why}; it would change:"))
            );
        }
        for change in &step.changes {
            write_change(&mut out, change, &p);
        }
        if step.changes.is_empty() {
            let _ = writeln!(out, "   {}", p.dim.apply_to("(no changes)"));
        }
    }
    if !plan.stop_conditions.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            p.bold.apply_to(format!(
                "Stop conditions ({}), watched before every wave and while waiting:",
                plan.stop_conditions.len()
            ))
        );
        for line in stop_lines(plan) {
            let _ = writeln!(out, "  - {line}");
        }
    }
    for (title, list, marker) in [
        ("Warnings", &plan.warnings, p.warn.apply_to("!")),
        ("Blockers", &plan.blockers, p.bad.apply_to("x")),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}",
            p.bold.apply_to(format!("{title} ({}):", list.len()))
        );
        for finding in list {
            let _ = writeln!(out, "  {marker} {}", finding_line(finding));
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Estimate: {} (approvals excluded){}",
        duration(plan.estimate.duration_secs),
        match plan.estimate.traffic_gone_secs {
            Some(gone) if gone > plan.estimate.duration_secs => format!(
                "; traffic gone after {} (the last shift's TTL: resolvers keep old answers that long)",
                duration(gone)
            ),
            _ => String::new(),
        }
    );
    if let Some(rto) = plan.rto_secs {
        let evacuates = plan
            .estimate
            .traffic_gone_secs
            .unwrap_or(plan.estimate.duration_secs);
        let _ = writeln!(
            out,
            "RTO: {}; estimated time to evacuate {}: {}",
            duration(rto),
            duration(evacuates),
            if evacuates <= rto {
                format!("within it by {}", duration(rto - evacuates))
            } else {
                format!("over it by {}", duration(evacuates - rto))
            }
        );
    }
    let _ = writeln!(out, "Mutating calls: {}", calls_line(plan));
    let _ = writeln!(
        out,
        "{}",
        p.dim
            .apply_to(format!("Assumes: {}", plan.estimate.assumptions.join("; ")))
    );
    if plan.is_blocked() {
        let n = plan.blockers.len();
        let _ = writeln!(
            out,
            "{}",
            p.bad.apply_to(format!(
                "Blocked: {n} blocker{} above; nothing was changed.",
                if n == 1 { "" } else { "s" }
            ))
        );
    } else {
        let _ = writeln!(out, "Ready: no blockers. Nothing was changed.");
    }
    out
}

/// A group's standing in one of its load balancers, as planned.
fn balancer_line(view: &crate::state::BalancerView) -> String {
    let mut line = format!(
        "{}: {} of {} registered instance(s) healthy",
        view.balancer, view.healthy, view.registered
    );
    if view.leaving > 0 {
        line.push_str(&format!(", {} draining", view.leaving));
    }
    line
}

fn write_change(out: &mut String, change: &Change, p: &Palette) {
    match change {
        Change::Capacity {
            region,
            group,
            before,
            after,
            reason,
            balancers,
        } => {
            let group = crate::text::one_line(group);
            let marker = if before == after {
                p.dim.apply_to("=")
            } else {
                p.change.apply_to("~")
            };
            let _ = writeln!(
                out,
                "   {marker} asg {group} ({region})  {}",
                capacity_line(before, after)
            );
            let _ = writeln!(out, "       {}", p.dim.apply_to(reason));
            for view in balancers {
                let _ = writeln!(out, "       {}", p.dim.apply_to(balancer_line(view)));
            }
        }
        Change::Suspend {
            region,
            group,
            processes,
        } => {
            let group = crate::text::one_line(group);
            let _ = writeln!(
                out,
                "   {} asg {group} ({region})  suspend {} (resumed by rollback)",
                p.change.apply_to("~"),
                processes.join(", ")
            );
        }
        Change::Unprotect {
            region,
            group,
            instances,
        } => {
            let group = crate::text::one_line(group);
            let _ = writeln!(
                out,
                "   {} asg {group} ({region})  remove scale-in protection from {} (restored by rollback on those still running)",
                p.change.apply_to("~"),
                instances.join(", ")
            );
        }
        Change::Weights {
            name,
            record_type,
            zone_id,
            sets,
            if_unhealthy,
            ..
        } => {
            let name = crate::text::one_line(name);
            let _ = writeln!(
                out,
                "   {} record {name} {record_type} (zone {zone_id})",
                p.change.apply_to("~")
            );
            let width = sets.iter().map(|s| label(s).len()).max().unwrap_or(0);
            for set in sets {
                let health = match (&set.health_check, set.failing) {
                    (Some(check), true) => format!("  (health check {check}: failing)"),
                    (Some(check), false) => format!("  (health check {check})"),
                    (None, _) => String::new(),
                };
                let _ = writeln!(
                    out,
                    "       {:width$}  {}{health}",
                    label(set),
                    weights_line(set)
                );
            }
            if let Some(note) = if_unhealthy {
                let _ = writeln!(out, "       {note}");
            }
        }
        Change::ZoneEvacuation {
            region,
            group,
            zone,
            zone_id,
            subnets_removed,
            suspend_processes,
            instances_to_replace,
            batch_size,
            instances_before,
            instances_after,
            capacity_after,
            by_shift,
            impaired_zone,
            ..
        } => {
            let group = crate::text::one_line(group);
            let _ = writeln!(
                out,
                "   {} asg {group} ({region}) leaves {}",
                p.change.apply_to("~"),
                zone_shown(zone, zone_id)
            );
            if *by_shift {
                let during = match impaired_zone.as_deref() {
                    Some("IgnoreUnhealthy") => {
                        "; IgnoreUnhealthy: its instances in the zone failing health checks stay until replaced here"
                    }
                    Some(_) => {
                        "; ReplaceUnhealthy: its unhealthy instances in the zone are replaced elsewhere"
                    }
                    None => "",
                };
                let _ = writeln!(
                    out,
                    "       zonal shift enabled: its shift keeps launches out of the zone, subnets stay{during}"
                );
            }
            for subnet in subnets_removed {
                let _ = writeln!(out, "       {} subnet {subnet}", p.bad.apply_to("-"));
            }
            if !suspend_processes.is_empty() {
                let _ = writeln!(out, "       suspend {}", suspend_processes.join(", "));
            }
            let zones = |m: &std::collections::BTreeMap<String, u32>| {
                m.iter()
                    .map(|(z, n)| format!("{z}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            match capacity_after {
                None => {
                    let _ = writeln!(
                        out,
                        "       replace {instances_to_replace} instance{} ({batch_size} at a time): {} -> {}",
                        if *instances_to_replace == 1 { "" } else { "s" },
                        zones(instances_before),
                        zones(instances_after)
                    );
                }
                Some(after) => {
                    let gone = instances_before.get(zone).copied().unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "       remove {gone} without replacing them: {} -> {}; desired -> {} (min {} max {})",
                        zones(instances_before),
                        zones(instances_after),
                        after.desired,
                        after.min,
                        after.max
                    );
                }
            }
        }
        Change::ZonalShift {
            region,
            resource,
            name,
            zone,
            zone_id,
            minutes,
            groups,
        } => {
            let _ = writeln!(
                out,
                "   {} zonal shift {} ({region}) away from {}, expiring after {}",
                p.change.apply_to("~"),
                crate::text::one_line(name),
                zone_shown(zone, &Some(zone_id.clone())),
                duration(u64::from(*minutes) * 60)
            );
            let _ = writeln!(out, "       {}", crate::text::one_line(resource));
            if !groups.is_empty() {
                let _ = writeln!(out, "       in front of {}", groups.join(", "));
            }
        }
        Change::Wait { secs } => {
            let _ = writeln!(out, "   {} wait {}", p.dim.apply_to("."), duration(*secs));
        }
        Change::Approve { message } => {
            let _ = writeln!(out, "   {} approve: {message:?}", p.warn.apply_to("?"));
        }
        Change::Check {
            target,
            state,
            hold_secs,
            timeout_secs,
        } => {
            let _ = writeln!(
                out,
                "   {} check {target} is {state} for {} (timeout {})",
                p.dim.apply_to("."),
                duration(*hold_secs),
                duration(*timeout_secs)
            );
        }
        Change::MetricCheck {
            metric,
            among,
            above,
            below,
            hold_secs,
            timeout_secs,
        } => {
            let _ = writeln!(
                out,
                "   {} check {} for {} (timeout {})",
                p.dim.apply_to("."),
                super::metric_condition(metric, among, *above, *below),
                duration(*hold_secs),
                duration(*timeout_secs)
            );
        }
    }
}

/// A zone by name and, when known, id: `us-east-1a (use1-az1)`.
fn zone_shown(zone: &str, id: &Option<String>) -> String {
    match id {
        Some(id) => format!("{zone} ({id})"),
        None => zone.to_owned(),
    }
}

fn label(set: &SetWeights) -> String {
    match &set.region {
        Some(region) => format!("{} ({region})", crate::text::one_line(&set.set_identifier)),
        None => crate::text::one_line(&set.set_identifier).into_owned(),
    }
}

/// The Markdown view, for a drill ticket.
/// What a region not read live is: `down` (said so), `not read` (found so).
fn unread_label(unread: &crate::state::Unread) -> &'static str {
    match unread.why {
        crate::state::UnreadWhy::Down => "down",
        crate::state::UnreadWhy::Silent { .. } => "not read",
    }
}

/// A region not read live, said in one line: why, and how old what is known is.
fn unread_line(region: &str, unread: &crate::state::Unread) -> String {
    let why = match &unread.why {
        crate::state::UnreadWhy::Down => {
            "--region-down: nothing is read from it or sent to it".to_owned()
        }
        crate::state::UnreadWhy::Silent { said } => said.clone(),
    };
    match &unread.read_at {
        Some(at) => format!("{why}; planned from its last known state, read {at}"),
        None => format!("{why}; no last known state of {region} in the state dir"),
    }
}

pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Plan: {}\n", plan.playbook.name);
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| playbook | `{}` |", plan.playbook.file);
    let params: Vec<String> = plan
        .playbook
        .params
        .iter()
        .map(|(k, v)| format!("`{k}={v}`"))
        .collect();
    let _ = writeln!(
        out,
        "| params | {} |",
        if params.is_empty() {
            "-".to_owned()
        } else {
            params.join(" ")
        }
    );
    if let Some(caller) = &plan.caller {
        let _ = writeln!(
            out,
            "| as | `{}` (account {}) |",
            caller.arn, caller.account
        );
    }
    for (name, account) in &plan.accounts {
        let _ = writeln!(
            out,
            "| as {name} | {} |",
            account_line(account).replace('|', "\\|")
        );
    }
    let _ = writeln!(
        out,
        "| result | {} |",
        if plan.is_blocked() {
            "**blocked**"
        } else {
            "ready"
        }
    );
    let _ = writeln!(
        out,
        "| estimate | {} (approvals excluded) |",
        duration(plan.estimate.duration_secs)
    );
    let _ = writeln!(out, "| mutating calls | {} |", calls_line(plan));
    let _ = writeln!(out, "| state fingerprint | `{}` |", plan.fingerprint);
    for (region, unread) in &plan.unread {
        let _ = writeln!(
            out,
            "| {region} {} | {} |",
            unread_label(unread),
            unread_line(region, unread).replace('|', "\\|")
        );
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n## {}. `{}` ({})\n\n{}\n",
            i + 1,
            step.id,
            step.kind,
            step.summary
        );
        if let Some(why) = &step.skipped {
            let _ = writeln!(out, "**Skipped: {why}.** What it would change:\n");
        }
        let capacity: Vec<&Change> = step
            .changes
            .iter()
            .filter(|c| matches!(c, Change::Capacity { .. }))
            .collect();
        if !capacity.is_empty() {
            let _ = writeln!(
                out,
                "| group | region | min | desired | max | why |\n| --- | --- | --- | --- | --- | --- |"
            );
            for change in capacity {
                if let Change::Capacity {
                    region,
                    group,
                    before,
                    after,
                    reason,
                    balancers,
                } = change
                {
                    let mut reason = reason.clone();
                    for view in balancers {
                        reason.push_str("; ");
                        reason.push_str(&balancer_line(view));
                    }
                    let _ = writeln!(
                        out,
                        "| {group} | {region} | {} | {} | {} | {reason} |",
                        arrow(before.min, after.min).replace("->", "→"),
                        arrow(before.desired, after.desired).replace("->", "→"),
                        arrow(before.max, after.max).replace("->", "→")
                    );
                }
            }
        }
        for change in &step.changes {
            match change {
                Change::Capacity { .. } => {}
                Change::Suspend {
                    region,
                    group,
                    processes,
                } => {
                    let _ = writeln!(
                        out,
                        "- suspend {} on `{group}` ({region}), resumed by rollback\n",
                        processes.join(", ")
                    );
                }
                Change::Unprotect {
                    region,
                    group,
                    instances,
                } => {
                    let _ = writeln!(
                        out,
                        "- remove scale-in protection from {} on `{group}` ({region}), restored by rollback on those still running\n",
                        instances.join(", ")
                    );
                }
                Change::Weights {
                    name,
                    record_type,
                    zone_id,
                    ramp,
                    sets,
                    ..
                } => {
                    let _ = writeln!(out, "**{name} {record_type}** (zone `{zone_id}`)\n");
                    let heads: Vec<String> = ramp.iter().map(|p| format!("{p}%")).collect();
                    let _ = writeln!(out, "| set identifier | before | {} |", heads.join(" | "));
                    let _ = writeln!(out, "| --- | --- |{}", " --- |".repeat(ramp.len()));
                    for set in sets {
                        let after: Vec<String> = set.after.iter().map(i64::to_string).collect();
                        let _ = writeln!(
                            out,
                            "| {} | {} | {} |",
                            label(set),
                            set.before,
                            after.join(" | ")
                        );
                    }
                    let _ = writeln!(out);
                }
                Change::ZonalShift {
                    region,
                    name,
                    zone,
                    zone_id,
                    minutes,
                    ..
                } => {
                    let _ = writeln!(
                        out,
                        "- zonal shift of `{name}` ({region}) away from {}, expiring after {}, cancelled by rollback once capacity is back\n",
                        zone_shown(zone, &Some(zone_id.clone())),
                        duration(u64::from(*minutes) * 60)
                    );
                }
                Change::ZoneEvacuation {
                    group,
                    region,
                    zone,
                    zone_id,
                    subnets_removed,
                    instances_to_replace,
                    batch_size,
                    capacity_after,
                    ..
                } => {
                    let what = match capacity_after {
                        None => format!(
                            "replaces {instances_to_replace} instance(s), {batch_size} at a time"
                        ),
                        Some(after) => format!(
                            "removes its instances there without replacing them: desired -> {}",
                            after.desired
                        ),
                    };
                    let _ = writeln!(
                        out,
                        "- {group} ({region}) leaves {}: removes {}; {what}",
                        zone_shown(zone, zone_id),
                        if subnets_removed.is_empty() {
                            "no subnet".to_owned()
                        } else {
                            subnets_removed.join(", ")
                        }
                    );
                }
                Change::Wait { secs } => {
                    let _ = writeln!(out, "- wait {}", duration(*secs));
                }
                Change::Approve { message } => {
                    let _ = writeln!(out, "- approval: \"{message}\"");
                }
                Change::Check {
                    target,
                    state,
                    hold_secs,
                    timeout_secs,
                } => {
                    let _ = writeln!(
                        out,
                        "- check {target} is {state} for {} (timeout {})",
                        duration(*hold_secs),
                        duration(*timeout_secs)
                    );
                }
                Change::MetricCheck {
                    metric,
                    among,
                    above,
                    below,
                    hold_secs,
                    timeout_secs,
                } => {
                    let _ = writeln!(
                        out,
                        "- check {} for {} (timeout {})",
                        super::metric_condition(metric, among, *above, *below),
                        duration(*hold_secs),
                        duration(*timeout_secs)
                    );
                }
            }
        }
    }
    if !plan.stop_conditions.is_empty() {
        let _ = writeln!(
            out,
            "\n## Stop conditions\n\nWatched before every wave and while the run waits.\n"
        );
        for line in stop_lines(plan) {
            let _ = writeln!(out, "- {line}");
        }
    }
    for (title, list) in [("Blockers", &plan.blockers), ("Warnings", &plan.warnings)] {
        if !list.is_empty() {
            let _ = writeln!(out, "\n## {title}\n");
            for f in list {
                let _ = writeln!(out, "- {}", finding_line(f));
            }
        }
    }
    let _ = writeln!(
        out,
        "\n_Assumes: {}._",
        plan.estimate.assumptions.join("; ")
    );
    out
}

/// Who a named account's calls are made as, and how it is reached:
/// `ARN (account N), role R` or, when nothing of it was read, only how it is reached.
fn account_line(account: &super::PlannedAccount) -> String {
    let how = match (&account.spec.role_arn, &account.spec.profile) {
        (Some(role), Some(profile)) => format!("role {role} from profile {profile}"),
        (Some(role), None) => format!("role {role}"),
        (None, Some(profile)) => format!("profile {profile}"),
        (None, None) => String::new(),
    };
    match &account.caller {
        Some(caller) => format!("{caller}, {how}"),
        None => format!("not read by this plan; {how}"),
    }
}
