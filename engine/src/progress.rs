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

/// Wall time of each step of one build, in order (`BuildReport::timings`): what
/// `aurelio bench` prints to show where the time of a build goes.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Step name and its wall time, in the order the steps ran.
    pub steps: Vec<(&'static str, std::time::Duration)>,
    last: Option<std::time::Instant>,
}

impl Timings {
    /// Starts timing the first step now.
    pub fn start() -> Self {
        Self { steps: Vec::new(), last: Some(std::time::Instant::now()) }
    }

    /// Ends the current step, named `name`, and starts the next one.
    pub fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        let since = self.last.map_or(std::time::Duration::ZERO, |t| now - t);
        self.steps.push((name, since));
        self.last = Some(now);
    }

    /// Appends the steps of `other` (timed separately) after these.
    pub fn extend(&mut self, other: Timings) {
        self.steps.extend(other.steps);
        self.last = Some(std::time::Instant::now());
    }

    /// `name 12.3 ms, ...` on one line.
    pub fn summary(&self) -> String {
        self.steps
            .iter()
            .map(|(name, d)| format!("{name} {:.1}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
