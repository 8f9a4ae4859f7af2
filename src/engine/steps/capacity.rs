//! `scale_up` and `drain`: one wave of every group of the step, then one wait for all.

use std::time::Duration;

use crate::engine::cloud::Cloud;
use crate::engine::converge::Await;
use crate::engine::error::EngineError;
use crate::engine::execute::{Executor, capacity_action};
use crate::engine::steps::processes::{Suspend, Unprotect};
use crate::engine::wave::Item;
use crate::journal::{Target, Value};
use crate::plan::{Change, StepKind, StepPlan};

impl<C: Cloud> Executor<'_, '_, C> {
    /// Sets every group's capacity in one wave, then waits for all of them to reach
    /// it (when the step waits).
    pub(crate) async fn capacity_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        // The step's `suspend:` first: nothing may change desired behind its back.
        let suspends: Vec<Suspend> = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Suspend {
                    region,
                    group,
                    processes,
                } => Some(Suspend {
                    region,
                    group,
                    processes,
                    action: format!("{}:processes", capacity_action(&step.id, region, group)),
                }),
                _ => None,
            })
            .collect();
        self.suspend_wave(step, &suspends).await?;
        // A drain's `force_protected`: the protection comes off before capacity.
        let unprotects: Vec<Unprotect> = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Unprotect {
                    region,
                    group,
                    instances,
                } => Some(Unprotect {
                    region,
                    group,
                    instances,
                    action: format!("{}:protection", capacity_action(&step.id, region, group)),
                }),
                _ => None,
            })
            .collect();
        self.unprotect_wave(step, &unprotects).await?;
        let items: Vec<Item> = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Capacity {
                    region,
                    group,
                    before,
                    after,
                    ..
                } => Some(Item {
                    action: capacity_action(&step.id, region, group),
                    target: Target::Capacity {
                        region: region.clone(),
                        group: group.clone(),
                    },
                    after: Value::Capacity(*after),
                    planned_before: Some(Value::Capacity(*before)),
                    records: Vec::new(),
                    increment: None,
                }),
                _ => None,
            })
            .collect();
        let actions: Vec<String> = items.iter().map(|i| i.action.clone()).collect();
        let timeout = Duration::from_secs(step.timeout_secs);
        let mut awaits = if step.kind == StepKind::Drain {
            // The region traffic went to must still hold what earlier steps gave it.
            let guard = self.check_capacity(&step.id, timeout);
            self.guarded_wave(&step.id, items, guard).await?
        } else {
            self.wave(&step.id, items).await?
        };
        for wait in &mut awaits {
            if let Await::Capacity { balancers, .. } = wait {
                *balancers = step.balancers;
            }
        }
        if step.timeout_secs > 0 {
            self.await_wave(&step.id, &awaits, actions, timeout).await
        } else {
            self.converged(actions)
        }
    }
}
