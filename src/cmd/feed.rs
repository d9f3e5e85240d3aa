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
    /// Measure feed generation on a synthetic catalog (results go in docs/benchmarks.md).
    Bench(BenchArgs),
}

/// Arguments of `aurelio feed bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Products in the synthetic catalog.
    #[arg(long, default_value_t = 100_000)]
    pub products: usize,
    /// Distinct source images (products share them round-robin; every item needs one).
    #[arg(long, default_value_t = 20)]
    pub images: usize,
    /// Timed runs per format.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Working directory; feeds are written into it [default: a temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Time only this channel (`google`, `meta`, `tiktok`; repeatable) [default: all].
    #[arg(long)]
    pub channel: Vec<String>,
}

/// Arguments of a feed generation.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The catalog directory.
    #[arg(long, default_value = ".")]
    pub site: PathBuf,
    /// The file to write the feed to [default: standard output].
    #[arg(short, long, alias = "output")]
    pub out: Option<PathBuf>,
    /// The site's address, as `aurelio build --base-url` [default: `base_url` of store.json].
    #[arg(long)]
    pub base_url: Option<String>,
    /// Image cache shared with builds [default: <site>/.aurelio/cache].
    #[arg(long, alias = "cache", env = "AURELIO_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Arguments of `aurelio feed tiktok`.
#[derive(Debug, clap::Args)]
pub struct TiktokArgs {
    #[command(flatten)]
    pub common: GenerateArgs,
    /// `csv` (the template TikTok ingests) or `json`.
    #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
    pub format: String,
}

/// Arguments of `aurelio feed check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The feed file.
    pub file: PathBuf,
    /// `google`, `meta` or `tiktok` [default: detected from the content].
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
        FeedCommand::Bench(a) => bench(a),
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
    let report = match &args.out {
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
        "{} feed: {} items from {} products ({} excluded, {} variants left out), {} bytes in {} ms{}",
        format.channel().name(),
        report.items,
        report.products,
        report.excluded,
        report.skipped,
        report.bytes,
        started.elapsed().as_millis(),
        args.out.as_ref().map(|p| format!(" → {}", p.display())).unwrap_or_default()
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

/// Resident memory now (`VmRSS`), in bytes.
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time of the process so far (user plus system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `) `.
    let fields: Vec<&str> =
        stat.rsplit_once(") ").map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime, fields 14 and 15 of the line: indices 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Generates a catalog, loads it and its images once, then times every feed format
/// written to a file: wall time, items per second, and memory before and after.
fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    use aurelio_engine::fixtures::{self, FixtureOptions};
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
            tmp.path().to_owned()
        }
    };
    let site = dir.join("catalog");
    let opts = FixtureOptions { products: args.products, seed: 1, images: args.images };
    fixtures::write(&site, &opts)?;
    let started = Instant::now();
    let catalog = catalog::load(&site).map_err(|e| anyhow::anyhow!("{e}"))?.catalog;
    let load_ms = started.elapsed().as_millis();
    let images = feeds::published_images(&catalog, &dir.join("cache"))
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let urls = Urls::new(&catalog.store.base_url);
    let sources = Sources { catalog: &catalog, images: &images, urls: &urls };
    let variants: usize = catalog.products.iter().map(|p| p.variants.len()).sum();
    let mb = |b: Option<u64>| b.unwrap_or(0) / 1_000_000;
    println!(
        "catalog: {} products, {variants} variants, {} images, {} cores; loaded in {load_ms} ms; resident {} MB, peak {} MB",
        args.products,
        args.images,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mb(resident_memory()),
        mb(crate::progress::peak_memory()),
    );
    let formats = [Format::GoogleXml, Format::MetaCsv, Format::TiktokCsv, Format::TiktokJson];
    let chosen = args
        .channel
        .iter()
        .map(|name| {
            Channel::from_name(name).with_context(|| {
                format!("unknown channel `{name}`, expected `google`, `meta` or `tiktok`")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for format in formats.into_iter().filter(|f| chosen.is_empty() || chosen.contains(&f.channel()))
    {
        let mut times = Vec::new();
        let cpu_before = cpu_seconds();
        let mut report = feeds::FeedReport::default();
        let path = dir.join(format.site_path().replace('/', "-"));
        for _ in 0..args.runs.max(1) {
            // Each run writes a new file, as a build does (into its staging directory);
            // freeing the previous run's pages is not part of generating a feed.
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            let started = Instant::now();
            let file = std::fs::File::create(&path)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            report = feeds::write(&sources, format, &mut out)?;
            out.flush()?;
            times.push(started.elapsed().as_secs_f64());
        }
        let cpu = (cpu_seconds() - cpu_before) / times.len() as f64;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{:<18} {} items, {:.1} MB in {:.0} ms (median of {}, best {:.0} ms, CPU {:.0} ms) = {:.0} items/s; resident {} MB, peak {} MB",
            format.site_path(),
            report.items,
            report.bytes as f64 / 1e6,
            median * 1000.0,
            times.len(),
            times[0] * 1000.0,
            cpu * 1000.0,
            report.items as f64 / median,
            mb(resident_memory()),
            mb(crate::progress::peak_memory()),
        );
    }
    Ok(())
}
