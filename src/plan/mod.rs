//! Plans: what a run would do, built from a playbook and the observed AWS state.
//!
//! Reads go through the [`observe::Observe`] trait; building is pure
//! ([`build::build`]); the human, Markdown and JSON views all render the same
//! [`Plan`] value.

pub mod build;
pub mod iam;
pub mod known;
mod model;
pub mod observe;
pub mod render;
pub mod shift;
pub mod timing;

#[cfg(test)]
mod tests;

pub use model::*;

/// Where a saved plan and the same plan made now first differ, said for people:
/// `step scale: changes[0].before.desired was 2 when planned, 3 now`. None when
/// their steps are the same (what changed is elsewhere: a TTL, an alarm).
pub fn first_difference(saved: &Plan, now: &Plan) -> Option<String> {
    fn walk(
        a: &serde_json::Value,
        b: &serde_json::Value,
        path: String,
    ) -> Option<(String, String, String)> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                // What a change found (`before`) first: that is what moved.
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                let (first, rest): (Vec<&String>, Vec<&String>) =
                    keys.into_iter().partition(|k| k.as_str() == "before");
                first.into_iter().chain(rest).find_map(|k| {
                    let null = Value::Null;
                    walk(
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        },
                    )
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (a, b))| walk(a, b, format!("{path}[{i}]"))),
            _ if a == b => None,
            _ => Some((path, a.to_string(), b.to_string())),
        }
    }
    for (a, b) in saved.steps.iter().zip(&now.steps) {
        let (x, y) = (serde_json::to_value(a).ok()?, serde_json::to_value(b).ok()?);
        if let Some((path, was, is)) = walk(&x, &y, String::new()) {
            return Some(format!(
                "step {}: {path} was {was} when planned, {is} now",
                a.id
            ));
        }
    }
    None
}
