//! The clouds of a playbook's accounts: the ambient one, and one per named account
//! (`accounts:`), each with its own credentials. Plans read each account through its
//! own cloud; the engine's [`crate::engine::route::Routed`] sends each call to the
//! account of the resource it concerns.

use std::collections::BTreeMap;

/// One cloud per account.
#[derive(Debug)]
pub struct Accounts<C> {
    /// The ambient credentials' account.
    pub ambient: C,
    /// Per named account of the playbook.
    pub named: BTreeMap<String, C>,
}

impl<C> Accounts<C> {
    /// Only the ambient account.
    pub fn one(ambient: C) -> Self {
        Self {
            ambient,
            named: BTreeMap::new(),
        }
    }

    /// The cloud of `account` (`None`: the ambient one), if it is known.
    pub fn get(&self, account: Option<&str>) -> Option<&C> {
        match account {
            None => Some(&self.ambient),
            Some(name) => self.named.get(name),
        }
    }
}
