//! How journal values and targets are written for people: one line each, names
//! from AWS escaped. Every view (status, report, the progress display, rollback's
//! list) and the engine's messages use these.

use super::event::{Target, Value};

/// Readable form of a value, for messages.
pub fn show(value: &Value) -> String {
    match value {
        Value::Capacity(c) => format!("min {} desired {} max {}", c.min, c.desired, c.max),
        Value::Weights(w) => w
            .iter()
            .map(|(k, v)| format!("{}={v}", set_shown(k)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Subnets { subnets } => format!("subnets [{}]", subnets.join(", ")),
        Value::Processes { suspended } if suspended.is_empty() => "no process suspended".to_owned(),
        Value::Processes { suspended } => format!("suspended [{}]", suspended.join(", ")),
        Value::Protection { protected } if protected.is_empty() => {
            "no instance protected from scale-in".to_owned()
        }
        Value::Protection { protected } => {
            format!("protected from scale-in [{}]", protected.join(", "))
        }
        Value::Instance { instance_state } => instance_state.clone(),
        Value::ZonalShift { zonal_shift: None } => "no zonal shift".to_owned(),
        Value::ZonalShift {
            zonal_shift: Some(shift),
        } => {
            let expires = shift
                .expires
                .and_then(|at| jiff::Timestamp::from_second(at).ok())
                .map(|at| format!(", expires {at}"))
                .unwrap_or_default();
            format!(
                "zonal shift away from {} ({:?}){expires}",
                shift.away_from,
                crate::text::one_line(&shift.comment)
            )
        }
    }
}

/// The set identifier of a weight key (`name type set-identifier`), whole: one
/// with spaces or `=` in it is quoted, so `a b=10` cannot be misread.
fn set_shown(key: &str) -> String {
    let set = key.splitn(3, ' ').nth(2).unwrap_or(key);
    let set = crate::text::one_line(set);
    if set.contains(|c: char| c.is_whitespace() || c == '=' || c == '"') {
        format!("{set:?}")
    } else {
        set.into_owned()
    }
}

/// Readable form of a target.
pub fn show_target(target: &Target) -> String {
    // Names come from AWS, where they may hold any character: one line each.
    let n = |name: &str| crate::text::one_line(name).into_owned();
    match target {
        Target::Capacity { region, group } => format!("asg {} ({region})", n(group)),
        Target::Weights { zone_id } => format!("weights in hosted zone {}", n(zone_id)),
        Target::Subnets { region, group } => format!("subnets of asg {} ({region})", n(group)),
        Target::Processes { region, group } => {
            format!("processes of asg {} ({region})", n(group))
        }
        Target::Protection { region, group } => {
            format!("scale-in protection of asg {} ({region})", n(group))
        }
        Target::Instance {
            region,
            group,
            instance,
        } => format!("instance {} of asg {} ({region})", n(instance), n(group)),
        Target::ZonalShift { region, resource } => {
            format!("zonal shift of {} ({region})", n(resource))
        }
    }
}
