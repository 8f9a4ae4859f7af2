//! The narrow interface the engine drives AWS through: absolute writes, and the
//! reads it needs to record `before` values and wait for convergence. The SDK
//! implementation lives in `crate::aws::cloud`; tests use an in-memory one.

use std::collections::BTreeMap;

use crate::journal::RecordSetDef;
use crate::state::{Capacity, GroupState};

/// A failed AWS call (after the retries of [`crate::aws::RETRY_ATTEMPTS`]).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed to {what}: {message}")]
pub struct CloudError {
    /// What was being done.
    pub what: String,
    /// AWS's answer or the transport error, for people.
    pub message: String,
    /// AWS's error code (`Throttling`, `AccessDenied`, ...), when AWS answered.
    pub code: Option<String>,
    /// What kind of failure it is, for whoever decides what to do about it.
    pub kind: ErrorKind,
}

/// What kind of failure an AWS call ended in: decided from AWS's error code or the
/// transport's failure, never from a message's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// AWS kept throttling past the retries.
    Throttled,
    /// What the call names does not exist.
    NotFound,
    /// The credentials may not do it.
    Denied,
    /// AWS refused the request as it is (a validation error, a conflict).
    Invalid,
    /// No answer in time.
    TimedOut,
    /// AWS could not be reached, or answered only that it is failing (5xx).
    Unreachable,
    /// Anything else (evac's own refusal before any call, among others).
    Other,
}

impl ErrorKind {
    /// Its name, as the journal and JSON output write it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Denied => "denied",
            ErrorKind::Invalid => "invalid",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Other => "other",
        }
    }

    /// The kind of an error AWS answered with, by its code.
    pub fn of_code(code: &str) -> Self {
        match code {
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "PriorRequestNotComplete"
            | "SlowDown" => ErrorKind::Throttled,
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "AuthFailure" => ErrorKind::Denied,
            "ResourceNotFoundException"
            | "NoSuchHostedZone"
            | "NoSuchHealthCheck"
            | "NoSuchKey"
            | "NoSuchBucket"
            | "LoadBalancerNotFound"
            | "TargetGroupNotFound" => ErrorKind::NotFound,
            code if code.ends_with(".NotFound") || code.ends_with("NotFoundException") => {
                ErrorKind::NotFound
            }
            "ValidationError"
            | "ValidationException"
            | "InvalidChangeBatch"
            | "InvalidInput"
            | "InvalidParameterValue"
            | "InvalidParameterCombination"
            | "ConflictException"
            | "ResourceContention"
            | "ScalingActivityInProgress" => ErrorKind::Invalid,
            "InternalFailure" | "InternalError" | "ServiceUnavailable" | "InternalServerError" => {
                ErrorKind::Unreachable
            }
            _ => ErrorKind::Other,
        }
    }
}

impl CloudError {
    /// A failure that is not an answer of AWS's (evac refused before calling).
    pub fn new(what: impl Into<String>, message: impl Into<String>) -> Self {
        CloudError {
            what: what.into(),
            message: message.into(),
            code: None,
            kind: ErrorKind::Other,
        }
    }

    /// A failure AWS answered with `code`; `message` is what people are shown.
    pub fn answered(what: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        CloudError {
            what: what.into(),
            message: message.into(),
            code: Some(code.to_owned()),
            kind: ErrorKind::of_code(code),
        }
    }
}

impl From<CloudError> for crate::plan::observe::ObserveError {
    fn from(err: CloudError) -> Self {
        crate::plan::observe::ObserveError::new(err.what, err.message)
    }
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
    /// Changes the weights of record sets in one change batch, each as a DELETE of
    /// the set as it must be now and a CREATE of it with its new weight: Route 53
    /// refuses the whole batch (`InvalidChangeBatch`) when any set is no longer as
    /// expected, so a stale or raced writer changes nothing. Returns the change id.
    async fn change_weights(
        &self,
        zone_id: &str,
        changes: &[WeightChange],
    ) -> Result<String, CloudError>;
    /// Whether a Route 53 change is in sync.
    async fn change_in_sync(&self, change_id: &str) -> Result<bool, CloudError>;
    /// The state of a CloudWatch alarm (`OK`, `ALARM`, `INSUFFICIENT_DATA`), if it exists.
    async fn alarm_state(&self, region: &str, name: &str) -> Result<Option<String>, CloudError>;
    /// Whether a Route 53 health check is healthy (most checkers report success).
    async fn health_check_healthy(&self, id: &str) -> Result<bool, CloudError>;
    /// The latest value of a metric statistic (of the last three periods), if it has
    /// one.
    async fn metric(&self, query: &crate::plan::MetricQuery) -> Result<Option<f64>, CloudError>;
    /// The instances and desired capacity of the named groups of a region (missing
    /// ones are absent).
    async fn instances(
        &self,
        region: &str,
        groups: &[String],
    ) -> Result<BTreeMap<String, Members>, CloudError>;
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
    /// Sets or removes the scale-in protection of instances of a group.
    async fn set_protection(
        &self,
        region: &str,
        group: &str,
        instances: &[String],
        protected: bool,
    ) -> Result<(), CloudError>;
    /// Terminates an instance of a group without lowering desired: the group replaces it.
    async fn replace_instance(&self, region: &str, instance: &str) -> Result<(), CloudError>;
    /// Terminates an instance of a group and lowers its desired capacity by it: the
    /// group does not replace it.
    async fn remove_instance(&self, region: &str, instance: &str) -> Result<(), CloudError>;
    /// The group's recent scaling activities (DescribeScalingActivities), newest
    /// first: why its instances did or did not come.
    async fn activities(&self, region: &str, group: &str) -> Result<Vec<Activity>, CloudError>;
    /// How the instances of groups of a region, as just read, stand in the groups'
    /// load balancers (target groups, classic load balancers); groups with none are
    /// absent.
    async fn balanced(
        &self,
        region: &str,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<crate::state::BalancerView>>, CloudError>;
    /// The customer zonal shifts active on a resource (a load balancer's or an Auto
    /// Scaling group's ARN), with whether each has taken effect.
    async fn zonal_shifts(
        &self,
        region: &str,
        resource: &str,
    ) -> Result<Vec<ActiveShift>, CloudError>;
    /// Starts a zonal shift of `resource` away from the zone id `away_from`, expiring
    /// after `minutes`; returns its id.
    async fn start_shift(
        &self,
        region: &str,
        resource: &str,
        away_from: &str,
        comment: &str,
        minutes: u32,
    ) -> Result<String, CloudError>;
    /// Sets a zonal shift of `resource` to expire `minutes` from now.
    async fn extend_shift(
        &self,
        region: &str,
        resource: &str,
        id: &str,
        minutes: u32,
    ) -> Result<(), CloudError>;
    /// Cancels a zonal shift of `resource`: traffic returns to the zone.
    async fn cancel_shift(&self, region: &str, resource: &str, id: &str) -> Result<(), CloudError>;
}

/// A customer zonal shift active on a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveShift {
    /// Its id.
    pub id: String,
    /// The zone id traffic is moved away from.
    pub away_from: String,
    /// Its comment.
    pub comment: String,
    /// When it expires, in seconds since the epoch.
    pub expires: i64,
    /// Whether it has taken effect (ARC's `appliedStatus` `APPLIED`).
    pub applied: bool,
}

pub use crate::route53::WeightChange;

/// One scaling activity of an Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// `Successful`, `Failed`, `Cancelled`, `InProgress`, ...
    pub status: String,
    /// AWS's reason, for a failed one (`InsufficientInstanceCapacity ...`).
    pub message: String,
    /// What it did (`Launching a new EC2 instance: i-...`).
    pub description: String,
    /// When it started, in seconds since the epoch.
    pub started: i64,
    /// AWS's account of why it happened (a policy, a scheduled action, a request).
    pub cause: String,
}

impl Activity {
    /// Whether it launched (or tried to launch) an instance.
    pub fn is_launch(&self) -> bool {
        self.description.starts_with("Launching")
    }
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
    /// How many units of the group's desired capacity it counts (its
    /// `WeightedCapacity`, else 1).
    pub weight: u32,
}

/// The instances of an Auto Scaling group, with its desired capacity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Desired capacity.
    pub desired: u32,
    /// Its instances.
    pub instances: Vec<Instance>,
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn the_kind_comes_from_aws_error_code() {
        for (code, kind) in [
            ("Throttling", ErrorKind::Throttled),
            ("PriorRequestNotComplete", ErrorKind::Throttled),
            ("AccessDenied", ErrorKind::Denied),
            ("ResourceNotFoundException", ErrorKind::NotFound),
            ("InvalidInstanceID.NotFound", ErrorKind::NotFound),
            ("NoSuchHostedZone", ErrorKind::NotFound),
            ("InvalidChangeBatch", ErrorKind::Invalid),
            ("ValidationError", ErrorKind::Invalid),
            ("InternalFailure", ErrorKind::Unreachable),
            ("SomethingNew", ErrorKind::Other),
        ] {
            assert_eq!(ErrorKind::of_code(code), kind, "{code}");
        }
    }
}
