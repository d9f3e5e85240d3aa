//! Problems found while walking many pages, reported together.

use std::collections::BTreeMap;

/// Problems found while walking many pages, reported together so that one failing run
/// shows all of them. The same problem found in many places is listed once, with a count
/// and the first place.
#[derive(Debug, Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    /// Records `message` when `ok` is false.
    pub fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.0.push((message(), String::new()));
        }
    }

    /// Records `message`, found in `place` (a file), when `ok` is false.
    pub fn check_in(&mut self, ok: bool, place: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.0.push((message(), place.to_owned()));
        }
    }

    /// Records a problem.
    pub fn push(&mut self, message: String) {
        self.0.push((message, String::new()));
    }

    /// Panics listing every distinct problem (at most 60) when there were any.
    #[track_caller]
    pub fn assert_none(self, what: &str) {
        if self.0.is_empty() {
            return;
        }
        let mut seen: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for (message, place) in &self.0 {
            seen.entry(message.as_str()).or_insert((0, place.as_str())).0 += 1;
        }
        let listed: Vec<String> = seen
            .iter()
            .take(60)
            .map(|(message, (n, place))| {
                let mut line = (*message).to_owned();
                match (*n, place.is_empty()) {
                    (1, true) => {}
                    (1, false) => line.push_str(&format!(" (in `{place}`)")),
                    (n, true) => line.push_str(&format!(" (×{n})")),
                    (n, false) => line.push_str(&format!(" (×{n}, first in `{place}`)")),
                }
                line
            })
            .collect();
        panic!(
            "{what}: {} problem(s), {} distinct:\n  {}",
            self.0.len(),
            seen.len(),
            listed.join("\n  ")
        );
    }
}
