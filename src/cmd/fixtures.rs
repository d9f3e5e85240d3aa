//! `aurelio fixtures`: writes a deterministic synthetic catalog directory.

use anyhow::Context;
use aurelio_engine::fixtures::{self, FixtureOptions};
use std::path::PathBuf;

/// Arguments of `aurelio fixtures`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of products.
    #[arg(long, default_value_t = 1000)]
    pub products: usize,
    /// Output directory.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Seed; the same seed writes the same catalog.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Distinct source images to generate (shared round-robin by products).
    #[arg(long, default_value_t = 0)]
    pub images: usize,
}

/// Writes the catalog and says where.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let opts = FixtureOptions { products: args.products, seed: args.seed, images: args.images };
    fixtures::write(&args.out, &opts)
        .with_context(|| format!("cannot write fixtures to `{}`", args.out.display()))?;
    println!(
        "wrote {} products and {} images (seed {}) to {}",
        args.products,
        args.images,
        args.seed,
        args.out.display()
    );
    Ok(())
}
