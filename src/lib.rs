//! `evac`: region and availability-zone evacuation drills on AWS, from YAML playbooks.
//!
//! The flow is load + validate ([`playbook`]) -> observe AWS -> plan -> execute ->
//! journal, with rollback replaying the journal. See `docs/` for the playbook format.

#[macro_use]
pub mod shell;
pub mod accounts;
pub mod aws;
pub mod cli;
pub mod engine;
pub mod exit;
pub mod journal;
pub mod limits;
pub mod notify;
pub mod plan;
pub mod playbook;
pub mod progress;
pub mod pulse;
pub mod rates;
pub mod report;
pub mod route53;
pub mod seed;
pub mod state;
#[cfg(test)]
mod testing;
pub mod text;
