//! `aurelio watch`: rebuilds on every change to the catalog directory (catalog files,
//! images, the shop's templates and theme) and serves a live-reloading preview.
//!
//! File events are debounced; each rebuild is incremental. A failed build is printed here
//! and shown as an overlay in the browser, and watching goes on.

use crate::cmd::build::{SiteArgs, print_diagnostics, summary};
use crate::cmd::listen;
use crate::progress::CliProgress;
use anyhow::Context;
use aurelio_api::preview::{self, Preview, PreviewEvent};
use aurelio_engine::{BuildOptions, Session};
use notify::{RecursiveMode, Watcher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

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
    /// Address of the preview server (a bare port means 127.0.0.1:PORT).
    #[arg(long, alias = "port", default_value = "127.0.0.1:4000", value_parser = crate::cmd::listen::parse)]
    pub listen: SocketAddr,
}

/// Builds, serves, and rebuilds on change until Ctrl-C.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    // Listen first: a taken address fails at once, not after the first build, and the
    // site's base URL is the address actually listened on.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let base_url = listen::local_url(listener.local_addr()?);
    let opts = args.site.options(Some(base_url.clone()), false);
    let preview = Preview::new();
    let mut session = Session::deferring_feeds();
    rebuild(&mut session, &opts, &preview);
    if !opts.out.join("index.html").is_file() {
        std::fs::create_dir_all(&opts.out)?;
    }

    // The file watcher is in place before the preview answers, so a change made after the
    // first page was served is always seen.
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

    let app = preview::app(opts.out.clone(), preview.clone());
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
        rebuild(&mut session, &opts, &preview);
        last_change = Instant::now();
    }
}

/// Where `settle` takes events and the time from: the file watcher and the clock, or a
/// script in tests (so they never depend on how fast a loaded machine runs them).
trait Events {
    /// The current time.
    fn now(&self) -> Instant;
    /// The next event, if one comes within `wait`; `None` after `wait` or when the sender
    /// is gone.
    fn next_within(&self, wait: Duration) -> Option<notify::Result<notify::Event>>;
}

impl Events for mpsc::Receiver<notify::Result<notify::Event>> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn next_within(&self, wait: Duration) -> Option<notify::Result<notify::Event>> {
        self.recv_timeout(wait).ok()
    }
}

/// The paths of a burst of file events that began with `first`: gathered until no relevant
/// event came for `SETTLE`, or `SETTLE_AT_MOST` after the start.
fn settle(
    mut changed: Vec<PathBuf>,
    events: &impl Events,
    relevant: impl Fn(&notify::Result<notify::Event>) -> bool,
) -> Vec<PathBuf> {
    let latest = events.now() + SETTLE_AT_MOST;
    let mut quiet_until = events.now() + SETTLE;
    loop {
        let wait = quiet_until.min(latest).saturating_duration_since(events.now());
        if wait.is_zero() {
            return changed;
        }
        match events.next_within(wait) {
            Some(event) if relevant(&event) => {
                changed.extend(paths(&event));
                quiet_until = events.now() + SETTLE;
            }
            Some(_) => {}
            // Quiet for the whole wait (or the sender is gone).
            None => return changed,
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
fn rebuild(session: &mut Session, opts: &BuildOptions, preview: &Preview) {
    match aurelio_engine::build_in(session, opts, &CliProgress::new()) {
        Ok(report) => {
            print_diagnostics(&report.warnings);
            println!("{}", summary(&report));
            preview.send(PreviewEvent::Reload);
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
            preview.send(PreviewEvent::Error(message));
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
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    fn event(path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(notify::EventKind::Any).add_path(PathBuf::from(path)))
    }

    /// Events due at given times on a clock of its own, which moves only when `settle`
    /// waits: the same answers however slowly the test runs.
    struct Script {
        start: Instant,
        now: Cell<Instant>,
        due: RefCell<VecDeque<(Duration, notify::Result<notify::Event>)>>,
    }

    impl Script {
        fn new(events: impl IntoIterator<Item = (u64, &'static str)>) -> Self {
            let start = Instant::now();
            let due = events.into_iter().map(|(ms, p)| (Duration::from_millis(ms), event(p)));
            Self { start, now: Cell::new(start), due: RefCell::new(due.collect()) }
        }

        fn elapsed(&self) -> Duration {
            self.now.get() - self.start
        }

        fn left(&self) -> Vec<PathBuf> {
            self.due.borrow().iter().flat_map(|(_, e)| paths(e)).collect()
        }
    }

    impl Events for Script {
        fn now(&self) -> Instant {
            self.now.get()
        }

        fn next_within(&self, wait: Duration) -> Option<notify::Result<notify::Event>> {
            let until = self.now.get() + wait;
            let mut due = self.due.borrow_mut();
            match due.front() {
                Some((at, _)) if self.start + *at <= until => {
                    self.now.set(self.now.get().max(self.start + *at));
                    due.pop_front().map(|(_, e)| e)
                }
                _ => {
                    self.now.set(until);
                    None
                }
            }
        }
    }

    /// Events closer together than `SETTLE` make one rebuild; one after a quiet spell
    /// waits for the next.
    #[test]
    fn a_burst_of_events_settles_into_one_rebuild() {
        let quarter = SETTLE.as_millis() as u64 / 4;
        let script = Script::new([(quarter, "b"), (2 * quarter, "c"), (20 * quarter, "later")]);
        let changed = settle(vec![PathBuf::from("a")], &script, |_| true);
        assert_eq!(changed, ["a", "b", "c"].map(PathBuf::from));
        assert_eq!(script.elapsed(), 2 * SETTLE / 4 + SETTLE, "quiet for SETTLE after `c`");
        assert_eq!(script.left(), [PathBuf::from("later")]);
    }

    /// A stream of events that never settles is cut at `SETTLE_AT_MOST`.
    #[test]
    fn a_stream_that_never_settles_is_cut_short() {
        let step = SETTLE.as_millis() as u64 / 4;
        let end = 4 * SETTLE_AT_MOST.as_millis() as u64;
        let script = Script::new((1..=end / step).map(|i| (i * step, "busy")));
        let changed = settle(Vec::new(), &script, |_| true);
        assert_eq!(script.elapsed(), SETTLE_AT_MOST);
        let cut = (SETTLE_AT_MOST.as_millis() as u64 / step) as usize;
        assert_eq!(changed.len(), cut, "every event up to SETTLE_AT_MOST, none after");
        assert_eq!(script.left().len(), (end / step) as usize - cut);
    }

    /// Events that do not count neither join the burst nor keep it open.
    #[test]
    fn irrelevant_events_do_not_count() {
        let quarter = SETTLE.as_millis() as u64 / 4;
        let script = Script::new([
            (quarter, "out/index.html"),
            (2 * quarter, "catalog/store.json"),
            (2 * quarter + SETTLE.as_millis() as u64 - 1, "out/products/a.html"),
            (2 * quarter + SETTLE.as_millis() as u64 + 1, "catalog/late.json"),
        ]);
        let changed = settle(Vec::new(), &script, |e| !paths(e)[0].starts_with("out"));
        assert_eq!(changed, [PathBuf::from("catalog/store.json")]);
        assert_eq!(script.left(), [PathBuf::from("catalog/late.json")]);
    }

    /// The real source: events already queued are taken without waiting, and a sender
    /// that is gone ends the burst.
    #[test]
    fn the_file_watcher_channel_ends_a_burst_when_its_sender_is_gone() {
        let (tx, rx) = mpsc::channel();
        tx.send(event("a")).expect("send");
        tx.send(event("b")).expect("send");
        drop(tx);
        assert_eq!(settle(Vec::new(), &rx, |_| true), ["a", "b"].map(PathBuf::from));
    }
}
