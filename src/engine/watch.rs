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
/// otherwise; meant to run beside the executor, so it never completes.
pub async fn watch_stops<C: Cloud>(
    cloud: &C,
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    stops: &[StopRef],
    every: Duration,
) {
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
    mut probe: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, EngineError>>,
{
    let mut pause = FIRST_PAUSE.min(cap);
    loop {
        if interrupt.is_set() {
            return Err(EngineError::Interrupted);
        }
        let last = match probe().await? {
            Poll::Done(value) => return Ok(value),
            Poll::Waiting(last) => last,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(EngineError::Step {
                step: step.to_owned(),
                message: format!("timed out after {}s: {last}", timeout.as_secs()),
            });
        }
        let sleep = pause.min(deadline - now);
        if interrupt.sleep(sleep).await {
            return Err(EngineError::Interrupted);
        }
        pause = pause.mul_f64(1.5).min(cap);
    }
}
