//! The narrow interface the engine drives AWS through: absolute writes, and the
//! reads it needs to record `before` values and wait for convergence. The SDK
//! implementation lives in `crate::aws::cloud`; tests use an in-memory one.

use std::collections::BTreeMap;

use crate::journal::RecordSetDef;
use crate::state::{Capacity, GroupState};

/// A failed AWS call.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed to {what}: {message}")]
pub struct CloudError {
    /// What was being done.
    pub what: String,
    /// AWS's answer or the transport error.
    pub message: String,
    /// Whether trying again may succeed (throttling, 5xx, timeouts, lost connections).
    pub retryable: bool,
}

/// What the engine needs from AWS. Every write sets absolute values, so repeating
/// one is harmless.
// The engine awaits these in its own task and never spawns them, so the futures need
// not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Cloud {
    /// The named Auto Scaling groups of a region (missing ones are absent).
    async fn groups(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, GroupState>, CloudError>;
    /// Sets min, desired and max of a group.
    async fn set_capacity(
        &self,
        region: &str,
        group: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError>;
    /// The weighted record sets of a name and type in a hosted zone.
    async fn record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> Result<Vec<RecordSetDef>, CloudError>;
    /// The weighted record sets of several (name, type) pairs of one hosted zone.
    async fn zone_record_sets(
        &self,
        zone_id: &str,
        wanted: &[(String, String)],
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        let mut out = Vec::new();
        for (name, record_type) in wanted {
            out.extend(self.record_sets(zone_id, name, record_type).await?);
        }
        Ok(out)
    }
    /// Writes the record sets with their weights in one change batch; returns the
    /// change id.
    async fn upsert_weights(
        &self,
        zone_id: &str,
        sets: &[RecordSetDef],
    ) -> Result<String, CloudError>;
    /// Whether a Route 53 change is in sync.
    async fn change_in_sync(&self, change_id: &str) -> Result<bool, CloudError>;
    /// The state of a CloudWatch alarm (`OK`, `ALARM`, `INSUFFICIENT_DATA`), if it exists.
    async fn alarm_state(&self, region: &str, name: &str) -> Result<Option<String>, CloudError>;
    /// Whether a Route 53 health check is healthy (most checkers report success).
    async fn health_check_healthy(&self, id: &str) -> Result<bool, CloudError>;
    /// The instances of a group: id, zone, and whether it is InService.
    async fn instances(&self, region: &str, group: &str) -> Result<Vec<Instance>, CloudError>;
    /// Sets a group's subnets (VPCZoneIdentifier), in order.
    async fn set_subnets(
        &self,
        region: &str,
        group: &str,
        subnets: &[String],
    ) -> Result<(), CloudError>;
    /// Suspends scaling processes of a group.
    async fn suspend_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError>;
    /// Resumes scaling processes of a group.
    async fn resume_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError>;
    /// Terminates an instance of a group without lowering desired: the group replaces it.
    async fn replace_instance(&self, region: &str, instance: &str) -> Result<(), CloudError>;
}

/// An instance of an Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its id.
    pub id: String,
    /// Its availability zone.
    pub zone: String,
    /// Whether it is InService.
    pub in_service: bool,
}

/// A [`Cloud`] that retries retryable failures with exponential backoff, so a run
/// keeps going through throttling and transient 5xx answers.
pub struct Retrying<C> {
    inner: C,
    attempts: u32,
    first_delay: std::time::Duration,
    retries: std::sync::atomic::AtomicU32,
}

impl<C> Retrying<C> {
    /// Wraps `inner`: up to `attempts` tries per call, the first retry after
    /// `first_delay`, doubling up to 20 s.
    pub fn new(inner: C, attempts: u32, first_delay: std::time::Duration) -> Self {
        Self {
            inner,
            attempts: attempts.max(1),
            first_delay,
            retries: Default::default(),
        }
    }

    /// The wrapped cloud.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// How many retries were made so far.
    pub fn retries(&self) -> u32 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(err) if err.retryable && attempt < self.attempts => {
                    self.retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(20));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl<C: Cloud> Cloud for Retrying<C> {
    async fn groups(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, GroupState>, CloudError> {
        self.retry(|| self.inner.groups(region, names)).await
    }
    async fn set_capacity(
        &self,
        region: &str,
        group: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        self.retry(|| self.inner.set_capacity(region, group, capacity))
            .await
    }
    async fn record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        self.retry(|| self.inner.record_sets(zone_id, name, record_type))
            .await
    }
    async fn zone_record_sets(
        &self,
        zone_id: &str,
        wanted: &[(String, String)],
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        self.retry(|| self.inner.zone_record_sets(zone_id, wanted))
            .await
    }
    async fn upsert_weights(
        &self,
        zone_id: &str,
        sets: &[RecordSetDef],
    ) -> Result<String, CloudError> {
        self.retry(|| self.inner.upsert_weights(zone_id, sets))
            .await
    }
    async fn change_in_sync(&self, change_id: &str) -> Result<bool, CloudError> {
        self.retry(|| self.inner.change_in_sync(change_id)).await
    }
    async fn alarm_state(&self, region: &str, name: &str) -> Result<Option<String>, CloudError> {
        self.retry(|| self.inner.alarm_state(region, name)).await
    }
    async fn health_check_healthy(&self, id: &str) -> Result<bool, CloudError> {
        self.retry(|| self.inner.health_check_healthy(id)).await
    }
    async fn instances(&self, region: &str, group: &str) -> Result<Vec<Instance>, CloudError> {
        self.retry(|| self.inner.instances(region, group)).await
    }
    async fn set_subnets(
        &self,
        region: &str,
        group: &str,
        subnets: &[String],
    ) -> Result<(), CloudError> {
        self.retry(|| self.inner.set_subnets(region, group, subnets))
            .await
    }
    async fn suspend_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.retry(|| self.inner.suspend_processes(region, group, processes))
            .await
    }
    async fn resume_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.retry(|| self.inner.resume_processes(region, group, processes))
            .await
    }
    async fn replace_instance(&self, region: &str, instance: &str) -> Result<(), CloudError> {
        self.retry(|| self.inner.replace_instance(region, instance))
            .await
    }
}
