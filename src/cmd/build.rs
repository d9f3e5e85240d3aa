//! `aurelio build`: catalog directory in, static storefront out.

use crate::progress::{CliProgress, peak_memory};
use anyhow::Context;
use aurelio_engine::{BuildError, BuildOptions, Diagnostics};
use std::path::PathBuf;

/// Arguments of `aurelio build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The catalog directory (store.json, products.jsonl, ...).
    #[arg(long)]
    pub site: PathBuf,
    /// Where the storefront goes; replaced only when the build succeeds.
    #[arg(long)]
    pub out: PathBuf,
    /// Overrides `base_url` of store.json, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Theme preset name or theme JSON file (the store's theme when absent).
    #[arg(long)]
    pub theme: Option<String>,
    /// Build from scratch, ignoring anything kept from earlier builds.
    #[arg(long)]
    pub clean: bool,
}

/// Prints diagnostics, most severe last so they stay on screen.
pub fn print_diagnostics(diags: &Diagnostics) {
    for d in diags.sorted() {
        eprintln!("{d}");
    }
}

/// Runs a build and prints its one-line summary.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let opts = BuildOptions {
        site: args.site.clone(),
        out: args.out.clone(),
        base_url: args.base_url.clone(),
        theme: args.theme.clone(),
    };
    let progress = CliProgress::new();
    match aurelio_engine::build(&opts, &progress) {
        Ok(report) => {
            print_diagnostics(&report.warnings);
            let secs = report.elapsed.as_secs_f64();
            let memory = peak_memory()
                .map(|b| format!(", peak memory {} MB", b / 1_000_000))
                .unwrap_or_default();
            println!(
                "built {} pages, {} images, {} files ({:.1} MB) in {:.2} s ({:.0} pages/s{memory}) → {}",
                report.pages,
                report.images,
                report.files,
                report.bytes as f64 / 1e6,
                secs,
                report.pages as f64 / secs.max(1e-9),
                args.out.display()
            );
            Ok(())
        }
        Err(err) => {
            if let Some(diags) = err.diagnostics() {
                print_diagnostics(diags);
            }
            let left = format!("`{}` was left unchanged", args.out.display());
            match err {
                BuildError::Catalog(_) | BuildError::Invalid(_) => {
                    Err(anyhow::anyhow!("build failed: {err}; {left}"))
                }
                other => Err(other).context(format!("build failed; {left}")),
            }
        }
    }
}
