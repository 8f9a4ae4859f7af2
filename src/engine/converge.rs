//! Waiting for a wave to take effect: one poller for all its groups (one
//! DescribeAutoScalingGroups per region per 100 groups a round) and one for all its
//! Route 53 changes, side by side, under one deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::try_join_all;

use super::cloud::Cloud;
use super::error::{EngineError, step_err};
use super::interrupt::Interrupt;
use super::recorder::Recorder;
use super::reporter::Progress;
use super::watch::{CAPACITY_POLL_CAP, CHANGE_POLL_CAP, Cadence, Poll, WaitKind, poll_on};
use crate::state::GroupState;

/// Which way a capacity change goes, for its wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Wait until InService >= desired.
    Up,
    /// Wait until InService <= desired.
    Down,
}

/// One thing a wave waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Await {
    /// A group's InService count reaching its desired capacity.
    Capacity {
        /// The region.
        region: String,
        /// The group.
        group: String,
        /// The desired capacity the wave set.
        desired: u32,
        /// Which way.
        direction: Direction,
        /// Whether the wait includes the group's load balancers: up, the new
        /// capacity healthy in each; down, the instances going out gone from each.
        balancers: bool,
    },
    /// A Route 53 change being INSYNC.
    Change {
        /// The change id; ids, space-separated, when a hosted zone's increment took
        /// several requests (Route 53's limits on one).
        id: String,
    },
    /// A zonal shift having taken effect (ARC's `appliedStatus` `APPLIED`): the
    /// zone receives no more new traffic through the resource.
    Shift {
        /// The region.
        region: String,
        /// The shifted resource.
        resource: String,
        /// The shift's comment, which names the run and step that started it.
        comment: String,
    },
}

/// Waits until everything in `awaits` has taken effect, or `timeout` passes.
///
/// A group whose desired capacity changes under the wait is drift: the goal is no
/// longer the wave's, so waiting for it could last forever; it stops the run.
pub async fn await_effect<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    step: &str,
    awaits: &[Await],
    timeout: Duration,
) -> Result<(), EngineError> {
    let deadline = crate::engine::watch::deadline(timeout);
    let mut groups: BTreeMap<&str, Vec<Wanted<'_>>> = BTreeMap::new();
    let mut changes: Vec<&str> = Vec::new();
    let mut shifts: Vec<(&str, &str, &str)> = Vec::new();
    for a in awaits {
        match a {
            Await::Capacity {
                region,
                group,
                desired,
                direction,
                balancers,
            } => groups.entry(region.as_str()).or_default().push(Wanted {
                group: group.as_str(),
                desired: *desired,
                direction: *direction,
                balancers: *balancers,
            }),
            // A zone's increment may take several requests: each id is waited for.
            Await::Change { id } => changes.extend(id.split_whitespace()),
            Await::Shift {
                region,
                resource,
                comment,
            } => shifts.push((region.as_str(), resource.as_str(), comment.as_str())),
        }
    }
    // Groups found healthy in (or gone from) their load balancers: not read again.
    let passed = std::cell::RefCell::new(BTreeSet::new());
    // Launch activities from a minute before the wait count as the wave's.
    let launches = Launches {
        since: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
            - 60,
        round: std::cell::Cell::new(0),
        started: tokio::time::Instant::now(),
        first_arrival: std::cell::Cell::new(None),
    };
    // Each kind of wait is polled more often once it is due: when the last wait of
    // its kind in this run ended.
    let started = tokio::time::Instant::now();
    let up = groups
        .values()
        .flatten()
        .any(|w| w.direction == Direction::Up);
    let kind = if up { WaitKind::Up } else { WaitKind::Down };
    let capacity = async {
        if groups.is_empty() {
            return Ok::<(), EngineError>(());
        }
        let cadence = Cadence {
            cap: CAPACITY_POLL_CAP,
            due: recorder.timings.due(kind),
        };
        poll_on(interrupt, step, timeout, deadline, cadence, || {
            poll_groups(cloud, recorder, step, &groups, &passed, &launches)
        })
        .await?;
        recorder.timings.learn(kind, started.elapsed());
        Ok(())
    };
    let dns = async {
        // Changes sent together go in sync together: poll the newest until it is,
        // then confirm the older ones, each once, all at the same time.
        let of = changes.len();
        if of == 0 {
            return Ok::<(), EngineError>(());
        }
        let left = std::cell::Cell::new(changes.clone());
        let cadence = Cadence {
            cap: CHANGE_POLL_CAP,
            due: recorder.timings.due(WaitKind::Sync),
        };
        poll_on(interrupt, step, timeout, deadline, cadence, || {
            let left = &left;
            async move {
                let mut pending = left.take();
                let Some(newest) = pending.last().copied() else {
                    return Ok(Poll::Done(()));
                };
                if cloud.change_in_sync(newest).await.map_err(step_err(step))? {
                    pending.pop();
                    let older = try_join_all(pending.iter().map(|id| async move {
                        cloud.change_in_sync(id).await.map(|done| (*id, done))
                    }))
                    .await
                    .map_err(step_err(step))?;
                    pending = older
                        .into_iter()
                        .filter(|(_, done)| !done)
                        .map(|(id, _)| id)
                        .collect();
                }
                let Some(id) = pending.last().copied() else {
                    return Ok(Poll::Done(()));
                };
                left.set(pending.clone());
                recorder.progress(Progress::Syncing {
                    step: step.to_owned(),
                    in_sync: of - pending.len(),
                    of,
                });
                Ok(Poll::Waiting(format!(
                    "Route 53 change {id} wanted INSYNC, last seen PENDING ({} of {of} changes pending)",
                    pending.len()
                )))
            }
        })
        .await?;
        recorder.timings.learn(WaitKind::Sync, started.elapsed());
        Ok(())
    };
    let shifted = async {
        if shifts.is_empty() {
            return Ok::<(), EngineError>(());
        }
        let left = std::cell::RefCell::new(shifts.clone());
        let of = shifts.len();
        let cadence = Cadence {
            cap: CHANGE_POLL_CAP,
            due: recorder.timings.due(WaitKind::Shift),
        };
        poll_on(interrupt, step, timeout, deadline, cadence, || {
            let left = &left;
            async move {
                let pending = left.borrow().clone();
                let seen = try_join_all(pending.iter().map(|(region, resource, comment)| async move {
                    let active = cloud.zonal_shifts(region, resource).await?;
                    let applied = active.iter().any(|s| s.comment == *comment && s.applied);
                    Ok::<_, super::cloud::CloudError>(((*region, *resource, *comment), applied))
                }))
                .await
                .map_err(step_err(step))?;
                let still: Vec<(&str, &str, &str)> = seen
                    .into_iter()
                    .filter(|(_, applied)| !applied)
                    .map(|(s, _)| s)
                    .collect();
                *left.borrow_mut() = still.clone();
                recorder.progress(Progress::Shifting {
                    step: step.to_owned(),
                    applied: of - still.len(),
                    of,
                });
                match still.first() {
                    None => Ok(Poll::Done(())),
                    Some((_, resource, _)) => Ok(Poll::Waiting(format!(
                        "zonal shift of {resource} wanted applied, last seen not yet ({} of {of} shifts pending)",
                        still.len()
                    ))),
                }
            }
        })
        .await?;
        recorder.timings.learn(WaitKind::Shift, started.elapsed());
        Ok(())
    };
    futures::try_join!(capacity, dns, shifted)?;
    Ok(())
}

/// How a wait looks into launches that do not come.
struct Launches {
    /// Activities that started before this (epoch seconds) are not the wave's.
    since: i64,
    /// The poll round, from 1.
    round: std::cell::Cell<u32>,
    /// When the wait began.
    started: tokio::time::Instant,
    /// When a poll first found some of the groups in service and others not.
    first_arrival: std::cell::Cell<Option<tokio::time::Instant>>,
}

/// How long after the first groups of a wave arrive in service the others are
/// polled every [`super::watch::DUE_PAUSE`]: a wave's groups are changed within
/// seconds of each other, so stragglers past this are slow for another reason.
const ARRIVALS_DUE_FOR: Duration = Duration::from_secs(30);

/// How long a wait goes on before the groups still short of their desired capacity
/// have their scaling activities read: launches take minutes, and a wait that ends
/// sooner costs no read.
const ACTIVITY_AFTER: Duration = Duration::from_secs(30);

/// After that, how often (in poll rounds) they are read.
const ACTIVITY_ROUNDS: u32 = 3;

/// How many failed launches in a row, and none other, end a scale-up's wait early.
pub const FAILED_LAUNCHES: usize = 2;

/// Reads why the groups in `short` lack instances (their scaling activities since
/// `since`, at most 20 groups a round). A group whose launches since then number
/// [`FAILED_LAUNCHES`] or more and all failed ends the wait at once, with AWS's
/// reason: AWS goes on retrying, but the capacity is not coming within the step.
/// Otherwise returns the latest failure of each group that had one, for the
/// progress line.
async fn failed_launches<C: Cloud>(
    cloud: &C,
    step: &str,
    short: &[(&str, &str, u32, u32)],
    since: i64,
) -> Result<Vec<String>, EngineError> {
    let read = try_join_all(
        short
            .iter()
            .take(20)
            .map(|(region, group, have, want)| async move {
                cloud
                    .activities(region, group)
                    .await
                    .map(|a| (*region, *group, *have, *want, a))
            }),
    )
    .await
    .map_err(step_err(step))?;
    let mut notes = Vec::new();
    for (region, group, have, want, activities) in read {
        let launches: Vec<&super::cloud::Activity> = activities
            .iter()
            .filter(|a| a.is_launch() && a.started >= since)
            .collect();
        let failed: Vec<&&super::cloud::Activity> =
            launches.iter().filter(|a| a.status == "Failed").collect();
        let Some(latest) = failed.first() else {
            continue;
        };
        if launches.len() >= FAILED_LAUNCHES && failed.len() == launches.len() {
            return Err(EngineError::Step {
                step: step.to_owned(),
                message: format!(
                    "asg {group} ({region}): {have} of {want} instances InService, and its last {} launches failed: {}; AWS keeps retrying, but the step stops here instead of at its timeout",
                    launches.len(),
                    latest.message
                ),
            });
        }
        notes.push(format!(
            "asg {group} ({region}): {have} of {want} InService; a launch failed: {}",
            latest.message
        ));
    }
    Ok(notes)
}

/// What one group of a wave is waited for.
struct Wanted<'a> {
    group: &'a str,
    desired: u32,
    direction: Direction,
    balancers: bool,
}

/// One round of the capacity poller: every region at once. Once every group's
/// InService count is there, the groups attached to load balancers are read in them
/// (one read per load balancer, with the instances the round's describe found),
/// each until it has passed
/// (`passed`): a straggler does not make the others be read again. (Reading each
/// group as soon as it is in service was measured: as fast under the timing model,
/// with a tenth more reads, spent on health checks still running.)
async fn poll_groups<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    step: &str,
    groups: &BTreeMap<&str, Vec<Wanted<'_>>>,
    passed: &std::cell::RefCell<BTreeSet<(String, String)>>,
    launches: &Launches,
) -> Result<Poll<()>, EngineError> {
    let round = launches.round.get() + 1;
    launches.round.set(round);
    let states = try_join_all(groups.iter().map(|(region, wanted)| async move {
        let names: Vec<String> = wanted.iter().map(|w| w.group.to_owned()).collect();
        cloud
            .groups(region, &names)
            .await
            .map(|states| (*region, states))
    }))
    .await
    .map_err(step_err(step))?;
    let (mut current, mut total, mut leaving) = (0, 0, 0u32);
    let mut arrived = 0usize;
    let mut lagging: Vec<String> = Vec::new();
    // Groups still short of raised capacity: (region, group, InService, desired).
    let mut short: Vec<(&str, &str, u32, u32)> = Vec::new();
    // Per region: the groups in service as wanted, to be read in their balancers.
    let mut balanced: BTreeMap<&str, Vec<(&Wanted<'_>, &GroupState)>> = BTreeMap::new();
    for (region, states) in &states {
        for wanted in &groups[region] {
            let (group, desired, direction) = (&wanted.group, &wanted.desired, &wanted.direction);
            let Some(state) = states.get(*group) else {
                return Err(EngineError::Step {
                    step: step.to_owned(),
                    message: format!("Auto Scaling group {group} not found in {region}"),
                });
            };
            // Raised capacity is a floor: the group may scale out by itself while
            // it is waited for (its policies see the new load). Capacity taken away
            // must stay down for the drain to end.
            let moved = match direction {
                Direction::Up => state.capacity.desired < *desired,
                Direction::Down => state.capacity.desired != *desired,
            };
            if moved {
                return Err(EngineError::Drift {
                    action: format!("{step}: asg {group} ({region})"),
                    target: format!("asg {group} ({region})"),
                    expected: match direction {
                        Direction::Up => format!(
                            "desired at least {desired}, set by this run and being waited for"
                        ),
                        Direction::Down => {
                            format!("desired {desired}, set by this run and being waited for")
                        }
                    },
                    after: format!("desired {desired}"),
                    live: format!("desired {}", state.capacity.desired),
                });
            }
            current = state.in_service.min(*desired).saturating_add(current);
            total = desired.saturating_add(total);
            if *direction == Direction::Down {
                leaving = state
                    .in_service
                    .saturating_sub(*desired)
                    .saturating_add(leaving);
            }
            // In the group's unit: a group counted in vCPUs, memory or weights
            // is done when the weights of its InService instances reach desired,
            // and, going down, when less than one instance's weight is left above it.
            let done = match direction {
                Direction::Up => state.reached(*desired),
                Direction::Down => state.came_down_to(*desired),
            };
            arrived += usize::from(done);
            if !done {
                lagging.push(format!(
                    "asg {group} ({region}) wanted {desired} {} InService, last seen {}",
                    state.unit, state.in_service
                ));
                if *direction == Direction::Up {
                    short.push((region, group, state.in_service, *desired));
                }
            } else if wanted.balancers
                && !state.balancers.is_empty()
                && !passed
                    .borrow()
                    .contains(&((*region).to_owned(), wanted.group.to_owned()))
            {
                balanced.entry(region).or_default().push((wanted, state));
            }
        }
    }
    if !short.is_empty()
        && launches.started.elapsed() >= ACTIVITY_AFTER
        && round.is_multiple_of(ACTIVITY_ROUNDS)
    {
        lagging.extend(failed_launches(cloud, step, &short, launches.since).await?);
    }
    recorder.progress(Progress::InService {
        step: step.to_owned(),
        current,
        wanted: total,
        leaving,
    });
    // Groups of one wave were changed within seconds of each other: once some have
    // arrived in service, the others are due, for a while.
    let short_now = !lagging.is_empty();
    if arrived > 0 && short_now && launches.first_arrival.get().is_none() {
        launches
            .first_arrival
            .set(Some(tokio::time::Instant::now()));
    }
    let due = short_now
        && launches
            .first_arrival
            .get()
            .is_some_and(|at| at.elapsed() < ARRIVALS_DUE_FOR);
    if lagging.is_empty() && !balanced.is_empty() {
        let (behind, ok) = poll_balancers(cloud, step, &balanced).await?;
        passed.borrow_mut().extend(ok);
        lagging.extend(behind);
    }
    let last = match lagging.len() {
        0 => return Ok(Poll::Done(())),
        1 => lagging.remove(0),
        n => format!("{} ({} more groups lagging)", lagging[0], n - 1),
    };
    Ok(if due {
        Poll::Due(last)
    } else {
        Poll::Waiting(last)
    })
}

/// The groups of `balanced` not yet as wanted in their load balancers, said for
/// people; and those that are, as (region, group).
async fn poll_balancers<C: Cloud>(
    cloud: &C,
    step: &str,
    balanced: &BTreeMap<&str, Vec<(&Wanted<'_>, &GroupState)>>,
) -> Result<(Vec<String>, Vec<(String, String)>), EngineError> {
    let views = try_join_all(balanced.iter().map(|(region, wanted)| async move {
        let states: Vec<&GroupState> = wanted.iter().map(|(_, state)| *state).collect();
        cloud
            .balanced(region, &states)
            .await
            .map(|views| (*region, views))
    }))
    .await
    .map_err(step_err(step))?;
    let mut lagging = Vec::new();
    let mut ok = Vec::new();
    for (region, views) in &views {
        for (wanted, state) in &balanced[region] {
            let group = wanted.group;
            let before = lagging.len();
            for view in views.get(group).into_iter().flatten() {
                match wanted.direction {
                    Direction::Up if view.healthy < wanted.desired => lagging.push(format!(
                        "asg {group} ({region}) wanted {} {} healthy in {}, last seen {} ({} registered)",
                        wanted.desired, state.unit, view.balancer, view.healthy, view.registered
                    )),
                    Direction::Down if view.leaving > 0 => lagging.push(format!(
                        "asg {group} ({region}) wanted its drained instances out of {}, last seen {} still registered (deregistration delay)",
                        view.balancer, view.leaving
                    )),
                    _ => {}
                }
            }
            if lagging.len() == before {
                ok.push(((*region).to_owned(), group.to_owned()));
            }
        }
    }
    Ok((lagging, ok))
}
