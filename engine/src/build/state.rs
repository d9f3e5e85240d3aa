//! The build state persisted beside the image cache (each page's fingerprint, the source
//! image hashes, the hash of the manifest it belongs to), and how the next build finds the
//! previous state and manifest of an output and tells which pages changed.

use super::session::Session;
use crate::images::SourceIndex;
use crate::output::{self, MANIFEST, Manifest};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Version of the persisted build state.
pub(super) const STATE_VERSION: u32 = 4;

/// What the last successful build into an output directory left behind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct BuildState {
    pub(super) version: u32,
    /// blake3 of the output's manifest, to notice outputs changed behind our back.
    pub(super) manifest_hash: String,
    /// (page file, fingerprint) in the order of the build's jobs, which the next build
    /// usually has too: then pages are compared by position, with no lookups.
    pub(super) pages: Vec<(String, String)>,
    /// Source image hashes.
    pub(super) sources: SourceIndex,
}

/// Which of the pages (`(file, fingerprint)` each) differ from the last build's, by index,
/// and the files of the last build's pages that are gone.
pub(super) fn page_changes(
    before: &[(String, String)],
    now: &[(String, String)],
) -> (Vec<usize>, Vec<String>) {
    let same_files = before.len() == now.len() && before.iter().zip(now).all(|(b, n)| b.0 == n.0);
    if same_files {
        let changed = (0..now.len()).filter(|&i| before[i].1 != now[i].1).collect();
        return (changed, Vec::new());
    }
    let known: foldhash::HashMap<&str, &str> =
        before.iter().map(|(f, h)| (f.as_str(), h.as_str())).collect();
    let changed =
        (0..now.len()).filter(|&i| known.get(now[i].0.as_str()) != Some(&now[i].1.as_str()));
    let files: foldhash::HashSet<&str> = now.iter().map(|(f, _)| f.as_str()).collect();
    let removed = before.iter().filter(|(f, _)| !files.contains(f.as_str()));
    (changed.collect(), removed.map(|(f, _)| f.clone()).collect())
}

pub(super) fn state_path(cache_dir: &Path, out: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_owned());
    let key = blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex();
    cache_dir.join("builds").join(format!("{}.json", &key[..24]))
}

/// The previous state and manifest, if the output still is what that build left: the
/// session's own when the manifest on disk is still the one it wrote, else read from disk.
pub(super) fn previous(
    session: &mut Session,
    cache_dir: &Path,
    out: &Path,
) -> Option<(Arc<BuildState>, Manifest)> {
    let manifest_bytes = std::fs::read(out.join(MANIFEST)).ok()?;
    if let Some(last) = session.last.take()
        && last.out == out
        && last.cache_dir == cache_dir
        && last.state.manifest_hash == blake3::hash(&manifest_bytes).to_hex().as_str()
    {
        return Some((last.state, last.manifest));
    }
    let state: BuildState =
        serde_json::from_slice(&std::fs::read(state_path(cache_dir, out)).ok()?).ok()?;
    let hash = blake3::hash(&manifest_bytes).to_hex().to_string();
    if state.version != STATE_VERSION || state.manifest_hash != hash {
        return None;
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).ok()?;
    Some((Arc::new(state), manifest))
}

/// Writes the build state; losing it only costs a full build next time, never correctness.
pub(super) fn save_state(file: &Path, state: &BuildState) {
    if let Some(parent) = file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Ok(bytes) = serde_json::to_vec(state) {
        let _ = output::write_replacing(file, &bytes);
    }
}

/// The manifest as compact JSON (23,000 entries at 10,000 products: pretty printing made
/// it half again as large and slower to write and to read back).
pub(super) fn manifest_json(manifest: &Manifest) -> Vec<u8> {
    serde_json::to_vec(manifest).unwrap_or_default()
}
