//! Progress for long work: a bar on a terminal, plain lines otherwise (CI, pipes).

use aurelio_engine::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

/// Draws engine progress on stderr.
pub struct CliProgress {
    terminal: bool,
    state: Mutex<Option<(&'static str, Instant, Option<ProgressBar>)>>,
}

impl CliProgress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        Self { terminal: std::io::stderr().is_terminal(), state: Mutex::new(None) }
    }
}

impl Progress for CliProgress {
    fn phase(&self, name: &'static str, total: u64) {
        let bar = (self.terminal && total > 0).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(name);
            bar
        });
        if !self.terminal && total > 0 {
            eprintln!("{name}: {total} to do");
        }
        if let Ok(mut state) = self.state.lock() {
            *state = Some((name, Instant::now(), bar));
        }
    }

    fn advance(&self, n: u64) {
        if let Ok(state) = self.state.lock()
            && let Some((_, _, Some(bar))) = state.as_ref()
        {
            bar.inc(n);
        }
    }

    fn finish_phase(&self) {
        let Ok(mut state) = self.state.lock() else { return };
        if let Some((name, started, bar)) = state.take() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !self.terminal {
                eprintln!("{name}: done in {:.2?}", started.elapsed());
            }
        }
    }
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
