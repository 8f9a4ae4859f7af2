//! Run folders and the append-only journal file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::event::{Entry, Event};

/// A journal or run-folder failure.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line other than the last is not a journal entry.
    #[error("{path}:{line}: not a journal entry: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// The parse error.
        message: String,
    },
    /// No run has this id.
    #[error("no run `{0}` in this state dir; `evac status` lists the runs")]
    UnknownRun(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A new run id: sortable by time (to the millisecond, so that runs started in the
/// same second still sort in order), readable, unique:
/// `20261126T113500.123Z-evacuate-region-3f2a`.
pub fn new_run_id(playbook: &str) -> String {
    let stamp = humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let suffix = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{stamp}-{playbook}-{suffix:04x}")
}

/// The folder of one run.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The run id.
    pub id: String,
    /// `<state-dir>/runs/<id>`.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates the folder of a new run with the playbook text and the plan.
    pub fn create(
        state_dir: &Path,
        id: &str,
        playbook_text: &str,
        plan_json: &str,
    ) -> Result<Self, JournalError> {
        let path = state_dir.join("runs").join(id);
        fs::create_dir_all(&path).map_err(io(&path))?;
        let dir = RunDir {
            id: id.to_owned(),
            path,
        };
        write_synced(&dir.playbook_path(), playbook_text.as_bytes())?;
        write_synced(&dir.plan_path(), plan_json.as_bytes())?;
        write_synced(&dir.journal_path(), b"")?;
        Ok(dir)
    }

    /// Opens an existing run.
    pub fn open(state_dir: &Path, id: &str) -> Result<Self, JournalError> {
        let path = state_dir.join("runs").join(id);
        if !id.is_empty() && !id.contains('/') && path.join("journal.jsonl").is_file() {
            Ok(RunDir {
                id: id.to_owned(),
                path,
            })
        } else {
            Err(JournalError::UnknownRun(id.to_owned()))
        }
    }

    /// The playbook as run.
    pub fn playbook_path(&self) -> PathBuf {
        self.path.join("playbook.yaml")
    }

    /// The plan the run executes.
    pub fn plan_path(&self) -> PathBuf {
        self.path.join("plan.json")
    }

    /// The journal.
    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// Reads every entry of the journal. A torn last line (a crash mid-write) is
    /// ignored; a bad line anywhere else is an error.
    pub fn read(&self) -> Result<Vec<Entry>, JournalError> {
        let path = self.journal_path();
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        let lines: Vec<&str> = text.lines().collect();
        let mut entries = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) => entries.push(entry),
                Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
                Err(err) => {
                    return Err(JournalError::Corrupt {
                        path: path.display().to_string(),
                        line: i + 1,
                        message: err.to_string(),
                    });
                }
            }
        }
        Ok(entries)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// An open journal, appended to and fsync'ed event by event.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens the journal of `run` for appending, creating it if needed. A torn last
    /// line is cut off first so that the next entry starts on a line of its own.
    pub fn open(run: &RunDir) -> Result<Self, JournalError> {
        let path = run.journal_path();
        if let Ok(text) = fs::read_to_string(&path)
            && !text.is_empty()
            && !text.ends_with('\n')
        {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            file.set_len(keep as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        // Make the new file's directory entry durable too.
        if let Ok(dir) = File::open(&run.path) {
            let _ = dir.sync_all();
        }
        Ok(Self { file, path })
    }

    /// Appends one event and waits until it is on disk.
    pub fn append(&mut self, event: Event) -> Result<Entry, JournalError> {
        let mut entries = self.append_all(vec![event])?;
        entries.pop().ok_or_else(|| JournalError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other("no entry written"),
        })
    }

    /// Appends several events with one write and waits once until they are on disk:
    /// the intents of a wave cost one fsync, not one each.
    pub fn append_all(&mut self, events: Vec<Event>) -> Result<Vec<Entry>, JournalError> {
        let at = now();
        let mut bytes = Vec::new();
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let entry = Entry {
                at: at.clone(),
                event,
            };
            serde_json::to_writer(&mut bytes, &entry).map_err(|e| JournalError::Io {
                path: self.path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
            bytes.push(b'\n');
            entries.push(entry);
        }
        if entries.is_empty() {
            return Ok(entries);
        }
        self.file.write_all(&bytes).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        Ok(entries)
    }
}

/// The ids of every run in `state_dir`, oldest first.
pub fn list_runs(state_dir: &Path) -> Result<Vec<RunDir>, JournalError> {
    let runs = state_dir.join("runs");
    let mut out = Vec::new();
    let entries = match fs::read_dir(&runs) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(err) => return Err(io(&runs)(err)),
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if let Ok(run) = RunDir::open(state_dir, &id) {
            out.push(run);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;

    #[test]
    fn a_torn_last_line_is_ignored_and_cut_before_the_next_append() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = RunDir::create(dir.path(), "r1", "version: 1", "{}").expect("run dir");
        let mut journal = Journal::open(&run).expect("journal");
        journal
            .append(Event::StepStarted { step: "a".into() })
            .expect("append");
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(run.journal_path())
            .expect("open");
        file.write_all(b"{\"at\":\"2026-").expect("torn write");
        drop(file);
        assert_eq!(
            run.read().expect("read").len(),
            1,
            "the torn line is ignored"
        );
        let mut journal = Journal::open(&run).expect("reopen");
        journal
            .append(Event::StepFinished { step: "a".into() })
            .expect("append");
        let events: Vec<Event> = run
            .read()
            .expect("read")
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(
            events,
            vec![
                Event::StepStarted { step: "a".into() },
                Event::StepFinished { step: "a".into() }
            ]
        );
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = RunDir::create(dir.path(), "r1", "", "{}").expect("run dir");
        fs::write(
            run.journal_path(),
            "garbage\n{\"at\":\"x\",\"event\":\"interrupted\"}\n",
        )
        .expect("write");
        assert!(matches!(
            run.read(),
            Err(JournalError::Corrupt { line: 1, .. })
        ));
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_playbook() {
        let id = new_run_id("evacuate-region");
        assert!(id.contains("-evacuate-region-"), "{id}");
        assert!(id.starts_with("20"), "{id}");
    }
}
