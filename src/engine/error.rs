//! Why the engine stopped.

use super::cloud::CloudError;
use crate::journal::JournalError;

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A step failed.
    #[error("step {step} failed: {message}")]
    Step {
        /// The step.
        step: String,
        /// Why.
        message: String,
    },
    /// Ctrl-C, or a stop condition (the [`super::interrupt::Interrupt`] says which).
    #[error("interrupted")]
    Interrupted,
    /// A human answered no at an approval gate.
    #[error("step {step}: the approval was declined; the run stopped before anything after it")]
    Declined {
        /// The step.
        step: String,
    },
    /// Live AWS differs from what the journal says the run left there: someone else
    /// changed it. Nothing is overwritten.
    #[error(
        "drift on {target}: the journal expects {expected}, this change would set {after}, but live is {live}; nothing was changed; look at it, then `evac resume --force` to accept the live value and go on, or `evac rollback`"
    )]
    Drift {
        /// The action.
        action: String,
        /// The resource, readable.
        target: String,
        /// What the journal (or, before the first change, the plan) says it is.
        expected: String,
        /// What the change would set.
        after: String,
        /// What it is.
        live: String,
    },
    /// Capacity an earlier step gave is no longer there: traffic must not move onto it
    /// and the source must not drain.
    #[error(
        "asg {group} ({region}) no longer has the capacity step {step} gave it: wanted desired at least {wanted} with at least {wanted} InService, live desired {desired} with {in_service} InService; no traffic was moved and nothing was drained; restore it and `evac resume`, `evac resume --force` to go on with what is there, or `evac rollback`"
    )]
    CapacityLost {
        /// The step that raised the capacity.
        step: String,
        /// The group's region.
        region: String,
        /// The group.
        group: String,
        /// Desired after that step.
        wanted: u32,
        /// Live desired.
        desired: u32,
        /// Live InService.
        in_service: u32,
    },
    /// An AWS call of the step failed after its retries: AWS's error, with its code
    /// and kind.
    #[error("step {step} failed: {error}")]
    Aws {
        /// The step.
        step: String,
        /// The call's failure.
        error: CloudError,
    },
    /// The journal could not be written: nothing more is changed.
    #[error("cannot write the journal: {0}")]
    Journal(#[from] JournalError),
}

/// Turns an AWS failure into the failure of `step`.
pub fn step_err(step: &str) -> impl Fn(CloudError) -> EngineError + '_ {
    move |error| EngineError::Aws {
        step: step.to_owned(),
        error,
    }
}
