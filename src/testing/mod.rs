//! What the crate's own tests share: an in-memory model of the AWS APIs the engine
//! calls ([`memory::MemoryCloud`]), with AWS's rules and faults on demand. Compiled
//! for tests only.

pub(crate) mod memory;

/// The first entry of every journal: a run of playbook `test` started.
pub(crate) fn run_started() -> crate::journal::Event {
    crate::journal::Event::RunStarted {
        run_id: "r1".into(),
        playbook: "test".into(),
        file: "test.yaml".into(),
        params: Default::default(),
        user: "test".into(),
        host: "test".into(),
        version: "test".into(),
        caller: None,
    }
}
