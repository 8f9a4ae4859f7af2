//! `evacuate_zone`: one wave suspending the processes that would move instances back
//! (every group of the step), one wave removing the zone's subnets, then waves of
//! instance replacements, each a batch of at most `max_out_percent` per group, until
//! the zone is empty and every group is back at its desired capacity.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::cloud::{Cloud, Instance};
use crate::engine::error::{EngineError, step_err};
use crate::engine::execute::{Executor, shift_action, zone_action};
use crate::engine::reporter::Progress;
use crate::engine::steps::processes::Suspend;
use crate::engine::watch::{CAPACITY_POLL_CAP, Poll, poll_until};
use crate::engine::wave::{Item, send};
use crate::engine::write_ahead::write_ahead;
use crate::journal::{Event, Shift, Target, Value};
use crate::plan::{Change, Plan, StepPlan};
use crate::state::Capacity;

/// Per group (region, name): the instances it had when they were last seen healthy
/// in every load balancer of the group.
type SeenHealthy =
    std::cell::RefCell<BTreeMap<(String, String), std::collections::BTreeSet<String>>>;

/// What a zone change's answer records: AWS took it, and it took effect at once.
fn taken_effect(action: String) -> Vec<Event> {
    vec![
        Event::Applied {
            action: action.clone(),
            change_id: None,
        },
        Event::Converged { action },
    ]
}

/// One group of the step.
struct Group<'a> {
    region: &'a str,
    group: &'a str,
    zone: &'a str,
    subnets_after: &'a [String],
    suspend: &'a [String],
    batch_size: u32,
    replace: bool,
    /// With `keep_capacity: false`: capacity before, and after the zone's
    /// instances are removed.
    shrink: Option<(Capacity, Capacity)>,
}

impl<C: Cloud> Executor<'_, '_, C> {
    pub(crate) async fn zone_step(&self, step: &StepPlan) -> Result<(), EngineError> {
        let groups: Vec<Group> = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::ZoneEvacuation {
                    region,
                    group,
                    zone,
                    subnets_after,
                    suspend_processes,
                    batch_size,
                    instances_to_replace,
                    capacity_before,
                    capacity_after,
                    ..
                } => Some(Group {
                    region,
                    group,
                    zone,
                    subnets_after,
                    suspend: suspend_processes,
                    batch_size: (*batch_size).max(1),
                    replace: *instances_to_replace > 0,
                    shrink: capacity_before.zip(*capacity_after),
                }),
                _ => None,
            })
            .collect();
        let timeout = Duration::from_secs(step.timeout_secs);
        let deadline = crate::engine::watch::deadline(timeout);
        // 0. Traffic: every zonal shift started at once, then waited for until the
        // zone receives no new traffic, before any capacity moves.
        self.shift_wave(step, timeout).await?;
        // 1. Processes: no group may move instances back into the zone.
        let suspends: Vec<Suspend> = groups
            .iter()
            .map(|g| Suspend {
                region: g.region,
                group: g.group,
                processes: g.suspend,
                action: zone_action(&step.id, g.region, g.group, "processes"),
            })
            .collect();
        self.suspend_wave(step, &suspends).await?;
        // 2. Subnets: the zone's are removed.
        let subnets: Vec<Item> = groups
            .iter()
            .map(|g| Item {
                action: zone_action(&step.id, g.region, g.group, "subnets"),
                target: Target::Subnets {
                    region: g.region.to_owned(),
                    group: g.group.to_owned(),
                },
                after: Value::Subnets {
                    subnets: g.subnets_after.to_vec(),
                },
                planned_before: None,
                records: Vec::new(),
                increment: None,
            })
            .collect();
        self.zone_wave(step, subnets).await?;
        // 3. Without keeping capacity: the zone's instances removed, desired with them.
        let shrinking: Vec<&Group> = groups.iter().filter(|g| g.shrink.is_some()).collect();
        if !shrinking.is_empty() {
            self.shrink(step, &shrinking).await?;
        }
        // 4. Instances: batches replaced in the other zones, waiting for capacity between.
        let replacing: Vec<&Group> = groups.iter().filter(|g| g.replace).collect();
        let seen_healthy = SeenHealthy::default();
        if replacing.is_empty() {
            return Ok(());
        }
        poll_until(
            self.interrupt,
            &step.id,
            timeout,
            deadline,
            CAPACITY_POLL_CAP,
            || self.replace_batch(step, &replacing, &seen_healthy),
        )
        .await
    }

    /// Starts the step's zonal shifts (each expiring after the drill's estimate from
    /// here plus a margin, with a comment naming the run and step) as one wave, and
    /// waits until each has taken effect. A resource found with another shift is
    /// drift: ARC allows one per resource, and that one is not the run's.
    async fn shift_wave(&self, step: &StepPlan, timeout: Duration) -> Result<(), EngineError> {
        let now = jiff::Timestamp::now().as_second();
        let comment = crate::plan::shift::comment(&self.options.run_id, &step.id);
        let items: Vec<Item> = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::ZonalShift {
                    region,
                    resource,
                    zone_id,
                    minutes,
                    ..
                } => Some(Item {
                    action: shift_action(&step.id, region, resource),
                    target: Target::ZonalShift {
                        region: region.clone(),
                        resource: resource.clone(),
                    },
                    after: Value::ZonalShift {
                        zonal_shift: Some(Shift {
                            away_from: zone_id.clone(),
                            comment: comment.clone(),
                            expires: Some(now + i64::from(*minutes) * 60),
                        }),
                    },
                    planned_before: Some(Value::ZonalShift { zonal_shift: None }),
                    records: Vec::new(),
                    increment: None,
                }),
                _ => None,
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        let actions = items.iter().map(|i| i.action.clone()).collect();
        let awaits = self.wave(&step.id, items).await?;
        self.await_wave(&step.id, &awaits, actions, timeout).await
    }

    /// Keeps the run's zonal shifts from expiring before the drill ends: before each
    /// step (and so on resume), every shift the run started and has not rolled back
    /// whose recorded expiry comes before the estimate of the steps left (plus a
    /// margin) is read live and, if it is still the run's, extended, journaled
    /// first like any change. A shift that is gone (expired, or cancelled by
    /// someone) stops the run: traffic is back in the zone.
    ///
    /// `live`: read every shift live whatever the journal says (the first step a
    /// process runs: on resume, while the run's process was away, anyone may have
    /// changed a shift, and the journal cannot say).
    pub(crate) async fn keep_shifts(
        &self,
        plan: &Plan,
        from: usize,
        live: bool,
    ) -> Result<(), EngineError> {
        let left: Vec<crate::journal::history::Intent> = self.recorder.history(|h| {
            let mut last: BTreeMap<&Target, &crate::journal::history::Intent> = BTreeMap::new();
            for i in &h.intents {
                if matches!(i.target, Target::ZonalShift { .. })
                    && h.applied.contains_key(&i.action)
                    && !h.rolled_back.contains(&i.action)
                {
                    last.insert(&i.target, i);
                }
            }
            last.values().map(|i| (*i).clone()).collect()
        });
        if left.is_empty() {
            return Ok(());
        }
        let remaining: u64 = plan
            .steps
            .iter()
            .skip(from)
            .filter(|s| !self.recorder.history(|h| h.finished_steps.contains(&s.id)))
            .map(|s| s.estimate_secs)
            .sum();
        let now = jiff::Timestamp::now().as_second();
        // Extended when it would expire within the steps left plus half the margin;
        // then to the steps left plus the whole margin.
        let needed = now
            + i64::try_from(remaining + crate::plan::shift::MARGIN_SECS / 2)
                .unwrap_or(i64::MAX / 2);
        let minutes = crate::plan::shift::minutes_for(remaining);
        for intent in left {
            let Value::ZonalShift {
                zonal_shift: Some(ours),
            } = &intent.after
            else {
                continue;
            };
            if !live && ours.expires.is_some_and(|at| at >= needed) {
                continue;
            }
            let Target::ZonalShift { region, resource } = &intent.target else {
                continue;
            };
            let live = self
                .cloud
                .zonal_shifts(region, resource)
                .await
                .map_err(step_err(&intent.step))?;
            let Some(shift) = live.iter().find(|s| s.comment == ours.comment) else {
                return Err(EngineError::Step {
                    step: intent.step.clone(),
                    message: format!(
                        "the zonal shift of {resource} ({region}) away from {} that this run started is no longer active (expired, or cancelled by someone): {} receives traffic again; see who, then `evac resume` to go on or `evac rollback` to undo the run",
                        ours.away_from, ours.away_from
                    ),
                });
            };
            if shift.expires >= needed {
                continue;
            }
            let extended = Shift {
                expires: Some(now + i64::from(minutes) * 60),
                ..ours.clone()
            };
            let n = self.recorder.history(|h| {
                h.intents
                    .iter()
                    .filter(|i| i.target == intent.target)
                    .count()
            });
            let action = format!(
                "{}:extend:{n}",
                shift_action(&intent.step, region, resource)
            );
            let before = Value::ZonalShift {
                zonal_shift: Some(Shift {
                    expires: Some(shift.expires),
                    ..ours.clone()
                }),
            };
            let intent_event = Event::Intent {
                action: action.clone(),
                step: intent.step.clone(),
                target: intent.target.clone(),
                before,
                after: Value::ZonalShift {
                    zonal_shift: Some(extended),
                },
                record_sets: Vec::new(),
                increment: None,
            };
            let id = shift.id.clone();
            let step_id = intent.step.as_str();
            write_ahead(
                self.recorder,
                self.interrupt,
                1,
                vec![intent_event],
                vec![(action, id)],
                |(action, id)| async move {
                    self.cloud
                        .extend_shift(region, resource, &id, minutes)
                        .await
                        .map_err(step_err(step_id))?;
                    Ok((taken_effect(action), ()))
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Removes every instance the groups have in their zone, lowering each group's
    /// desired with it (TerminateInstanceInAutoScalingGroup, decrementing): one
    /// capacity change per group, journaled with the capacity before and after, so
    /// that rollback restores desired exactly. Before its first call a group must
    /// be as the plan saw it (drift otherwise); a resumed group whose change was
    /// recorded but not answered removes what is left in the zone.
    async fn shrink(&self, step: &StepPlan, groups: &[&Group<'_>]) -> Result<(), EngineError> {
        self.checkpoint().await?;
        let mut fresh = Vec::new();
        let mut again = Vec::new();
        for g in groups {
            let Some((before, after)) = g.shrink else {
                continue;
            };
            let action = zone_action(&step.id, g.region, g.group, "capacity");
            let (applied, recorded) = self.recorder.history(|h| {
                (
                    h.applied.contains_key(&action),
                    h.intents.iter().any(|i| i.action == action),
                )
            });
            if applied {
                continue;
            }
            if recorded {
                again.push((*g, action, after));
                continue;
            }
            let live = self
                .cloud
                .groups(g.region, &[g.group.to_owned()])
                .await
                .map_err(step_err(&step.id))?
                .remove(g.group)
                .map(|s| s.capacity);
            if live != Some(before) && !self.options.force {
                return Err(EngineError::Drift {
                    action,
                    target: crate::journal::show_target(&Target::Capacity {
                        region: g.region.to_owned(),
                        group: g.group.to_owned(),
                    }),
                    expected: crate::journal::show(&Value::Capacity(before)),
                    after: crate::journal::show(&Value::Capacity(after)),
                    live: live.map_or("absent".to_owned(), |c| {
                        crate::journal::show(&Value::Capacity(c))
                    }),
                });
            }
            fresh.push((*g, action, live.unwrap_or(before), after));
        }
        for (g, action, after) in again {
            self.remove_zone_instances(step, g, after).await?;
            self.recorder.log_all(taken_effect(action))?;
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let intents = fresh
            .iter()
            .map(|(g, action, before, after)| Event::Intent {
                action: action.clone(),
                step: step.id.clone(),
                target: Target::Capacity {
                    region: g.region.to_owned(),
                    group: g.group.to_owned(),
                },
                before: Value::Capacity(*before),
                after: Value::Capacity(*after),
                record_sets: Vec::new(),
                increment: None,
            })
            .collect();
        let items: Vec<(&Group, String, Capacity)> = fresh
            .into_iter()
            .map(|(g, action, _, after)| (g, action, after))
            .collect();
        write_ahead(
            self.recorder,
            self.interrupt,
            self.options.concurrency,
            intents,
            items,
            |(g, action, after)| async move {
                self.remove_zone_instances(step, g, after).await?;
                Ok((taken_effect(action), ()))
            },
        )
        .await?;
        Ok(())
    }

    /// Removes the instances `g` has in its zone, lowering desired with each; then
    /// checks that desired is what the plan said.
    async fn remove_zone_instances(
        &self,
        step: &StepPlan,
        g: &Group<'_>,
        after: Capacity,
    ) -> Result<(), EngineError> {
        let members = self
            .cloud
            .instances(g.region, &[g.group.to_owned()])
            .await
            .map_err(step_err(&step.id))?;
        let in_zone: Vec<String> = members
            .get(g.group)
            .map(|m| {
                m.instances
                    .iter()
                    .filter(|i| i.zone == g.zone)
                    .map(|i| i.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for id in &in_zone {
            self.cloud
                .remove_instance(g.region, id)
                .await
                .map_err(step_err(&step.id))?;
        }
        let live = self
            .cloud
            .groups(g.region, &[g.group.to_owned()])
            .await
            .map_err(step_err(&step.id))?
            .remove(g.group)
            .map(|s| s.capacity.desired);
        if live != Some(after.desired) {
            return Err(EngineError::Step {
                step: step.id.clone(),
                message: format!(
                    "asg {} ({}) has desired {} after its {} instance(s) in {} were removed, where the plan expected {}; look at it, then `evac rollback` restores what the run recorded",
                    g.group,
                    g.region,
                    live.map_or("absent".to_owned(), |d| d.to_string()),
                    in_zone.len(),
                    g.zone,
                    after.desired
                ),
            });
        }
        Ok(())
    }

    /// A wave of processes or subnets changes: no wait, they take effect at once.
    async fn zone_wave(&self, step: &StepPlan, items: Vec<Item>) -> Result<(), EngineError> {
        self.instant_wave(&step.id, items).await
    }

    /// Reads every group's instances; done when no group has one in its zone and all
    /// are at desired. Otherwise replaces the next batch of every group that has none
    /// out of service, as one wave.
    async fn replace_batch(
        &self,
        step: &StepPlan,
        groups: &[&Group<'_>],
        seen_healthy: &SeenHealthy,
    ) -> Result<Poll<()>, EngineError> {
        let mut by_region: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for g in groups {
            by_region
                .entry(g.region)
                .or_default()
                .push(g.group.to_owned());
        }
        let mut members = BTreeMap::new();
        for (region, names) in &by_region {
            for (name, m) in self
                .cloud
                .instances(region, names)
                .await
                .map_err(step_err(&step.id))?
            {
                members.insert((region.to_string(), name), m);
            }
        }
        // Serving capacity must not dip by more than a batch: a group's next batch
        // waits until its replacements pass the health checks of every load
        // balancer of the group, not only until they are InService. Only groups
        // with replacements of this step, all InService by now, are read there
        // (the reads are paced: one call per target group).
        let mut settled: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for g in groups {
            let replaced = zone_action(&step.id, g.region, g.group, "replace:");
            let has_replacements = self
                .recorder
                .history(|h| h.applied.keys().any(|a| a.starts_with(&replaced)));
            let key = (g.region.to_owned(), g.group.to_owned());
            let Some(m) = members.get(&key) else {
                continue;
            };
            let all_in = has_replacements
                && m.instances.iter().all(|i| i.in_service)
                && m.instances.iter().map(|i| i.weight).sum::<u32>() >= m.desired;
            // Instances already seen healthy in every load balancer are not read again.
            let ids: std::collections::BTreeSet<String> =
                m.instances.iter().map(|i| i.id.clone()).collect();
            if all_in && seen_healthy.borrow().get(&key) != Some(&ids) {
                settled
                    .entry(g.region)
                    .or_default()
                    .push(g.group.to_owned());
            }
        }
        let mut unhealthy: BTreeMap<(String, String), String> = BTreeMap::new();
        for (region, names) in &settled {
            let states = self
                .cloud
                .groups(region, names)
                .await
                .map_err(step_err(&step.id))?;
            let balanced: Vec<&crate::state::GroupState> = states
                .values()
                .filter(|s| !s.balancers.is_empty())
                .collect();
            if balanced.is_empty() {
                continue;
            }
            let views = self
                .cloud
                .balanced(region, &balanced)
                .await
                .map_err(step_err(&step.id))?;
            for name in names {
                let healthy = views
                    .get(name)
                    .is_none_or(|v| v.iter().all(|v| v.healthy >= v.registered));
                let key = (region.to_string(), name.clone());
                if let Some(m) = members.get(&key)
                    && healthy
                {
                    // Healthy everywhere (or behind no load balancer): remembered with
                    // the instances it has now.
                    let ids = m.instances.iter().map(|i| i.id.clone()).collect();
                    seen_healthy.borrow_mut().insert(key, ids);
                }
            }
            for (name, views) in views {
                if let Some(v) = views.iter().find(|v| v.healthy < v.registered) {
                    unhealthy.insert(
                        (region.to_string(), name),
                        format!(
                            "{} of {} healthy in {}",
                            v.healthy, v.registered, v.balancer
                        ),
                    );
                }
            }
        }
        let (mut current, mut wanted) = (0, 0);
        let mut lagging = Vec::new();
        let mut batch: Vec<(&Group, Instance)> = Vec::new();
        for g in groups {
            let Some(m) = members.get(&(g.region.to_owned(), g.group.to_owned())) else {
                return Err(EngineError::Step {
                    step: step.id.clone(),
                    message: format!("Auto Scaling group {} not found in {}", g.group, g.region),
                });
            };
            let in_zone: Vec<&Instance> = m.instances.iter().filter(|i| i.zone == g.zone).collect();
            // In the group's unit, as desired counts.
            let in_service: u32 = m
                .instances
                .iter()
                .filter(|i| i.in_service)
                .map(|i| i.weight)
                .sum();
            current = in_service.min(m.desired).saturating_add(current);
            wanted = m.desired.saturating_add(wanted);
            let not_healthy = unhealthy.get(&(g.region.to_owned(), g.group.to_owned()));
            if in_zone.is_empty() && in_service >= m.desired && not_healthy.is_none() {
                continue;
            }
            if let Some(why) = not_healthy
                && in_service >= m.desired
            {
                lagging.push(format!(
                    "asg {} ({}): replacements InService, {why}",
                    g.group, g.region
                ));
                continue;
            }
            lagging.push(format!(
                "asg {} ({}) wanted no instance in {} and {} InService, last seen {} in {} and {in_service} InService",
                g.group,
                g.region,
                g.zone,
                m.desired,
                in_zone.len(),
                g.zone
            ));
            let replacing = m.instances.iter().any(|i| !i.in_service) || in_service < m.desired;
            if replacing {
                continue;
            }
            // Never more than the batch out at once.
            for instance in in_zone
                .into_iter()
                .filter(|i| i.in_service)
                .take(g.batch_size as usize)
            {
                let action = zone_action(
                    &step.id,
                    g.region,
                    g.group,
                    &format!("replace:{}", instance.id),
                );
                if !self.recorder.history(|h| h.applied.contains_key(&action)) {
                    batch.push((g, instance.clone()));
                }
            }
        }
        self.recorder.progress(Progress::InService {
            step: step.id.clone(),
            current,
            wanted,
            leaving: 0,
        });
        if lagging.is_empty() {
            return Ok(Poll::Done(()));
        }
        if !batch.is_empty() {
            self.replace(step, batch).await?;
        }
        Ok(Poll::Waiting(match lagging.len() {
            1 => lagging.remove(0),
            n => format!("{} ({} more groups lagging)", lagging[0], n - 1),
        }))
    }

    /// Replaces one batch of instances as a wave: stop conditions checked, every
    /// intent journaled together, the calls made concurrently.
    async fn replace(
        &self,
        step: &StepPlan,
        batch: Vec<(&Group<'_>, Instance)>,
    ) -> Result<(), EngineError> {
        self.checkpoint().await?;
        let items: Vec<(String, Target, Value)> = batch
            .iter()
            .map(|(g, instance)| {
                (
                    zone_action(
                        &step.id,
                        g.region,
                        g.group,
                        &format!("replace:{}", instance.id),
                    ),
                    Target::Instance {
                        region: g.region.to_owned(),
                        group: g.group.to_owned(),
                        instance: instance.id.clone(),
                    },
                    Value::Instance {
                        instance_state: "terminated for replacement".into(),
                    },
                )
            })
            .collect();
        let intents = batch
            .iter()
            .zip(&items)
            .map(|((g, _), (action, target, after))| Event::Intent {
                action: action.clone(),
                step: step.id.clone(),
                target: target.clone(),
                before: Value::Instance {
                    instance_state: format!("in service in {}", g.zone),
                },
                after: after.clone(),
                record_sets: Vec::new(),
                increment: None,
            })
            .collect();
        write_ahead(
            self.recorder,
            self.interrupt,
            self.options.concurrency,
            intents,
            items,
            |(action, target, after)| async move {
                send(self.cloud, &target, &after, &[], None)
                    .await
                    .map_err(step_err(&step.id))?;
                Ok((taken_effect(action), ()))
            },
        )
        .await?;
        Ok(())
    }
}
