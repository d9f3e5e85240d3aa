//! `aurelio watch`: rebuilds on every change to the catalog directory (catalog files,
//! images, the shop's templates and theme) and serves a live-reloading preview.
//!
//! File events are debounced; each rebuild is incremental. A failed build is printed here
//! and shown as an overlay in the browser, and watching goes on.

use crate::cmd::build::{SiteArgs, print_diagnostics, summary};
use crate::progress::CliProgress;
use anyhow::Context;
use aurelio_api::preview::{self, PreviewEvent};
use aurelio_engine::{BuildOptions, Session};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Quiet time after the last file event before rebuilding: enough for an editor's save
/// (a write and a rename, or a burst of writes) to land whole, too short to be felt.
const SETTLE: Duration = Duration::from_millis(20);
/// A rebuild starts at the latest this long after the first event of a burst that does
/// not settle (a checkout of many files).
const SETTLE_AT_MOST: Duration = Duration::from_millis(500);
/// Quiet time after a rebuild before the product feeds it left out of date follow: a run
/// of edits regenerates them once.
const FEEDS_QUIET: Duration = Duration::from_secs(1);
/// How often the loop looks up from waiting for file events (to stop, to finish feeds).
const POLL: Duration = Duration::from_millis(250);

/// Arguments of `aurelio watch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    site: SiteArgs,
    /// Port of the preview server (127.0.0.1).
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
}

/// Builds, serves, and rebuilds on change until Ctrl-C.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let base_url = format!("http://127.0.0.1:{}", args.port);
    let opts = args.site.options(Some(base_url.clone()), false);
    let (events, _) = broadcast::channel(16);
    let mut session = Session::deferring_feeds();
    rebuild(&mut session, &opts, &events);
    if !opts.out.join("index.html").is_file() {
        std::fs::create_dir_all(&opts.out)?;
    }

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", args.port)))
        .with_context(|| format!("cannot listen on port {}", args.port))?;
    let app = preview::app(opts.out.clone(), events.clone());
    runtime.spawn(async move {
        if let Err(e) = aurelio_api::serve(listener, app).await {
            eprintln!("error: the preview server stopped: {e}");
        }
    });
    // Ctrl-C or SIGTERM ends the watch (the preview's live-reload streams never end, so
    // the server's own graceful shutdown would wait for them forever).
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    runtime.spawn(async move {
        aurelio_api::shutdown_signal().await;
        stopping.store(true, Ordering::SeqCst);
    });
    println!("preview: {base_url}/  (watching {}; Ctrl-C to stop)", opts.site.display());

    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .context("cannot start the file watcher")?;
    watcher
        .watch(&opts.site, RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch `{}`", opts.site.display()))?;
    if let Some(theme) = opts.theme.as_deref().map(Path::new).filter(|p| p.is_file()) {
        watcher.watch(theme, RecursiveMode::NonRecursive)?;
    }
    let ignored = Ignored::new(&opts);
    let mut last_change = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            finish_feeds(&mut session);
            println!("stopped");
            return Ok(());
        }
        // Wait for a relevant change, then for quiet; feeds a rebuild left out of date
        // follow once nothing changed for a moment.
        let first = match rx.recv_timeout(POLL) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if last_change.elapsed() >= FEEDS_QUIET {
                    finish_feeds(&mut session);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the file watcher stopped")
            }
        };
        if !ignored.relevant(&first) {
            continue;
        }
        let mut changed = settle(paths(&first), &rx, |e| ignored.relevant(e));
        changed.sort();
        changed.dedup();
        let shown: Vec<String> = changed.iter().take(3).map(|p| p.display().to_string()).collect();
        println!("changed: {}{}", shown.join(", "), if changed.len() > 3 { ", …" } else { "" });
        rebuild(&mut session, &opts, &events);
        last_change = Instant::now();
    }
}

/// The paths of a burst of file events that began with `first`: gathered until no relevant
/// event came for `SETTLE`, or `SETTLE_AT_MOST` after the start.
fn settle(
    mut changed: Vec<PathBuf>,
    rx: &mpsc::Receiver<notify::Result<notify::Event>>,
    relevant: impl Fn(&notify::Result<notify::Event>) -> bool,
) -> Vec<PathBuf> {
    let latest = Instant::now() + SETTLE_AT_MOST;
    let mut quiet_until = Instant::now() + SETTLE;
    loop {
        let wait = quiet_until.min(latest).saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return changed;
        }
        match rx.recv_timeout(wait) {
            Ok(event) if relevant(&event) => {
                changed.extend(paths(&event));
                quiet_until = Instant::now() + SETTLE;
            }
            Ok(_) => {}
            Err(_) => return changed,
        }
    }
}

fn paths(event: &notify::Result<notify::Event>) -> Vec<PathBuf> {
    event.as_ref().map(|e| e.paths.clone()).unwrap_or_default()
}

/// Generates the feeds the last rebuild left out of date, if any.
fn finish_feeds(session: &mut Session) {
    match session.finish_feeds() {
        Ok(Some(done)) => println!(
            "feeds: {} updated in {} ms",
            done.written.join(", "),
            done.elapsed.as_millis()
        ),
        Ok(None) => {}
        Err(e) => eprintln!("error: the feeds could not be updated: {e}"),
    }
}

/// Rebuilds and tells the browser.
fn rebuild(session: &mut Session, opts: &BuildOptions, events: &broadcast::Sender<PreviewEvent>) {
    match aurelio_engine::build_in(session, opts, &CliProgress::new()) {
        Ok(report) => {
            print_diagnostics(&report.warnings);
            println!("{}", summary(&report));
            let _ = events.send(PreviewEvent::Reload);
        }
        Err(err) => {
            let mut message = String::new();
            if let Some(d) = err.diagnostics() {
                print_diagnostics(d);
                message = d.to_string();
            }
            eprintln!("error: build failed: {err}; the preview keeps the last good build");
            if message.is_empty() {
                message = err.to_string();
            }
            let _ = events.send(PreviewEvent::Error(message));
        }
    }
}

/// Paths whose changes never trigger a rebuild: the cache, the output, editor droppings.
struct Ignored {
    cache: PathBuf,
    out: PathBuf,
}

impl Ignored {
    fn new(opts: &BuildOptions) -> Self {
        let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
        Self { cache: abs(&opts.cache_dir()), out: abs(&opts.out) }
    }

    fn relevant(&self, event: &notify::Result<notify::Event>) -> bool {
        let Ok(event) = event else { return false };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return false;
        }
        event.paths.iter().any(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            let droppings = name.starts_with('.')
                || name.ends_with('~')
                || name.ends_with(".swp")
                || name.contains(".tmp");
            !droppings
                && !p.starts_with(&self.cache)
                && !p.starts_with(&self.out)
                && !p.components().any(|c| c.as_os_str() == ".aurelio")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(notify::EventKind::Any).add_path(PathBuf::from(path)))
    }

    /// Events closer together than `SETTLE` make one rebuild; one after a quiet spell
    /// waits for the next.
    #[test]
    fn a_burst_of_events_settles_into_one_rebuild() {
        let (tx, rx) = mpsc::channel();
        let sender = std::thread::spawn(move || {
            for path in ["b", "c"] {
                std::thread::sleep(SETTLE / 4);
                tx.send(event(path)).expect("send");
            }
            std::thread::sleep(SETTLE * 10);
            tx.send(event("later")).expect("send");
        });
        let changed = settle(vec![PathBuf::from("a")], &rx, |_| true);
        assert_eq!(changed, ["a", "b", "c"].map(PathBuf::from));
        sender.join().expect("sender");
        assert_eq!(
            rx.try_iter().flat_map(|e| paths(&e)).collect::<Vec<_>>(),
            [PathBuf::from("later")]
        );
    }

    /// A stream of events that never settles still gets its rebuild.
    #[test]
    fn a_stream_that_never_settles_is_cut_short() {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let sender = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let _ = tx.send(event("busy"));
                std::thread::sleep(SETTLE / 4);
            }
        });
        let changed = settle(Vec::new(), &rx, |_| true);
        stop.store(true, Ordering::SeqCst);
        sender.join().expect("sender");
        // Every event until `SETTLE_AT_MOST`, one each `SETTLE / 4` at most.
        let most = (SETTLE_AT_MOST.as_millis() / (SETTLE / 4).as_millis()) as usize;
        assert!(!changed.is_empty() && changed.len() <= most, "{} events", changed.len());
    }

    /// Events that do not count neither join the burst nor keep it open.
    #[test]
    fn irrelevant_events_do_not_count() {
        let (tx, rx) = mpsc::channel();
        tx.send(event("out/index.html")).expect("send");
        tx.send(event("catalog/store.json")).expect("send");
        let changed = settle(Vec::new(), &rx, |e| !paths(e)[0].starts_with("out"));
        assert_eq!(changed, [PathBuf::from("catalog/store.json")]);
    }
}
