//! One run per playbook per state dir at a time.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The run.
    pub run_id: String,
    /// The host.
    pub host: String,
    /// The process.
    pub pid: u32,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live run holds it.
    #[error(
        "playbook `{playbook}` is already running: run {} (host {}, pid {}); wait for it, or stop it and `evac resume` or `evac rollback` it",
        holder.run_id, holder.host, holder.pid
    )]
    Held {
        /// The playbook.
        playbook: String,
        /// The holder.
        holder: LockHolder,
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

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    holder: LockHolder,
    /// Set when a dead holder's lock was taken over.
    pub took_over: Option<LockHolder>,
}

/// This machine's host name.
pub fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
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

impl Lock {
    /// The current holder of `playbook`'s lock, if any.
    pub fn holder(state_dir: &Path, playbook: &str) -> Option<LockHolder> {
        let path = state_dir.join("locks").join(format!("{playbook}.lock"));
        fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }

    /// Takes the lock of `playbook` for `run_id`. A lock whose process is dead on this
    /// host is taken over (see `took_over`); a live one is refused.
    pub fn acquire(state_dir: &Path, playbook: &str, run_id: &str) -> Result<Self, LockError> {
        let dir = state_dir.join("locks");
        let path = dir.join(format!("{playbook}.lock"));
        let err = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        fs::create_dir_all(&dir).map_err(err)?;
        let holder = LockHolder {
            run_id: run_id.to_owned(),
            host: host_name(),
            pid: std::process::id(),
        };
        let mut took_over = None;
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let json =
                        serde_json::to_vec(&holder).map_err(|e| err(std::io::Error::other(e)))?;
                    file.write_all(&json).map_err(err)?;
                    file.sync_all().map_err(err)?;
                    return Ok(Lock {
                        path,
                        holder,
                        took_over,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let current: Option<LockHolder> = fs::read(&path)
                        .ok()
                        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
                    match current {
                        Some(current) if current.host != holder.host || alive(current.pid) => {
                            return Err(LockError::Held {
                                playbook: playbook.to_owned(),
                                holder: current,
                            });
                        }
                        dead => {
                            fs::remove_file(&path).map_err(err)?;
                            took_over = dead;
                        }
                    }
                }
                Err(e) => return Err(err(e)),
            }
        }
        Err(err(std::io::Error::other("the lock keeps reappearing")))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let ours = fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LockHolder>(&bytes).ok())
            .is_some_and(|h| h == self.holder);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_is_refused_and_a_dead_one_taken_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Lock::acquire(dir.path(), "drill", "run-1").expect("first lock");
        match Lock::acquire(dir.path(), "drill", "run-2") {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.run_id, "run-1"),
            other => panic!("expected a held lock, got {other:?}"),
        }
        drop(first);
        let dead = LockHolder {
            run_id: "run-0".into(),
            host: host_name(),
            pid: u32::MAX - 1,
        };
        fs::write(
            dir.path().join("locks/drill.lock"),
            serde_json::to_vec(&dead).expect("json"),
        )
        .expect("write");
        let lock = Lock::acquire(dir.path(), "drill", "run-3").expect("taken over");
        assert_eq!(lock.took_over, Some(dead));
    }
}
