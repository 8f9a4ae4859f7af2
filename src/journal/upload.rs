//! Sending a run's journal to S3, in order, without waiting where nothing waits on it.
//!
//! Write-ahead is about intents: an intent must be in S3 before its AWS call, so an
//! append that holds one waits until it, and everything before it, is there. Other
//! entries (applied, converged, baked, step finished) are sent in order by a thread
//! of the journal's own while the run goes on, gathered for up to a second (or
//! until an intent comes) into one object, so a watcher sees them at most a second
//! and a round trip later and a run does not pay a round trip for each. Objects still begin
//! where the one before ended, so two writers on one run still meet on a name. Losing them in a crash is
//! what the journal is built for: a resume reconciles an intent without its applied
//! entry against live state, and waits again for what has no converged entry.
//! A failed or conflicting write fails the next append, and an intent's append
//! before anything else: the run stops before its next change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::remote::{Created, StoreError};
use super::state_dir::RemoteRun;
use super::store::JournalError;

/// Why the uploader stopped.
#[derive(Clone, Debug)]
enum Failure {
    Remote(StoreError),
    Conflict(String),
    LockLost,
}

#[derive(Default)]
struct Progress {
    /// The last entry number known to be in S3.
    written: u64,
    failure: Option<Failure>,
}

struct Batch {
    key: String,
    bytes: Vec<u8>,
    last: u64,
    /// Someone waits for it: it holds an intent.
    urgent: bool,
}

/// How long entries nobody waits for may wait for company before they are sent:
/// a watcher sees them this much later, and a run writes a few objects a second
/// rather than one per entry.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1000);

/// The uploader of one journal.
pub struct Uploader {
    run: String,
    prefix: String,
    lost: Option<Arc<AtomicBool>>,
    fence: Option<super::lease::Fence>,
    queue: Option<mpsc::Sender<Batch>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uploader({})", self.prefix)
    }
}

impl Uploader {
    /// Starts the uploader of `run`, whose entries up to `written` are in S3.
    pub fn start(run: &str, remote: &RemoteRun, written: u64) -> Self {
        let (queue, batches) = mpsc::channel::<Batch>();
        let progress = Arc::new((
            Mutex::new(Progress {
                written,
                failure: None,
            }),
            Condvar::new(),
        ));
        let thread = {
            let (store, lost, progress, fence) = (
                remote.store.clone(),
                remote.lost.clone(),
                progress.clone(),
                remote.fence.clone(),
            );
            std::thread::Builder::new()
                .name("evac-journal-upload".into())
                .spawn(move || {
                    while let Ok(mut batch) = batches.recv() {
                        // What comes meanwhile follows on: one object for it all,
                        // named by its first entry as before. An intent goes at once.
                        let deadline = std::time::Instant::now() + LINGER;
                        let merge = |batch: &mut Batch, next: Batch| {
                            batch.bytes.extend_from_slice(&next.bytes);
                            batch.last = next.last;
                            batch.urgent |= next.urgent;
                        };
                        while !batch.urgent {
                            let left =
                                deadline.saturating_duration_since(std::time::Instant::now());
                            match batches.recv_timeout(left) {
                                Ok(next) => merge(&mut batch, next),
                                Err(_) => break,
                            }
                        }
                        while let Ok(next) = batches.try_recv() {
                            merge(&mut batch, next);
                        }
                        let result = if lost.as_ref().is_some_and(|l| l.load(Ordering::SeqCst)) {
                            Err(Failure::LockLost)
                        } else {
                            let _busy = fence.as_ref().map(super::lease::Fence::busy);
                            match store.create(&batch.key, &batch.bytes) {
                                Ok(Created::Yes(_)) => Ok(()),
                                Ok(Created::AlreadyThere) => {
                                    Err(Failure::Conflict(format!("{} exists already", batch.key)))
                                }
                                Err(err) => Err(Failure::Remote(err)),
                            }
                        };
                        let (state, changed) = &*progress;
                        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                        match result {
                            Ok(()) => state.written = batch.last,
                            Err(failure) => state.failure = Some(failure),
                        }
                        changed.notify_all();
                        if state.failure.is_some() {
                            return;
                        }
                    }
                })
                .ok()
        };
        Uploader {
            run: run.to_owned(),
            prefix: remote.prefix.clone(),
            lost: remote.lost.clone(),
            fence: remote.fence.clone(),
            queue: Some(queue),
            progress,
            thread,
        }
    }

    fn error(&self, failure: &Failure) -> JournalError {
        let run = self.run.clone();
        match failure.clone() {
            Failure::Remote(source) => JournalError::Remote { run, source },
            Failure::Conflict(what) => JournalError::Conflict { run, what },
            Failure::LockLost => JournalError::LockLost { run },
        }
    }

    /// When this process's lease holds for its margin more: a guard that marks
    /// the call about to be made as out until it is dropped (see
    /// [`super::lease::Fence::busy`]).
    pub fn vouch(&self) -> Result<Option<super::lease::Busy>, JournalError> {
        match &self.fence {
            Some(fence) => {
                fence
                    .vouch()
                    .map(|()| Some(fence.busy()))
                    .map_err(|why| JournalError::Unvouched {
                        run: self.run.clone(),
                        why,
                    })
            }
            None => Ok(None),
        }
    }

    /// Sends entries `first..=last` (`bytes`); with `wait`, returns once they and
    /// every entry before them are in S3.
    pub fn send(
        &self,
        first: u64,
        last: u64,
        bytes: &[u8],
        wait: bool,
    ) -> Result<(), JournalError> {
        if self.lost.as_ref().is_some_and(|l| l.load(Ordering::SeqCst)) {
            return Err(JournalError::LockLost {
                run: self.run.clone(),
            });
        }
        let (state, changed) = &*self.progress;
        if let Some(failure) = &state.lock().unwrap_or_else(|p| p.into_inner()).failure {
            return Err(self.error(failure));
        }
        let batch = Batch {
            key: format!("{}journal/{first:010}.jsonl", self.prefix),
            bytes: bytes.to_vec(),
            last,
            urgent: wait,
        };
        let sent = self.queue.as_ref().is_some_and(|q| q.send(batch).is_ok());
        if !sent || self.thread.is_none() {
            return Err(JournalError::Remote {
                run: self.run.clone(),
                source: StoreError {
                    what: "send the journal to S3".into(),
                    message: "its uploader is not running".into(),
                },
            });
        }
        if wait {
            let state = state.lock().unwrap_or_else(|p| p.into_inner());
            let state = changed
                .wait_while(state, |s| s.written < last && s.failure.is_none())
                .unwrap_or_else(|p| p.into_inner());
            if let Some(failure) = &state.failure {
                return Err(self.error(failure));
            }
        }
        Ok(())
    }

    /// Waits until everything sent is in S3, or says why it is not (once: later
    /// calls have nothing to say).
    pub fn finish(&mut self) -> Result<(), JournalError> {
        if self.queue.take().is_none() {
            return Ok(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let (state, _) = &*self.progress;
        match &state.lock().unwrap_or_else(|p| p.into_inner()).failure {
            Some(failure) => Err(self.error(failure)),
            None => Ok(()),
        }
    }
}
