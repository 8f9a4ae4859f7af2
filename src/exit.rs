//! The exit codes of `evac`: one table, documented in the README.

use std::process::ExitCode;

/// How an `evac` command ended. The discriminant is the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success (plan: no blockers).
    Success = 0,
    /// A step failed; the run is stopped (and rolled back if asked).
    StepFailed = 1,
    /// Invalid input: playbook, arguments, unknown run id.
    InvalidInput = 2,
    /// The plan found blockers (preflight failed); nothing was changed.
    Blocked = 3,
    /// Interrupted; resumable.
    Interrupted = 4,
    /// Rollback failed or drift found: a human must look.
    NeedsHuman = 5,
    /// A stop condition fired; the run was halted.
    StopCondition = 6,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit a numeric code stands for (a code a run recorded in its journal).
    pub fn from_code(code: u8) -> Option<Exit> {
        [
            Exit::Success,
            Exit::StepFailed,
            Exit::InvalidInput,
            Exit::Blocked,
            Exit::Interrupted,
            Exit::NeedsHuman,
            Exit::StopCondition,
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
