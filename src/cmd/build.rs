//! `aurelio build`: catalog directory in, static storefront out.

use crate::progress::{CliProgress, peak_memory};
use anyhow::Context;
use aurelio_engine::{BuildError, BuildOptions, Diagnostics};
use std::path::PathBuf;

/// What every building command takes: the catalog, the output, the theme, the cache.
#[derive(Debug, clap::Args)]
pub struct SiteArgs {
    /// The catalog directory (store.json, products.jsonl, ...).
    #[arg(long, default_value = ".")]
    pub site: PathBuf,
    /// Where the storefront goes; changed only when a build succeeds.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Theme preset name or theme JSON file [default: the store's theme].
    #[arg(long)]
    pub theme: Option<String>,
    /// Cache directory for encoded images and build state [default: <site>/.aurelio/cache].
    #[arg(long, alias = "cache", env = "AURELIO_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl SiteArgs {
    /// Build options for these arguments.
    pub fn options(&self, base_url: Option<String>, clean: bool) -> BuildOptions {
        BuildOptions {
            site: self.site.clone(),
            out: self.out.clone(),
            base_url,
            theme: self.theme.clone(),
            clean,
            cache_dir: self.cache_dir.clone(),
        }
    }
}

/// Arguments of `aurelio build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    site: SiteArgs,
    /// The site's address, e.g. `http://127.0.0.1:8080` [default: `base_url` of store.json].
    #[arg(long)]
    pub base_url: Option<String>,
    /// Build from scratch, ignoring the previous output (encoded images stay cached).
    #[arg(long)]
    pub clean: bool,
}

/// The one-line summary of a build.
pub fn summary(report: &aurelio_engine::BuildReport) -> String {
    let ms = report.elapsed.as_secs_f64() * 1000.0;
    let memory =
        peak_memory().map(|b| format!(", peak memory {} MB", b / 1_000_000)).unwrap_or_default();
    let feeds = if report.feeds_pending.is_empty() {
        String::new()
    } else {
        format!("; {} feeds follow", report.feeds_pending.len())
    };
    format!(
        "built {} pages: {} rendered, {} unchanged, {} removed; {} images ({} encoded, {} cached); {} files written of {} ({:.1} MB) in {ms:.0} ms{memory}{feeds}",
        report.pages,
        report.rendered,
        report.unchanged,
        report.removed,
        report.images.images,
        report.images.encoded,
        report.images.cached,
        report.written,
        report.files,
        report.bytes as f64 / 1e6,
    )
}

/// Prints diagnostics, most severe last so they stay on screen.
pub fn print_diagnostics(diags: &Diagnostics) {
    for d in diags.sorted() {
        eprintln!("{d}");
    }
}

/// Runs a build and prints its one-line summary.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let opts = args.site.options(args.base_url.clone(), args.clean);
    let progress = CliProgress::new();
    match aurelio_engine::build(&opts, &progress) {
        Ok(report) => {
            print_diagnostics(&report.warnings);
            println!("{} → {}", summary(&report), opts.out.display());
            if std::env::var_os("AURELIO_TIMINGS").is_some() {
                eprintln!("steps (ms): {}", report.timings.summary());
            }
            Ok(())
        }
        Err(err) => {
            if let Some(diags) = err.diagnostics() {
                print_diagnostics(diags);
            }
            let left = format!("`{}` was left unchanged", opts.out.display());
            match err {
                BuildError::Catalog(_) | BuildError::Invalid(_) => {
                    Err(anyhow::anyhow!("build failed: {err}; {left}"))
                }
                other => Err(other).context(format!("build failed; {left}")),
            }
        }
    }
}
