//! `aurelio bench`: measures builds of a synthetic catalog. Without `--incremental`, clean
//! builds (pages per second, peak memory); with it, the incremental cycle a merchant lives
//! in: cold build with images, warm rebuild, a single-product change (one-shot, in a
//! long-lived session, and end to end through `aurelio watch`), a no-op. Results belong in
//! `docs/benchmarks.md`.

use crate::progress::peak_memory;
use anyhow::Context;
use aurelio_engine::fixtures::{self, FixtureOptions};
use aurelio_engine::{BuildOptions, BuildReport, Session, Silent};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Arguments of `aurelio bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Products in the synthetic catalog.
    #[arg(long, default_value_t = 10_000)]
    pub products: usize,
    /// Distinct source images in the catalog (800×800 JPEGs shared round-robin).
    #[arg(long, default_value_t = 0)]
    pub images: usize,
    /// Clean builds to time (build mode), or single-product changes to time on each path
    /// (incremental mode).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measure the incremental cycle instead of clean builds.
    #[arg(long)]
    pub incremental: bool,
    /// Working directory [default: a temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Incremental mode: keep the image cache an earlier run left in `--dir`, so the first
    /// build encodes nothing (it is then reported as a warm first build, not a cold one).
    #[arg(long)]
    pub reuse_cache: bool,
    /// Switch the store's product feeds off (`"feeds": {"channels": []}` in store.json), to
    /// measure the site without them.
    #[arg(long)]
    pub no_feeds: bool,
    /// Incremental mode: time only the long-lived session's changes (after the first
    /// build), e.g. to profile them.
    #[arg(long)]
    pub session_only: bool,
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
    if args.no_feeds {
        let path = site.join("store.json");
        let mut store: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        store["feeds"] = serde_json::json!({"channels": []});
        std::fs::write(&path, serde_json::to_vec_pretty(&store)?)?;
    }
    println!(
        "catalog: {} products, {} source images, feeds {}, {} cores",
        args.products,
        args.images,
        if args.no_feeds { "off" } else { "on (all channels)" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if args.incremental { incremental(args, &dir, &site) } else { clean_builds(args, &dir, &site) }
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

fn incremental(args: &Args, dir: &Path, site: &Path) -> anyhow::Result<()> {
    let cache = dir.join("cache");
    if !args.reuse_cache {
        let _ = std::fs::remove_dir_all(&cache);
    }
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let cold = build(site, &out, &cache, true)?;
    let secs = cold.elapsed.as_secs_f64();
    println!(
        "{} build with images: {} pages, {} images encoded ({} files) in {secs:.2} s = {:.1} images/s",
        if args.reuse_cache { "first (image cache reused)" } else { "cold" },
        cold.pages,
        cold.images.encoded,
        cold.images.files,
        cold.images.encoded as f64 / secs
    );
    if !args.session_only {
        one_shot_path(args, dir, site, &out, &cache)?;
    }
    session_path(args, site, &out, &cache)?;
    if !args.session_only {
        watch_path(args, dir, site, &cache)?;
    }
    Ok(())
}

/// The incremental cycle through one-shot builds, as `aurelio build` runs them.
fn one_shot_path(
    args: &Args,
    dir: &Path,
    site: &Path,
    out: &Path,
    cache: &Path,
) -> anyhow::Result<()> {
    let warm_out = dir.join("out-warm");
    let _ = std::fs::remove_dir_all(&warm_out);
    let warm = build(site, &warm_out, cache, true)?;
    println!(
        "clean rebuild, warm image cache: {} images encoded, {} from cache, {} pages in {:.0} ms",
        warm.images.encoded,
        warm.images.cached,
        warm.pages,
        ms(&warm)
    );
    let _ = std::fs::remove_dir_all(&warm_out);
    let noop = build(site, out, cache, false)?;
    println!(
        "no-op rebuild: {} rendered, {} files written in {:.0} ms",
        noop.rendered,
        noop.written,
        ms(&noop)
    );
    print_steps(&noop);
    let products = site.join("products.jsonl");
    let target = fixtures::handle(args.products / 2);
    // The first change moves the product into the rule-based `under-40` collection, which
    // shifts that whole listing; the timed changes after it keep the product there.
    set_price(&products, &target, "1.99")?;
    let one = build(site, out, cache, false)?;
    println!(
        "single-product change ({target}) into a rule-based collection: {} pages rendered, {} files written, in place: {} in {:.0} ms",
        one.rendered,
        one.written,
        !one.staged,
        ms(&one)
    );
    let mut one_shot = Vec::new();
    for _ in 0..args.runs.max(1) {
        set_price(&products, &target, &next_price(&products, &target)?)?;
        one_shot.push(build(site, out, cache, false)?);
    }
    report_changes("one-shot `aurelio build`", &one_shot);
    Ok(())
}

/// The same changes inside a long-lived session (`aurelio watch`, the API's rebuilds).
fn session_path(args: &Args, site: &Path, out: &Path, cache: &Path) -> anyhow::Result<()> {
    let products = site.join("products.jsonl");
    let target = fixtures::handle(args.products / 2);
    // The same change inside a long-lived session (`aurelio watch`, the API's rebuilds):
    // what the session keeps from build to build is reused, and the feeds the change
    // affects follow the pages (`Session::finish_feeds`) instead of holding them up.
    // What the one-shot runs wrote (their feeds: 150 MB each at 10,000 products) is
    // written back first, so that it does not compete with the session's changes.
    rustix::fs::sync();
    let mut session = Session::deferring_feeds();
    // The product goes into `under-40` first (a no-op when the one-shot path put it there).
    set_price(&products, &target, "1.99")?;
    let first = build_in(&mut session, site, out, cache, false)?;
    println!("first build of a session (no-op): {:.0} ms", ms(&first));
    let mut watched = Vec::new();
    for _ in 0..args.runs.max(1) {
        set_price(&products, &target, &next_price(&products, &target)?)?;
        // What the previous change left (replaced files, the state file) is deleted and
        // written first, so that it does not compete with the change being timed: edits
        // come seconds apart, not back to back.
        session.wait_for_cleanup();
        watched.push(build_in(&mut session, site, out, cache, false)?);
    }
    report_changes("long-lived `Session` (watch)", &watched);
    // The feeds follow once the changes stop (`aurelio watch` and the API wait for a quiet
    // moment), so a burst of changes regenerates them once.
    session.wait_for_cleanup();
    rustix::fs::sync();
    if let Some(feeds) = session.finish_feeds().map_err(|e| anyhow::anyhow!("{e}"))? {
        println!(
            "  then the feeds ({}) in {:.0} ms",
            feeds.written.join(", "),
            feeds.elapsed.as_secs_f64() * 1000.0
        );
    }
    println!("peak memory {} MB", peak_memory().unwrap_or(0) / 1_000_000);
    Ok(())
}

/// The same change end to end through `aurelio watch`, as a designer or merchant sees it:
/// from saving `products.jsonl` to the preview server answering with the new price (the
/// file event, the settle time, the rebuild, the HTTP answer).
fn watch_path(args: &Args, dir: &Path, site: &Path, cache: &Path) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let out = dir.join("out-watch");
    let _ = std::fs::remove_dir_all(&out);
    let mut child = Command::new(std::env::current_exe()?)
        .arg("watch")
        .args(["--site".as_ref(), site.as_os_str(), "--out".as_ref(), out.as_os_str()])
        .args(["--cache-dir".as_ref(), cache.as_os_str()])
        .args(["--listen", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start `aurelio watch`")?;
    let (lines, printed) = mpsc::channel();
    let stdout = child.stdout.take().context("no stdout")?;
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let timed = watch_changes(args, site, port, &printed);
    let _ = child.kill();
    let _ = child.wait();
    let times = timed?;
    let mut sorted = times.clone();
    sorted.sort();
    let shown: Vec<String> =
        times.iter().map(|t| format!("{:.0}", t.as_secs_f64() * 1e3)).collect();
    println!(
        "single-product change, end to end through `aurelio watch` (save → page served): median {:.0} ms over {} runs ({} ms)",
        sorted[sorted.len() / 2].as_secs_f64() * 1e3,
        times.len(),
        shown.join(", ")
    );
    Ok(())
}

/// `watch_path`'s timed changes, once the watcher has made its first build.
fn watch_changes(
    args: &Args,
    site: &Path,
    port: u16,
    printed: &mpsc::Receiver<String>,
) -> anyhow::Result<Vec<Duration>> {
    // Each change waits for the feeds of the one before (a second of quiet, then their
    // regeneration): edits come seconds apart.
    let settled = |what: &str| -> anyhow::Result<()> {
        loop {
            let line = printed
                .recv_timeout(Duration::from_secs(120))
                .with_context(|| format!("`aurelio watch` printed no `{what}` line"))?;
            if line.starts_with(what) {
                return Ok(());
            }
        }
    };
    settled("preview:")?; // after a first build with its feeds
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    aurelio_engine::publish::install_crypto_provider();
    let client = reqwest::Client::new();
    let products = site.join("products.jsonl");
    let target = fixtures::handle(args.products / 2);
    let url = format!("http://127.0.0.1:{port}/products/{target}/");
    let mut times = Vec::new();
    for _ in 0..args.runs.max(1) {
        let price = next_price(&products, &target)?;
        // The first variant's price as the page's variant picker carries it, in cents.
        let marker = format!("data-price=\"{}\"", price.replace('.', "").trim_start_matches('0'));
        let edited = with_price(&std::fs::read_to_string(&products)?, &target, &price);
        let saved = Instant::now();
        std::fs::write(&products, edited)?;
        loop {
            let page = runtime.block_on(async { client.get(&url).send().await?.text().await });
            if page.is_ok_and(|p| p.contains(&marker)) {
                break;
            }
            anyhow::ensure!(saved.elapsed() < Duration::from_secs(30), "the page never changed");
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(saved.elapsed());
        settled("feeds:")?;
    }
    Ok(times)
}

fn ms(report: &BuildReport) -> f64 {
    report.elapsed.as_secs_f64() * 1000.0
}

/// The steps of a build and their times, indented under its line.
fn print_steps(report: &BuildReport) {
    println!("  steps (ms): {}", report.timings.summary());
}

/// Each timed change, then the median, with the steps of the median run.
fn report_changes(path: &str, reports: &[BuildReport]) {
    for (i, r) in reports.iter().enumerate() {
        println!(
            "  {path} run {}: {} pages rendered, {} files written, in place: {} in {:.0} ms",
            i + 1,
            r.rendered,
            r.written,
            !r.staged,
            ms(r)
        );
    }
    let mut order: Vec<&BuildReport> = reports.iter().collect();
    order.sort_by_key(|r| r.elapsed);
    let median = order[order.len() / 2];
    println!(
        "single-product change, {path}: median {:.0} ms over {} runs ({} pages rendered)",
        ms(median),
        reports.len(),
        median.rendered
    );
    print_steps(median);
}

/// A new price for the first variant of product `handle`: 50 cents more than now, kept
/// under 40.00 so the product stays in the `under-40` collection.
fn next_price(products: &Path, handle: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(products)?;
    let needle = format!("\"handle\":\"{handle}\"");
    let line = text.lines().find(|l| l.contains(&needle)).context("no such product")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let price = v["variants"][0]["price"].as_str().context("no price")?;
    let (units, cents) = price.split_once('.').context("price without cents")?;
    let now = units.parse::<u32>()? * 100 + cents.parse::<u32>()?;
    let next = if now + 50 >= 4000 { 249 } else { now + 50 };
    Ok(format!("{}.{:02}", next / 100, next % 100))
}

/// Sets the first variant's price of product `handle` in `products.jsonl`.
fn set_price(products: &Path, handle: &str, price: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(products)?;
    std::fs::write(products, with_price(&text, handle, price))?;
    Ok(())
}

/// `products.jsonl` text with the first variant's price of product `handle` set.
fn with_price(text: &str, handle: &str, price: &str) -> String {
    let needle = format!("\"handle\":\"{handle}\"");
    text.lines()
        .map(|line| {
            if line.contains(&needle) {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                v["variants"][0]["price"] = serde_json::Value::String(price.into());
                format!("{v}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}
