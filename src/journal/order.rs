//! Which entries may follow which: a journal whose chain is whole can still hold an
//! entry its run could not have written (an answer to a change never announced, a
//! rollback entry outside a rollback, a value of another kind than its target).
//! Such an entry is an error naming its line; nothing is acted upon.

use std::collections::BTreeSet;

use super::event::{Entry, Event, Target, Value};

/// Checks the order of `entries` (line `i + 1` holds `entries[i]`): the first
/// illegal entry's line and why.
pub fn check(entries: &[Entry]) -> Result<(), (usize, String)> {
    let mut intents: BTreeSet<&str> = BTreeSet::new();
    let mut rollback_intents: BTreeSet<&str> = BTreeSet::new();
    let mut started_steps: BTreeSet<&str> = BTreeSet::new();
    let mut in_rollback = false;
    // The run's process ended (run_finished) and no process attached since: the
    // forward part of the run cannot go on without one.
    let mut ended = false;
    for (i, entry) in entries.iter().enumerate() {
        let line = i + 1;
        let bad = |why: String| {
            Err((
                line,
                format!("entry {} ({}) {why}", entry.seq, kind(&entry.event)),
            ))
        };
        match &entry.event {
            Event::RunStarted { .. } if i > 0 => {
                return bad("comes again: a run starts once".into());
            }
            Event::RunStarted { .. } => {}
            _ if i == 0 => return bad("comes first: a journal begins with run_started".into()),
            Event::Attached { .. } => {
                ended = false;
                in_rollback = false;
            }
            Event::StepStarted { step } => {
                if ended {
                    return bad(after_end());
                }
                started_steps.insert(step);
            }
            Event::StepFinished { step } | Event::StepFailed { step, .. } => {
                if !started_steps.contains(step.as_str()) {
                    return bad(format!("ends step {step}, which never started"));
                }
            }
            Event::Intent {
                action,
                target,
                before,
                after,
                ..
            } => {
                if ended {
                    return bad(after_end());
                }
                if !fit(target, [before, after]) {
                    return bad(format!(
                        "sets {} to a value of another kind",
                        target_kind(target)
                    ));
                }
                intents.insert(action);
            }
            Event::Applied { action, .. }
            | Event::Converged { action }
            | Event::Reconciled { action, .. } => {
                if !intents.contains(action.as_str()) {
                    return bad(format!(
                        "answers action {action}, whose intent is not before it"
                    ));
                }
            }
            Event::RunFinished { .. } => ended = true,
            Event::RollbackStarted { .. } => in_rollback = true,
            Event::RollbackIntent {
                action,
                target,
                before,
                after,
            } => {
                if !in_rollback {
                    return bad(OUTSIDE.into());
                }
                if !fit(target, [before, after]) {
                    return bad(format!(
                        "restores {} to a value of another kind",
                        target_kind(target)
                    ));
                }
                rollback_intents.insert(action);
            }
            Event::RollbackApplied { action } => {
                if !rollback_intents.contains(action.as_str()) {
                    return bad(format!(
                        "answers the restore of {action}, whose rollback intent is not before it"
                    ));
                }
            }
            Event::RollbackConverged { .. } if !in_rollback => return bad(OUTSIDE.into()),
            Event::RollbackConverged { .. } => {}
            Event::RollbackFinished { .. } if !in_rollback => return bad(OUTSIDE.into()),
            Event::RollbackFinished { .. } => in_rollback = false,
            Event::Baked { .. }
            | Event::Approved { .. }
            | Event::ApprovalDeclined { .. }
            | Event::StepSkipped { .. }
            | Event::Interrupted
            | Event::StopConditionFired { .. }
            | Event::ScaledItself { .. }
            | Event::Closed { .. } => {}
        }
    }
    Ok(())
}

/// Said of a rollback entry with no rollback under way.
const OUTSIDE: &str = "is outside a rollback: rollback_started is not before it";

fn after_end() -> String {
    "follows the run's end with no process attached since".into()
}

/// Whether every one of `values` is of the kind `target` takes.
fn fit(target: &Target, values: [&Value; 2]) -> bool {
    values.iter().all(|value| {
        matches!(
            (target, value),
            (Target::Capacity { .. }, Value::Capacity(_))
                | (Target::Weights { .. }, Value::Weights(_))
                | (Target::Subnets { .. }, Value::Subnets { .. })
                | (Target::Processes { .. }, Value::Processes { .. })
                | (Target::Protection { .. }, Value::Protection { .. })
                | (Target::Instance { .. }, Value::Instance { .. })
                | (Target::ZonalShift { .. }, Value::ZonalShift { .. })
        )
    })
}

fn target_kind(target: &Target) -> &'static str {
    match target {
        Target::Capacity { .. } => "a capacity",
        Target::Weights { .. } => "weights",
        Target::Subnets { .. } => "subnets",
        Target::Processes { .. } => "suspended processes",
        Target::Protection { .. } => "scale-in protection",
        Target::Instance { .. } => "an instance",
        Target::ZonalShift { .. } => "a zonal shift",
    }
}

/// The event's name as the journal writes it.
fn kind(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Outcome;
    use crate::state::Capacity;

    fn entries(events: Vec<Event>) -> Vec<Entry> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                Entry::new(
                    i as u64 + 1,
                    "2026-12-05T00:00:00Z".into(),
                    String::new(),
                    e,
                )
            })
            .collect()
    }

    fn started() -> Event {
        Event::RunStarted {
            run_id: "r".into(),
            playbook: "p".into(),
            file: "p.yaml".into(),
            params: Default::default(),
            user: "u".into(),
            host: "h".into(),
            version: "v".into(),
            caller: None,
        }
    }

    fn capacity() -> Target {
        Target::Capacity {
            region: "us-west-2".into(),
            group: "api".into(),
        }
    }

    fn cap(desired: u32) -> Value {
        Value::Capacity(Capacity {
            min: 0,
            desired,
            max: 10,
        })
    }

    fn intent(action: &str, after: Value) -> Event {
        Event::Intent {
            action: action.into(),
            step: "scale".into(),
            target: capacity(),
            before: cap(1),
            after,
            record_sets: vec![],
            increment: None,
        }
    }

    #[test]
    fn a_run_killed_resumed_and_rolled_back_is_in_order() {
        let journal = entries(vec![
            started(),
            Event::StepStarted {
                step: "scale".into(),
            },
            intent("a", cap(4)),
            Event::Applied {
                action: "a".into(),
                change_id: None,
            },
            Event::RunFinished {
                outcome: Outcome::Interrupted,
                exit: Some(4),
            },
            Event::Attached {
                pid: 2,
                command: "resume".into(),
                user: String::new(),
            },
            Event::StepStarted {
                step: "scale".into(),
            },
            Event::Converged { action: "a".into() },
            Event::StepFinished {
                step: "scale".into(),
            },
            Event::RunFinished {
                outcome: Outcome::Failed,
                exit: Some(1),
            },
            // --rollback-on-failure: in the same process.
            Event::RollbackStarted { fast: false },
            Event::RollbackIntent {
                action: "a".into(),
                target: capacity(),
                before: cap(4),
                after: cap(1),
            },
            Event::RollbackApplied { action: "a".into() },
            Event::RollbackConverged { action: "a".into() },
            Event::RollbackFinished {
                outcome: Outcome::Succeeded,
                verified: true,
                differences: vec![],
                gone: vec![],
            },
        ]);
        assert_eq!(check(&journal), Ok(()));
    }

    #[test]
    fn an_entry_its_run_could_not_have_written_names_its_line() {
        let cases: Vec<(Vec<Event>, usize, &str)> = vec![
            (
                vec![Event::StepStarted { step: "s".into() }],
                1,
                "begins with run_started",
            ),
            (vec![started(), started()], 2, "a run starts once"),
            (
                vec![
                    started(),
                    Event::Applied {
                        action: "a".into(),
                        change_id: None,
                    },
                ],
                2,
                "whose intent is not before it",
            ),
            (
                vec![started(), intent("a", Value::Weights(Default::default()))],
                2,
                "a value of another kind",
            ),
            (
                vec![started(), Event::StepFinished { step: "s".into() }],
                2,
                "never started",
            ),
            (
                vec![
                    started(),
                    Event::RunFinished {
                        outcome: Outcome::Succeeded,
                        exit: Some(0),
                    },
                    intent("a", cap(2)),
                ],
                3,
                "no process attached since",
            ),
            (
                vec![started(), Event::RollbackApplied { action: "a".into() }],
                2,
                "rollback intent is not before it",
            ),
            (
                vec![started(), Event::RollbackConverged { action: "a".into() }],
                2,
                "outside a rollback",
            ),
        ];
        for (events, line, why) in cases {
            let (at, message) = check(&entries(events)).expect_err(why);
            assert_eq!(at, line, "{message}");
            assert!(message.contains(why), "{message}");
        }
    }
}
