//! Before a step changes groups' capacity: suspending scaling processes, and (a
//! drain with `force_protected`) removing instances' scale-in protection. One wave
//! each, every group's value recorded before, so rollback resumes exactly the
//! processes the step suspended and protects again the instances that remain.

use crate::engine::cloud::Cloud;
use crate::engine::error::{EngineError, step_err};
use crate::engine::execute::Executor;
use crate::engine::live::Reads;
use crate::engine::wave::Item;
use crate::journal::{Target, Value};
use crate::plan::StepPlan;

/// Processes to suspend on one group, under the action id they are journaled as.
pub(crate) struct Suspend<'a> {
    pub region: &'a str,
    pub group: &'a str,
    pub processes: &'a [String],
    pub action: String,
}

/// Instances of one group to take scale-in protection from.
pub(crate) struct Unprotect<'a> {
    pub region: &'a str,
    pub group: &'a str,
    /// The instances protected when the plan was made.
    pub instances: &'a [String],
    pub action: String,
}

impl<C: Cloud> Executor<'_, '_, C> {
    /// Suspends each group's processes (those already suspended stay so) in one
    /// wave; takes effect at once, so nothing is waited for.
    pub(crate) async fn suspend_wave(
        &self,
        step: &StepPlan,
        suspends: &[Suspend<'_>],
    ) -> Result<(), EngineError> {
        if suspends.is_empty() {
            return Ok(());
        }
        let mut reads = Reads::default();
        for s in suspends {
            reads.group(s.region, s.group);
        }
        let live = reads.fetch(self.cloud).await.map_err(step_err(&step.id))?;
        let items: Vec<Item> = suspends
            .iter()
            .map(|s| {
                let mut after = live
                    .group(s.region, s.group)
                    .map(|g| g.suspended_processes.clone())
                    .unwrap_or_default();
                for p in s.processes {
                    if !after.contains(p) {
                        after.push(p.clone());
                    }
                }
                after.sort();
                Item {
                    action: s.action.clone(),
                    target: Target::Processes {
                        region: s.region.to_owned(),
                        group: s.group.to_owned(),
                    },
                    after: Value::Processes { suspended: after },
                    planned_before: None,
                    records: Vec::new(),
                    increment: None,
                }
            })
            .collect();
        self.instant_wave(&step.id, items).await
    }

    /// Removes the scale-in protection of every group's instances in one wave. The
    /// instances protected live must be those the plan showed: others are drift.
    pub(crate) async fn unprotect_wave(
        &self,
        step: &StepPlan,
        unprotects: &[Unprotect<'_>],
    ) -> Result<(), EngineError> {
        if unprotects.is_empty() {
            return Ok(());
        }
        let items: Vec<Item> = unprotects
            .iter()
            .map(|u| {
                let mut planned = u.instances.to_vec();
                planned.sort();
                Item {
                    action: u.action.clone(),
                    target: Target::Protection {
                        region: u.region.to_owned(),
                        group: u.group.to_owned(),
                    },
                    after: Value::Protection {
                        protected: Vec::new(),
                    },
                    planned_before: Some(Value::Protection { protected: planned }),
                    records: Vec::new(),
                    increment: None,
                }
            })
            .collect();
        self.instant_wave(&step.id, items).await
    }
}
