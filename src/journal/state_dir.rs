//! Where runs live: a local folder, or objects in S3 that any teammate or pipeline
//! reaches.
//!
//! In S3 mode the objects are the truth. A run folder is fetched into a private
//! temporary mirror (removed when the command ends, so nothing is written to a
//! local `.evac`) and read there with the same checks as a local one. Every write
//! goes to S3 first: the playbook and plan as objects created once, each journal
//! append as one object per wave named by its first entry's number
//! (`runs/RUN/journal/0000000007.jsonl`), created with If-None-Match, so a second
//! writer on the same run fails at once instead of interleaving; locks are leases
//! ([`super::lease`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::lock::{Lock, LockError, LockHolder};
use super::remote::{Created, ObjectStore, StoreError};
use super::store::{JournalError, RunDir};

/// How many objects are read at once when a run is fetched.
const FETCH_AT_ONCE: usize = 32;

/// The S3 side of a run: where its objects are, and the lease this process holds.
#[derive(Clone, Debug)]
pub struct RemoteRun {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// `runs/RUN/`.
    pub prefix: String,
    /// Set when this process's lease was lost: nothing more may be written.
    pub lost: Option<Arc<AtomicBool>>,
    /// What this process checks before every AWS write of the run.
    pub fence: Option<super::lease::Fence>,
}

/// A state dir.
#[derive(Debug)]
pub struct StateDir {
    /// Where run folders are read: the folder itself, or the mirror in S3 mode.
    path: PathBuf,
    remote: Option<Remote>,
}

/// A run's journal objects read so far, and their bytes.
type Fetched = (Vec<String>, Vec<u8>);

#[derive(Debug)]
struct Remote {
    store: Arc<dyn ObjectStore>,
    lease: Duration,
    /// The lost flag of the lease this process took, for the runs it writes.
    lost: std::sync::Mutex<Option<Arc<AtomicBool>>>,
    /// The fence of that lease.
    fence: std::sync::Mutex<Option<super::lease::Fence>>,
    /// Per run fetched: the journal objects read so far and their bytes, so that
    /// reading a run again only reads what was added since.
    fetched: std::sync::Mutex<std::collections::BTreeMap<String, Fetched>>,
    _mirror: tempfile::TempDir,
}

fn store_err(run: &str) -> impl FnOnce(StoreError) -> JournalError + '_ {
    move |source| JournalError::Remote {
        run: run.to_owned(),
        source,
    }
}

fn mirror_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl StateDir {
    /// A local folder.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            remote: None,
        }
    }

    /// Objects in `store`; locks are leases of `lease`.
    pub fn remote(store: Arc<dyn ObjectStore>, lease: Duration) -> Result<Self, JournalError> {
        let mirror = tempfile::Builder::new()
            .prefix("evac-state-")
            .tempdir()
            .map_err(mirror_err(Path::new("temporary folder")))?;
        Ok(Self {
            path: mirror.path().to_owned(),
            remote: Some(Remote {
                store,
                lease,
                lost: std::sync::Mutex::new(None),
                fence: std::sync::Mutex::new(None),
                fetched: Default::default(),
                _mirror: mirror,
            }),
        })
    }

    /// Where run folders are read from (the mirror in S3 mode).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How to name it to a person: the folder, or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.remote {
            Some(remote) => remote.store.location(),
            None => self.path.display().to_string(),
        }
    }

    /// Whether it is in S3.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    fn remote_run(&self, id: &str) -> Option<RemoteRun> {
        self.remote.as_ref().map(|remote| RemoteRun {
            store: remote.store.clone(),
            prefix: format!("runs/{id}/"),
            lost: remote
                .lost
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            fence: remote
                .fence
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        })
    }

    /// A small document of the state dir beside the runs (`known/eu-west-1.json`):
    /// its bytes, when it exists.
    pub fn read_doc(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if let Some(remote) = &self.remote {
            return remote
                .store
                .get(key)
                .map(|found| found.map(|(body, _)| body))
                .map_err(|e| e.to_string());
        }
        let path = self.path.join(key);
        match std::fs::read(&path) {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes the document `key` as `update` makes it from the one there now
    /// (`None`: there is none). A reader never sees half of it; in S3 it is replaced
    /// only if nobody wrote it since it was read, and made again from theirs if so.
    pub fn update_doc(
        &self,
        key: &str,
        update: impl Fn(Option<&[u8]>) -> Vec<u8>,
    ) -> Result<(), String> {
        if let Some(remote) = &self.remote {
            for _ in 0..5 {
                let written = match remote.store.get(key).map_err(|e| e.to_string())? {
                    None => matches!(
                        remote
                            .store
                            .create(key, &update(None))
                            .map_err(|e| e.to_string())?,
                        Created::Yes(_)
                    ),
                    Some((body, etag)) => remote
                        .store
                        .replace(key, &update(Some(&body)), &etag)
                        .map_err(|e| e.to_string())?
                        .is_some(),
                };
                if written {
                    return Ok(());
                }
            }
            return Err(format!(
                "{}/{key} was written by others five times while this process wrote it",
                remote.store.location()
            ));
        }
        let path = self.path.join(key);
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        let dir = path.parent().unwrap_or(&self.path);
        super::store::create_private_dir(dir).map_err(failed)?;
        let now = match std::fs::read(&path) {
            Ok(body) => Some(body),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(failed(e)),
        };
        super::store::replace_file(&path, &update(now.as_deref())).map_err(failed)
    }

    /// Creates the folder of a new run, in S3 first when the state is there.
    pub fn create_run(
        &self,
        id: &str,
        playbook_text: &str,
        plan_json: &str,
    ) -> Result<RunDir, JournalError> {
        let mut run = RunDir::create(&self.path, id, playbook_text, plan_json)?;
        if let Some(remote) = self.remote_run(id) {
            for (name, body) in [("playbook.yaml", playbook_text), ("plan.json", plan_json)] {
                let key = format!("{}{name}", remote.prefix);
                match remote
                    .store
                    .create(&key, body.as_bytes())
                    .map_err(store_err(id))?
                {
                    Created::Yes(_) => {}
                    Created::AlreadyThere => {
                        return Err(JournalError::Conflict {
                            run: id.to_owned(),
                            what: format!("{key} exists already"),
                        });
                    }
                }
            }
            run.remote = Some(remote);
        }
        Ok(run)
    }

    /// Opens a run: in S3 mode, fetched afresh, so what is read is what S3 holds.
    pub fn open_run(&self, id: &str) -> Result<RunDir, JournalError> {
        if self.remote.is_some() && !self.fetch_run(id)? {
            return Err(JournalError::UnknownRun {
                run: id.to_owned(),
                state_dir: self.location(),
            });
        }
        let mut run = RunDir::open(&self.path, id)?;
        run.remote = self.remote_run(id);
        Ok(run)
    }

    /// The run id `written` stands for: itself, or for `latest` the newest run of the
    /// state dir (of playbook `playbook`, when given). Only the runs' ids are listed:
    /// they begin with their start time, so the newest sorts last.
    pub fn resolve(&self, written: &str, playbook: Option<&str>) -> Result<String, JournalError> {
        if written != LATEST {
            return Ok(written.to_owned());
        }
        let ids: Vec<String> = match &self.remote {
            Some(remote) => remote.store.children("runs/").map_err(store_err("*"))?,
            None => super::store::list_runs(&self.path)?
                .into_iter()
                .map(|r| r.id)
                .collect(),
        };
        ids.into_iter()
            .filter(|id| playbook.is_none_or(|name| playbook_of(id) == Some(name)))
            .max()
            .ok_or_else(|| JournalError::NoRuns {
                state_dir: self.location(),
                playbook: playbook.map(str::to_owned),
            })
    }

    /// Every run, oldest first (fetched afresh in S3 mode), for reading.
    pub fn runs(&self) -> Result<Vec<RunDir>, JournalError> {
        if let Some(remote) = &self.remote {
            let ids = remote.store.children("runs/").map_err(store_err("*"))?;
            // A few at a time: each run is a handful of small reads.
            at_once(
                &ids,
                4,
                |id| self.fetch_run(id),
                || JournalError::Io {
                    path: remote.store.location(),
                    source: std::io::Error::other("a fetch panicked"),
                },
            )?;
        }
        super::store::list_runs(&self.path)
    }

    /// Fetches run `id` into the mirror; false when S3 has nothing of it.
    fn fetch_run(&self, id: &str) -> Result<bool, JournalError> {
        let Some(remote) = &self.remote else {
            return Ok(true);
        };
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Ok(false);
        }
        let store = &remote.store;
        let prefix = format!("runs/{id}/");
        let dir = self.path.join("runs").join(id);
        let parts = store
            .list(&format!("{prefix}journal/"))
            .map_err(store_err(id))?;
        // Read before: the playbook and plan are created once and never change, and
        // journal objects are only ever added.
        let before = remote
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .filter(|(keys, _)| parts.starts_with(keys))
            .cloned();
        let (known, mut journal) = match before {
            Some(before) => before,
            None => {
                let playbook = store
                    .get(&format!("{prefix}playbook.yaml"))
                    .map_err(store_err(id))?;
                let plan = store
                    .get(&format!("{prefix}plan.json"))
                    .map_err(store_err(id))?;
                if playbook.is_none() && plan.is_none() && parts.is_empty() {
                    return Ok(false);
                }
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(mirror_err(&dir))?;
                }
                std::fs::create_dir_all(&dir).map_err(mirror_err(&dir))?;
                for (name, object) in [("playbook.yaml", playbook), ("plan.json", plan)] {
                    if let Some((body, _)) = object {
                        let path = dir.join(name);
                        std::fs::write(&path, body).map_err(mirror_err(&path))?;
                    }
                }
                (Vec::new(), Vec::new())
            }
        };
        // The parts in key order are the journal's lines in order; a missing,
        // repeated or edited part shows as a gap or a broken chain when it is read.
        let bodies = at_once(
            &parts[known.len()..],
            FETCH_AT_ONCE,
            |key| store.get(key),
            || StoreError {
                what: format!("read run {id}"),
                message: "a read panicked".into(),
            },
        )
        .map_err(store_err(id))?;
        for (body, _) in bodies.into_iter().flatten() {
            journal.extend_from_slice(&body);
        }
        remote
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), (parts, journal.clone()));
        let path = dir.join("journal.jsonl");
        std::fs::write(&path, journal).map_err(mirror_err(&path))?;
        Ok(true)
    }

    /// Takes the playbook's lock for `run_id`: a lock file, or a lease in S3.
    pub fn lock(&self, playbook: &str, run_id: &str) -> Result<Lock, LockError> {
        match &self.remote {
            None => Lock::acquire(&self.path, playbook, run_id),
            Some(remote) => {
                let lock = super::lease::acquire(
                    remote.store.clone(),
                    &lock_key(playbook),
                    playbook,
                    run_id,
                    remote.lease,
                )?;
                *remote.lost.lock().unwrap_or_else(|p| p.into_inner()) = lock.lost();
                *remote.fence.lock().unwrap_or_else(|p| p.into_inner()) = lock.fence();
                Ok(lock)
            }
        }
    }

    /// Whether run `run_id`'s own process holds `playbook`'s lock and is alive: the
    /// run is going on now.
    pub fn is_running(&self, playbook: &str, run_id: &str) -> bool {
        self.holder(playbook)
            .is_some_and(|h| h.run_id == run_id && h.is_live())
    }

    /// Who wrote that they hold `playbook`'s lock, if anyone (information only).
    pub fn holder(&self, playbook: &str) -> Option<LockHolder> {
        match &self.remote {
            None => Lock::holder(&self.path, playbook),
            Some(remote) => {
                let (body, _) = remote.store.get(&lock_key(playbook)).ok()??;
                serde_json::from_slice(&body).ok()
            }
        }
    }
}

/// `call` on every item, `width` at a time on threads of their own, the answers in
/// the items' order; the first error (or `panicked()` for a call that panicked).
fn at_once<I: Sync, T: Send, E: Send>(
    items: &[I],
    width: usize,
    call: impl Fn(&I) -> Result<T, E> + Sync,
    panicked: impl Fn() -> E,
) -> Result<Vec<T>, E> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(width.max(1)) {
        let answers: Vec<std::thread::Result<Result<T, E>>> = std::thread::scope(|scope| {
            let running: Vec<_> = chunk
                .iter()
                .map(|item| scope.spawn(|| call(item)))
                .collect();
            running.into_iter().map(|r| r.join()).collect()
        });
        for answer in answers {
            out.push(answer.unwrap_or_else(|_| Err(panicked()))?);
        }
    }
    Ok(out)
}

/// The lock object of a playbook.
fn lock_key(playbook: &str) -> String {
    format!("locks/{playbook}.lock")
}

/// Where a state dir is, as written by `--state-dir` or `EVAC_STATE_DIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local folder.
    Local(std::path::PathBuf),
    /// An S3 bucket and a prefix (possibly empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix, without leading or trailing slashes.
        prefix: String,
    },
}

/// Reads a state dir as written: only `s3://BUCKET/PREFIX` means S3; anything else is
/// a folder. An empty value, a control character, and near-misses of an S3 address
/// (`s3:/bucket`, `S3://bucket`, `s3:bucket`) are errors that say what to write,
/// instead of a folder of that odd name in the current directory.
pub fn parse_location(text: &str) -> Result<Location, String> {
    if text.trim().is_empty() {
        return Err(
            "the state dir is empty (--state-dir or EVAC_STATE_DIR): name a folder or s3://BUCKET/PREFIX, or unset it to use .evac".to_owned(),
        );
    }
    if let Some((at, c)) = text.char_indices().find(|(_, c)| c.is_control()) {
        return Err(format!(
            "the state dir {:?} has a control character ({}) at byte {at}: write the folder or s3://BUCKET/PREFIX without it",
            text,
            c.escape_default()
        ));
    }
    if let Some(s3) = parse_s3_url(text) {
        let (bucket, prefix) = s3?;
        return Ok(Location::S3 { bucket, prefix });
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("s3:") {
        let rest = text[3..].trim_start_matches('/');
        return Err(format!(
            "the state dir `{text}` looks like an S3 address but is not one: write s3://{rest} (lowercase `s3`, two slashes) for S3, or ./{text} for a local folder of that name"
        ));
    }
    Ok(Location::Local(std::path::PathBuf::from(text)))
}

/// Parses `s3://BUCKET/PREFIX` (the prefix may be empty): bucket and prefix.
pub fn parse_s3_url(text: &str) -> Option<Result<(String, String), String>> {
    let rest = text.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !valid_bucket {
        return Some(Err(format!(
            "invalid state dir `{text}`: `{bucket}` is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens); write s3://BUCKET/PREFIX"
        )));
    }
    let prefix = prefix.trim_matches('/');
    Some(Ok((bucket.to_owned(), prefix.to_owned())))
}

/// What a run id may be written as to mean the newest run.
pub const LATEST: &str = "latest";

/// The playbook name in a run id (`STAMP-NAME-XXXX`).
pub fn playbook_of(id: &str) -> Option<&str> {
    let (_, rest) = id.split_once('-')?;
    let (name, _) = rest.rsplit_once('-')?;
    Some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_ids_playbook_is_between_its_start_time_and_its_suffix() {
        assert_eq!(
            super::playbook_of("20261205T010313.072Z-fleet-zone-90eb"),
            Some("fleet-zone")
        );
        assert_eq!(super::playbook_of("nonsense"), None);
    }

    use super::*;
    use crate::journal::remote::MemoryStore;
    use crate::journal::{Event, Journal};

    #[test]
    fn only_s3_slash_slash_means_s3_and_near_misses_are_errors_with_the_fix() {
        assert_eq!(
            parse_location("s3://team-drills/evac"),
            Ok(Location::S3 {
                bucket: "team-drills".into(),
                prefix: "evac".into()
            })
        );
        assert_eq!(
            parse_location("drills/state"),
            Ok(Location::Local("drills/state".into()))
        );
        for (text, fix) in [
            ("s3:/bucket/x", "write s3://bucket/x"),
            ("S3://bucket/x", "write s3://bucket/x"),
            ("s3:bucket", "write s3://bucket"),
        ] {
            let err = parse_location(text).expect_err(text);
            assert!(
                err.contains(fix) && err.contains(&format!("./{text}")),
                "{err}"
            );
        }
        for empty in ["", "  "] {
            let err = parse_location(empty).expect_err("empty");
            assert!(err.contains("the state dir is empty"), "{err}");
        }
        let err = parse_location("runs\x1b[2J").expect_err("control");
        assert!(
            err.contains("control character (\\u{1b}) at byte 4"),
            "{err}"
        );
    }

    fn two_machines() -> (Arc<MemoryStore>, StateDir, StateDir) {
        let memory = Arc::new(MemoryStore::default());
        let minute = Duration::from_secs(60);
        let a = StateDir::remote(memory.clone(), minute).expect("a");
        let b = StateDir::remote(memory.clone(), minute).expect("b");
        (memory, a, b)
    }

    fn started(step: &str) -> Event {
        Event::StepStarted { step: step.into() }
    }

    #[test]
    fn a_run_written_on_one_machine_is_read_whole_on_another() {
        let (memory, a, b) = two_machines();
        let run = a.create_run("r1", "version: 1", "{}").expect("run");
        let mut journal = Journal::open(&run).expect("journal");
        journal
            .append_all(vec![
                crate::testing::run_started(),
                started("a"),
                started("b"),
            ])
            .expect("wave 1");
        journal.append(started("c")).expect("wave 2");
        journal.finish().expect("all in S3");
        // Sent behind the run's back within a second, together: one object.
        assert!(memory.read("runs/r1/journal/0000000001.jsonl").is_some());
        assert!(memory.read("runs/r1/journal/0000000003.jsonl").is_none());
        let there = b.open_run("r1").expect("open on b");
        let steps: Vec<Event> = there
            .read()
            .expect("read")
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(
            steps,
            vec![
                crate::testing::run_started(),
                started("a"),
                started("b"),
                started("c")
            ]
        );
        assert_eq!(b.runs().expect("runs").len(), 1);
        assert!(matches!(
            b.open_run("nope"),
            Err(JournalError::UnknownRun { .. })
        ));
    }

    /// An intent: what must be in S3 before its AWS call.
    fn intent(n: u32) -> Event {
        let capacity = |desired| {
            crate::journal::Value::Capacity(crate::state::Capacity {
                min: 0,
                desired,
                max: 10,
            })
        };
        Event::Intent {
            action: format!("scale:asg:{n}"),
            step: "scale".into(),
            target: crate::journal::Target::Capacity {
                region: "us-west-2".into(),
                group: "api".into(),
            },
            before: capacity(1),
            after: capacity(n),
            record_sets: Vec::new(),
            increment: None,
        }
    }

    #[test]
    fn a_second_writer_on_the_same_run_fails_at_once() {
        let (memory, a, b) = two_machines();
        let run = a.create_run("r1", "version: 1", "{}").expect("run");
        let mut first = Journal::open(&run).expect("journal");
        first
            .append_all(vec![crate::testing::run_started(), intent(1)])
            .expect("first");
        let mut second = Journal::open(&b.open_run("r1").expect("open")).expect("journal");
        first.append(intent(2)).expect("first again");
        // An intent waits for S3, so the second writer learns it before any call.
        let err = second.append(intent(3)).expect_err("second writer");
        assert!(matches!(err, JournalError::Conflict { .. }), "{err}");
        first
            .finish()
            .expect("the first writer's entries are all in S3");
        let read = a.open_run("r1").expect("open").read().expect("read");
        assert_eq!(read.len(), 3, "the journal is the first writer's alone");
        // Entries that are not intents are sent behind the run's back, in order;
        // a conflict among them fails the next append or the end.
        let mut late = Journal::open(&b.open_run("r1").expect("open")).expect("journal");
        memory.put("runs/r1/journal/0000000004.jsonl", b"");
        let _ = late.append(started("x"));
        assert!(matches!(late.finish(), Err(JournalError::Conflict { .. })));
    }

    #[test]
    fn a_removed_part_is_tampering_and_a_failed_write_writes_nothing_locally() {
        let (memory, a, b) = two_machines();
        let run = a.create_run("r1", "version: 1", "{}").expect("run");
        let mut journal = Journal::open(&run).expect("journal");
        journal
            .append(crate::testing::run_started())
            .expect("started");
        for n in 1..=3 {
            journal.append(intent(n)).expect("in S3 before it returns");
        }
        memory.failures.lock().expect("lock").insert("create", 1);
        let err = journal.append(intent(4)).expect_err("S3 is down");
        assert!(matches!(err, JournalError::Remote { .. }), "{err}");
        assert_eq!(
            run.read().expect("local mirror").len(),
            4,
            "not written locally either"
        );
        // One object of the journal's, the second, gone: a gap.
        let parts = memory.list("runs/r1/journal/").expect("list");
        memory.remove(&parts[1]);
        let err = b.open_run("r1").expect("open").read().expect_err("a gap");
        assert!(matches!(err, JournalError::Tampered { .. }), "{err}");
    }

    #[test]
    fn s3_addresses_are_parsed_or_refused() {
        assert_eq!(parse_s3_url(".evac"), None);
        assert_eq!(
            parse_s3_url("s3://team-drills/evac/prod/"),
            Some(Ok(("team-drills".into(), "evac/prod".into())))
        );
        assert_eq!(
            parse_s3_url("s3://team-drills"),
            Some(Ok(("team-drills".into(), String::new())))
        );
        let err = parse_s3_url("s3://Team_Drills/x")
            .expect("s3")
            .expect_err("bad bucket");
        assert!(err.contains("not an S3 bucket name"), "{err}");
    }
}
