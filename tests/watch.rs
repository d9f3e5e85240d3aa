//! `aurelio watch` end to end: the preview serves the site with the live-reload script, an
//! edit rebuilds and sends `reload`, a broken catalog sends `build-error` and keeps the
//! last good site, and fixing it reloads again.

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

/// A plain HTTP/1.1 GET; returns the body.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
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
    let _watcher = Watcher(
        Command::new(env!("CARGO_BIN_EXE_aurelio"))
            .args(["watch", "--port", &port.to_string(), "--site"])
            .arg(&site)
            .arg("--out")
            .arg(&out)
            .arg("--cache")
            .arg(tmp.path().join("cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aurelio watch starts"),
    );
    let home = wait_for(120, "the preview", || get(port, "/").filter(|b| b.contains("</html>")));
    assert!(
        home.contains("<script src=\"/_aurelio/live.js\"></script></body>"),
        "the live-reload script is added"
    );
    assert!(
        !std::fs::read_to_string(out.join("index.html")).expect("built").contains("live.js"),
        "but not written into the site"
    );

    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    write!(
        stream,
        "GET /_aurelio/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    let mut events = BufReader::new(stream);
    std::thread::sleep(Duration::from_millis(300));

    let products = site.join("products.jsonl");
    let text = std::fs::read_to_string(&products).expect("read");
    let handle = "alpine-softshell-trousers";
    let line = text
        .lines()
        .find(|l| l.contains(&format!("\"handle\": \"{handle}\"")))
        .expect("the product exists");
    let edited = line.replacen("\"price\": \"119.00\"", "\"price\": \"87.00\"", 1);
    assert_ne!(line, edited, "the fixture price is where the test expects it");
    std::fs::write(&products, text.replace(line, &edited)).expect("edit");
    next_event(&mut events, "reload");
    let page = get(port, &format!("/products/{handle}/")).expect("page");
    assert!(page.contains("€87.00"), "the preview shows the new price");
    // The product feeds follow the pages once the catalog is quiet for a moment.
    wait_for(30, "the feeds to follow", || {
        get(port, "/feeds/google.xml").filter(|feed| feed.contains(">87.00 EUR</g:"))
    });

    std::fs::write(&products, format!("{{broken\n{}", text.replace(line, &edited))).expect("break");
    let error = next_event(&mut events, "build-error");
    assert!(
        error.contains("products.jsonl") && error.contains("line 1"),
        "the overlay names the place: {error}"
    );
    let page = get(port, &format!("/products/{handle}/")).expect("page");
    assert!(page.contains("€87.00"), "the last good build is still served");

    std::fs::write(&products, &text).expect("fix");
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
