//! Writing a site into a sink: images, pages rendered in parallel (or linked unchanged
//! from the live output when staging), and the extra files (assets, sitemaps, robots).

use super::BuildError;
use super::apply::{Pending, PendingContent};
use crate::diagnostics::Diagnostics;
use crate::output::{self, CachePolicy, Content, FileEntry, Manifest, Sink};
use crate::progress::Progress;
use crate::render::{Job, Renderer};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::PathBuf;

/// At most this many render errors are listed; the rest are counted.
const MAX_RENDER_ERRORS: usize = 20;

/// Renders `render_set` into `sink`, links unchanged pages from the previous output when
/// staging, and puts the images and extra files. Records what it puts in `manifest`; files
/// an in-place sink does not need (unchanged in `previous`) are left out.
#[allow(clippy::too_many_arguments)] // one call site per strategy; a struct would only rename them
pub(super) fn write_site(
    renderer: &Renderer<'_>,
    jobs: &[Job],
    render_set: &[usize],
    changed: &[usize],
    previous: Option<&Manifest>,
    sink: &dyn Sink,
    images: &Pending,
    kept: &[(String, FileEntry)],
    extra: &[(String, Vec<u8>, CachePolicy)],
    manifest: &mut Manifest,
    diags: &mut Diagnostics,
    progress: &dyn Progress,
) -> Result<(), BuildError> {
    let io = |path: &str| {
        let path = PathBuf::from(path);
        move |source| BuildError::Io { path, source }
    };
    let changed: HashSet<usize> = changed.iter().copied().collect();
    let out = images.out.clone();
    // Images: put each into this sink unless it is unchanged in an in-place build.
    let image_files = std::mem::take(
        &mut *images.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for (rel, content) in &image_files {
        let cache = CachePolicy::Immutable;
        let unchanged =
            previous.and_then(|m| m.files.get(rel)).filter(|_| !sink.receives_everything());
        if unchanged.is_some() {
            continue;
        }
        let put = match content {
            PendingContent::Bytes(b) => sink.put(rel, Content::Bytes(b), cache),
            PendingContent::File(path) => {
                let bytes_hash =
                    previous.and_then(|m| m.files.get(rel)).map(|e| (e.hash.clone(), e.size));
                let (hash, size) = match bytes_hash {
                    Some(hs) => hs,
                    None => {
                        let bytes = std::fs::read(path).map_err(io(rel))?;
                        (blake3::hash(&bytes).to_hex().to_string(), bytes.len() as u64)
                    }
                };
                sink.put(rel, Content::File { path, hash: &hash, size }, cache)
            }
        };
        let (rel, entry) = put.map_err(io(rel))?;
        manifest.files.insert(rel, entry);
    }
    // Images left in place: a staging directory links them from the live output.
    for (rel, entry) in kept.iter().filter(|_| sink.receives_everything()) {
        let content = Content::File { path: &out.join(rel), hash: &entry.hash, size: entry.size };
        let (rel, entry) = sink.put(rel, content, CachePolicy::Immutable).map_err(io(rel))?;
        manifest.files.insert(rel, entry);
    }
    progress.phase("pages", render_set.len() as u64);
    let rendered: Vec<Result<(String, FileEntry), (String, String)>> = render_set
        .par_iter()
        .map(|&i| {
            let job = jobs[i];
            let file = renderer.file(job);
            let result = match previous
                .and_then(|m| m.files.get(&file))
                .filter(|_| !changed.contains(&i))
            {
                // Staging an unchanged page: link it from the live output.
                Some(entry) => sink
                    .put(
                        &file,
                        Content::File {
                            path: &out.join(&file),
                            hash: &entry.hash,
                            size: entry.size,
                        },
                        CachePolicy::Revalidate,
                    )
                    .or_else(|_| {
                        let html = renderer.render(job).map_err(std::io::Error::other)?;
                        sink.put(&file, Content::Bytes(html.as_bytes()), CachePolicy::Revalidate)
                    }),
                None => {
                    let html = renderer.render(job).map_err(|e| (file.clone(), e))?;
                    sink.put(&file, Content::Bytes(html.as_bytes()), CachePolicy::Revalidate)
                }
            };
            progress.advance(1);
            result.map_err(|e| (file.clone(), format!("cannot write the file: {e}")))
        })
        .collect();
    progress.finish_phase();
    let mut failures = 0;
    for result in rendered {
        match result {
            Ok((rel, entry)) => {
                manifest.files.insert(rel, entry);
            }
            Err((file, message)) => {
                failures += 1;
                if failures <= MAX_RENDER_ERRORS {
                    diags.error("render", &file, None, None, message);
                }
            }
        }
    }
    if failures > MAX_RENDER_ERRORS {
        let more = failures - MAX_RENDER_ERRORS;
        diags.error(
            "render",
            "(more pages)",
            None,
            None,
            format!("{more} more pages failed to render"),
        );
    }
    if diags.has_errors() {
        return Err(BuildError::Invalid(diags.clone()));
    }
    for (path, bytes, cache) in extra {
        let entry = output::entry(path, bytes, *cache);
        if !sink.receives_everything() && previous.and_then(|m| m.files.get(path)) == Some(&entry) {
            continue;
        }
        let (rel, entry) = sink.put(path, Content::Bytes(bytes), *cache).map_err(io(path))?;
        manifest.files.insert(rel, entry);
    }
    Ok(())
}
