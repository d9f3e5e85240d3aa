//! `aurelio bench`: clean builds of a synthetic catalog, reporting pages per second and
//! peak memory. Results belong in `docs/benchmarks.md`.

use crate::progress::peak_memory;
use anyhow::Context;
use aurelio_engine::fixtures::{self, FixtureOptions};
use aurelio_engine::{BuildOptions, Silent};
use std::path::PathBuf;

/// Arguments of `aurelio bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Products in the synthetic catalog.
    #[arg(long, default_value_t = 10_000)]
    pub products: usize,
    /// Clean builds to time.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Working directory (a temporary one when absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Generates the catalog once, then times `runs` clean builds.
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
    fixtures::write(&site, &FixtureOptions { products: args.products, seed: 1, images: 0 })?;
    let before = peak_memory().unwrap_or(0);
    let mut rates = Vec::new();
    for run in 1..=args.runs.max(1) {
        // A fresh directory per run: deleting a large tree just before writing one makes
        // ext4 search its recently freed inodes, which measures the file system, not us.
        let out = dir.join(format!("out-{run}"));
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        let opts =
            BuildOptions { site: site.clone(), out, base_url: None, ..BuildOptions::default() };
        let report = aurelio_engine::build(&opts, &Silent).map_err(|e| anyhow::anyhow!("{e}"))?;
        let secs = report.elapsed.as_secs_f64();
        let rate = report.pages as f64 / secs;
        println!("run {run}: {} pages in {secs:.3} s = {rate:.0} pages/s", report.pages);
        rates.push(rate);
    }
    for run in 1..=args.runs.max(1) {
        let _ = std::fs::remove_dir_all(dir.join(format!("out-{run}")));
    }
    rates.sort_by(f64::total_cmp);
    let peak = peak_memory().unwrap_or(0);
    println!(
        "products {}: median {:.0} pages/s, best {:.0} pages/s, peak memory {} MB (before builds {} MB), {} cores",
        args.products,
        rates[rates.len() / 2],
        rates[rates.len() - 1],
        peak / 1_000_000,
        before / 1_000_000,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
