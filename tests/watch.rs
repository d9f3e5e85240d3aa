//! `aurelio watch` end to end: the preview serves the site with the live-reload script, an
//! edit rebuilds and sends `reload`, a broken catalog sends `build-error` and keeps the
//! last good site, and fixing it reloads again. A first build that fails shows its error
//! on every page and to every tab that connects, until a save fixes it.
//!
//! Nothing here sleeps to let the watcher catch up: each step waits for what it needs (the
//! answer's head of the event stream, the event itself, or a polled condition with a
//! deadline), and files are saved as editors do (written beside, then renamed), so a
//! loaded machine makes the test slower, never wrong.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_name() == ".aurelio" {
            continue;
        }
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn fetch(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| (status, body.to_owned()))
}

/// The body of a GET, whatever its status.
fn get(port: u16, path: &str) -> Option<String> {
    fetch(port, path).map(|(_, body)| body)
}

/// Saves `text` to `path` as editors do: written beside it under a name the watcher
/// ignores, then renamed over it, so no rebuild ever reads it half written.
fn save(path: &Path, text: &str) {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let beside = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&beside, text).expect("write");
    std::fs::rename(&beside, path).expect("rename");
}

/// Opens the preview's event stream at `path` and reads the answer's head: the stream is
/// subscribed once the head arrives, so no event sent after this returns is missed.
fn open_events(port: u16, path: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .expect("send");
    let mut events = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        events.read_line(&mut line).expect("the answer's head");
        if line.trim_end().is_empty() {
            break;
        }
        head.push(line.trim_end().to_owned());
    }
    assert!(head[0].contains(" 200 "), "{head:?}");
    assert!(
        head.iter().any(|h| h.eq_ignore_ascii_case("content-type: text/event-stream")),
        "{head:?}"
    );
    events
}

/// Starts `aurelio watch` on `port`.
fn watch(site: &Path, out: &Path, cache: &Path, port: u16) -> Watcher {
    Watcher(
        Command::new(env!("CARGO_BIN_EXE_aurelio"))
            .args(["watch", "--listen", &port.to_string(), "--site"])
            .arg(site)
            .arg("--out")
            .arg(out)
            .arg("--cache-dir")
            .arg(cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aurelio watch starts"),
    )
}

/// Waits until `probe` returns something, or panics after `seconds`.
fn wait_for<T>(seconds: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads server-sent events until one named `name` arrives; returns its data.
fn next_event(events: &mut BufReader<TcpStream>, name: &str) -> String {
    let mut current = String::new();
    let mut data = Vec::new();
    loop {
        let mut line = String::new();
        let read = events.read_line(&mut line).expect("the event stream stays open");
        assert!(read > 0, "the event stream closed before `{name}`");
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(event) = line.strip_prefix("event: ") {
            current = event.to_owned();
        } else if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.to_owned());
        } else if line.is_empty() && !current.is_empty() {
            if current == name {
                return data.join("\n");
            }
            current.clear();
            data.clear();
        }
    }
}

#[test]
fn watch_rebuilds_on_change_and_reports_errors_to_the_browser() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo-store"), &site);
    let out = tmp.path().join("out");
    let port = free_port();
    let _watcher = watch(&site, &out, &tmp.path().join("cache"), port);
    let home = wait_for(120, "the preview", || get(port, "/").filter(|b| b.contains("</html>")));
    assert!(
        home.contains("<script src=\"/_aurelio/live.js\" data-build=\"")
            && home.contains("\"></script></body>"),
        "the live-reload script is added"
    );
    assert!(
        !std::fs::read_to_string(out.join("index.html")).expect("built").contains("live.js"),
        "but not written into the site"
    );

    let mut events = open_events(port, "/_aurelio/events");

    let products = site.join("products.jsonl");
    let text = std::fs::read_to_string(&products).expect("read");
    let handle = "alpine-softshell-trousers";
    let line = text
        .lines()
        .find(|l| l.contains(&format!("\"handle\": \"{handle}\"")))
        .expect("the product exists");
    let edited = line.replacen("\"price\": \"119.00\"", "\"price\": \"87.00\"", 1);
    assert_ne!(line, edited, "the fixture price is where the test expects it");
    save(&products, &text.replace(line, &edited));
    next_event(&mut events, "reload");
    let page = get(port, &format!("/products/{handle}/")).expect("page");
    assert!(page.contains("€87.00"), "the preview shows the new price");
    // The product feeds follow the pages once the catalog is quiet for a moment.
    wait_for(30, "the feeds to follow", || {
        get(port, "/feeds/google.xml").filter(|feed| feed.contains(">87.00 EUR</g:"))
    });

    save(&products, &format!("{{broken\n{}", text.replace(line, &edited)));
    let error = next_event(&mut events, "build-error");
    assert!(
        error.contains("products.jsonl") && error.contains("line 1"),
        "the overlay names the place: {error}"
    );
    let page = get(port, &format!("/products/{handle}/")).expect("page");
    assert!(page.contains("€87.00"), "the last good build is still served");

    save(&products, &text);
    next_event(&mut events, "reload");
    let page = get(port, &format!("/products/{handle}/")).expect("page");
    assert!(page.contains("€119.00"), "fixing the catalog rebuilds");

    // SIGTERM (as Ctrl-C) ends the watch, live-reload stream open or not.
    let mut watcher = _watcher;
    let status = Command::new("kill")
        .args(["-TERM", &watcher.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exited = wait_for(20, "the watch to stop", || watcher.0.try_wait().ok().flatten());
    assert!(exited.success(), "the watch stops cleanly: {exited}");
}

/// The first build fails: every page is the error with the live-reload script (not a bare
/// 404), a tab that connects is told the error at once, and saving a fix reloads it into
/// the built site.
#[test]
fn watch_shows_a_broken_first_build_and_recovers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site");
    let made = Command::new(env!("CARGO_BIN_EXE_aurelio"))
        .args(["fixtures", "--products", "3", "--out"])
        .arg(&site)
        .output()
        .expect("aurelio fixtures runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let products = site.join("products.jsonl");
    let good = std::fs::read_to_string(&products).expect("read");
    std::fs::write(&products, format!("{{broken\n{good}")).expect("break");
    let port = free_port();
    let _watcher = watch(&site, &tmp.path().join("out"), &tmp.path().join("cache"), port);

    let (status, page) = wait_for(120, "the preview", || fetch(port, "/"));
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("Build failed") && page.contains("products.jsonl"), "{page}");
    assert!(page.contains("line 1"), "the page names the place: {page}");
    let script = "<script src=\"/_aurelio/live.js\" data-build=\"";
    assert!(page.contains(script), "the page reloads by itself once fixed: {page}");
    let (status, _) = fetch(port, "/products/anything/").expect("answer");
    assert_eq!(status, 503, "every page shows the error");

    // A tab opening now, with or without the page's build number, sees the error at once.
    let mut late = open_events(port, "/_aurelio/events");
    let error = next_event(&mut late, "build-error");
    assert!(error.contains("products.jsonl") && error.contains("line 1"), "{error}");
    let mut events = open_events(port, "/_aurelio/events?build=1");
    assert!(next_event(&mut events, "build-error").contains("products.jsonl"));

    save(&products, &good);
    next_event(&mut events, "reload");
    next_event(&mut late, "reload");
    let (status, home) = fetch(port, "/").expect("home");
    assert_eq!(status, 200);
    assert!(home.contains("</html>") && !home.contains("Build failed"), "{home}");
}
