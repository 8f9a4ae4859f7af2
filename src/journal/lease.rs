//! Locks in S3: one object per playbook, `locks/PLAYBOOK.lock`, holding the run id,
//! user, host, pid and when the lease ends.
//!
//! - Taken with If-None-Match: of two takers, one creates it and the other is told
//!   who holds it.
//! - Renewed by its holder every third of the lease, with If-Match on the ETag it
//!   last wrote: a holder that was taken over learns it at its next renewal and
//!   writes nothing more.
//! - Taken over when the lease has ended, or at once when the holder was on this
//!   host and its process is gone, with If-Match on the ETag read: of two takers,
//!   exactly one wins.
//! - Released by deleting it (If-Match), when the lock is dropped.
//! - Vouched for before every AWS write ([`Fence`]): the holder knows until when its
//!   last write of the lease holds, by the wall clock, which keeps counting while
//!   the process is stopped (a closed lid, Ctrl-Z, a paused VM), and makes no call
//!   once that is less than a margin away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::lock::{Lock, LockError, LockHolder};
use super::remote::{Created, ObjectStore};

/// Whether this process may still act as the lease's holder: checked right before
/// every AWS write.
#[derive(Clone, Debug)]
pub struct Fence {
    lost: Arc<AtomicBool>,
    /// The calls and writes out now, by number: when each began.
    busy: Arc<Mutex<std::collections::BTreeMap<u64, Instant>>>,
    next_busy: Arc<std::sync::atomic::AtomicU64>,
    /// Why the renewer stopped renewing, when it was for lack of progress.
    stalled: Arc<Mutex<Option<String>>>,
    /// Until when the last successful write of the lease holds: its send time by
    /// the wall clock plus the lease.
    valid_until: Arc<Mutex<std::time::SystemTime>>,
    /// How much of the lease must be left for a call to go out.
    margin: Duration,
}

impl Fence {
    /// A fence whose lease holds until `until`, with `margin` (for tests of what a
    /// stopped holder does).
    #[cfg(test)]
    pub(crate) fn until(until: std::time::SystemTime, margin: Duration) -> Self {
        Fence::new(Arc::new(AtomicBool::new(false)), until, margin)
    }

    fn new(lost: Arc<AtomicBool>, until: std::time::SystemTime, margin: Duration) -> Self {
        Fence {
            lost,
            busy: Arc::default(),
            next_busy: Arc::default(),
            stalled: Arc::default(),
            valid_until: Arc::new(Mutex::new(until)),
            margin,
        }
    }

    /// Marks a call or a journal write as out until the guard is dropped: the
    /// renewer renews the lease only while nothing has been out longer than a call
    /// can take.
    pub fn busy(&self) -> Busy {
        let id = self.next_busy.fetch_add(1, Ordering::SeqCst);
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Instant::now());
        Busy {
            busy: self.busy.clone(),
            id,
        }
    }

    /// How long the oldest call or write still out has been out.
    fn oldest_busy(&self) -> Option<Duration> {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .min()
            .map(Instant::elapsed)
    }

    /// The margin a lease of `lease` keeps: a sixth of it, at least a second.
    pub fn margin_of(lease: Duration) -> Duration {
        (lease / 6).max(Duration::from_secs(1))
    }

    /// Ok when the lease is this process's for at least the margin more; else why
    /// not.
    pub fn vouch(&self) -> Result<(), String> {
        if self.lost.load(Ordering::SeqCst) {
            if let Some(why) = &*self.stalled.lock().unwrap_or_else(|p| p.into_inner()) {
                return Err(why.clone());
            }
            return Err("its lease was taken over or could not be renewed".to_owned());
        }
        let until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::SystemTime::now();
        let left = until.duration_since(now).unwrap_or_default();
        if left < self.margin {
            let shown = |t: std::time::SystemTime| {
                jiff::Timestamp::try_from(t).map_or_else(|_| "?".to_owned(), |t| format!("{t:.0}"))
            };
            return Err(format!(
                "its lease holds until {} and it is {} now, less than the {}s margin: the process may have been stopped (a closed lid, Ctrl-Z, a paused machine) and another may have taken the run over",
                shown(until),
                shown(now),
                self.margin.as_secs()
            ));
        }
        Ok(())
    }
}

/// A call or journal write out now (see [`Fence::busy`]).
#[derive(Debug)]
pub struct Busy {
    busy: Arc<Mutex<std::collections::BTreeMap<u64, Instant>>>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// How long a call or journal write may be out before the lease is no longer
/// renewed: the call timeout, which ends every call, and a few seconds. Past it the
/// process is hung somewhere no timeout reaches, and its lease is left to end so a
/// teammate can take the run over.
pub fn stall_limit() -> Duration {
    crate::limits::call_timeout() + Duration::from_secs(5)
}

/// A lease this process holds.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    key: String,
    etag: Arc<Mutex<String>>,
    /// Set when the lease was lost: taken over, removed, or not renewed in time.
    pub lost: Arc<AtomicBool>,
    /// What the holder checks before every AWS write.
    pub fence: Fence,
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<JoinHandle<()>>,
}

fn until(lease: Duration) -> String {
    let end = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(lease).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MAX);
    format!("{end:.3}")
}

fn body(holder: &LockHolder, lease: Duration) -> Vec<u8> {
    let holder = LockHolder {
        expires: Some(until(lease)),
        ..holder.clone()
    };
    serde_json::to_vec(&holder).unwrap_or_default()
}

/// Takes the lease `key` of `playbook` for `run_id`, or says who holds it.
pub fn acquire(
    store: Arc<dyn ObjectStore>,
    key: &str,
    playbook: &str,
    run_id: &str,
    lease: Duration,
) -> Result<Lock, LockError> {
    acquire_with(store, key, playbook, run_id, lease, stall_limit())
}

/// [`acquire`], renewing only while no call has been out longer than `stall_after`.
fn acquire_with(
    store: Arc<dyn ObjectStore>,
    key: &str,
    playbook: &str,
    run_id: &str,
    lease: Duration,
    stall_after: Duration,
) -> Result<Lock, LockError> {
    let me = LockHolder::me(run_id);
    let remote = |source| LockError::Remote {
        location: format!("{}/{key}", store.location()),
        source,
    };
    let held = |holder: Option<LockHolder>| LockError::Held {
        playbook: playbook.to_owned(),
        path: format!("{}/{key}", store.location()),
        holder: holder.map(Box::new),
    };
    // A lock released between our create and our read is simply tried again.
    for _ in 0..3 {
        let sent = std::time::SystemTime::now();
        if let Created::Yes(etag) = store.create(key, &body(&me, lease)).map_err(remote)? {
            return Ok(Lock::leased(
                Lease::start(store, key, etag, me, (lease, stall_after), sent),
                None,
            ));
        }
        let Some((found, etag)) = store.get(key).map_err(remote)? else {
            continue;
        };
        // An object that is not a holder (edited by hand) holds nothing.
        let holder: Option<LockHolder> = serde_json::from_slice(&found).ok();
        if let Some(h) = &holder
            && h.is_live()
        {
            return Err(held(holder));
        }
        let sent = std::time::SystemTime::now();
        return match store
            .replace(key, &body(&me, lease), &etag)
            .map_err(remote)?
        {
            Some(etag) => Ok(Lock::leased(
                Lease::start(store, key, etag, me, (lease, stall_after), sent),
                holder,
            )),
            // Another taker won.
            None => Err(held(
                store
                    .get(key)
                    .ok()
                    .flatten()
                    .and_then(|(b, _)| serde_json::from_slice(&b).ok()),
            )),
        };
    }
    Err(held(None))
}

impl Lease {
    fn start(
        store: Arc<dyn ObjectStore>,
        key: &str,
        etag: String,
        me: LockHolder,
        (lease, stall_after): (Duration, Duration),
        sent: std::time::SystemTime,
    ) -> Self {
        let etag = Arc::new(Mutex::new(etag));
        let lost = Arc::new(AtomicBool::new(false));
        let fence = Fence::new(lost.clone(), sent + lease, Fence::margin_of(lease));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let renewer = {
            let (store, key, etag, stop, fence) = (
                store.clone(),
                key.to_owned(),
                etag.clone(),
                stop.clone(),
                fence.clone(),
            );
            std::thread::Builder::new()
                .name("evac-lease".into())
                .spawn(move || {
                    renew(
                        &*store,
                        &key,
                        &etag,
                        &fence,
                        &stop,
                        &me,
                        (lease, stall_after),
                    );
                })
                .ok()
        };
        Lease {
            store,
            key: key.to_owned(),
            etag,
            lost,
            fence,
            stop,
            renewer,
        }
    }

    /// Stops renewing and deletes the lock object if it is still this lease's.
    pub fn release(&mut self) {
        {
            let (stopped, wake) = &*self.stop;
            *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
        }
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        if !self.lost.load(Ordering::SeqCst) {
            let etag = self.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let _ = self.store.delete(&self.key, &etag);
        }
    }
}

fn renew(
    store: &dyn ObjectStore,
    key: &str,
    etag: &Mutex<String>,
    fence: &Fence,
    stop: &(Mutex<bool>, Condvar),
    me: &LockHolder,
    (lease, stall_after): (Duration, Duration),
) {
    let lost = &*fence.lost;
    let (stopped, wake) = stop;
    let mut renewed = Instant::now();
    loop {
        let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, lease / 3, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        if *guard {
            return;
        }
        drop(guard);
        // Work out longer than any call can take is hung where no timeout reaches:
        // the lease is left to end, so a teammate can take the run over.
        if let Some(out) = fence.oldest_busy().filter(|out| *out > stall_after) {
            *fence.stalled.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                "its lease is no longer renewed: a call or journal write has been out for {}s, longer than any call may take ({}s)",
                out.as_secs(),
                stall_after.as_secs()
            ));
            lost.store(true, Ordering::SeqCst);
            return;
        }
        let current = etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let sent = std::time::SystemTime::now();
        match store.replace(key, &body(me, lease), &current) {
            Ok(Some(new)) => {
                *etag.lock().unwrap_or_else(|p| p.into_inner()) = new;
                *fence.valid_until.lock().unwrap_or_else(|p| p.into_inner()) = sent + lease;
                renewed = Instant::now();
            }
            // Taken over or removed: this process no longer holds the lock.
            Ok(None) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // Tried again at the next tick, until the lease would have ended.
            Err(_) if renewed.elapsed() < lease => {}
            Err(_) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::remote::MemoryStore;

    const KEY: &str = "locks/drill.lock";

    fn holder(host: &str, pid: u32, expires: &str) -> Vec<u8> {
        serde_json::to_vec(&LockHolder {
            run_id: "run-0".into(),
            host: host.into(),
            pid,
            since: "2026-11-26T00:00:00.000Z".into(),
            user: "alice".into(),
            expires: Some(expires.into()),
        })
        .expect("json")
    }

    #[test]
    fn a_held_lease_is_refused_and_released_on_drop() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
        let minute = Duration::from_secs(60);
        let first = acquire(store.clone(), KEY, "drill", "run-1", minute).expect("first");
        let err = acquire(store.clone(), KEY, "drill", "run-2", minute).expect_err("held");
        assert!(err.to_string().contains("run run-1"), "{err}");
        drop(first);
        assert_eq!(store.get(KEY).expect("get"), None, "released");
        acquire(store, KEY, "drill", "run-2", minute).expect("free again");
    }

    #[test]
    fn an_expired_lease_elsewhere_is_taken_over_and_a_live_one_is_not() {
        let memory = Arc::new(MemoryStore::default());
        let store: Arc<dyn ObjectStore> = memory.clone();
        let minute = Duration::from_secs(60);
        memory.put(KEY, &holder("far-away", 1, "2999-01-01T00:00:00Z"));
        let err = acquire(store.clone(), KEY, "drill", "run-1", minute).expect_err("live");
        assert!(err.to_string().contains("far-away"), "{err}");
        memory.put(KEY, &holder("far-away", 1, "2020-01-01T00:00:00Z"));
        let lock = acquire(store.clone(), KEY, "drill", "run-1", minute).expect("expired");
        assert_eq!(
            lock.took_over.as_ref().map(|h| h.host.clone()),
            Some("far-away".to_owned())
        );
    }

    #[test]
    fn a_holder_taken_over_learns_it_at_its_next_renewal() {
        let memory = Arc::new(MemoryStore::default());
        let store: Arc<dyn ObjectStore> = memory.clone();
        let lock = acquire(store, KEY, "drill", "run-1", Duration::from_millis(30)).expect("lock");
        let lost = lock.lost().expect("a lease");
        // Someone else writes the object (as a taker after expiry would).
        memory.put(KEY, &holder("far-away", 1, "2999-01-01T00:00:00Z"));
        let start = Instant::now();
        while !lost.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(5), "never noticed");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(lock);
        assert!(memory.read(KEY).is_some(), "the new holder's object stays");
    }

    #[test]
    fn a_lease_is_vouched_for_only_with_its_margin_left_by_the_wall_clock() {
        let now = std::time::SystemTime::now();
        let margin = Duration::from_secs(10);
        assert!(
            Fence::until(now + Duration::from_secs(60), margin)
                .vouch()
                .is_ok()
        );
        // A process stopped past its lease wakes with less than the margin left.
        let why = Fence::until(now + Duration::from_secs(5), margin)
            .vouch()
            .expect_err("within the margin");
        assert!(why.contains("may have been stopped"), "{why}");
        assert!(
            Fence::until(now - Duration::from_secs(300), margin)
                .vouch()
                .is_err()
        );
        // A lease known lost is never vouched for.
        let lost = Fence::until(now + Duration::from_secs(60), margin);
        lost.lost.store(true, Ordering::SeqCst);
        assert!(lost.vouch().is_err());
    }

    #[test]
    fn a_taken_lease_holds_from_just_before_its_write() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
        let before = std::time::SystemTime::now();
        let lock = acquire(store, KEY, "drill", "run-1", Duration::from_secs(60)).expect("lock");
        let fence = lock.fence().expect("a lease");
        fence.vouch().expect("fresh");
        let until = *fence.valid_until.lock().expect("until");
        assert!(until >= before + Duration::from_secs(60));
        assert!(until <= std::time::SystemTime::now() + Duration::from_secs(60));
    }

    #[test]
    fn a_lease_is_left_to_end_while_a_call_is_out_longer_than_any_call_may_take() {
        let memory = Arc::new(MemoryStore::default());
        let store: Arc<dyn ObjectStore> = memory.clone();
        let lease = Duration::from_secs(3);
        let stall = Duration::from_millis(1500);
        let lock = acquire_with(store, KEY, "drill", "run-1", lease, stall).expect("lock");
        let fence = lock.fence().expect("a lease");
        // Calls that end in time keep the lease renewed.
        for _ in 0..40 {
            let _out = fence.busy();
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(fence.vouch().is_ok(), "renewed while calls end in time");
        // One that never ends: the renewer stops once it has been out past the
        // limit, and the process vouches for nothing more.
        let hung = fence.busy();
        let start = Instant::now();
        while fence.vouch().is_ok() {
            assert!(start.elapsed() < Duration::from_secs(5), "renewed forever");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(start.elapsed() >= stall, "not before the limit");
        let why = fence.vouch().expect_err("no more calls");
        assert!(why.contains("no longer renewed"), "{why}");
        drop(hung);
        drop(lock);
        assert!(
            memory.read(KEY).is_some(),
            "a hung holder leaves its lock to end by itself"
        );
    }
}
