//! In-place change sets: files kept in memory (`Pending`) while a build renders, then
//! applied to the live output one atomic exchange each, with the manifest and the new
//! build state (`commit_in_place`).

use super::BuildError;
use super::state::{BuildState, manifest_json};
use crate::output::{self, CachePolicy, Content, FileEntry, Janitor, MANIFEST, Manifest, Sink};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Changes kept in memory and applied to the output in place on commit.
pub(super) struct Pending {
    pub(super) out: PathBuf,
    pub(super) files: Mutex<Vec<(String, PendingContent)>>,
}

pub(super) enum PendingContent {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Sink for Pending {
    fn put(
        &self,
        rel: &str,
        content: Content<'_>,
        cache: CachePolicy,
    ) -> std::io::Result<(String, FileEntry)> {
        let (entry, pending) = match content {
            Content::Bytes(b) => (output::entry(rel, b, cache), PendingContent::Bytes(b.to_vec())),
            Content::File { path, hash, size } => {
                (output::entry_of(rel, hash, size, cache), PendingContent::File(path.to_owned()))
            }
        };
        if let Ok(mut files) = self.files.lock() {
            files.push((rel.to_owned(), pending));
        }
        Ok((rel.to_owned(), entry))
    }
}

impl Pending {
    /// Writes every pending file (each atomically: temporary file, then exchange), then
    /// takes `removed` files out of the output. What is left to delete (the replaced
    /// files, the removed ones and the directories they leave empty) goes to `janitor`.
    fn apply(self, removed: &[String], janitor: &mut Janitor) -> std::io::Result<usize> {
        let files = self.files.into_inner().unwrap_or_default();
        let count = files.len();
        let displaced: Vec<Option<PathBuf>> = files
            .into_par_iter()
            .map(|(rel, content)| {
                let target = self.out.join(&rel);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                match content {
                    PendingContent::Bytes(bytes) => output::write_exchanging(&target, &bytes),
                    PendingContent::File(path) => {
                        let tmp = output::temporary_name(&target, "link");
                        output::link_or_copy(&path, &tmp)?;
                        Ok(output::exchange(&tmp, &target)?.then_some(tmp))
                    }
                }
            })
            .collect::<std::io::Result<_>>()?;
        for old in displaced.into_iter().flatten() {
            janitor.push(old, None);
        }
        for rel in removed {
            // Out of the site at once (a cheap rename within its directory); deleted later.
            let path = self.out.join(rel);
            let gone = output::temporary_name(&path, "gone");
            match std::fs::rename(&path, &gone) {
                Ok(()) => janitor.push(gone, Some(self.out.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(count)
    }
}

/// Applies an in-place change set: serialises `manifest` into it, then writes every file
/// while the state (made from the manifest's bytes) is saved. Returns the files written
/// (the manifest not counted), the state and the manifest's size.
pub(super) fn commit_in_place(
    in_place: Pending,
    manifest: &Manifest,
    stale: &[String],
    state_file: &Path,
    state_of: impl FnOnce(&[u8]) -> BuildState + Send,
    janitor: &mut Janitor,
) -> Result<(usize, Arc<BuildState>, usize), BuildError> {
    let out = in_place.out.clone();
    let io = |source| BuildError::Io { path: out.clone(), source };
    let manifest_bytes = manifest_json(manifest);
    in_place.put(MANIFEST, Content::Bytes(&manifest_bytes), CachePolicy::Revalidate).map_err(io)?;
    // The state is made while the changes are applied, then serialised and written by the
    // janitor once they are: the session keeps it in memory, the file is for the next
    // process (which, should it come first, finds the old state and builds in full).
    let mut applying = Janitor::default();
    let (applied, state) =
        rayon::join(|| in_place.apply(stale, &mut applying), || state_of(&manifest_bytes));
    janitor.absorb(applying);
    let written = match applied {
        Ok(written) => written,
        Err(e) => {
            // Some changes may be missing: no state may vouch for this output.
            janitor.wait();
            let _ = std::fs::remove_file(state_file);
            return Err(io(e));
        }
    };
    let state = Arc::new(state);
    let saved = Arc::clone(&state);
    janitor.write(state_file.to_owned(), move || serde_json::to_vec(&*saved).ok());
    janitor.start();
    Ok((written - 1, state, manifest_bytes.len()))
}
