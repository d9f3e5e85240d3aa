//! The build pipeline as plain functions: load → images → assets → pages → sitemap →
//! manifest → swap into place.
//!
//! Pages render in parallel and are written as they render, so the site is never held in
//! memory. Everything goes to a staging directory that replaces `--out` only on success.

use crate::catalog::{self, Catalog, CatalogError, Loaded};
use crate::diagnostics::Diagnostics;
use crate::images;
use crate::output::{CachePolicy, FileEntry, MANIFEST, Manifest, Staging, short_hash};
use crate::progress::Progress;
use crate::render::{self, Renderer, Urls};
use crate::sitemap;
use crate::theme::{self, Theme};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The shared stylesheet, compiled into the binary.
pub const STOREFRONT_CSS: &str = include_str!("../../assets/storefront.css");
/// The storefront script, compiled into the binary.
pub const STOREFRONT_JS: &str = include_str!("../../assets/storefront.js");

/// At most this many render errors are listed; the rest are counted.
const MAX_RENDER_ERRORS: usize = 20;

/// What to build and where.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The catalog directory.
    pub site: PathBuf,
    /// The output directory; replaced only when the build succeeds.
    pub out: PathBuf,
    /// Overrides `base_url` of `store.json`.
    pub base_url: Option<String>,
    /// `--theme NAME|FILE`: a preset or a theme file instead of the shop's own theme.
    pub theme: Option<String>,
}

/// What a successful build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// HTML pages written.
    pub pages: usize,
    /// Images published.
    pub images: usize,
    /// Files in the site, manifest included.
    pub files: usize,
    /// Bytes in the site.
    pub bytes: u64,
    /// Warnings (never errors).
    pub warnings: Diagnostics,
    /// Wall time.
    pub elapsed: Duration,
}

/// Why a build failed; the output directory is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The catalog could not be read or has errors.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Images or pages had problems; all of them are inside.
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

/// Loads the catalog directory and builds its storefront.
pub fn build(opts: &BuildOptions, progress: &dyn Progress) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    progress.phase("load", 0);
    let Loaded { mut catalog, warnings } = catalog::load(&opts.site)?;
    progress.finish_phase();
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
    let mut warnings = warnings;
    warnings.extend(theme_warnings);
    let mut report = build_catalog(&catalog, &theme, &opts.out, warnings, progress)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Builds the storefront of an already loaded catalog into `out`.
pub fn build_catalog(
    catalog: &Catalog,
    theme: &Theme,
    out: &Path,
    warnings: Diagnostics,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::Io { path, source }
    };
    let tera = render::compile_templates(Some(&catalog.root.join("templates")))
        .map_err(BuildError::Templates)?;
    let staging = Staging::new(out).map_err(io(out))?;
    let mut diags = warnings;
    let mut manifest = Manifest { version: 1, ..Manifest::default() };

    render::check_sections(theme, catalog, &mut diags);
    let theme_images: Vec<(String, images::Reference)> = render::section_image_refs(theme)
        .into_iter()
        .map(|(src, pointer)| (src, (theme.source.clone(), None, pointer)))
        .collect();
    progress.phase("images", 0);
    let (image_map, image_files) = images::process(catalog, &theme_images, &staging, &mut diags);
    progress.finish_phase();
    if diags.has_errors() {
        return Err(BuildError::Invalid(diags));
    }
    let image_count = image_files.len();
    manifest.files.extend(image_files);

    let css = theme::compile_css(STOREFRONT_CSS, &theme.model).map_err(|e| {
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
    let urls = Urls::new(&catalog.store.base_url);
    let search_index = Renderer::search_index_json(catalog, &urls);
    let hashed =
        |stem: &str, ext: &str, bytes: &[u8]| format!("assets/{stem}.{}.{ext}", short_hash(bytes));
    let assets = render::AssetUrls {
        css: hashed("theme", "css", css.as_bytes()),
        js: hashed("storefront", "js", STOREFRONT_JS.as_bytes()),
        search_index: hashed("search-index", "json", &search_index),
    };
    for (path, bytes) in [
        (&assets.css, css.as_bytes()),
        (&assets.js, STOREFRONT_JS.as_bytes()),
        (&assets.search_index, search_index.as_slice()),
    ] {
        let (rel, entry) = staging
            .write(path, bytes, CachePolicy::Immutable)
            .map_err(io(&staging.dir().join(path)))?;
        manifest.files.insert(rel, entry);
    }
    drop(search_index);

    let renderer = Renderer::new(catalog, theme, tera, &image_map, urls, &assets);
    let jobs = renderer.jobs();
    progress.phase("pages", jobs.len() as u64);
    let rendered: Vec<Result<(String, FileEntry), (String, String)>> = jobs
        .par_iter()
        .map(|&job| {
            let file = renderer.file(job);
            let html = renderer.render(job).map_err(|e| (file.clone(), e))?;
            let written = staging
                .write(&file, html.as_bytes(), CachePolicy::Revalidate)
                .map_err(|e| (file.clone(), format!("cannot write the file: {e}")))?;
            progress.advance(1);
            Ok(written)
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
        return Err(BuildError::Invalid(diags));
    }

    let page_urls: Vec<String> = jobs
        .iter()
        .filter(|j| j.indexable())
        .map(|&j| renderer.urls.absolute(&renderer.path(j)))
        .collect();
    let mut extra = sitemap::sitemaps(&page_urls, |p| renderer.urls.absolute(p));
    extra.push((
        "robots.txt".into(),
        sitemap::robots(&renderer.urls.absolute("sitemap.xml"), &renderer.urls.root),
    ));
    for (path, bytes) in extra {
        let (rel, entry) = staging
            .write(&path, &bytes, CachePolicy::Revalidate)
            .map_err(io(&staging.dir().join(&path)))?;
        manifest.files.insert(rel, entry);
    }

    let pages = jobs.len();
    let files = manifest.files.len() + 1;
    let bytes: u64 = manifest.files.values().map(|f| f.size).sum();
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    staging
        .write(MANIFEST, &manifest_bytes, CachePolicy::Revalidate)
        .map_err(io(&staging.dir().join(MANIFEST)))?;
    progress.phase("swap", 0);
    staging.commit().map_err(io(out))?;
    progress.finish_phase();
    Ok(BuildReport {
        pages,
        images: image_count,
        files,
        bytes: bytes + manifest_bytes.len() as u64,
        warnings: diags,
        elapsed: started.elapsed(),
    })
}
