//! What could be decoded of a playbook's parts, problems left out: shared by the
//! loader, which decodes them, and the validator, which checks them.

use super::model::{Action, Step};
use super::path::YamlPath;
use super::types::StepId;

/// A value decoded after leaving out the fields that had problems.
pub(super) struct Partial<T> {
    pub value: T,
    /// Paths of the fields left out (already reported).
    pub removed: Vec<YamlPath>,
}

/// What could be read of one step.
pub(super) struct StepParts {
    /// The step id, when it decoded.
    pub id: Option<StepId>,
    /// The description, when given.
    pub description: Option<String>,
    /// The action, possibly decoded with problem fields left out.
    pub action: Option<Partial<Action>>,
    /// Whether every part decoded without a problem.
    pub complete: bool,
}

impl StepParts {
    pub(super) fn into_step(self) -> Option<Step> {
        let action = self.action.filter(|a| a.removed.is_empty())?;
        if !self.complete {
            return None;
        }
        Some(Step {
            id: self.id?,
            description: self.description,
            action: action.value,
        })
    }
}
