//! The build pipeline as plain functions: load → theme → images → pages → sitemap →
//! manifest → commit.
//!
//! Incremental: every page has a fingerprint of exactly the inputs it reads; pages whose
//! fingerprint did not change since the last build are neither rendered nor written. A
//! small change set is rendered in memory and applied in place once everything succeeded;
//! a large one (or `--clean`, or a first build) goes to a staging directory that replaces
//! the output in one swap. Either way a failed build leaves the output as it was, and the
//! result is byte-identical to a clean build.

mod apply;
mod session;
mod state;
mod write;

pub use session::Session;

use crate::catalog::{self, Catalog, CatalogError, Loaded};
use crate::diagnostics::Diagnostics;
use crate::feeds;
use crate::images::{self, ImageCache, ImageStats, SourceIndex};
use crate::output::{CachePolicy, MANIFEST, Manifest, Staging, short_hash};
use crate::progress::{Progress, Timings};
use crate::render::{self, Renderer, Urls};
use crate::sitemap;
use crate::theme::{self, Theme};
use apply::{Pending, commit_in_place};
use rayon::prelude::*;
use session::{DeferredFeeds, LastBuild};
use state::{
    BuildState, STATE_VERSION, manifest_json, page_changes, previous, save_state, state_path,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use write::write_site;

/// The shared stylesheet, compiled into the binary.
pub const STOREFRONT_CSS: &str = include_str!("../../assets/storefront.css");
/// The storefront script, compiled into the binary.
pub const STOREFRONT_JS: &str = include_str!("../../assets/storefront.js");

/// Change sets up to this many pages are applied in place; larger ones are staged.
const IN_PLACE_MAX_PAGES: usize = 2000;

/// What to build and where.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The catalog directory.
    pub site: PathBuf,
    /// The output directory; changed only when the build succeeds.
    pub out: PathBuf,
    /// Overrides `base_url` of `store.json`.
    pub base_url: Option<String>,
    /// `--theme NAME|FILE`: a preset or a theme file instead of the shop's own theme.
    pub theme: Option<String>,
    /// Build everything from scratch (the image cache is still used).
    pub clean: bool,
    /// Where encoded images and build state are kept (default `<site>/.aurelio/cache`).
    pub cache_dir: Option<PathBuf>,
}

impl BuildOptions {
    /// The cache directory in effect.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| self.site.join(".aurelio").join("cache"))
    }
}

/// What a successful build did.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    /// HTML pages in the site.
    pub pages: usize,
    /// Pages rendered and written by this build.
    pub rendered: usize,
    /// Pages left as they were.
    pub unchanged: usize,
    /// Pages deleted (gone from the catalog).
    pub removed: usize,
    /// Images in the site, with how many were encoded and how many came from the cache.
    pub images: ImageStats,
    /// Files in the site, manifest included.
    pub files: usize,
    /// Files written (or linked) by this build.
    pub written: usize,
    /// Bytes in the site.
    pub bytes: u64,
    /// Whether the whole site was staged and swapped (otherwise changes were applied in place).
    pub staged: bool,
    /// Warnings (never errors).
    pub warnings: Diagnostics,
    /// Wall time.
    pub elapsed: Duration,
    /// Wall time of each step, for `aurelio bench`.
    pub timings: Timings,
    /// Feeds out of date that this build left as they were (site paths), for
    /// `Session::finish_feeds`; only a session that defers feeds leaves any.
    pub feeds_pending: Vec<String>,
}

/// What `Session::finish_feeds` did.
#[derive(Debug, Clone, Default)]
pub struct FeedsReport {
    /// Feeds generated and written into the output (site paths).
    pub written: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Why a build failed; the output directory is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The catalog could not be read or has errors.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The theme, images or pages had problems; all of them are inside.
    #[error("the build found {} error(s)", .0.error_count())]
    Invalid(Diagnostics),
    /// A template does not compile.
    #[error("templates: {0}")]
    Templates(String),
    /// `--base-url` is not an absolute URL.
    #[error("--base-url: {0}")]
    BaseUrl(String),
    /// Writing the output failed.
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl BuildError {
    /// The diagnostics of a content failure, if that is what it is.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            Self::Catalog(CatalogError::Invalid(d)) | Self::Invalid(d) => Some(d),
            _ => None,
        }
    }
}

/// Loads the catalog directory and its theme and builds the storefront.
pub fn build(opts: &BuildOptions, progress: &dyn Progress) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let mut session = Session::default();
    let mut report = build_in(&mut session, opts, progress)?;
    // A one-shot build leaves nothing behind, and its time includes the clean-up.
    session.janitor.wait();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Builds like `build`, reusing and refreshing what `session` kept from earlier builds.
pub fn build_in(
    session: &mut Session,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let mut timings = Timings::start();
    // Feeds an earlier build deferred are this build's to see to now.
    if let Some(catalog) = session.deferred.take().and_then(|d| d.catalog) {
        session.parsed.restore(catalog.products);
    }
    progress.phase("load", 0);
    let Loaded { mut catalog, warnings } = catalog::load_cached(&opts.site, &mut session.parsed)?;
    progress.finish_phase();
    timings.lap("load catalog");
    let result = build_loaded(session, &mut catalog, warnings, opts, progress);
    match session.deferred.as_mut() {
        // The deferred feeds are made from this catalog.
        Some(deferred) if result.is_ok() => deferred.catalog = Some(catalog),
        // The parsed products go back to the session whether or not the build succeeded.
        _ => {
            session.deferred = None;
            session.parsed.restore(std::mem::take(&mut catalog.products));
        }
    }
    let mut report = result?;
    timings.extend(std::mem::take(&mut report.timings));
    report.timings = timings;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The theme, then the build, of a freshly loaded catalog.
fn build_loaded(
    session: &mut Session,
    catalog: &mut Catalog,
    warnings: Diagnostics,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let mut timings = Timings::start();
    if let Some(url) = &opts.base_url {
        catalog::check_base_url(url).map_err(BuildError::BaseUrl)?;
        catalog.store.base_url = url.trim_end_matches('/').to_owned();
    }
    let theme_file = catalog.root.join("theme.json");
    let source = match &opts.theme {
        Some(arg) => theme::source_from_arg(arg),
        None => theme::for_site(&theme_file, &catalog.store.theme),
    };
    let (theme, theme_warnings) = theme::load(&source).map_err(BuildError::Invalid)?;
    timings.lap("load theme");
    let mut warnings = warnings;
    warnings.extend(theme_warnings);
    let defer = session.defer_feeds;
    let mut report =
        build_catalog_inner(session, catalog, &theme, opts, warnings, progress, defer)?;
    timings.extend(std::mem::take(&mut report.timings));
    report.timings = timings;
    Ok(report)
}

/// Builds the storefront of an already loaded catalog with a theme.
pub fn build_catalog(
    catalog: &Catalog,
    theme: &Theme,
    opts: &BuildOptions,
    warnings: Diagnostics,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    build_catalog_in(&mut Session::default(), catalog, theme, opts, warnings, progress)
}

/// Builds like `build_catalog`, reusing and refreshing what `session` kept (feeds are
/// never deferred: that needs the catalog owned, see `build_in`).
pub fn build_catalog_in(
    session: &mut Session,
    catalog: &Catalog,
    theme: &Theme,
    opts: &BuildOptions,
    warnings: Diagnostics,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    build_catalog_inner(session, catalog, theme, opts, warnings, progress, false)
}

/// The build; with `defer`, feeds that changed are left for `Session::finish_feeds` when
/// the changes are applied in place.
fn build_catalog_inner(
    session: &mut Session,
    catalog: &Catalog,
    theme: &Theme,
    opts: &BuildOptions,
    warnings: Diagnostics,
    progress: &dyn Progress,
    defer: bool,
) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let mut timings = Timings::start();
    let out = opts.out.as_path();
    let cache_dir = opts.cache_dir();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::Io { path, source }
    };
    let tera_sources = render::template_sources(Some(&catalog.root.join("templates")))
        .map_err(BuildError::Templates)?;
    let templates_text: String = tera_sources.iter().map(|(n, s)| format!("{n}\0{s}\0")).collect();
    let templates_key = blake3::hash(templates_text.as_bytes());
    let tera = match &session.templates {
        Some((key, tera)) if *key == templates_key => Arc::clone(tera),
        _ => {
            let tera =
                Arc::new(render::compile_sources(&tera_sources).map_err(BuildError::Templates)?);
            session.templates = Some((templates_key, Arc::clone(&tera)));
            tera
        }
    };
    let initial_warnings = warnings.clone();
    let mut diags = warnings;
    render::check_sections(theme, catalog, &mut diags);
    // The stylesheet is a function of the theme's merged JSON (the model is its typed form).
    let css_key = {
        let mut h = blake3::Hasher::new();
        h.update(STOREFRONT_CSS.as_bytes());
        h.update(b"\0");
        h.update(theme.value.to_string().as_bytes());
        h.finalize()
    };
    let css = match &session.css {
        Some((key, css)) if *key == css_key => Ok(css.clone()),
        _ => theme::compile_css(STOREFRONT_CSS, &theme.model),
    };
    let css = css.map_err(|e| {
        let mut d = diags.clone();
        d.error(
            "css",
            &theme.source,
            None,
            Some("/css".into()),
            format!("the stylesheet does not compile: {e}"),
        );
        BuildError::Invalid(d)
    })?;
    session.css = Some((css_key, css.clone()));
    if diags.has_errors() {
        return Err(BuildError::Invalid(diags));
    }
    timings.lap("templates, css");
    let prior = if opts.clean {
        session.last = None;
        None
    } else {
        previous(session, &cache_dir, out)
    };
    timings.lap("previous state");
    let empty_sources = SourceIndex::new();
    let prior_sources = prior.as_ref().map_or(&empty_sources, |(s, _)| &s.sources);

    // Images go to a pending set first: whether the site is staged depends on how many
    // pages changed, which needs the image map. Their bytes stay in the cache.
    let pending = Pending { out: out.to_owned(), files: Mutex::new(Vec::new()) };
    let theme_images: Vec<(String, images::Reference)> = render::section_image_refs(theme)
        .into_iter()
        .map(|(src, pointer)| (src, (theme.source.clone(), None, pointer)))
        .collect();
    progress.phase("images", 0);
    let image_cache = ImageCache::new(Some(cache_dir.clone()));
    // Unchanged sources whose variants the output already has are left in place; the
    // last build's whole result is reused when the output is still the one it made.
    let memo = session.images.take().and_then(|(hash, memo)| {
        let (state, _) = prior.as_ref()?;
        (state.manifest_hash == hash).then_some(memo)
    });
    let live = prior.as_ref().map(|(_, manifest)| images::Live { manifest, memo: memo.as_ref() });
    let processed = images::process_in_place(
        catalog,
        &theme_images,
        &image_cache,
        prior_sources,
        live,
        &pending,
        &mut diags,
    );
    drop(memo);
    progress.finish_phase();
    if diags.has_errors() {
        return Err(BuildError::Invalid(diags));
    }
    timings.lap("images");

    let urls = Urls::new(&catalog.store.base_url);
    let cards = session.cards.cards(catalog, &processed.map, &urls);
    let search_index = cards.search_index();
    timings.lap("cards, search index");
    let hashed =
        |stem: &str, ext: &str, bytes: &[u8]| format!("assets/{stem}.{}.{ext}", short_hash(bytes));
    let assets = render::AssetUrls {
        css: hashed("theme", "css", css.as_bytes()),
        js: hashed("storefront", "js", STOREFRONT_JS.as_bytes()),
        search_index: hashed("search-index", "json", &search_index),
    };
    let renderer = Renderer::new(catalog, theme, tera, &processed.map, urls, &assets, cards);
    timings.lap("renderer");
    let jobs = renderer.jobs();
    let global = renderer.global_fingerprint(&templates_text);

    progress.phase("fingerprints", jobs.len() as u64);
    let fingerprints: Vec<(String, String)> = jobs
        .par_iter()
        .map(|&j| (renderer.file(j), renderer.fingerprint(j, &global).to_hex().to_string()))
        .collect();
    progress.finish_phase();
    timings.lap("fingerprints");
    let (changed, removed_pages) = match &prior {
        Some((state, _)) => page_changes(&state.pages, &fingerprints),
        None => ((0..jobs.len()).collect(), Vec::new()),
    };
    let staged = prior.is_none() || changed.len() > IN_PLACE_MAX_PAGES;
    if staged && processed.kept.iter().any(|(f, _)| !out.join(f).is_file()) {
        // A staged build links images left in place from the live output; when some are
        // gone from it, start over without trusting the output.
        let clean = BuildOptions { clean: true, ..opts.clone() };
        return build_catalog_inner(
            session,
            catalog,
            theme,
            &clean,
            initial_warnings,
            progress,
            defer,
        );
    }

    // Non-page files: assets, search index, sitemap, robots.
    let page_urls: Vec<String> = jobs
        .par_iter()
        .filter(|j| j.indexable())
        .map(|&j| renderer.urls.absolute(&renderer.path(j)))
        .collect();
    let mut extra: Vec<(String, Vec<u8>, CachePolicy)> = vec![
        (assets.css.clone(), css.into_bytes(), CachePolicy::Immutable),
        (assets.js.clone(), STOREFRONT_JS.as_bytes().to_vec(), CachePolicy::Immutable),
        (assets.search_index.clone(), search_index, CachePolicy::Immutable),
    ];
    for (path, bytes) in sitemap::sitemaps(&page_urls, |p| renderer.urls.absolute(p)) {
        extra.push((path, bytes, CachePolicy::Revalidate));
    }
    let robots = sitemap::robots(&renderer.urls.absolute("sitemap.xml"), &renderer.urls.root);
    extra.push(("robots.txt".into(), robots, CachePolicy::Revalidate));
    timings.lap("changes, sitemap");

    // Product feeds (`feeds/`): streamed to files by `feeds::site`, put like other files.
    let sources = feeds::Sources { catalog, images: &processed.map, urls: &renderer.urls };
    let site_feeds = feeds::site::SiteFeeds { sources, cache_dir: &cache_dir, out };
    let render_set: Vec<usize> = if staged { (0..jobs.len()).collect() } else { changed.clone() };
    let (prior_state, prior_manifest) = prior.unzip();
    drop(prior_state);
    let state_file = state_path(&cache_dir, out);
    let memo = processed.memo();
    let sources = processed.sources;
    // The new state, written once the manifest it belongs to is known (the sources are
    // shared with the memo: cloned there, beside the apply).
    let state_of = |manifest_bytes: &[u8]| BuildState {
        version: STATE_VERSION,
        manifest_hash: blake3::hash(manifest_bytes).to_hex().to_string(),
        pages: fingerprints.clone(),
        sources: Arc::unwrap_or_clone(sources),
    };
    let mut feeds_pending = Vec::new();
    let (written, manifest, state, manifest_size) = if staged {
        let staging = Staging::new(out).map_err(io(out))?;
        let mut manifest = Manifest { version: 1, ..Manifest::default() };
        write_site(
            &renderer,
            &jobs,
            &render_set,
            &changed,
            prior_manifest.as_ref(),
            &staging,
            &pending,
            &processed.kept,
            &extra,
            &mut manifest,
            &mut diags,
            progress,
        )?;
        timings.lap("render");
        site_feeds.put(&staging, prior_manifest.as_ref(), &mut manifest, false).map_err(io(out))?;
        timings.lap("feeds");
        let written = changed.len() + processed.files.len() + processed.kept.len() + extra.len();
        let manifest_bytes = manifest_json(&manifest);
        staging
            .write(MANIFEST, &manifest_bytes, CachePolicy::Revalidate)
            .map_err(io(&staging.dir().join(MANIFEST)))?;
        progress.phase("swap", 0);
        staging.commit().map_err(io(out))?;
        progress.finish_phase();
        let state = Arc::new(state_of(&manifest_bytes));
        save_state(&state_file, &state);
        timings.lap("manifest, swap, state");
        (written, manifest, state, manifest_bytes.len())
    } else {
        // The previous manifest is updated: what was put replaces its entry, files that
        // are no longer part of the site go, everything else keeps its entry.
        let mut manifest = prior_manifest.unwrap_or_default();
        let in_place = Pending { out: out.to_owned(), files: Mutex::new(Vec::new()) };
        let mut fresh = Manifest::default();
        write_site(
            &renderer,
            &jobs,
            &render_set,
            &changed,
            Some(&manifest),
            &in_place,
            &pending,
            &processed.kept,
            &extra,
            &mut fresh,
            &mut diags,
            progress,
        )?;
        timings.lap("render");
        feeds_pending =
            site_feeds.put(&in_place, Some(&manifest), &mut fresh, defer).map_err(io(out))?;
        timings.lap("feeds");
        let current: foldhash::HashSet<&str> = fingerprints
            .iter()
            .map(|(f, _)| f.as_str())
            .chain(processed.files.iter().chain(processed.kept.iter()).map(|(f, _)| f.as_str()))
            .chain(extra.iter().map(|(f, ..)| f.as_str()))
            .chain(fresh.files.keys().map(String::as_str))
            .collect();
        let stale: Vec<String> =
            manifest.files.keys().filter(|f| !current.contains(f.as_str())).cloned().collect();
        drop(current);
        for file in &stale {
            manifest.files.remove(file);
        }
        manifest.files.extend(fresh.files);
        timings.lap("manifest");
        progress.phase("apply", 0);
        let (written, state, manifest_size) = commit_in_place(
            in_place,
            &manifest,
            &stale,
            &state_file,
            state_of,
            &mut session.janitor,
        )?;
        progress.finish_phase();
        timings.lap("apply, state");
        (written, manifest, state, manifest_size)
    };
    let report_files = manifest.files.len() + 1;
    let report_bytes = manifest.files.values().map(|f| f.size).sum::<u64>() + manifest_size as u64;
    session.images = Some((state.manifest_hash.clone(), memo));
    session.last =
        Some(LastBuild { out: out.to_owned(), cache_dir: cache_dir.clone(), state, manifest });
    let pages = jobs.len();
    let feeds_pending: Vec<String> =
        feeds_pending.iter().map(|f| f.site_path().to_owned()).collect();
    // The renderer borrows the image map, which the deferred feeds keep.
    drop(renderer);
    session.deferred = (!feeds_pending.is_empty()).then(|| DeferredFeeds {
        catalog: None,
        images: processed.map,
        out: out.to_owned(),
        cache_dir: cache_dir.clone(),
    });
    Ok(BuildReport {
        pages,
        rendered: changed.len(),
        unchanged: pages - changed.len(),
        removed: removed_pages.len(),
        images: processed.stats,
        files: report_files,
        written,
        bytes: report_bytes,
        staged,
        warnings: diags,
        elapsed: started.elapsed(),
        timings,
        feeds_pending,
    })
}
