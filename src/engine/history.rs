//! What a journal says has already happened, for resume and rollback.

use std::collections::{BTreeMap, BTreeSet};

use crate::journal::{Entry, Event, Outcome, RecordSetDef, Target, Value};

/// A recorded intent.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    /// The action id.
    pub action: String,
    /// Its step.
    pub step: String,
    /// The resource.
    pub target: Target,
    /// Live value before the change.
    pub before: Value,
    /// Value set.
    pub after: Value,
    /// Full record sets for weight changes.
    pub record_sets: Vec<RecordSetDef>,
}

/// The state of a run as its journal tells it.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Intents in the order they were recorded.
    pub intents: Vec<Intent>,
    /// Actions whose call AWS accepted, with their change id.
    pub applied: BTreeMap<String, Option<String>>,
    /// Actions that took effect.
    pub converged: BTreeSet<String>,
    /// Steps finished.
    pub finished_steps: BTreeSet<String>,
    /// (step, increment) pairs that baked.
    pub baked: BTreeSet<(String, usize)>,
    /// Steps approved.
    pub approved: BTreeSet<String>,
    /// Forward actions the rollback has restored (or found restored).
    pub rolled_back: BTreeSet<String>,
    /// The last run outcome.
    pub outcome: Option<Outcome>,
    /// Whether a rollback started, and how the last one ended.
    pub rollback_started: bool,
    /// `Some(verified)` once a rollback finished.
    pub rollback_verified: Option<bool>,
}

impl History {
    /// Replays journal entries.
    pub fn from_entries(entries: &[Entry]) -> Self {
        let mut h = History::default();
        for entry in entries {
            h.apply(&entry.event);
        }
        h
    }

    /// Takes one more event into account.
    pub fn apply(&mut self, event: &Event) {
        let h = self;
        {
            match event {
                Event::Intent {
                    action,
                    step,
                    target,
                    before,
                    after,
                    record_sets,
                } => {
                    h.intents.retain(|i| &i.action != action);
                    h.intents.push(Intent {
                        action: action.clone(),
                        step: step.clone(),
                        target: target.clone(),
                        before: before.clone(),
                        after: after.clone(),
                        record_sets: record_sets.clone(),
                    });
                }
                Event::Applied { action, change_id } => {
                    h.applied.insert(action.clone(), change_id.clone());
                }
                Event::Converged { action } => {
                    h.converged.insert(action.clone());
                }
                Event::Reconciled { action, .. } => {
                    h.applied.entry(action.clone()).or_insert(None);
                }
                Event::StepFinished { step } => {
                    h.finished_steps.insert(step.clone());
                }
                Event::Baked { step, increment } => {
                    h.baked.insert((step.clone(), *increment));
                }
                Event::Approved { step, .. } => {
                    h.approved.insert(step.clone());
                }
                Event::RunFinished { outcome } => h.outcome = Some(*outcome),
                Event::RollbackStarted { .. } => h.rollback_started = true,
                Event::RollbackConverged { action } => {
                    h.rolled_back.insert(action.clone());
                }
                Event::RollbackFinished { verified, .. } => h.rollback_verified = Some(*verified),
                _ => {}
            }
        }
    }

    /// The recorded intent of an action.
    pub fn intent(&self, action: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.action == action)
    }
}
