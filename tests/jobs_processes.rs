//! Jobs across real processes (#21): real `aurelio serve` processes sharing one registry
//! and one data directory, on SQLite and on PostgreSQL (`AURELIO_TEST_DATABASE_URL`; the
//! PostgreSQL variants are skipped, saying so, when it is unset).
//!
//! * A worker killed with SIGKILL in the middle of a build loses its lease; another
//!   process runs the build again (a second attempt) and publishes the storefront.
//! * Two processes with workers, several shops and bursts of writes from several threads:
//!   no job runs twice (every build job ends once, after one attempt, and the processes'
//!   `aurelio_jobs_total` counts add up to the jobs the registry holds as succeeded, with
//!   no lost lease), and no shop ever has two builds running at once.
//!
//! HTTP is spoken with a few lines over a `TcpStream`. Every wait is on a condition with a
//! generous deadline (the machine may be loaded); the processes are killed when a test
//! ends, however it ends.

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const ADMIN: &str = "jobs-processes-admin";

// ---------------------------------------------------------------------------------------
// HTTP over a TcpStream
// ---------------------------------------------------------------------------------------

/// A status and a body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, which must come with `expected`.
    #[track_caller]
    fn json(&self, expected: u16) -> Value {
        assert_eq!(self.status, expected, "{}", self.text());
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request on a fresh connection; an error when the server is not there (killed).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    // Provisioning builds a storefront before it answers: minutes on a loaded machine.
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_answer(&raw).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP/1.1 answer")
    })
}

/// Splits an answer into status and body (undoing chunked transfer encoding).
fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?.to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = &raw[end + 4..];
    let chunked =
        head.lines().any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    if !chunked {
        return Some(Answer { status, body: rest.to_vec() });
    }
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..eol]).ok()?.split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(Answer { status, body });
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// A request to a server that must be up.
#[track_caller]
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    request(addr, method, path, key, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// Polls `probe` (every 25 ms) until it gives a value; panics with `what` and `context()`
/// after `limit`.
#[track_caller]
fn wait_for<T>(
    what: &str,
    limit: Duration,
    context: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// What the processes of one test share: a temporary directory (data directory,
/// configuration files, logs) and the registry's PostgreSQL URL, if any.
struct Setup {
    dir: tempfile::TempDir,
    database_url: Option<String>,
}

/// The settings a process starts with.
#[derive(Clone, Copy)]
struct Settings {
    workers: usize,
    lease_ms: u64,
    debounce_ms: u64,
}

/// A running `aurelio serve`, killed (SIGKILL) when dropped.
struct Server {
    name: String,
    addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Kills the process with SIGKILL (`kill -9`) and reaps it.
    fn kill(&mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }

    /// The end of its log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let cut = text.len().saturating_sub(6000);
        let cut = (cut..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        format!("--- log of {} ({}) ---\n{}", self.name, self.addr, &text[cut..])
    }
}

/// A string as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Setup {
    /// A fresh directory; `tag` names the PostgreSQL registry database of this run.
    fn new(database_url: Option<&str>, tag: &str) -> Self {
        let database_url = database_url.map(|url| fresh_database(url, tag));
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("data")).expect("a data directory");
        std::os::unix::fs::symlink(shared_cache(), dir.path().join("data").join("cache"))
            .expect("link the shared image cache");
        Self { dir, database_url }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts `aurelio serve` on a free port with these settings; returns once it listens.
    #[track_caller]
    fn start(&self, name: &str, s: Settings) -> Server {
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {}\nadmin_token = {}\nworkers = {}\n\
             job_lease = {}\nbuild_debounce = {}\npool_size = 2\n",
            toml_string(&self.data().to_string_lossy()),
            toml_string(ADMIN),
            s.workers,
            s.lease_ms,
            s.debounce_ms,
        );
        if let Some(url) = &self.database_url {
            toml.push_str(&format!("database_url = {}\n", toml_string(url)));
        }
        // Many requests from one address, and provisioning may take minutes on a loaded
        // machine: this test is not about rate limits or request timeouts.
        toml.push_str("\n[limits]\nenabled = false\nrequest_timeout_ms = 900000\n");
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, toml).expect("write the configuration");
        let log = self.dir.path().join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_aurelio"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AURELIO_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("AURELIO_LOG", "warn,aurelio=info,aurelio_api=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("start aurelio serve");
        let mut server =
            Server { name: name.to_owned(), addr: SocketAddr::from(([0, 0, 0, 0], 0)), child, log };
        let stdout = server.child.stdout.take().expect("its stdout");
        let (tx, rx) = mpsc::channel();
        // Reads what it prints until it exits: the address first.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("aurelio serve: listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(300)).unwrap_or_else(|_| {
            panic!("`aurelio serve` ({name}) did not say where it listens\n{}", server.log_tail())
        });
        server.addr = addr.parse().expect("a socket address");
        server
    }
}

/// The image cache the data directories of this file's tests share: the demo's images
/// are encoded once (the first provisioning), not once a test.
fn shared_cache() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a cache directory")).path()
}

/// The PostgreSQL URL of the tests, or `None` (said on stderr) when it is not set.
fn postgres() -> Option<String> {
    let var = "AURELIO_TEST_DATABASE_URL";
    let url = std::env::var(var).ok().filter(|u| !u.trim().is_empty());
    if url.is_none() {
        eprintln!(
            "skipped: {var} is not set, so this PostgreSQL variant does not run (set it, \
             e.g. {var}=postgres://postgres@127.0.0.1:5432/postgres, or run ./scripts/test)"
        );
    }
    url
}

/// The URL with a registry database of its own (the server creates it), named as the API
/// tests name theirs, so that leftovers are recognised: `aurelio_t_<unix seconds, hex>…`.
fn fresh_database(url: &str, tag: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let name = format!("aurelio_t_{secs:08x}{:04x}{tag}", std::process::id() & 0xffff);
    let path = url.find("://").map_or(0, |i| i + 3);
    let cut = url[path..].find('/').map(|i| path + i).expect("a database path in the URL");
    format!("{}/{name}", &url[..cut])
}

// ---------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------

/// A provisioned shop.
#[derive(Clone)]
struct Shop {
    id: String,
    handle: String,
    key: String,
}

/// Provisions a demo shop (its first build runs before the answer).
#[track_caller]
fn provision(addr: SocketAddr, handle: &str) -> Shop {
    let body = json!({ "name": format!("Shop {handle}"), "handle": handle, "demo": true });
    let made = call(addr, "POST", "/api/v1/tenants", Some(ADMIN), Some(&body)).json(201);
    Shop {
        id: made["tenant"]["id"].as_str().expect("a shop id").to_owned(),
        handle: handle.to_owned(),
        key: made["secret_key"].as_str().expect("a secret key").to_owned(),
    }
}

/// Every job of the admin listing with `query`, following the cursor.
#[track_caller]
fn all_jobs(addr: SocketAddr, query: &str) -> Vec<Value> {
    let mut jobs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/jobs?{query}&limit=200");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = call(addr, "GET", &path, Some(ADMIN), None).json(200);
        jobs.extend(page["jobs"].as_array().cloned().expect("jobs"));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return jobs,
        }
    }
}

/// The sum of a metric's series whose labels include `labels` (0 when none is shown).
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, set) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let wanted = metric == name
                && labels.iter().all(|(k, v)| set.split(',').any(|p| p == format!("{k}=\"{v}\"")));
            if wanted { value.trim().parse::<f64>().ok() } else { None }
        })
        .sum()
}

fn metrics_of(addr: SocketAddr) -> String {
    let answer = call(addr, "GET", "/metrics", None, None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.text()
}

/// Deletes the shops (their PostgreSQL databases with them); the test's registry database
/// is left to the API tests' sweep of stale `aurelio_t_` databases, as `api_export` does.
fn delete_shops(addr: SocketAddr, shops: &[Shop]) {
    for shop in shops {
        let _ = request(addr, "DELETE", &format!("/api/v1/tenants/{}", shop.id), Some(ADMIN), None);
    }
}

// ---------------------------------------------------------------------------------------
// A worker killed in the middle of a build
// ---------------------------------------------------------------------------------------

fn killed_worker_loses_its_build(database_url: Option<&str>) {
    let setup = Setup::new(database_url, "k");
    let settings = Settings { workers: 1, lease_ms: 2000, debounce_ms: 50 };
    let mut a = setup.start("a", settings);
    let shop = provision(a.addr, "killed-worker");

    // A cold build, slow enough to be caught running (seconds, even on an idle machine):
    // an image cache of its own, empty (every image is encoded again), no previous output,
    // nothing published (everything is uploaded).
    let data = setup.data();
    std::fs::remove_file(data.join("cache")).expect("unlink the shared cache");
    for dir in
        [data.join("work").join(&shop.id).join("site"), data.join("published").join(&shop.id)]
    {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    }
    let queued = call(a.addr, "POST", "/api/v1/builds", Some(&shop.key), None).json(202);
    let build = queued["build_id"].as_str().expect("a build id").to_owned();
    let job_path = format!("/api/v1/jobs/{build}");
    let running = wait_for(
        "the build to run on process A",
        Duration::from_secs(300),
        || a.log_tail(),
        || {
            let job = call(a.addr, "GET", &job_path, Some(&shop.key), None).json(200);
            match job["status"].as_str() {
                Some("running") => Some(job),
                Some("queued") => None,
                _ => panic!("the build ended before it could be caught running: {job}"),
            }
        },
    );
    assert_eq!(running["attempts"], 1, "{running}");
    a.kill();

    // Process B finds the job running under a lease nobody renews; once it has run out,
    // B runs the job again and publishes.
    let b = setup.start("b", settings);
    let context = || format!("{}\n{}", a.log_tail(), b.log_tail());
    let done = wait_for("the build to end on process B", Duration::from_secs(600), context, || {
        let job = call(b.addr, "GET", &job_path, Some(&shop.key), None).json(200);
        matches!(job["status"].as_str(), Some("succeeded" | "failed" | "dead")).then_some(job)
    });
    assert_eq!(done["status"], "succeeded", "{done}\n{}", context());
    assert_eq!(
        done["attempts"], 2,
        "the killed attempt and B's (1 means A finished before it was killed): {done}"
    );
    assert!(done["result"]["pages"].as_u64().is_some_and(|p| p > 0), "{done}");
    assert!(done["result"]["uploaded"].as_u64().is_some_and(|n| n > 0), "{done}");
    assert!(done["lease_until"].is_null() && done["error"].is_null(), "{done}");

    // The storefront is live again: published by B, served by B.
    assert!(data.join("published").join(&shop.id).join("index.html").is_file());
    let home = request_host(b.addr, "/", &format!("{}.localhost", shop.handle));
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(home.text().contains("Shop killed-worker"), "{}", home.text());

    // B recorded the one success; nobody lost a lease that was still theirs.
    let metrics = metrics_of(b.addr);
    let succeeded = [("kind", "build"), ("status", "succeeded")];
    assert_eq!(metric(&metrics, "aurelio_jobs_total", &succeeded), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "aurelio_jobs_lost_total", &[]), 0.0, "{metrics}");
    assert_eq!(metric(&metrics, "aurelio_jobs_total", &[("status", "lost")]), 0.0, "{metrics}");
    if setup.database_url.is_some() {
        delete_shops(b.addr, &[shop]);
    }
}

/// A storefront page: `GET path` with `Host: host`.
fn request_host(addr: SocketAddr, path: &str, host: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("a timeout");
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    parse_answer(&raw).expect("an HTTP answer")
}

#[test]
fn killed_worker_loses_its_build_sqlite() {
    killed_worker_loses_its_build(None);
}

#[test]
fn killed_worker_loses_its_build_postgres() {
    if let Some(url) = postgres() {
        killed_worker_loses_its_build(Some(&url));
    }
}

// ---------------------------------------------------------------------------------------
// Two processes never run one job at once
// ---------------------------------------------------------------------------------------

/// What the sampler of running builds saw.
#[derive(Debug, Default)]
struct Sampled {
    samples: usize,
    most_running: usize,
    /// Listings that showed one shop with two builds running.
    overlaps: Vec<Value>,
}

/// Lists running builds on both processes until `stop`, noting any shop with two.
fn sample_running(servers: [SocketAddr; 2], stop: &AtomicBool) -> Sampled {
    let mut seen = Sampled::default();
    while !stop.load(Ordering::Relaxed) {
        for addr in servers {
            let path = "/api/v1/jobs?status=running&kind=build&limit=200";
            let Ok(answer) = request(addr, "GET", path, Some(ADMIN), None) else { continue };
            if answer.status != 200 {
                continue;
            }
            let page: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
            let shops: Vec<&str> = jobs.iter().filter_map(|j| j["shop_id"].as_str()).collect();
            let distinct: HashSet<&str> = shops.iter().copied().collect();
            if distinct.len() != jobs.len() {
                seen.overlaps.push(page.clone());
            }
            seen.samples += 1;
            seen.most_running = seen.most_running.max(jobs.len());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

/// A write that must succeed, tried again while the server answers 503 (busy); the
/// number of 503 answers is counted in `busy`.
#[track_caller]
fn write(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
    busy: &AtomicUsize,
) -> Value {
    for _ in 0..5 {
        let answer = call(addr, method, path, Some(key), body);
        if answer.status == 503 {
            busy.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        assert!(
            (200..=202).contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            answer.text()
        );
        return serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    }
    panic!("{method} {path} on {addr}: busy five times in a row");
}

fn never_twice_at_once(database_url: Option<&str>) {
    const SHOPS: usize = 6;
    const WRITERS: usize = 3;
    const ROUNDS: usize = 8;
    let setup = Setup::new(database_url, "n");
    // A lease long enough that a renewal delayed by a loaded machine does not lose it.
    let settings = Settings { workers: 2, lease_ms: 20_000, debounce_ms: 100 };
    let a = setup.start("a", settings);
    let b = setup.start("b", settings);
    let servers = [a.addr, b.addr];
    let context = || format!("{}\n{}", a.log_tail(), b.log_tail());
    let shops: Vec<Shop> =
        (0..SHOPS).map(|i| provision(servers[i % 2], &format!("burst-{i}"))).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || sample_running(servers, &stop))
    };
    // Bursts from several threads, each request to one process or the other: builds asked
    // for outright and product writes (each asks for a build too).
    let busy = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (shops, busy) = (shops.clone(), busy.clone());
            std::thread::spawn(move || {
                let mut created = Vec::new();
                for round in 0..ROUNDS {
                    let i = (t * 2 + round) % SHOPS;
                    let shop = &shops[i];
                    let (here, there) = (servers[(t + round) % 2], servers[(t + round + 1) % 2]);
                    write(here, "POST", "/api/v1/builds", &shop.key, None, &busy);
                    let handle = format!("burst-{t}-{round}");
                    let product = json!({
                        "handle": handle, "title": format!("Burst {t} {round}"), "status": "active",
                        "variants": [{ "sku": format!("B-{t}-{round}"), "price": "12.00", "inventory": 5 }],
                    });
                    write(there, "POST", "/api/v1/products", &shop.key, Some(&product), &busy);
                    let queued = write(there, "POST", "/api/v1/builds", &shop.key, None, &busy);
                    // The next round once this build was claimed, so that every round
                    // makes a build both processes race for (not one coalesced burst).
                    let job = format!("/api/v1/jobs/{}", queued["build_id"].as_str().expect("an id"));
                    wait_for("a build to be claimed", Duration::from_secs(300), String::new, || {
                        let now = call(there, "GET", &job, Some(&shop.key), None).json(200);
                        (now["status"] != "queued").then_some(())
                    });
                    created.push((i, handle));
                }
                created
            })
        })
        .collect();
    let mut created = Vec::new();
    for w in writers {
        created.extend(w.join().expect("a writer thread"));
    }

    // No more writes: the builds queued drain. A listing is read in one snapshot per page
    // and a finished job stays finished, so one listing without a queued or running build
    // means they all ended.
    let builds = wait_for("every build to end", Duration::from_secs(900), context, || {
        let jobs = all_jobs(a.addr, "kind=build");
        jobs.iter()
            .all(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
            .then_some(jobs)
    });
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.join().expect("the sampler");

    // Every build ran once, with one attempt, and succeeded.
    let mut per_shop: BTreeMap<&str, usize> = BTreeMap::new();
    for job in &builds {
        assert_eq!(job["status"], "succeeded", "{job}\n{}", context());
        assert_eq!(job["attempts"], 1, "a build ran more than once: {job}");
        *per_shop.entry(job["shop_id"].as_str().expect("a shop")).or_default() += 1;
    }
    assert_eq!(per_shop.len(), SHOPS, "{per_shop:?}");
    let succeeded = all_jobs(b.addr, "kind=build&status=succeeded");
    let ids: HashSet<&str> = succeeded.iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids.len(), succeeded.len(), "the cursor gave a job twice");
    assert_eq!(succeeded.len(), builds.len());

    // The processes' counts of builds they recorded add up to the registry's: a job run
    // by both would be counted twice, or once as `lost`.
    let (ma, mb) = (metrics_of(a.addr), metrics_of(b.addr));
    let done = [("kind", "build"), ("status", "succeeded")];
    let (by_a, by_b) =
        (metric(&ma, "aurelio_jobs_total", &done), metric(&mb, "aurelio_jobs_total", &done));
    let registry = succeeded.len() as f64;
    assert_eq!(by_a + by_b, registry, "A {by_a} + B {by_b} builds, the registry {registry}");
    // Each provisioned half of the shops (their first builds); each ran queued ones too.
    let (first_a, first_b) = (SHOPS.div_ceil(2) as f64, (SHOPS / 2) as f64);
    assert!(by_a > first_a && by_b > first_b, "both processes ran builds: A {by_a}, B {by_b}");
    for m in [&ma, &mb] {
        assert_eq!(metric(m, "aurelio_jobs_lost_total", &[]), 0.0, "{m}");
        assert_eq!(metric(m, "aurelio_jobs_total", &[("status", "lost")]), 0.0, "{m}");
        assert_eq!(
            metric(m, "aurelio_jobs_total", &[("kind", "build"), ("status", "queued")]),
            0.0
        );
    }

    // No shop ever had two builds running at once.
    assert!(sampled.samples > 0, "{sampled:?}");
    assert!(
        sampled.overlaps.is_empty(),
        "two builds of one shop ran at once: {:?}",
        sampled.overlaps
    );

    // The last build of each shop saw its last write: every product made is published.
    let data = setup.data();
    for (i, handle) in &created {
        let page = data
            .join("published")
            .join(&shops[*i].id)
            .join("products")
            .join(handle)
            .join("index.html");
        assert!(page.is_file(), "{} is not published ({})", handle, page.display());
    }
    eprintln!(
        "{} builds ({} by A, {} by B) for {SHOPS} shops, {per_shop:?}; {} samples, at most {} \
         running at once; {} busy answers",
        builds.len(),
        by_a,
        by_b,
        sampled.samples,
        sampled.most_running,
        busy.load(Ordering::Relaxed)
    );
    if setup.database_url.is_some() {
        delete_shops(a.addr, &shops);
    }
}

#[test]
fn two_processes_never_run_one_job_at_once_sqlite() {
    never_twice_at_once(None);
}

#[test]
fn two_processes_never_run_one_job_at_once_postgres() {
    if let Some(url) = postgres() {
        never_twice_at_once(Some(&url));
    }
}
