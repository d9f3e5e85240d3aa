//! `aurelio feed`: writes one product feed of a catalog directory (Google, Meta, TikTok),
//! or checks a feed file against its channel's rules (`aurelio feed check`).

use anyhow::{Context, bail};
use aurelio_engine::catalog;
use aurelio_engine::feeds::{self, Channel, Format, Sources, check};
use aurelio_engine::render::Urls;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `aurelio feed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: FeedCommand,
}

/// What `aurelio feed` does.
#[derive(Debug, clap::Subcommand)]
pub enum FeedCommand {
    /// Google Merchant Center feed (RSS 2.0 XML with the `g:` namespace).
    Google(GenerateArgs),
    /// Meta (Facebook, Instagram) catalog feed (CSV).
    Meta(GenerateArgs),
    /// TikTok catalog feed (the CSV template; `--format json` for the JSON rendering).
    Tiktok(TiktokArgs),
    /// Check a feed file against its channel's rules; exits non-zero on errors.
    Check(CheckArgs),
}

/// Arguments of a feed generation.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The catalog directory.
    #[arg(long)]
    pub site: PathBuf,
    /// Write the feed to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overrides `base_url` of `store.json` (as `aurelio build --base-url` does).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Image cache shared with builds (default `<site>/.aurelio/cache`).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Arguments of `aurelio feed tiktok`.
#[derive(Debug, clap::Args)]
pub struct TiktokArgs {
    #[command(flatten)]
    pub common: GenerateArgs,
    /// `csv` (the template TikTok ingests) or `json`.
    #[arg(long, default_value = "csv")]
    pub format: String,
}

/// Arguments of `aurelio feed check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The feed file.
    pub file: PathBuf,
    /// `google`, `meta` or `tiktok`; detected from the content when absent.
    #[arg(long)]
    pub channel: Option<String>,
}

/// Runs the feed command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        FeedCommand::Google(a) => generate(a, Format::GoogleXml),
        FeedCommand::Meta(a) => generate(a, Format::MetaCsv),
        FeedCommand::Tiktok(a) => match a.format.as_str() {
            "csv" => generate(&a.common, Format::TiktokCsv),
            "json" => generate(&a.common, Format::TiktokJson),
            other => bail!("unknown format `{other}`, expected `csv` or `json`"),
        },
        FeedCommand::Check(a) => run_check(a),
    }
}

fn generate(args: &GenerateArgs, format: Format) -> anyhow::Result<()> {
    let started = Instant::now();
    let loaded = match catalog::load(&args.site) {
        Ok(loaded) => loaded,
        Err(catalog::CatalogError::Invalid(diags)) => {
            eprint!("{diags}");
            bail!("the catalog in `{}` has {} error(s)", args.site.display(), diags.error_count());
        }
        Err(e) => return Err(e.into()),
    };
    if !loaded.warnings.is_empty() {
        eprint!("{}", loaded.warnings);
    }
    let mut catalog = loaded.catalog;
    if let Some(url) = &args.base_url {
        catalog::check_base_url(url).map_err(|m| anyhow::anyhow!("--base-url: {m}"))?;
        catalog.store.base_url = url.trim_end_matches('/').to_owned();
    }
    let cache_dir =
        args.cache_dir.clone().unwrap_or_else(|| args.site.join(".aurelio").join("cache"));
    let images = feeds::published_images(&catalog, &cache_dir).map_err(|diags| {
        eprint!("{diags}");
        anyhow::anyhow!("{} image error(s)", diags.error_count())
    })?;
    let urls = Urls::new(&catalog.store.base_url);
    let sources = Sources { catalog: &catalog, images: &images, urls: &urls };
    let report = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let report = feeds::write(&sources, format, &mut out)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            out.flush().with_context(|| format!("cannot write `{}`", path.display()))?;
            report
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            feeds::write(&sources, format, &mut out).context("cannot write the feed")?
        }
    };
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if report.skipped > report.warnings.len() {
        eprintln!("warning: {} more variants left out", report.skipped - report.warnings.len());
    }
    if !catalog.store.feeds.channels.contains(&format.channel()) {
        eprintln!(
            "warning: the {} feed is switched off in `store.json` (`feeds.channels`); the built site does not carry it",
            format.channel().name()
        );
    }
    eprintln!(
        "{} feed: {} items from {} products ({} excluded, {} variants left out), {} bytes in {} ms",
        format.channel().name(),
        report.items,
        report.products,
        report.excluded,
        report.skipped,
        report.bytes,
        started.elapsed().as_millis()
    );
    Ok(())
}

fn run_check(args: &CheckArgs) -> anyhow::Result<()> {
    let path = &args.file;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let start = reader.fill_buf().with_context(|| format!("cannot read `{}`", path.display()))?;
    let (channel, syntax) = match &args.channel {
        Some(name) => {
            let channel = Channel::from_name(name).with_context(|| {
                format!("unknown channel `{name}`, expected `google`, `meta` or `tiktok`")
            })?;
            (channel, check::syntax_for(channel, start))
        }
        None => check::detect(start).with_context(|| {
            format!(
                "cannot tell the channel of `{}` from its content; pass --channel google|meta|tiktok",
                path.display()
            )
        })?,
    };
    let report = check::check(reader.by_ref(), channel, syntax)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let name = display_name(path);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for problem in &report.problems {
        writeln!(out, "{name}: {problem}")?;
    }
    writeln!(
        out,
        "{name}: {} feed, {} items, {} errors, {} warnings",
        channel.name(),
        report.items,
        report.errors(),
        report.warnings()
    )?;
    out.flush()?;
    if report.errors() > 0 {
        bail!("`{name}` does not pass the {} feed rules", channel.name());
    }
    Ok(())
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}
