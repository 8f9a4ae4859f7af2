//! What the journal records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::Capacity;

/// A resource the engine changes, with the value it sets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// An Auto Scaling group's capacity.
    Capacity {
        /// The region.
        region: String,
        /// The group.
        group: String,
    },
    /// The weights of weighted record sets in one hosted zone.
    Weights {
        /// The hosted zone id.
        zone_id: String,
    },
    /// The subnets (VPCZoneIdentifier) of an Auto Scaling group.
    Subnets {
        /// The region.
        region: String,
        /// The group.
        group: String,
    },
    /// The suspended processes of an Auto Scaling group.
    Processes {
        /// The region.
        region: String,
        /// The group.
        group: String,
    },
    /// Which instances of an Auto Scaling group are protected from scale-in.
    Protection {
        /// The region.
        region: String,
        /// The group.
        group: String,
    },
    /// One instance replaced in another zone. Not undone by rollback: the group
    /// keeps its capacity, and restoring its subnets lets it rebalance.
    Instance {
        /// The region.
        region: String,
        /// The group.
        group: String,
        /// The instance id.
        instance: String,
    },
    /// The ARC zonal shift of a load balancer or an Auto Scaling group: its traffic
    /// (a group: its launches) moved away from one availability zone.
    ZonalShift {
        /// The region.
        region: String,
        /// The resource's ARN.
        resource: String,
    },
}

/// A value of a [`Target`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// Min / desired / max.
    Capacity(Capacity),
    /// Subnets, in VPCZoneIdentifier order.
    Subnets {
        /// The subnet ids.
        subnets: Vec<String>,
    },
    /// Suspended processes, sorted.
    Processes {
        /// The process names.
        suspended: Vec<String>,
    },
    /// The instances protected from scale-in, sorted.
    Protection {
        /// Their ids.
        protected: Vec<String>,
    },
    /// An instance's state: `in service in ZONE`, or `terminated for replacement`.
    Instance {
        /// The state.
        instance_state: String,
    },
    /// Weight per record set.
    Weights(BTreeMap<String, i64>),
    /// The customer zonal shift active on a resource, if any.
    ZonalShift {
        /// The shift; none when the resource has no active one.
        zonal_shift: Option<Shift>,
    },
}

/// An active zonal shift, as evac starts and compares it. Two shifts with the same
/// zone and comment are the same shift whatever their expiry: extending one does
/// not change what it does.
#[derive(Clone, Debug, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// The availability zone id traffic is moved away from (`use1-az1`).
    pub away_from: String,
    /// Its comment: the run and step that started it.
    pub comment: String,
    /// When it expires, in seconds since the epoch (when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

impl PartialEq for Shift {
    fn eq(&self, other: &Self) -> bool {
        self.away_from == other.away_from && self.comment == other.comment
    }
}

/// A full weighted record set, as needed to write it back (an UPSERT replaces the
/// whole set, not only its weight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSetDef {
    /// DNS name, fully qualified.
    pub name: String,
    /// Record type (`A`, `AAAA`, `CNAME`).
    pub record_type: String,
    /// Set identifier.
    pub set_identifier: String,
    /// Current weight.
    pub weight: i64,
    /// TTL, absent for alias records.
    pub ttl: Option<i64>,
    /// Record values.
    pub values: Vec<String>,
    /// Alias target: hosted zone id, DNS name, evaluate target health.
    pub alias: Option<(String, String, bool)>,
    /// Health check id.
    pub health_check_id: Option<String>,
}

impl RecordSetDef {
    /// The key weights are recorded under: `name type set-identifier`.
    pub fn key(&self) -> String {
        weight_key(&self.name, &self.record_type, &self.set_identifier)
    }
}

/// The key a record set's weight is recorded under: `name type set-identifier`.
pub fn weight_key(name: &str, record_type: &str, set_identifier: &str) -> String {
    format!("{name} {record_type} {set_identifier}")
}

/// How a run (or a rollback) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step finished.
    Succeeded,
    /// A step failed.
    Failed,
    /// Ctrl-C; resumable.
    Interrupted,
    /// A stop condition fired; the run was halted (resumable once it clears).
    Halted,
    /// An approval was declined; the run stopped at that gate (resumable).
    Declined,
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// The run id.
        run_id: String,
        /// The playbook's name.
        playbook: String,
        /// The playbook file as given.
        file: String,
        /// Parameter values.
        params: BTreeMap<String, String>,
        /// Who ran it.
        user: String,
        /// Where.
        host: String,
        /// evac's version.
        version: String,
        /// Who AWS said the run's calls are made as (its plan's reads).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller: Option<crate::state::Caller>,
    },
    /// A process (the first run, or a resume) took over the run.
    Attached {
        /// Its pid.
        pid: u32,
        /// `run`, `resume` or `rollback`.
        command: String,
        /// Who ran it (the operating system's account name).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        user: String,
    },
    /// A step began.
    StepStarted {
        /// The step id.
        step: String,
    },
    /// A change is about to be made. Written and fsync'ed before the call.
    Intent {
        /// Stable id of the action within the run.
        action: String,
        /// The step.
        step: String,
        /// What is changed.
        target: Target,
        /// The live value just before the change.
        before: Value,
        /// The value set.
        after: Value,
        /// For weights: the full record sets, to write them back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        record_sets: Vec<RecordSetDef>,
        /// For weights: the ramp increment (from 1), so that rollback goes back
        /// increment by increment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        increment: Option<usize>,
    },
    /// AWS accepted the change.
    Applied {
        /// The action.
        action: String,
        /// Route 53 change id, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change_id: Option<String>,
    },
    /// The change took effect (instances in service, DNS in sync).
    Converged {
        /// The action.
        action: String,
    },
    /// A resumed run found an in-flight action in its `after` state and counts it done,
    /// or accepted a drifted value with --force.
    Reconciled {
        /// The action.
        action: String,
        /// What was decided.
        decision: String,
        /// With --force: the live value accepted as the action's outcome.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        accepted: Option<Value>,
    },
    /// A ramp increment finished baking.
    Baked {
        /// The step.
        step: String,
        /// The increment, from 1.
        increment: usize,
    },
    /// A human answered no at a gate: the run stops there (resumable).
    ApprovalDeclined {
        /// The step.
        step: String,
        /// Who declined.
        by: String,
    },
    /// A human gate was passed.
    Approved {
        /// The step.
        step: String,
        /// Who: the account that answered at the terminal, or `NAME with --yes`.
        by: String,
    },
    /// A step finished.
    StepFinished {
        /// The step.
        step: String,
    },
    /// A step was left out: it would change, or wait on, something in a region
    /// that is down (`--region-down`).
    StepSkipped {
        /// The step.
        step: String,
        /// Why (`eu-west-1 is down`).
        reason: String,
    },
    /// A step failed.
    StepFailed {
        /// The step.
        step: String,
        /// Why.
        error: String,
        /// When an AWS call failed it: AWS's error code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// When an AWS call failed it: what kind of failure (`throttled`,
        /// `not_found`, `denied`, `invalid`, `timed_out`, `unreachable`, `other`),
        /// for automation that decides on it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
    },
    /// The run stopped on Ctrl-C.
    Interrupted,
    /// A stop condition fired: the run halts after the call in flight.
    StopConditionFired {
        /// The condition, e.g. `alarm api-5xx-rate (us-west-2)`.
        condition: String,
        /// The state it was in.
        state: String,
    },
    /// The run ended.
    RunFinished {
        /// How.
        outcome: Outcome,
        /// The exit code the run's process ended with (see the README's table), so
        /// that whoever watches the run from elsewhere ends with the same code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit: Option<u8>,
    },
    /// A group the run waits on or changes scaled itself (its scaling policies, a
    /// scheduled action): desired moved between the bounds the run set, and is left
    /// there. Not a change of the run's: rollback restores what it recorded.
    ScaledItself {
        /// The region.
        region: String,
        /// The group.
        group: String,
        /// Desired as last known.
        from: u32,
        /// Desired now.
        to: u32,
        /// Why, from its newest successful scaling activity (AWS's `Cause`).
        cause: String,
    },
    /// The run was closed on purpose (`evac close`): it is neither resumed nor
    /// counted as unfinished, and AWS is left as the run left it.
    Closed {
        /// Who closed it (the operating system's account name).
        by: String,
        /// Why, as given.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// A rollback began.
    RollbackStarted {
        /// Whether weights go back in one change instead of ramped.
        fast: bool,
    },
    /// A change of the rollback is about to be made.
    RollbackIntent {
        /// The forward action undone.
        action: String,
        /// What is changed.
        target: Target,
        /// The live value just before.
        before: Value,
        /// The value restored.
        after: Value,
    },
    /// A rollback change was accepted.
    RollbackApplied {
        /// The forward action undone.
        action: String,
    },
    /// A rollback change took effect, or was not needed (live already restored).
    RollbackConverged {
        /// The forward action undone.
        action: String,
    },
    /// A rollback ended; `verified` says whether live state equals the originals.
    RollbackFinished {
        /// How.
        outcome: Outcome,
        /// Whether the live state matched every recorded original.
        verified: bool,
        /// Differences found, if any.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        differences: Vec<String>,
        /// What could not come back because it no longer exists.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        gone: Vec<String>,
    },
}

/// A journal line: the event, its time, and its place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Its number, from 1, with no gap.
    pub seq: u64,
    /// RFC 3339 UTC time.
    pub at: String,
    /// The digest of the entry before it (for the first: of the run's plan.json).
    pub prev: String,
    /// The digest of this entry: SHA-256 of its number, time, `prev` and event.
    pub digest: String,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

impl Entry {
    /// An entry following the one whose digest is `prev`.
    pub fn new(seq: u64, at: String, prev: String, event: Event) -> Self {
        let mut entry = Entry {
            seq,
            at,
            prev,
            digest: String::new(),
            event,
        };
        entry.digest = entry.computed_digest();
        entry
    }

    /// What `digest` must be for this entry's content.
    pub fn computed_digest(&self) -> String {
        let event = serde_json::to_string(&self.event).unwrap_or_default();
        hex_digest(format!("{}|{}|{}|{event}", self.seq, self.at, self.prev).as_bytes())
    }
}

/// SHA-256 of `bytes`, in hex.
pub fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
