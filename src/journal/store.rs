//! Run folders and the append-only journal file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::event::{Entry, Event, hex_digest};

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
    #[error(
        "no run `{run}` in state dir {state_dir}: `evac status` lists its runs; a run kept elsewhere is reached with --state-dir DIR|s3://BUCKET/PREFIX (or EVAC_STATE_DIR)"
    )]
    UnknownRun {
        /// The id asked for.
        run: String,
        /// Where it was looked for.
        state_dir: String,
    },
    /// `latest` was asked for, and there is no run to be it.
    #[error(
        "no run{} in state dir {state_dir}, so none is `latest`: a run kept elsewhere is reached with --state-dir DIR|s3://BUCKET/PREFIX (or EVAC_STATE_DIR)",
        playbook.as_deref().map(|p| format!(" of playbook `{p}`")).unwrap_or_default()
    )]
    NoRuns {
        /// Where runs were looked for.
        state_dir: String,
        /// The playbook asked for (`--playbook`).
        playbook: Option<String>,
    },
    /// The run's folder was being made when the run stopped (a full disk, a crash):
    /// it never wrote its first entry, so it changed nothing.
    #[error(
        "run {run} never started: its folder {path} was left half-made (a full disk or a crash while it was being written), before the run's first entry, and a run changes nothing before that entry; nothing to resume or roll back: clear it with `rm -r {path}`"
    )]
    HalfMade {
        /// The run.
        run: String,
        /// The half-made folder.
        path: String,
    },
    /// The run folder has no journal, or an empty one: nothing says what the run did.
    #[error(
        "{path}: {what}: nothing says what run {run} changed, so it cannot be resumed or rolled back from here; look at the run folder by hand"
    )]
    Missing {
        /// The journal file.
        path: String,
        /// The run.
        run: String,
        /// `missing` or `empty`.
        what: &'static str,
    },
    /// The state store (S3) could not be read or written.
    #[error(
        "run {run}: {source}; the state store holds every change made so far, and nothing more is changed until it answers again"
    )]
    Remote {
        /// The run (`*` for all).
        run: String,
        /// The store's error.
        source: super::remote::StoreError,
    },
    /// Another process wrote to the run at the same place: this one stops.
    #[error(
        "run {run}: {what}: another process is writing to this run, so this one stops and changes nothing more; `evac status {run}` shows it"
    )]
    Conflict {
        /// The run.
        run: String,
        /// What was found.
        what: String,
    },
    /// This process cannot vouch for its lease on the playbook's lock: it makes no
    /// more AWS calls.
    #[error(
        "run {run}: this process cannot vouch for its lock ({why}), so it makes no more AWS calls; `evac status {run}` shows who holds the run, `evac resume {run}` goes on from what is live"
    )]
    Unvouched {
        /// The run.
        run: String,
        /// Why.
        why: String,
    },
    /// This process's lease on the playbook's lock was lost.
    #[error(
        "run {run}: this process lost its lock (another took it over, or it could not be renewed in time), so it changes nothing more; `evac status {run}` shows who holds it"
    )]
    LockLost {
        /// The run.
        run: String,
    },
    /// The journal was changed after it was written: an entry edited, repeated,
    /// moved or removed. Nothing is acted upon.
    #[error(
        "{path}:{line}: {message}; the journal was changed after it was written, so nothing is acted upon: a human must look"
    )]
    Tampered {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An entry the run could not have written where it stands (an answer to a
    /// change never announced, a value of another kind than its target). Nothing is
    /// acted upon.
    #[error(
        "{path}:{line}: {message}; a run does not write its journal in this order, so nothing is acted upon: a human must look"
    )]
    OutOfOrder {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Opens a file of a run folder for reading without following a symlink: a run
/// folder holds user, host, params and every record set, and a link planted in it
/// must not redirect evac to another file.
pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Reads a file of a run folder (see [`open_nofollow`]).
pub fn read_nofollow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_nofollow(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Creates `dir` and its parents readable by their owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| match not_a_folder(dir) {
            Some(what) => std::io::Error::new(err.kind(), what),
            None => err,
        })
}

/// What stands at `dir`, or on the way to it, instead of a folder: `PATH is a
/// file, not a folder`.
fn not_a_folder(dir: &Path) -> Option<String> {
    dir.ancestors().find_map(|p| {
        let meta = fs::metadata(p).ok()?;
        (!meta.is_dir()).then(|| {
            format!(
                "{} is a file, not a folder: move it away, or give another --state-dir",
                p.display()
            )
        })
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A journal entry's time (`at`), read back.
pub fn parse_time(at: &str) -> Option<SystemTime> {
    at.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
}

/// Seconds from `from` to `to`, two journal times; 0 when either cannot be read or
/// they are out of order.
pub fn secs_between(from: &str, to: &str) -> f64 {
    match (parse_time(from), parse_time(to)) {
        (Some(a), Some(b)) => b.duration_since(a).map_or(0.0, |d| d.as_secs_f64()),
        _ => 0.0,
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

/// Replaces the file at `path` with `bytes` as a whole: written to a file beside it,
/// synced, then renamed over it, so a reader never sees half of it and a symlink
/// there is replaced, never followed.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A new run id: sortable by time (to the millisecond, so that runs started in the
/// same second still sort in order), readable, unique:
/// `20261126T113500.123Z-evacuate-region-3f2a`.
pub fn new_run_id(playbook: &str) -> String {
    let stamp = format!("{:.3}", jiff::Timestamp::now()).replace(['-', ':'], "");
    // Random, so that two runs started in the same millisecond on two machines do
    // not meet on one id; the clock's nanoseconds only if the system has no random.
    let random = getrandom::u32().unwrap_or_else(|_| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    });
    let suffix = random & 0xffff;
    format!("{stamp}-{playbook}-{suffix:04x}")
}

/// The folder of one run.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The run id.
    pub id: String,
    /// `<state-dir>/runs/<id>` (in S3 mode, in the local mirror).
    pub path: PathBuf,
    /// In S3 mode: where the run's objects are; appends go there first.
    pub remote: Option<super::state_dir::RemoteRun>,
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
        create_private_dir(state_dir).map_err(io(state_dir))?;
        // Made whole under another name, then renamed: a folder left half-made (a
        // full disk, a crash) is never taken for a run, and is named as such.
        let making = Self::half_made_path(state_dir, id);
        create_private_dir(&making).map_err(io(&making))?;
        let dir = RunDir {
            id: id.to_owned(),
            path: making.clone(),
            remote: None,
        };
        write_synced(&dir.playbook_path(), playbook_text.as_bytes())?;
        write_synced(&dir.plan_path(), plan_json.as_bytes())?;
        write_synced(&dir.journal_path(), b"")?;
        fs::rename(&making, &path).map_err(io(&path))?;
        if let Some(runs) = path.parent() {
            fs::File::open(runs)
                .and_then(|d| d.sync_all())
                .map_err(io(runs))?;
        }
        Ok(RunDir { path, ..dir })
    }

    /// Where run `id`'s folder is made before it is renamed into place.
    fn half_made_path(state_dir: &Path, id: &str) -> PathBuf {
        state_dir.join("runs").join(format!(".{id}.making"))
    }

    /// Opens an existing run.
    pub fn open(state_dir: &Path, id: &str) -> Result<Self, JournalError> {
        let path = state_dir.join("runs").join(id);
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if id.is_empty() || id.contains('/') || id.starts_with('.') || !is_dir {
            let making = Self::half_made_path(state_dir, id);
            let safe = !(id.is_empty() || id.contains('/') || id.starts_with('.'));
            if safe && fs::symlink_metadata(&making).is_ok_and(|m| m.is_dir()) {
                return Err(JournalError::HalfMade {
                    run: id.to_owned(),
                    path: making.display().to_string(),
                });
            }
            return Err(JournalError::UnknownRun {
                run: id.to_owned(),
                state_dir: state_dir.display().to_string(),
            });
        }
        let dir = RunDir {
            id: id.to_owned(),
            path,
            remote: None,
        };
        if !fs::symlink_metadata(dir.journal_path()).is_ok_and(|m| m.is_file()) {
            return Err(JournalError::Missing {
                path: dir.journal_path().display().to_string(),
                run: dir.id.clone(),
                what: "missing, or not a regular file",
            });
        }
        Ok(dir)
    }

    /// Where the journal's chain starts: the digest of the run's plan.json, so that
    /// the plan cannot be changed under the journal either.
    fn origin(&self) -> Result<String, JournalError> {
        let path = self.plan_path();
        let bytes = read_nofollow(&path).map_err(io(&path))?;
        Ok(hex_digest(&bytes))
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

    /// Reads every entry of the journal and checks its chain: numbers from 1 with no
    /// gap, each entry's digest matching its content, each linked to the one before
    /// it (the first to plan.json). A torn last line (a crash mid-write) is ignored;
    /// anything else wrong is an error naming the line. An empty journal is one too.
    pub fn read(&self) -> Result<Vec<Entry>, JournalError> {
        let entries = self.read_chain()?;
        if entries.is_empty() {
            return Err(JournalError::Missing {
                path: self.journal_path().display().to_string(),
                run: self.id.clone(),
                what: "empty",
            });
        }
        super::order::check(&entries).map_err(|(line, message)| JournalError::OutOfOrder {
            path: self.journal_path().display().to_string(),
            line,
            message,
        })?;
        Ok(entries)
    }

    /// [`Self::read`], an empty journal included.
    fn read_chain(&self) -> Result<Vec<Entry>, JournalError> {
        let path = self.journal_path();
        let bytes = read_nofollow(&path).map_err(io(&path))?;
        let text = String::from_utf8(bytes).map_err(|e| JournalError::Corrupt {
            path: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        let lines: Vec<&str> = text.lines().collect();
        let mut entries: Vec<Entry> = Vec::with_capacity(lines.len());
        let mut prev = self.origin()?;
        let tampered = |line: usize, message: String| JournalError::Tampered {
            path: path.display().to_string(),
            line,
            message,
        };
        for (i, line) in lines.iter().enumerate() {
            let number = i + 1;
            if line.trim().is_empty() {
                return Err(tampered(number, "an empty line".into()));
            }
            let entry = match serde_json::from_str::<Entry>(line) {
                Ok(entry) => entry,
                Err(_) if number == lines.len() && !text.ends_with('\n') => break,
                Err(err) => {
                    return Err(JournalError::Corrupt {
                        path: path.display().to_string(),
                        line: number,
                        message: err.to_string(),
                    });
                }
            };
            let expected = entries.len() as u64 + 1;
            if entry.seq < expected {
                return Err(tampered(
                    number,
                    format!(
                        "entry {} again, or out of order (entry {expected} belongs here)",
                        entry.seq
                    ),
                ));
            }
            if entry.seq > expected {
                return Err(tampered(
                    number,
                    format!(
                        "entry {} follows entry {}: {} missing",
                        entry.seq,
                        expected - 1,
                        if entry.seq - expected == 1 {
                            format!("entry {expected} is")
                        } else {
                            format!("entries {expected} to {} are", entry.seq - 1)
                        }
                    ),
                ));
            }
            if entry.digest != entry.computed_digest() {
                return Err(tampered(
                    number,
                    format!(
                        "entry {} was edited (its digest does not match its content)",
                        entry.seq
                    ),
                ));
            }
            if entry.prev != prev {
                return Err(tampered(
                    number,
                    if number == 1 {
                        "the first entry does not match the run's plan.json (the plan was edited or replaced)".to_owned()
                    } else {
                        format!("entry {} does not follow the entry before it", entry.seq)
                    },
                ));
            }
            prev = entry.digest.clone();
            entries.push(entry);
        }
        Ok(entries)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    use std::os::unix::fs::OpenOptionsExt;
    // A new file of the owner's only, never through a link.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// An open journal, appended to and fsync'ed, each entry chained to the last.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    next: u64,
    prev: String,
    /// In S3 mode: what sends the entries there.
    upload: Option<super::upload::Uploader>,
    /// Told, when the journal is dropped unfinished, why its last entries did not
    /// reach S3: the journal says nothing itself, its owner does.
    unsent: Option<fn(&JournalError)>,
}

impl Journal {
    /// Ok when this process may make an AWS call for the run: with state in S3, its
    /// lease holds for a margin more (see [`super::lease::Fence`]), and the guard
    /// returned marks the call as out until it is dropped, so the lease is renewed
    /// only while nothing has been out longer than a call can take; a local state
    /// dir's lock holds as long as the process lives.
    pub fn vouch(&self) -> Result<Option<super::lease::Busy>, JournalError> {
        match &self.upload {
            Some(upload) => upload.vouch(),
            None => Ok(None),
        }
    }

    /// Opens the journal of `run` for appending, creating it if needed. A torn last
    /// line is cut off first so that the next entry starts on a line of its own.
    pub fn open(run: &RunDir) -> Result<Self, JournalError> {
        let path = run.journal_path();
        // Appending to a journal that does not check out would hide what was wrong.
        let entries = run.read_chain()?;
        let (next, prev) = match entries.last() {
            Some(last) => (last.seq + 1, last.digest.clone()),
            None => (1, run.origin()?),
        };
        if let Ok(bytes) = read_nofollow(&path)
            && !bytes.is_empty()
            && !bytes.ends_with(b"\n")
        {
            use std::os::unix::fs::OpenOptionsExt;
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let file = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(io(&path))?;
            file.set_len(keep as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(io(&path))?
        };
        // Make the new file's directory entry durable too.
        if let Ok(dir) = File::open(&run.path) {
            let _ = dir.sync_all();
        }
        Ok(Self {
            file,
            path,
            next,
            prev,
            upload: run
                .remote
                .as_ref()
                .map(|remote| super::upload::Uploader::start(&run.id, remote, next - 1)),
            unsent: None,
        })
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
        let (mut next, mut prev) = (self.next, self.prev.clone());
        for event in events {
            let entry = Entry::new(next, at.clone(), prev, event);
            serde_json::to_writer(&mut bytes, &entry).map_err(|e| JournalError::Io {
                path: self.path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
            bytes.push(b'\n');
            next += 1;
            prev = entry.digest.clone();
            entries.push(entry);
        }
        if entries.is_empty() {
            return Ok(entries);
        }
        if let Some(upload) = &self.upload {
            // An intent is in S3 before its AWS call; the rest follows in order.
            let ahead = entries
                .iter()
                .any(|e| matches!(e.event, Event::Intent { .. } | Event::RollbackIntent { .. }));
            upload.send(self.next, next - 1, &bytes, ahead)?;
        }
        self.file.write_all(&bytes).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        (self.next, self.prev) = (next, prev);
        Ok(entries)
    }
}

impl Journal {
    /// Waits until every entry is where the state is kept (S3), or says why not.
    pub fn finish(&mut self) -> Result<(), JournalError> {
        match &mut self.upload {
            Some(upload) => upload.finish(),
            None => Ok(()),
        }
    }
}

impl Journal {
    /// What to do when the journal is dropped before [`Journal::finish`] and its last
    /// entries could not be sent.
    pub fn on_unsent(&mut self, tell: fn(&JournalError)) {
        self.unsent = Some(tell);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(err) = self.finish()
            && let Some(tell) = &self.unsent
        {
            tell(&err);
        }
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
        // A run folder whose journal is missing is listed too: reading it says so.
        if entry.path().is_dir() && !id.starts_with('.') {
            out.push(RunDir {
                id,
                path: entry.path(),
                remote: None,
            });
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
            .append(crate::testing::run_started())
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
            .append(Event::StepStarted { step: "a".into() })
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
                crate::testing::run_started(),
                Event::StepStarted { step: "a".into() }
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

    /// A run with a journal of four entries; returns its lines.
    fn four(dir: &Path) -> (RunDir, Vec<String>) {
        let run = RunDir::create(dir, "r1", "version: 1", "{\"plan\":1}").expect("run dir");
        let mut journal = Journal::open(&run).expect("journal");
        journal
            .append_all(vec![
                crate::testing::run_started(),
                Event::StepStarted { step: "a".into() },
            ])
            .expect("append");
        journal
            .append_all(vec![
                Event::StepFinished { step: "a".into() },
                Event::StepStarted { step: "b".into() },
            ])
            .expect("append");
        let text = fs::read_to_string(run.journal_path()).expect("read");
        (run, text.lines().map(str::to_owned).collect())
    }

    fn tamper(run: &RunDir, lines: &[String]) -> String {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(run.journal_path(), text).expect("write");
        match run.read() {
            Err(err) => err.to_string(),
            Ok(entries) => panic!("a tampered journal was read: {} entries", entries.len()),
        }
    }

    #[test]
    fn an_intact_journal_reads_back_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (run, _) = four(dir.path());
        let entries = run.read().expect("read");
        assert_eq!(
            entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn a_duplicated_entry_is_named_by_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (run, mut lines) = four(dir.path());
        lines.insert(2, lines[1].clone());
        let err = tamper(&run, &lines);
        assert!(
            err.contains("journal.jsonl:3: entry 2 again, or out of order (entry 3 belongs here)"),
            "{err}"
        );
    }

    #[test]
    fn an_entry_moved_to_the_end_is_named_by_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (run, mut lines) = four(dir.path());
        let moved = lines.remove(1);
        lines.push(moved);
        let err = tamper(&run, &lines);
        assert!(
            err.contains("journal.jsonl:2: entry 3 follows entry 1: entry 2 is missing"),
            "{err}"
        );
    }

    #[test]
    fn an_edited_entry_is_named_by_its_line_even_the_last() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (run, lines) = four(dir.path());
        for at in [1, 3] {
            let mut edited = lines.clone();
            edited[at] = edited[at].replace("\"step\":\"", "\"step\":\"x");
            let err = tamper(&run, &edited);
            assert!(
                err.contains(&format!(
                    "journal.jsonl:{}: entry {} was edited",
                    at + 1,
                    at + 1
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_gap_is_named_by_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (run, mut lines) = four(dir.path());
        lines.remove(2);
        let err = tamper(&run, &lines);
        assert!(
            err.contains("journal.jsonl:3: entry 4 follows entry 2: entry 3 is missing"),
            "{err}"
        );
    }

    #[test]
    fn an_edited_plan_breaks_the_first_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (run, _) = four(dir.path());
        fs::write(run.plan_path(), "{\"plan\":2}").expect("write");
        let err = run.read().expect_err("plan edited").to_string();
        assert!(
            err.contains("journal.jsonl:1: the first entry does not match the run's plan.json"),
            "{err}"
        );
        assert!(
            Journal::open(&run).is_err(),
            "nothing is appended to it either"
        );
    }

    #[test]
    fn an_empty_or_missing_journal_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (run, _) = four(dir.path());
        fs::write(run.journal_path(), "").expect("write");
        let err = run.read().expect_err("empty").to_string();
        assert!(
            err.contains("journal.jsonl: empty: nothing says what run r1 changed"),
            "{err}"
        );
        fs::remove_file(run.journal_path()).expect("remove");
        let err = RunDir::open(dir.path(), "r1")
            .expect_err("missing")
            .to_string();
        assert!(err.contains("journal.jsonl: missing"), "{err}");
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_playbook() {
        let first = new_run_id("evacuate-region");
        // The stamp to the millisecond, the playbook, four hex digits.
        let (stamp, rest) = first.split_once('-').expect("a stamp");
        let at: jiff::Timestamp = format!(
            "{}-{}-{}T{}:{}:{}",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..]
        )
        .parse()
        .unwrap_or_else(|e| panic!("{first}: {e}"));
        assert!(at <= jiff::Timestamp::now(), "{first}");
        let suffix = rest.strip_prefix("evacuate-region-").expect("the playbook");
        assert!(
            suffix.len() == 4 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
            "{first}"
        );
        // A run started a millisecond later sorts after, whatever the suffixes.
        let mut later = new_run_id("evacuate-region");
        while later.split_once('-').map(|(s, _)| s) == Some(stamp) {
            later = new_run_id("evacuate-region");
        }
        assert!(first < later, "{first} then {later}");
        // Two runs of one millisecond do not meet on an id (random suffixes: all
        // 64 equal would be one chance in 2^(16*63)).
        let same: std::collections::BTreeSet<String> = (0..64).map(|_| new_run_id("x")).collect();
        assert!(same.len() > 1, "{same:?}");
    }
}
