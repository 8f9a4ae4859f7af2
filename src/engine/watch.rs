//! Stop conditions and waiting: checking the conditions at a step's start and before
//! every wave, watching them beside the run, holding, and the one poll loop every
//! wait uses.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::cloud::Cloud;
use super::error::EngineError;
use super::interrupt::{Interrupt, Reason};
use super::recorder::Recorder;
use super::reporter::Progress;
use crate::journal::Event;
use crate::plan::StopRef;

/// The first poll of a wait comes at once (the emulator and fast changes are done
/// by then); the next after this, then each pause grows by half.
pub const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between two polls of a Route 53 change: a change is seen in
/// sync at most this long after it is.
pub const CHANGE_POLL_CAP: Duration = Duration::from_secs(2);
/// The longest pause between two polls of Auto Scaling groups or instances: new
/// capacity is seen in service at most this long after it is.
pub const CAPACITY_POLL_CAP: Duration = Duration::from_secs(5);

/// The pause between two polls while a completion is due: a wait sees AWS finish
/// within this much.
pub const DUE_PAUSE: Duration = Duration::from_millis(500);

/// What kind of completion a wait waits for: each kind takes about as long each time
/// in one run (launches, a Route 53 change going in sync).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WaitKind {
    /// New capacity in service (and healthy).
    Up,
    /// Capacity gone.
    Down,
    /// Route 53 changes in sync.
    Sync,
    /// Zonal shifts applied.
    Shift,
}

/// How long each kind of wait took last in this run: when the next one is due.
#[derive(Debug, Default)]
pub struct Timings(std::sync::Mutex<std::collections::BTreeMap<WaitKind, Duration>>);

impl Timings {
    /// How long the last wait of `kind` took, if one finished.
    pub fn due(&self, kind: WaitKind) -> Option<Duration> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&kind)
            .copied()
    }

    /// A wait of `kind` took `took`.
    pub fn learn(&self, kind: WaitKind, took: Duration) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind, took);
    }
}

/// When to poll next: backing off ([`FIRST_PAUSE`], half again each time, up to
/// `cap`) until a completion is due, then every [`DUE_PAUSE`]. A wait is due from
/// four fifths of the time the last wait of its kind took until three times it; past
/// that, the back-off resumes at `cap`.
#[derive(Clone, Copy, Debug)]
pub struct Cadence {
    /// The longest pause while nothing is due.
    pub cap: Duration,
    /// How long the last wait of its kind took.
    pub due: Option<Duration>,
}

impl Cadence {
    /// The pause after a poll at `elapsed` into the wait, given the back-off pause
    /// `pause` it would take otherwise.
    pub fn next(&self, elapsed: Duration, pause: Duration) -> Duration {
        let Some(due) = self.due else {
            return pause;
        };
        let (from, until) = (due.mul_f64(0.8), due.saturating_mul(3));
        if elapsed < from {
            pause.min(from - elapsed).max(Duration::from_millis(1))
        } else if elapsed < until {
            DUE_PAUSE.min(pause.max(DUE_PAUSE))
        } else {
            pause
        }
    }
}

/// The moment `after` from now; a value beyond what the clock can hold (from a plan
/// no playbook could have made) is cut to a day.
pub fn deadline(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + crate::playbook::MAX_DURATION)
}

/// The state a stop condition is in when it fires, `None` when it does not.
async fn fired<C: Cloud>(cloud: &C, stop: &StopRef) -> Option<String> {
    match stop {
        StopRef::Alarm { region, name } => match cloud.alarm_state(region, name).await {
            Ok(Some(state)) if state == "ALARM" => Some(state),
            Ok(_) => None,
            // A stop condition that cannot be read is not silently ignored.
            Err(err) => Some(format!("unreadable ({err})")),
        },
        StopRef::HealthCheck { id } => match cloud.health_check_healthy(id).await {
            Ok(false) => Some("unhealthy".to_owned()),
            Ok(true) => None,
            Err(err) => Some(format!("unreadable ({err})")),
        },
    }
}

/// Evaluates every stop condition once. When one fires, journals it and stops the
/// run; returns whether one fired (or the run was already stopped).
pub async fn check_stops<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    stops: &[StopRef],
) -> Result<bool, EngineError> {
    if interrupt.is_set() {
        return Ok(true);
    }
    for stop in stops {
        if let Some(state) = fired(cloud, stop).await {
            recorder.log(Event::StopConditionFired {
                condition: stop.to_string(),
                state: state.clone(),
            })?;
            interrupt.stop(Reason::StopCondition {
                condition: stop.to_string(),
                state,
            });
            return Ok(true);
        }
    }
    Ok(false)
}

/// Polls the stop conditions every `every` until one fires or the run is stopped
/// otherwise (a condition that fires stops the run through `interrupt`, which every
/// wait of the executor sees); meant to run beside the executor, so it never
/// completes: its type says so.
pub async fn watch_stops<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    stops: &[StopRef],
    every: Duration,
) -> std::convert::Infallible {
    if !stops.is_empty() {
        loop {
            if interrupt.sleep(every).await {
                break;
            }
            match check_stops(cloud, recorder, interrupt, stops).await {
                Ok(false) => {}
                Ok(true) | Err(_) => break,
            }
        }
    }
    std::future::pending().await
}

/// Holds for `duration`, showing the countdown; stops early when the run is stopped.
pub async fn hold(
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    step: &str,
    duration: Duration,
) -> Result<(), EngineError> {
    let end = deadline(duration);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        recorder.progress(Progress::Holding {
            step: step.to_owned(),
            remaining_secs: left.as_secs(),
        });
        if left.is_zero() {
            return Ok(());
        }
        if interrupt.sleep(left.min(Duration::from_secs(1))).await {
            return Err(EngineError::Interrupted);
        }
    }
}

/// What one poll found.
pub enum Poll<T> {
    /// The wait is over.
    Done(T),
    /// Not yet: what was wanted and what was seen, for the timeout message.
    Waiting(String),
    /// Not yet, but part of it is done (some groups of a wave are in service): the
    /// rest is due, and the next poll comes after [`DUE_PAUSE`].
    Due(String),
}

/// Polls `probe` until it is done: the first poll at once, the next after
/// [`FIRST_PAUSE`], each pause half again as long up to `cap`. Fails at `deadline`
/// with what the last poll saw, and at once when the run is stopped.
pub async fn poll_until<T, F, Fut>(
    interrupt: &Interrupt,
    step: &str,
    timeout: Duration,
    deadline: Instant,
    cap: Duration,
    probe: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, EngineError>>,
{
    poll_on(
        interrupt,
        step,
        timeout,
        deadline,
        Cadence { cap, due: None },
        probe,
    )
    .await
}

/// [`poll_until`] on a [`Cadence`]: more often while the completion is due.
pub async fn poll_on<T, F, Fut>(
    interrupt: &Interrupt,
    step: &str,
    timeout: Duration,
    deadline: Instant,
    cadence: Cadence,
    mut probe: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, EngineError>>,
{
    let cap = cadence.cap;
    let started = Instant::now();
    let mut pause = FIRST_PAUSE.min(cap);
    loop {
        if interrupt.is_set() {
            return Err(EngineError::Interrupted);
        }
        let (last, due) = match probe().await? {
            Poll::Done(value) => return Ok(value),
            Poll::Waiting(last) => (last, false),
            Poll::Due(last) => (last, true),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(EngineError::Step {
                step: step.to_owned(),
                message: format!("timed out after {}s: {last}", timeout.as_secs()),
            });
        }
        let next = if due {
            DUE_PAUSE.min(pause.max(DUE_PAUSE))
        } else {
            cadence.next(now.duration_since(started), pause)
        };
        let sleep = next.min(deadline - now);
        if interrupt.sleep(sleep).await {
            return Err(EngineError::Interrupted);
        }
        pause = pause.mul_f64(1.5).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Cadence, DUE_PAUSE};

    #[test]
    fn a_due_wait_is_polled_every_half_second_and_nothing_is_slept_past_its_start() {
        let s = Duration::from_secs;
        let cadence = Cadence {
            cap: s(5),
            due: Some(s(30)),
        };
        // Before 24 s (four fifths of 30): the back-off, cut to end at 24 s.
        assert_eq!(cadence.next(s(10), s(5)), s(5));
        assert_eq!(cadence.next(s(22), s(5)), s(2));
        // Due: every half second.
        assert_eq!(cadence.next(s(24), s(5)), DUE_PAUSE);
        assert_eq!(cadence.next(s(80), s(5)), DUE_PAUSE);
        // Long overdue: the back-off again.
        assert_eq!(cadence.next(s(95), s(5)), s(5));
        // Nothing learned yet: the back-off.
        let first = Cadence {
            cap: s(5),
            due: None,
        };
        assert_eq!(first.next(s(24), s(5)), s(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_that_finds_part_done_is_followed_within_half_a_second() {
        use super::{Poll, poll_until};
        use crate::engine::interrupt::Interrupt;
        use tokio::time::Instant;
        let start = Instant::now();
        let seen = std::cell::RefCell::new(Vec::new());
        let interrupt = Interrupt::default();
        poll_until(
            &interrupt,
            "scale",
            Duration::from_secs(600),
            Instant::now() + Duration::from_secs(600),
            Duration::from_secs(5),
            || {
                let seen = &seen;
                async move {
                    let at = start.elapsed();
                    seen.borrow_mut().push(at);
                    Ok(match seen.borrow().len() {
                        n if n < 10 => Poll::Waiting("none yet".to_owned()),
                        10 => Poll::Due("some groups in service".to_owned()),
                        _ => Poll::Done(()),
                    })
                }
            },
        )
        .await
        .expect("done");
        let seen = seen.into_inner();
        // Backing off: 0.25 s, half again each time, up to 5 s...
        assert_eq!(seen[9] - seen[8], Duration::from_secs(5));
        // ...until part is done: the next poll half a second later.
        assert_eq!(seen[10] - seen[9], DUE_PAUSE);
    }
}
