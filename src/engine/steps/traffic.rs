//! `shift_traffic`: per increment, one wave over every hosted zone of the step (each
//! zone's ChangeResourceRecordSets sent, then one wait for all), then the bake.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::cloud::Cloud;
use crate::engine::error::EngineError;
use crate::engine::execute::{Executor, weights_action};
use crate::engine::reporter::Progress;
use crate::engine::watch::hold;
use crate::engine::wave::Item;
use crate::journal::{Event, Target, Value, weight_key};
use crate::plan::{Change, StepPlan};

/// The weights of one hosted zone's record sets before the step and after each
/// increment, keyed as the journal keys them.
#[derive(Default)]
struct ZonePlan {
    records: Vec<(String, String)>,
    /// Index 0: before the step; index k: after increment k.
    weights: Vec<BTreeMap<String, i64>>,
}

impl<C: Cloud> Executor<'_, '_, C> {
    /// Moves the weights increment by increment, all zones together.
    pub(crate) async fn traffic_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        let mut zones: BTreeMap<String, ZonePlan> = BTreeMap::new();
        let (mut increments, mut bake) = (0, 0);
        for change in &step.changes {
            let Change::Weights {
                name,
                record_type,
                zone_id,
                ramp,
                sets,
                bake_secs,
                ..
            } = change
            else {
                continue;
            };
            increments = increments.max(ramp.len());
            bake = *bake_secs;
            let zone = zones.entry(zone_id.clone()).or_default();
            zone.records.push((name.clone(), record_type.clone()));
            zone.weights.resize(ramp.len() + 1, BTreeMap::new());
            for set in sets {
                let key = weight_key(name, record_type, &set.set_identifier);
                zone.weights[0].insert(key.clone(), set.before);
                for (k, weight) in set.after.iter().enumerate() {
                    zone.weights[k + 1].insert(key.clone(), *weight);
                }
            }
        }
        let timeout = Duration::from_secs(step.timeout_secs);
        for increment in 1..=increments {
            let key = (step.id.clone(), increment);
            if self.recorder.history(|h| h.baked.contains(&key)) {
                continue;
            }
            self.recorder.progress(Progress::Increment {
                step: step.id.clone(),
                increment,
                of: increments,
            });
            let items: Vec<Item> = zones
                .iter()
                .filter_map(|(zone_id, plan)| {
                    Some(Item {
                        action: weights_action(&step.id, zone_id, increment),
                        target: Target::Weights {
                            zone_id: zone_id.clone(),
                        },
                        after: Value::Weights(plan.weights.get(increment)?.clone()),
                        planned_before: plan
                            .weights
                            .get(increment - 1)
                            .map(|w| Value::Weights(w.clone())),
                        records: plan.records.clone(),
                        increment: Some(increment),
                    })
                })
                .collect();
            let actions: Vec<String> = items.iter().map(|i| i.action.clone()).collect();
            // Traffic moves only onto capacity that is there now.
            let guard = self.check_capacity(&step.id, timeout);
            let awaits = self.guarded_wave(&step.id, items, guard).await?;
            self.await_wave(&step.id, &awaits, actions, timeout).await?;
            hold(
                self.recorder,
                self.interrupt,
                &step.id,
                Duration::from_secs(bake),
            )
            .await?;
            self.recorder.log(Event::Baked {
                step: step.id.clone(),
                increment,
            })?;
        }
        Ok(())
    }
}
