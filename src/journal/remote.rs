//! Objects a state dir can live in: the narrow interface over S3 that team state
//! needs. Every write is conditional: an object is created only if it does not
//! exist (If-None-Match), replaced or deleted only if it is still the version read
//! (If-Match). That is how one writer appends to a journal that nobody can
//! overwrite, and how a lock is taken, renewed and taken over without a lock table.
//!
//! The S3 implementation is [`crate::aws::s3::S3Store`]; tests use [`MemoryStore`].

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A failed call to the object store (after its retries).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed to {what}: {message}")]
pub struct StoreError {
    /// What was being done.
    pub what: String,
    /// The store's answer or the transport error.
    pub message: String,
}

/// The answer to a conditional create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// Created; its ETag.
    Yes(String),
    /// An object of that key exists already; nothing was written.
    AlreadyThere,
}

/// Objects under one prefix (keys here are relative to it).
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Where the objects are, for messages: `s3://bucket/prefix`.
    fn location(&self) -> String;
    /// Creates `key` unless it exists.
    fn create(&self, key: &str, body: &[u8]) -> Result<Created, StoreError>;
    /// Replaces `key` if its ETag is still `etag`; the new ETag, or `None` when it
    /// changed or is gone.
    fn replace(&self, key: &str, body: &[u8], etag: &str) -> Result<Option<String>, StoreError>;
    /// The content and ETag of `key`, if it exists.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError>;
    /// Every key under `prefix`, in order.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// The names one level below `prefix` (up to the next `/`), in order.
    fn children(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Deletes `key` if its ETag is still `etag`.
    fn delete(&self, key: &str, etag: &str) -> Result<(), StoreError>;
}

/// An object store in memory, with S3's conditional semantics, for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Vec<u8>, u64)>>,
    next: Mutex<u64>,
    /// Calls that fail, by operation (`create`, `replace`, `get`, ...): how many more.
    pub failures: Mutex<BTreeMap<&'static str, u32>>,
}

impl MemoryStore {
    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Vec<u8>, u64)>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn etag(&self) -> u64 {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        *next
    }

    fn enter(&self, operation: &'static str) -> Result<(), StoreError> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get_mut(operation) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Err(StoreError {
                    what: operation.to_owned(),
                    message: "ServiceUnavailable (503)".into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Someone writes `key` unconditionally (a tamperer, or a test's setup).
    pub fn put(&self, key: &str, body: &[u8]) {
        let etag = self.etag();
        self.objects().insert(key.to_owned(), (body.to_vec(), etag));
    }

    /// Someone removes `key`.
    pub fn remove(&self, key: &str) {
        self.objects().remove(key);
    }

    /// The content of `key`.
    pub fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.objects().get(key).map(|(b, _)| b.clone())
    }
}

impl ObjectStore for MemoryStore {
    fn location(&self) -> String {
        "memory://".into()
    }

    fn create(&self, key: &str, body: &[u8]) -> Result<Created, StoreError> {
        self.enter("create")?;
        let etag = self.etag();
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Ok(Created::AlreadyThere);
        }
        objects.insert(key.to_owned(), (body.to_vec(), etag));
        Ok(Created::Yes(etag.to_string()))
    }

    fn replace(&self, key: &str, body: &[u8], etag: &str) -> Result<Option<String>, StoreError> {
        self.enter("replace")?;
        let new = self.etag();
        let mut objects = self.objects();
        match objects.get(key) {
            Some((_, current)) if current.to_string() == etag => {
                objects.insert(key.to_owned(), (body.to_vec(), new));
                Ok(Some(new.to_string()))
            }
            _ => Ok(None),
        }
    }

    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        self.enter("get")?;
        Ok(self
            .objects()
            .get(key)
            .map(|(b, e)| (b.clone(), e.to_string())))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.enter("list")?;
        Ok(self
            .objects()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn children(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.enter("list")?;
        let mut out: Vec<String> = self
            .objects()
            .keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter_map(|rest| rest.split_once('/').map(|(dir, _)| dir.to_owned()))
            .collect();
        out.dedup();
        Ok(out)
    }

    fn delete(&self, key: &str, etag: &str) -> Result<(), StoreError> {
        self.enter("delete")?;
        let mut objects = self.objects();
        if objects.get(key).is_some_and(|(_, e)| e.to_string() == etag) {
            objects.remove(key);
        }
        Ok(())
    }
}
