//! The one write-ahead loop every AWS write of the engine goes through, forward,
//! in a zone evacuation and in rollback:
//!
//! 1. every intent of the wave is written and made durable together, before the
//!    first call;
//! 2. each call then goes out, concurrently up to the run's bound, only
//!    - when no stop was asked for (an interrupted run sends nothing more),
//!    - and when this process can vouch for its lease (fencing: with state in S3, a
//!      process stopped past its lease, and maybe taken over, makes no call);
//! 3. a call in flight when the run is stopped is given [`IN_FLIGHT_GRACE`] to
//!    answer, then abandoned: its intent says what to read live on resume or
//!    rollback;
//! 4. what AWS answered is recorded as it comes.
//!
//! One policy for errors: a real failure outranks an interrupt that came with it,
//! and of several failures the first to end is returned. Every call that answered
//! is recorded whatever the others did.

use std::future::Future;

use futures::StreamExt;

use super::error::EngineError;
use super::interrupt::{IN_FLIGHT_GRACE, Interrupt};
use super::recorder::Recorder;
use crate::journal::Event;

/// Records `intents`, then makes one call per item of `calls` by `send`, recording
/// the events each answer brings. Returns each answered call's result, in the
/// order they ended.
pub(crate) async fn write_ahead<I, R, F, Fut>(
    recorder: &Recorder<'_>,
    interrupt: &Interrupt,
    concurrency: usize,
    intents: Vec<Event>,
    calls: Vec<I>,
    send: F,
) -> Result<Vec<R>, EngineError>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<(Vec<Event>, R), EngineError>>,
{
    recorder.log_all(intents)?;
    let send = &send;
    let results: Vec<Result<R, EngineError>> = futures::stream::iter(calls)
        .map(|item| async move {
            if interrupt.is_set() {
                return Err(EngineError::Interrupted);
            }
            // While the call is out, the lease's renewer can tell it from a hang.
            let _out = recorder.vouch()?;
            let (answered, result) = tokio::select! {
                answer = send(item) => answer?,
                () = interrupt.stopped_for(IN_FLIGHT_GRACE) => {
                    return Err(EngineError::Interrupted);
                }
            };
            recorder.log_all(answered)?;
            Ok(result)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut done = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok(r) => done.push(r),
            Err(err) => {
                if first_error
                    .as_ref()
                    .is_none_or(|e| matches!(e, EngineError::Interrupted))
                {
                    first_error = Some(err);
                }
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(done),
    }
}
