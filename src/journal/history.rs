//! What a journal says has already happened, for resume and rollback.

use std::collections::{BTreeMap, BTreeSet};

use super::event::{Entry, Event, Outcome, RecordSetDef, Target, Value};
use crate::state::Capacity;

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
    /// For weights: the ramp increment.
    pub increment: Option<usize>,
}

/// A group whose capacity the run raised, with what it left there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raised {
    /// The last action that set it.
    pub action: String,
    /// The step that raised it.
    pub step: String,
    /// The region.
    pub region: String,
    /// The group.
    pub group: String,
    /// The capacity the run left.
    pub left: Capacity,
}

/// Where a run stands, as its journal tells it ([`History::standing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Closed on purpose (`evac close`).
    Closed,
    /// Rolled back, live state verified.
    RolledBack,
    /// A rollback ended with live state differing from the originals.
    RollbackIncomplete,
    /// A rollback started and did not end.
    RollbackStopped,
    /// The run ended so.
    Ended(Outcome),
    /// No end recorded: its process was killed, or is still running.
    Unended,
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
    /// Steps left out because a region was down, with why (among the finished).
    pub skipped_steps: BTreeMap<String, String>,
    /// (step, increment) pairs that baked.
    pub baked: BTreeSet<(String, usize)>,
    /// Steps approved.
    pub approved: BTreeSet<String>,
    /// Steps whose approval was declined (and not given since).
    pub declined: BTreeSet<String>,
    /// Actions whose drifted live value `--force` accepted as their outcome.
    pub accepted: BTreeMap<String, Value>,
    /// Forward actions the rollback has restored (or found restored).
    pub rolled_back: BTreeSet<String>,
    /// The last run outcome.
    pub outcome: Option<Outcome>,
    /// The exit code the run's process recorded with its outcome.
    pub exit: Option<u8>,
    /// Whether a rollback started, and how the last one ended.
    pub rollback_started: bool,
    /// `Some(verified)` once a rollback finished.
    pub rollback_verified: Option<bool>,
    /// Who closed the run on purpose, and why (`evac close`).
    pub closed: Option<(String, String)>,
    /// Per (region, group): the desired a group was last recorded scaling itself to.
    pub scaled_itself: BTreeMap<(String, String), u32>,
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
                    increment,
                } => {
                    h.intents.retain(|i| &i.action != action);
                    h.intents.push(Intent {
                        action: action.clone(),
                        step: step.clone(),
                        target: target.clone(),
                        before: before.clone(),
                        after: after.clone(),
                        record_sets: record_sets.clone(),
                        increment: *increment,
                    });
                }
                Event::Applied { action, change_id } => {
                    h.applied.insert(action.clone(), change_id.clone());
                }
                Event::Converged { action } => {
                    h.converged.insert(action.clone());
                }
                Event::Reconciled {
                    action, accepted, ..
                } => {
                    h.applied.entry(action.clone()).or_insert(None);
                    if let Some(value) = accepted {
                        h.accepted.insert(action.clone(), value.clone());
                    }
                }
                Event::StepFinished { step } => {
                    h.finished_steps.insert(step.clone());
                    // A skipped step run later (`resume --skipped`) is done.
                    h.skipped_steps.remove(step);
                }
                Event::StepSkipped { step, reason } => {
                    h.finished_steps.insert(step.clone());
                    h.skipped_steps.insert(step.clone(), reason.clone());
                }
                Event::Baked { step, increment } => {
                    h.baked.insert((step.clone(), *increment));
                }
                Event::Approved { step, .. } => {
                    h.approved.insert(step.clone());
                    h.declined.remove(step);
                }
                Event::ApprovalDeclined { step, .. } => {
                    h.declined.insert(step.clone());
                }
                Event::RunFinished { outcome, exit } => {
                    h.outcome = Some(*outcome);
                    h.exit = *exit;
                }
                Event::RollbackStarted { .. } => {
                    // A rollback that ended with live state still differing is tried
                    // again in full: restores already in place cost no call.
                    if h.rollback_verified == Some(false) {
                        h.rolled_back.clear();
                        h.rollback_verified = None;
                    }
                    h.rollback_started = true;
                }
                Event::RollbackConverged { action } => {
                    h.rolled_back.insert(action.clone());
                }
                Event::RollbackFinished { verified, .. } => h.rollback_verified = Some(*verified),
                Event::Closed { by, reason } => h.closed = Some((by.clone(), reason.clone())),
                Event::ScaledItself {
                    region, group, to, ..
                } => {
                    h.scaled_itself.insert((region.clone(), group.clone()), *to);
                }
                Event::RunStarted { .. }
                | Event::Attached { .. }
                | Event::StepStarted { .. }
                | Event::StepFailed { .. }
                | Event::Interrupted
                | Event::StopConditionFired { .. }
                | Event::RollbackIntent { .. }
                | Event::RollbackApplied { .. } => {}
            }
        }
    }

    /// Whether a rollback was started and has not ended with live state matching
    /// the originals: `evac rollback` must be run again to finish it.
    pub fn rollback_unfinished(&self) -> bool {
        self.rollback_started && self.rollback_verified != Some(true)
    }

    /// Why the run is unfinished, or `None` when it is done with: succeeded, rolled
    /// back with live state verified, or closed on purpose. An unfinished run of a
    /// playbook holds back its next run: resume it, roll it back, or close it.
    pub fn unfinished(&self) -> Option<&'static str> {
        match self.standing() {
            Standing::Closed | Standing::RolledBack | Standing::Ended(Outcome::Succeeded) => None,
            Standing::RollbackIncomplete => {
                Some("its rollback left live state differing from the originals")
            }
            Standing::RollbackStopped => Some("its rollback stopped before the end"),
            Standing::Ended(Outcome::Failed) => Some("it failed"),
            Standing::Ended(Outcome::Interrupted) => Some("it was interrupted"),
            Standing::Ended(Outcome::Halted) => Some("a stop condition halted it"),
            Standing::Ended(Outcome::Declined) => Some("it stopped at a declined approval"),
            Standing::Unended => {
                Some("it ended without finishing (its process was killed, or is still running)")
            }
        }
    }

    /// Where the run stands: closed, rolled back (or how its rollback ended), or how
    /// the run itself ended.
    pub fn standing(&self) -> Standing {
        if self.closed.is_some() {
            return Standing::Closed;
        }
        match (self.rollback_verified, self.rollback_started, self.outcome) {
            (Some(true), ..) => Standing::RolledBack,
            (Some(false), ..) => Standing::RollbackIncomplete,
            (None, true, _) => Standing::RollbackStopped,
            (None, false, Some(outcome)) => Standing::Ended(outcome),
            (None, false, None) => Standing::Unended,
        }
    }

    /// The recorded intent of an action.
    pub fn intent(&self, action: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.action == action)
    }

    /// The value an action left: what it set, or what `--force` accepted instead.
    pub fn outcome(&self, intent: &Intent) -> Value {
        self.accepted
            .get(&intent.action)
            .cloned()
            .unwrap_or_else(|| intent.after.clone())
    }

    /// The last change the run made to `target` that AWS accepted.
    fn last_applied(&self, target: &Target) -> Option<&Intent> {
        self.intents
            .iter()
            .rev()
            .find(|i| &i.target == target && self.applied.contains_key(&i.action))
    }

    /// The last change the run made to `target` that AWS accepted, and the value it
    /// left there: what the next change to it must find live.
    pub fn left_on(&self, target: &Target) -> Option<(String, Value)> {
        self.last_applied(target)
            .map(|i| (i.action.clone(), self.outcome(i)))
    }

    /// For each record set of `keys` in hosted zone `zone_id`: the last change the run
    /// made to its weight that AWS accepted, and the weight that change left. A
    /// record set is its own resource: changes to other sets of the zone (another
    /// record, another step) say nothing of it.
    pub fn weights_left<'k>(
        &self,
        zone_id: &str,
        keys: impl IntoIterator<Item = &'k String>,
    ) -> BTreeMap<String, (String, i64)> {
        let mut out = BTreeMap::new();
        for key in keys {
            let left = self.intents.iter().rev().find_map(|i| {
                let Target::Weights { zone_id: z } = &i.target else {
                    return None;
                };
                if z != zone_id || !self.applied.contains_key(&i.action) {
                    return None;
                }
                match self.outcome(i) {
                    Value::Weights(w) => w.get(key).map(|w| (i.action.clone(), *w)),
                    _ => None,
                }
            });
            if let Some(left) = left {
                out.insert(key.clone(), left);
            }
        }
        out
    }

    /// Every group whose desired capacity the run raised and has not lowered back,
    /// with what it left there.
    pub fn raised_capacity(&self) -> Vec<Raised> {
        let mut out: Vec<Raised> = Vec::new();
        let mut seen: BTreeSet<&Target> = BTreeSet::new();
        for intent in &self.intents {
            let Target::Capacity { region, group } = &intent.target else {
                continue;
            };
            if !seen.insert(&intent.target) {
                continue;
            }
            let Some(last) = self.last_applied(&intent.target) else {
                continue;
            };
            let (Value::Capacity(first), Value::Capacity(left)) =
                (&intent.before, self.outcome(last))
            else {
                continue;
            };
            if left.desired > first.desired {
                out.push(Raised {
                    action: last.action.clone(),
                    step: last.step.clone(),
                    region: region.clone(),
                    group: group.clone(),
                    left,
                });
            }
        }
        out
    }
}
