//! `aurelio bench`: measures builds of a synthetic catalog. Without `--incremental`, clean
//! builds (pages per second, peak memory); with it, the incremental cycle a merchant lives
//! in: cold build with images, warm rebuild, a single-product change, a no-op. Results
//! belong in `docs/benchmarks.md`.

use crate::progress::peak_memory;
use anyhow::Context;
use aurelio_engine::fixtures::{self, FixtureOptions};
use aurelio_engine::{BuildOptions, BuildReport, Session, Silent};
use std::path::{Path, PathBuf};

/// Arguments of `aurelio bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Products in the synthetic catalog.
    #[arg(long, default_value_t = 10_000)]
    pub products: usize,
    /// Distinct source images in the catalog (800×800 JPEGs shared round-robin).
    #[arg(long, default_value_t = 0)]
    pub images: usize,
    /// Clean builds to time (build mode).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measure the incremental cycle instead of clean builds.
    #[arg(long)]
    pub incremental: bool,
    /// Working directory (a temporary one when absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Generates the catalog once, then measures.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
            tmp.path().to_owned()
        }
    };
    let site = dir.join("catalog");
    fixtures::write(
        &site,
        &FixtureOptions { products: args.products, seed: 1, images: args.images },
    )?;
    println!(
        "catalog: {} products, {} source images, {} cores",
        args.products,
        args.images,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if args.incremental { incremental(&dir, &site) } else { clean_builds(args, &dir, &site) }
}

fn build(site: &Path, out: &Path, cache: &Path, clean: bool) -> anyhow::Result<BuildReport> {
    build_in(&mut Session::default(), site, out, cache, clean)
}

fn build_in(
    session: &mut Session,
    site: &Path,
    out: &Path,
    cache: &Path,
    clean: bool,
) -> anyhow::Result<BuildReport> {
    let opts = BuildOptions {
        site: site.to_owned(),
        out: out.to_owned(),
        clean,
        cache_dir: Some(cache.to_owned()),
        ..BuildOptions::default()
    };
    aurelio_engine::build_in(session, &opts, &Silent).map_err(|e| anyhow::anyhow!("{e}"))
}

fn clean_builds(args: &Args, dir: &Path, site: &Path) -> anyhow::Result<()> {
    let before = peak_memory().unwrap_or(0);
    let mut rates = Vec::new();
    for run in 1..=args.runs.max(1) {
        // A fresh directory per run: deleting a large tree just before writing one makes
        // ext4 search its recently freed inodes, which measures the file system, not us.
        let out = dir.join(format!("out-{run}"));
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        let report = build(site, &out, &dir.join("cache"), true)?;
        let secs = report.elapsed.as_secs_f64();
        let rate = report.pages as f64 / secs;
        println!("run {run}: {} pages in {secs:.3} s = {rate:.0} pages/s", report.pages);
        rates.push(rate);
    }
    for run in 1..=args.runs.max(1) {
        let _ = std::fs::remove_dir_all(dir.join(format!("out-{run}")));
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "clean build: median {:.0} pages/s, best {:.0} pages/s, peak memory {} MB (before builds {} MB)",
        rates[rates.len() / 2],
        rates[rates.len() - 1],
        peak_memory().unwrap_or(0) / 1_000_000,
        before / 1_000_000,
    );
    Ok(())
}

fn incremental(dir: &Path, site: &Path) -> anyhow::Result<()> {
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let cold = build(site, &out, &cache, true)?;
    let secs = cold.elapsed.as_secs_f64();
    println!(
        "cold build with images: {} pages, {} images encoded ({} files) in {secs:.2} s = {:.1} images/s",
        cold.pages,
        cold.images.encoded,
        cold.images.files,
        cold.images.encoded as f64 / secs
    );
    let warm_out = dir.join("out-warm");
    let _ = std::fs::remove_dir_all(&warm_out);
    let warm = build(site, &warm_out, &cache, true)?;
    println!(
        "clean rebuild, warm image cache: {} images encoded, {} from cache, {} pages in {:.0} ms",
        warm.images.encoded,
        warm.images.cached,
        warm.pages,
        warm.elapsed.as_secs_f64() * 1000.0
    );
    let _ = std::fs::remove_dir_all(&warm_out);
    let noop = build(site, &out, &cache, false)?;
    println!(
        "no-op rebuild: {} rendered, {} files written in {:.0} ms",
        noop.rendered,
        noop.written,
        noop.elapsed.as_secs_f64() * 1000.0
    );
    let products = site.join("products.jsonl");
    let text = std::fs::read_to_string(&products)?;
    let target = fixtures::handle(text.lines().count() / 2);
    let edited: String = text
        .lines()
        .map(|line| {
            if line.contains(&format!("\"handle\":\"{target}\"")) {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                v["variants"][0]["price"] = serde_json::Value::String("1.99".into());
                format!("{v}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&products, edited)?;
    let one = build(site, &out, &cache, false)?;
    println!(
        "single-product change ({target}): {} pages rendered, {} files written, in place: {} in {:.0} ms",
        one.rendered,
        one.written,
        !one.staged,
        one.elapsed.as_secs_f64() * 1000.0
    );
    // The same change inside a long-lived session (`aurelio watch`): parsed products are
    // kept, so only the edited line is parsed again.
    let mut session = Session::default();
    let warmup = build_in(&mut session, site, &out, &cache, false)?;
    let edited_again =
        std::fs::read_to_string(&products)?.replace("\"price\":\"1.99\"", "\"price\":\"2.49\"");
    std::fs::write(&products, edited_again)?;
    let watched = build_in(&mut session, site, &out, &cache, false)?;
    println!(
        "single-product change in a watch session: {} pages rendered, {} files written in {:.0} ms (no-op in session {:.0} ms)",
        watched.rendered,
        watched.written,
        watched.elapsed.as_secs_f64() * 1000.0,
        warmup.elapsed.as_secs_f64() * 1000.0
    );
    println!("peak memory {} MB", peak_memory().unwrap_or(0) / 1_000_000);
    Ok(())
}
