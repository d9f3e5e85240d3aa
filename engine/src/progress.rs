//! How long work reports progress: the engine calls these hooks, the command line draws a
//! bar on a terminal or prints plain lines in CI.

/// Receives progress of a build, from any thread.
pub trait Progress: Sync {
    /// A phase begins with `total` steps (0 when unknown).
    fn phase(&self, name: &'static str, total: u64);
    /// `n` more steps of the current phase are done.
    fn advance(&self, n: u64);
    /// The current phase is done.
    fn finish_phase(&self);
}

/// Reports nothing (tests, the API).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish_phase(&self) {}
}
