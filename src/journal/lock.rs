//! One run per playbook per state dir at a time.

use std::fs::{self, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds a lock, as the holder wrote it: information only. Whether the lock is
/// held is the operating system's answer, never this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The run.
    pub run_id: String,
    /// The host.
    pub host: String,
    /// The process.
    pub pid: u32,
    /// When it took the lock (RFC 3339).
    #[serde(default)]
    pub since: String,
    /// Who ran it.
    #[serde(default)]
    pub user: String,
    /// For a lease in S3: when it ends unless renewed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl LockHolder {
    /// This process, as the holder of `run_id`.
    pub fn me(run_id: &str) -> Self {
        LockHolder {
            run_id: run_id.to_owned(),
            host: host_name(),
            pid: std::process::id(),
            since: super::store::now(),
            user: user_name(),
            expires: None,
        }
    }

    /// Whether the holder is still there: its process, when it runs on this host;
    /// its lease, when it runs elsewhere (a lock file on a shared disk has none and
    /// counts as there).
    pub fn is_live(&self) -> bool {
        if self.host == host_name() {
            return alive(self.pid);
        }
        match &self.expires {
            None => true,
            Some(_) => self
                .takeover_at()
                .is_some_and(|at| at > jiff::Timestamp::now()),
        }
    }

    /// When another host may take the run over: once the lease has ended and a call
    /// the holder may have sent just before has had the call timeout to end (a
    /// holder makes no call without the lease's margin, and each call ends within
    /// the call timeout; see [`crate::limits`]).
    pub fn takeover_at(&self) -> Option<jiff::Timestamp> {
        let ends: jiff::Timestamp = self.expires.as_deref()?.parse().ok()?;
        let grace = jiff::SignedDuration::try_from(crate::limits::call_timeout()).ok()?;
        ends.checked_add(grace).ok()
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("playbook `{playbook}` is already running: {}; lock file {path}", held_by(.holder.as_deref()))]
    Held {
        /// The playbook.
        playbook: String,
        /// The lock file.
        path: String,
        /// The holder, when it has written who it is.
        holder: Option<Box<LockHolder>>,
    },
    /// The lock object in S3 could not be used.
    #[error("cannot use lock {location}: {source}; nothing was changed")]
    Remote {
        /// `s3://bucket/prefix/locks/PLAYBOOK.lock`.
        location: String,
        /// The store's error.
        source: super::remote::StoreError,
    },
    /// The lock file could not be used.
    #[error("cannot use lock {path}: {source}")]
    Io {
        /// The lock file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn held_by(holder: Option<&LockHolder>) -> String {
    match holder {
        None => "another evac process is starting it".to_owned(),
        Some(h) if h.host != host_name() => format!(
            "run {} (host {}, pid {}, since {}{}); it runs on another host sharing this state dir: stop it there, then `evac resume` or `evac rollback` it{}",
            h.run_id,
            h.host,
            h.pid,
            h.since,
            if h.user.is_empty() {
                String::new()
            } else {
                format!(", by {}", h.user)
            },
            match (&h.expires, h.takeover_at()) {
                (Some(at), Some(from)) => {
                    let wait = jiff::Timestamp::now().duration_until(from).as_secs().max(0);
                    format!(
                        " (or, if that host is gone, once its lease ends at {at} and {}s more for a call it may have in flight: from {from:.0}, in {wait}s)",
                        crate::limits::call_timeout().as_secs()
                    )
                }
                (Some(at), None) =>
                    format!(" (or, if that host is gone, once its lease ends at {at})"),
                _ => String::new(),
            }
        ),
        Some(h) if stopped(h.pid) => format!(
            "run {} (pid {}, since {}); its process is stopped (Ctrl-Z, SIGSTOP, a debugger) and holds the run while it exists: `kill -CONT {}` lets it go on, `kill {}` then `kill -CONT {}` interrupts it cleanly, then `evac resume` or `evac rollback` it",
            h.run_id, h.pid, h.since, h.pid, h.pid, h.pid
        ),
        Some(h) => format!(
            "run {} (pid {}, since {}); wait for it, or stop it and `evac resume` or `evac rollback` it",
            h.run_id, h.pid, h.since
        ),
    }
}

/// Whether a process on this host is stopped (state `T` or `t` in
/// `/proc/PID/stat`): it keeps its lock, and does nothing, until it is continued.
fn stopped(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold any
    // character: read after the last `)`.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "T" || state == "t")
}

/// A held lock. In a local state dir, an advisory lock the operating system keeps on
/// the lock file for as long as the file is open, so it dies with its holder and no
/// reader ever acts on a half-written file; in S3, a lease ([`super::lease`]).
/// Released (and its holder information cleared) when dropped.
#[derive(Debug)]
pub struct Lock {
    kind: Kind,
    /// The holder information a previous holder left behind: it ended without
    /// releasing (killed, or its machine died), and this lock took over.
    pub took_over: Option<LockHolder>,
}

#[derive(Debug)]
enum Kind {
    File(fs::File),
    Lease(super::lease::Lease),
}

/// This machine's host name.
pub fn host_name() -> String {
    whoami::fallible::hostname()
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Who runs evac: the operating system's name for the account (not a variable a
/// shell may have left unset or stale), with the person who ran `sudo` when there
/// is one: `alice`, or `alice (as root via sudo)`. `$USER` and then the uid only
/// when the account has no name.
pub fn user_name() -> String {
    let account = whoami::fallible::username()
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            ["USER", "LOGNAME"]
                .iter()
                .filter_map(|v| std::env::var(v).ok())
                .find(|u| !u.is_empty())
        })
        // SAFETY: getuid has no preconditions and cannot fail.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }));
    match std::env::var("SUDO_USER") {
        Ok(person) if !person.is_empty() && person != account => {
            format!("{person} (as {account} via sudo)")
        }
        _ => account,
    }
}

/// Whether a process exists on this host.
pub fn alive(pid: u32) -> bool {
    // Signal 0 checks existence without sending anything.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 has no effect other than the existence check.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn read_holder(file: &mut fs::File) -> Option<LockHolder> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64 * 1024).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Lock {
    /// The lock file of `playbook`.
    pub fn path(state_dir: &Path, playbook: &str) -> PathBuf {
        state_dir.join("locks").join(format!("{playbook}.lock"))
    }

    /// Who wrote that they hold `playbook`'s lock, if anyone (information only).
    pub fn holder(state_dir: &Path, playbook: &str) -> Option<LockHolder> {
        let mut file = fs::File::open(Self::path(state_dir, playbook)).ok()?;
        read_holder(&mut file)
    }

    /// Takes the lock of `playbook` for `run_id`, or says who holds it.
    pub fn acquire(state_dir: &Path, playbook: &str, run_id: &str) -> Result<Self, LockError> {
        let path = Self::path(state_dir, playbook);
        let err = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        super::store::create_private_dir(state_dir).map_err(err)?;
        if let Some(dir) = path.parent() {
            super::store::create_private_dir(dir).map_err(err)?;
        }
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(err)?
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    playbook: playbook.to_owned(),
                    path: path.display().to_string(),
                    holder: read_holder(&mut file).map(Box::new),
                });
            }
            Err(TryLockError::Error(e)) => return Err(err(e)),
        }
        // Held now. Anything written here is from a holder that never released.
        let took_over = read_holder(&mut file);
        let holder = LockHolder::me(run_id);
        let json = serde_json::to_vec(&holder).map_err(|e| err(std::io::Error::other(e)))?;
        file.set_len(0).map_err(err)?;
        file.seek(SeekFrom::Start(0)).map_err(err)?;
        file.write_all(&json).map_err(err)?;
        file.sync_all().map_err(err)?;
        Ok(Lock {
            kind: Kind::File(file),
            took_over,
        })
    }

    /// A lease taken in S3.
    pub(super) fn leased(lease: super::lease::Lease, took_over: Option<LockHolder>) -> Self {
        Lock {
            kind: Kind::Lease(lease),
            took_over,
        }
    }

    /// For a lease: what to check before every AWS write.
    pub fn fence(&self) -> Option<super::lease::Fence> {
        match &self.kind {
            Kind::File(_) => None,
            Kind::Lease(lease) => Some(lease.fence.clone()),
        }
    }

    /// For a lease: the flag set when it is lost.
    pub fn lost(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        match &self.kind {
            Kind::File(_) => None,
            Kind::Lease(lease) => Some(lease.lost.clone()),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        match &mut self.kind {
            // The file stays (deleting it would let a second taker lock a new file
            // while a first still holds the old one); only the holder information
            // goes. The lock itself is released when the file closes.
            Kind::File(file) => {
                let _ = file.set_len(0);
                let _ = file.sync_all();
                let _ = file.unlock();
            }
            Kind::Lease(lease) => lease.release(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_with_its_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Lock::acquire(dir.path(), "drill", "run-1").expect("first lock");
        assert_eq!(first.took_over, None);
        match Lock::acquire(dir.path(), "drill", "run-2") {
            Err(err @ LockError::Held { .. }) => {
                let text = err.to_string();
                assert!(text.contains("run run-1"), "{text}");
                assert!(text.contains("drill.lock"), "{text}");
            }
            other => panic!("expected a held lock, got {other:?}"),
        }
        drop(first);
        let second = Lock::acquire(dir.path(), "drill", "run-2").expect("released");
        assert_eq!(
            second.took_over, None,
            "a clean release leaves nothing behind"
        );
    }

    #[test]
    fn what_a_dead_holder_left_is_reported_as_taken_over_and_never_trusted() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A holder killed with -9 leaves its information; the OS lock died with it.
        let dead = LockHolder {
            run_id: "run-0".into(),
            host: host_name(),
            pid: std::process::id(),
            since: "2026-11-26T00:00:00.000Z".into(),
            user: "alice".into(),
            expires: None,
        };
        fs::create_dir_all(dir.path().join("locks")).expect("dir");
        fs::write(
            dir.path().join("locks/drill.lock"),
            serde_json::to_vec(&dead).expect("json"),
        )
        .expect("write");
        let lock = Lock::acquire(dir.path(), "drill", "run-3").expect("taken over");
        assert_eq!(lock.took_over, Some(dead), "even though that pid is alive");
        // Half-written information does not make a lock look free or held.
        drop(lock);
        fs::write(dir.path().join("locks/drill.lock"), b"{\"run_id\":").expect("write");
        let lock = Lock::acquire(dir.path(), "drill", "run-4").expect("free");
        assert_eq!(lock.took_over, None);
    }
}
