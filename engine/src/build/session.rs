//! What a long-lived process keeps between builds (`Session`), and the feeds a build
//! deferred, generated and written into its output in place afterwards (`finish_feeds`).

use super::apply::{Pending, commit_in_place};
use super::state::{BuildState, STATE_VERSION, previous, state_path};
use super::{BuildError, FeedsReport};
use crate::catalog::{self, Catalog};
use crate::feeds;
use crate::images;
use crate::output::{Janitor, Manifest};
use crate::render::{self, Urls};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a long-lived process (`aurelio watch`, the API's rebuilds) keeps between builds so
/// that an edit costs only what it touches. Everything is keyed by what it is derived
/// from, so a stale entry is never used: the products parsed last time (by line hash),
/// the compiled templates (by their sources) and stylesheet (by the theme), and the
/// state and manifest of the last build into an output (by the manifest's hash on disk).
///
/// A session can defer product feeds (`defer_feeds`): a build then brings the pages up to
/// date and leaves feeds that changed as they were (a product change regenerates every
/// feed, 150 MB at 10,000 products); `finish_feeds` generates them afterwards, so the
/// storefront is right first and the feeds follow.
#[derive(Default)]
pub struct Session {
    pub(super) parsed: catalog::ParseCache,
    pub(super) templates: Option<(blake3::Hash, Arc<tera::Tera>)>,
    pub(super) css: Option<(blake3::Hash, String)>,
    pub(super) cards: render::CardCache,
    pub(super) last: Option<LastBuild>,
    /// The last build's image step, for the next build into the output it made live
    /// (by the hash of that output's manifest, as `LastBuild::state` records it).
    pub(super) images: Option<(String, images::Memo)>,
    pub(super) defer_feeds: bool,
    pub(super) deferred: Option<DeferredFeeds>,
    /// Deletes replaced and removed files after a build has returned.
    pub(super) janitor: Janitor,
}

/// What generating the feeds a build deferred needs: the catalog and images of that build.
pub(super) struct DeferredFeeds {
    /// Set by `build_in` (which owns the catalog) once the build succeeded.
    pub(super) catalog: Option<Catalog>,
    pub(super) images: Arc<images::ImageMap>,
    pub(super) out: PathBuf,
    pub(super) cache_dir: PathBuf,
}

impl Session {
    /// A session whose builds defer out-of-date feeds to `finish_feeds`.
    pub fn deferring_feeds() -> Self {
        Self { defer_feeds: true, ..Self::default() }
    }

    /// Waits until the files earlier builds replaced or removed are deleted (that happens
    /// in the background; dropping the session waits too).
    pub fn wait_for_cleanup(&mut self) {
        self.janitor.wait();
    }

    /// Generates the feeds the last build deferred and writes them into its output in
    /// place (manifest and state included), unless the output changed since (the next
    /// build then sees to them). `None` when nothing was pending.
    pub fn finish_feeds(&mut self) -> Result<Option<FeedsReport>, BuildError> {
        let Some(deferred) = self.deferred.take() else { return Ok(None) };
        let DeferredFeeds { catalog, images, out, cache_dir } = deferred;
        let Some(catalog) = catalog else { return Ok(None) };
        let result = self.write_feeds(&catalog, &images, &out, &cache_dir);
        self.parsed.restore(catalog.products);
        result
    }

    fn write_feeds(
        &mut self,
        catalog: &Catalog,
        images: &images::ImageMap,
        out: &Path,
        cache_dir: &Path,
    ) -> Result<Option<FeedsReport>, BuildError> {
        let started = Instant::now();
        let Some((state, mut manifest)) = previous(self, cache_dir, out) else {
            return Ok(None);
        };
        let io = |source| BuildError::Io { path: out.to_owned(), source };
        let urls = Urls::new(&catalog.store.base_url);
        let sources = feeds::Sources { catalog, images, urls: &urls };
        let site_feeds = feeds::site::SiteFeeds { sources, cache_dir, out };
        let in_place = Pending { out: out.to_owned(), files: Mutex::new(Vec::new()) };
        let mut fresh = Manifest::default();
        site_feeds.put(&in_place, Some(&manifest), &mut fresh, false).map_err(io)?;
        let written: Vec<String> = fresh.files.keys().cloned().collect();
        manifest.files.extend(fresh.files);
        let BuildState { pages, sources, .. } = Arc::unwrap_or_clone(state);
        let state_of = |manifest_bytes: &[u8]| BuildState {
            version: STATE_VERSION,
            manifest_hash: blake3::hash(manifest_bytes).to_hex().to_string(),
            pages,
            sources,
        };
        let state_file = state_path(cache_dir, out);
        let (_, state, _) =
            commit_in_place(in_place, &manifest, &[], &state_file, state_of, &mut self.janitor)?;
        // Feeds are not images: the image step's memo holds for the new manifest too.
        if let Some((hash, _)) = &mut self.images {
            hash.clone_from(&state.manifest_hash);
        }
        self.last = Some(LastBuild {
            out: out.to_owned(),
            cache_dir: cache_dir.to_owned(),
            state,
            manifest,
        });
        Ok(Some(FeedsReport { written, elapsed: started.elapsed() }))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("templates", &self.templates.as_ref().map(|(k, _)| k))
            .field("css", &self.css.as_ref().map(|(k, _)| k))
            .field("last", &self.last.as_ref().map(|l| &l.out))
            .finish_non_exhaustive()
    }
}

/// The state and manifest a session's last build left in an output directory.
pub(super) struct LastBuild {
    /// The output directory and the cache directory of that build.
    pub(super) out: PathBuf,
    pub(super) cache_dir: PathBuf,
    pub(super) state: Arc<BuildState>,
    pub(super) manifest: Manifest,
}
