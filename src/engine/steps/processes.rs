//! Suspending scaling processes before a step changes groups: one wave, each group's
//! processes recorded with their value before, so rollback resumes exactly those
//! the step suspended.

use std::time::Duration;

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
        let actions: Vec<String> = items.iter().map(|i| i.action.clone()).collect();
        let awaits = self.wave(&step.id, items).await?;
        self.settle_wave(&step.id, &awaits, actions, Duration::ZERO)
            .await
    }
}
