//! End-to-end tests of `aurelio publish` against a real S3-compatible server (moto), through
//! the real binary: full publish with headers, no-op publish, a one-product change, purge
//! list and webhook, rollback, a missing bucket, and publishes interrupted at random points
//! (an injected failure after N writes, and SIGKILL while a proxy holds the publish
//! mid-request after N bytes) after which the live site must stay whole and a re-run must
//! complete it.
//!
//! `./scripts/test` starts moto and sets `AURELIO_TEST_S3_ENDPOINT`; run by hand, these
//! tests fail with instructions when it is missing.

mod common;

use common::{StallProxy, copy_dir, demo_store, tempdir, try_build_args};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{Attribute, ObjectStoreExt};
use scraper::{Html, Selector};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const ENDPOINT_VAR: &str = "AURELIO_TEST_S3_ENDPOINT";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "public, max-age=60, must-revalidate";

// ---------------------------------------------------------------------------------------
// The S3 server
// ---------------------------------------------------------------------------------------

/// The endpoint of the S3-compatible server; fails the test, saying how to start one, when
/// it is not configured.
#[track_caller]
fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(url) if !url.is_empty() => url.trim_end_matches('/').to_owned(),
        _ => panic!(
            "{ENDPOINT_VAR} is not set: the publish tests need an S3-compatible server.\n\
             Run `./scripts/test`, which installs and starts moto, or start it by hand:\n  \
             python3 -m venv .cache/venv && .cache/venv/bin/pip install 'moto[server]'\n  \
             .cache/venv/bin/moto_server -H 127.0.0.1 -p 9000 &\n  \
             {ENDPOINT_VAR}=http://127.0.0.1:9000 cargo test --test publish"
        ),
    }
}

/// A bucket of its own for one test, created on the server.
struct Bucket {
    name: String,
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    #[track_caller]
    fn new(test: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let endpoint = endpoint();
        let name = format!(
            "aurelio-{test}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() % 1_000_000)
        );
        let status = raw_http(&endpoint, "PUT", &format!("/{name}"));
        assert!(status == 200, "creating bucket `{name}` at {endpoint} answered {status}");
        aurelio_engine::publish::install_crypto_provider();
        let store = AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_bucket_name(&name)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .expect("S3 client");
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Self { name, store, rt }
    }

    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// Bytes and (`Content-Type`, `Cache-Control`) of a key, if it exists.
    fn get(&self, key: &str) -> Option<(Vec<u8>, String, String)> {
        self.rt.block_on(async {
            let got = match self.store.get(&Key::from(key)).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return None,
                Err(e) => panic!("cannot read `{key}` from bucket `{}`: {e}", self.name),
            };
            let attr = |a| got.attributes.get(&a).map(|v| v.to_string()).unwrap_or_default();
            let (content_type, cache) =
                (attr(Attribute::ContentType), attr(Attribute::CacheControl));
            let bytes = got.bytes().await.expect("body").to_vec();
            Some((bytes, content_type, cache))
        })
    }

    fn exists(&self, key: &str) -> bool {
        self.rt.block_on(async {
            match self.store.head(&Key::from(key)).await {
                Ok(_) => true,
                Err(object_store::Error::NotFound { .. }) => false,
                Err(e) => panic!("cannot read `{key}` from bucket `{}`: {e}", self.name),
            }
        })
    }

    #[track_caller]
    fn json(&self, key: &str) -> Value {
        let (bytes, ..) = self.get(key).unwrap_or_else(|| panic!("`{key}` is missing"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("`{key}` is not JSON: {e}"))
    }

    /// Names of the files directly in a folder.
    fn names(&self, dir: &str) -> BTreeSet<String> {
        self.rt.block_on(async {
            let listing =
                object_store::ObjectStore::list_with_delimiter(&self.store, Some(&Key::from(dir)))
                    .await
                    .expect("list");
            listing
                .objects
                .iter()
                .filter_map(|m| m.location.filename().map(str::to_owned))
                .collect()
        })
    }

    /// The live state of a prefix, if anything is published there.
    fn live(&self, prefix: &str) -> Option<Value> {
        self.get(&format!("{prefix}/_aurelio/manifest.json"))
            .map(|(b, ..)| serde_json::from_slice(&b).expect("live state is JSON"))
    }
}

/// One request without a body or signature (moto creates buckets this way); returns the
/// status code.
fn raw_http(endpoint: &str, method: &str, path: &str) -> u16 {
    let host = endpoint.trim_start_matches("http://");
    let mut stream =
        TcpStream::connect(host).unwrap_or_else(|e| panic!("cannot reach {endpoint}: {e}"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

/// `aurelio` with the S3 settings of the test server and nothing else from `AWS_*`. Without
/// a test server, S3 requests go to a closed local port: never to a real cloud.
fn aurelio(args: &[&str]) -> Command {
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| "http://127.0.0.1:9".into());
    let mut cmd = common::command(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") || key == "AURELIO_PURGE_WEBHOOK" {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AURELIO_PUBLISH_FAIL_AFTER");
    cmd
}

#[track_caller]
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run aurelio");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// `aurelio publish --json --from DIR --to URL [extra]`, which must succeed; its JSON line.
#[track_caller]
fn publish(dir: &Path, url: &str, extra: &[&str]) -> Value {
    let dir = dir.to_string_lossy();
    let mut args = vec!["publish", "--json", "--from", &dir, "--to", url];
    args.extend_from_slice(extra);
    let out = run(&mut aurelio(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("publish printed no JSON ({e}): {stdout}"))
}

/// `aurelio build` with the tests' shared cache, which must succeed.
#[track_caller]
fn build(site: &Path, out: &Path, theme: Option<&str>) {
    match theme {
        Some(theme) => try_build_args(site, out, &["--theme", theme]).success(),
        None => try_build_args::<&str>(site, out, &[]).success(),
    };
}

/// The manifest of a built site: path → hash.
fn manifest(site: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(site.join("aurelio-manifest.json")).expect("manifest");
    let json: Value = serde_json::from_str(&text).expect("manifest JSON");
    json["files"]
        .as_object()
        .expect("files")
        .iter()
        .map(|(p, e)| {
            (
                p.clone(),
                (
                    e["hash"].as_str().unwrap_or_default().to_owned(),
                    e["cache"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

/// Every file a built site publishes: its manifest's files and the manifest.
fn site_paths(site: &Path) -> Vec<String> {
    let mut paths: Vec<String> = manifest(site).into_keys().collect();
    paths.push("aurelio-manifest.json".into());
    paths
}

/// A copy of the demo store with the first variant of the first product at a new price.
fn demo_with_new_price(dir: &Path) -> String {
    copy_dir(&demo_store(), dir);
    let path = dir.join("products.jsonl");
    let text = std::fs::read_to_string(&path).expect("products.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut product: Value = serde_json::from_str(&lines[0]).expect("first product");
    let handle = product["handle"].as_str().expect("handle").to_owned();
    product["variants"][0]["price"] = Value::from("123.45");
    lines[0] = serde_json::to_string(&product).expect("json");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write products.jsonl");
    handle
}

fn count(report: &Value, field: &str) -> u64 {
    report["deploy"][field].as_u64().unwrap_or_else(|| panic!("no `{field}` in {report}"))
}

// ---------------------------------------------------------------------------------------
// What a shopper can see
// ---------------------------------------------------------------------------------------

/// Local file references of a page: `href`, `src` and `srcset` URLs on the site itself
/// (site-absolute or under `base`), as keys relative to the site root. Directory links
/// (other pages) are left out: a page may link a page that a deploy adds later.
fn references(html: &str, base: &str) -> BTreeSet<String> {
    let doc = Html::parse_document(html);
    let mut urls = Vec::new();
    for attr in ["href", "src", "srcset"] {
        let sel = Selector::parse(&format!("[{attr}]")).expect("selector");
        for el in doc.select(&sel) {
            let value = el.value().attr(attr).unwrap_or_default();
            if attr == "srcset" {
                urls.extend(
                    value.split(',').filter_map(|c| c.split_whitespace().next()).map(str::to_owned),
                );
            } else {
                urls.push(value.to_owned());
            }
        }
    }
    urls.into_iter()
        .filter_map(|u| {
            let u = u.split(['#', '?']).next().unwrap_or_default().to_owned();
            let path = u
                .strip_prefix(base)
                .map(str::to_owned)
                .or_else(|| (u.starts_with('/') && !u.starts_with("//")).then_some(u))?;
            let rel = path.trim_start_matches('/').to_owned();
            (!rel.is_empty() && !rel.ends_with('/') && rel.contains('.')).then_some(rel)
        })
        .collect()
}

/// The live site under `prefix` is whole: every page the live state lists exists, and
/// every file any of them references exists.
#[track_caller]
fn assert_consistent(bucket: &Bucket, prefix: &str, base: &str, when: &str) {
    let live = bucket.live(prefix).unwrap_or_else(|| panic!("{when}: nothing live"));
    let files = live["files"].as_object().expect("files");
    let mut known: HashMap<String, bool> = HashMap::new();
    for path in files.keys().filter(|p| p.ends_with(".html")) {
        let (page, ..) = bucket
            .get(&format!("{prefix}/{path}"))
            .unwrap_or_else(|| panic!("{when}: live page `{path}` is missing"));
        for rel in references(&String::from_utf8_lossy(&page), base) {
            let exists = *known
                .entry(rel.clone())
                .or_insert_with(|| bucket.exists(&format!("{prefix}/{rel}")));
            assert!(exists, "{when}: `{path}` references `{rel}`, which is missing");
        }
    }
    assert!(
        files.keys().all(|p| bucket.exists(&format!("{prefix}/{p}"))),
        "{when}: a live file is missing"
    );
}

/// Asserts that every file of `site` is published under `prefix` with its bytes and headers.
#[track_caller]
fn assert_published(bucket: &Bucket, prefix: &str, site: &Path) {
    let manifest = manifest(site);
    for path in site_paths(site) {
        let local = std::fs::read(site.join(&path)).expect("local file");
        let (bytes, content_type, cache) = bucket
            .get(&format!("{prefix}/{path}"))
            .unwrap_or_else(|| panic!("`{path}` was not published"));
        assert!(bytes == local, "`{path}` differs from the built file");
        let expected_cache = match manifest.get(&path).map(|(_, c)| c.as_str()) {
            Some("immutable") => IMMUTABLE,
            _ => REVALIDATE,
        };
        assert_eq!(cache, expected_cache, "Cache-Control of `{path}`");
        let ext = path.rsplit('.').next().unwrap_or_default();
        let expected_type = match ext {
            "html" => "text/html; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "json" => "application/json",
            "xml" => "application/xml; charset=utf-8",
            "txt" => "text/plain; charset=utf-8",
            "csv" => "text/csv; charset=utf-8",
            "jpg" => "image/jpeg",
            "png" => "image/png",
            "webp" => "image/webp",
            _ => "application/octet-stream",
        };
        assert_eq!(content_type, expected_type, "Content-Type of `{path}`");
    }
}

const DEMO_BASE: &str = "https://northwind.example.com";

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn a_full_publish_serves_every_file_with_its_headers_and_a_second_one_uploads_nothing() {
    let bucket = Bucket::new("full");
    let tmp = tempdir();
    let site = tmp.path().join("site");
    build(&demo_store(), &site, None);
    let url = bucket.url("shop");

    let first = publish(&site, &url, &[]);
    let files = site_paths(&site).len() as u64;
    assert_eq!(count(&first, "uploaded"), files);
    assert_eq!(count(&first, "files"), files);
    assert_published(&bucket, "shop", &site);
    assert_consistent(&bucket, "shop", DEMO_BASE, "after a full publish");
    let purge: Value = serde_json::from_str(
        &std::fs::read_to_string(first["purge_list"].as_str().expect("purge list path"))
            .expect("purge list"),
    )
    .expect("purge JSON");
    let urls = purge["urls"].as_array().expect("urls");
    assert!(urls.iter().any(|u| u == "https://northwind.example.com/"), "the home page is purged");
    let deploy = first["deploy"]["id"].as_str().expect("id");
    let record = bucket.json(&format!("shop/_aurelio/deploys/{deploy}.json"));
    assert_eq!(record["deploy"]["uploaded"], files);
    assert_eq!(
        record["purge"].as_array().map(Vec::len),
        Some(urls.len()),
        "the purge list is kept with the deploy"
    );

    let again = publish(&site, &url, &[]);
    assert_eq!(count(&again, "uploaded"), 0, "a no-op publish uploads nothing");
    assert_eq!(count(&again, "unchanged"), files);
    assert_eq!(again["purge_urls"], 0);
    assert!(bucket.get("shop/_aurelio/inflight.json").is_none());
}

#[test]
fn a_one_product_price_change_uploads_exactly_the_changed_files_and_purges_their_urls() {
    let bucket = Bucket::new("price");
    let tmp = tempdir();
    let (before, after) = (tmp.path().join("before"), tmp.path().join("after"));
    build(&demo_store(), &before, None);
    let catalog = tmp.path().join("catalog");
    let handle = demo_with_new_price(&catalog);
    build(&catalog, &after, None);
    let url = bucket.url("shop");
    publish(&before, &url, &[]);

    let (old, new) = (manifest(&before), manifest(&after));
    let mut changed: BTreeSet<String> =
        new.iter().filter(|(p, e)| old.get(*p) != Some(e)).map(|(p, _)| p.clone()).collect();
    changed.insert("aurelio-manifest.json".into());
    assert!(changed.contains(&format!("products/{handle}/index.html")), "the product page changed");
    assert!(changed.len() < new.len() / 2, "a price change touches few files: {changed:?}");
    let gone: Vec<&String> = old.keys().filter(|p| !new.contains_key(*p)).collect();

    let purge_file = tmp.path().join("purge.json");
    let report = publish(&after, &url, &["--purge-list", &purge_file.to_string_lossy()]);
    assert_eq!(count(&report, "uploaded"), changed.len() as u64, "uploaded exactly {changed:?}");
    assert_eq!(count(&report, "unchanged"), (new.len() + 1 - changed.len()) as u64);
    assert_published(&bucket, "shop", &after);

    let purge: Value =
        serde_json::from_str(&std::fs::read_to_string(&purge_file).expect("purge list"))
            .expect("JSON");
    assert_eq!(purge["deploy"], report["deploy"]["id"]);
    let urls: BTreeSet<String> = purge["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| u.as_str().unwrap_or_default().to_owned())
        .collect();
    for path in &changed {
        assert!(
            urls.contains(&format!("{DEMO_BASE}/{path}")),
            "purge list lacks `{path}`: {urls:?}"
        );
    }
    assert!(urls.contains(&format!("{DEMO_BASE}/products/{handle}/")));
    for u in &urls {
        let path = u.strip_prefix(&format!("{DEMO_BASE}/")).expect("absolute URL on the base");
        let file = if path.is_empty() || path.ends_with('/') {
            format!("{path}index.html")
        } else {
            path.to_owned()
        };
        assert!(changed.contains(&file) || gone.contains(&&file), "`{u}` did not change");
    }
}

#[test]
fn a_rollback_restores_an_earlier_deploy_byte_for_byte() {
    let bucket = Bucket::new("rollback");
    let tmp = tempdir();
    let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    build(&demo_store(), &v1, None);
    let catalog = tmp.path().join("catalog");
    demo_with_new_price(&catalog);
    build(&catalog, &v2, Some("bold"));
    let url = bucket.url("site");

    let first = publish(&v1, &url, &[]);
    publish(&v2, &url, &["--grace", "0"]);
    assert_published(&bucket, "site", &v2);
    let id = first["deploy"]["id"].as_str().expect("id");

    let out = run(&mut aurelio(&["publish", "--rollback", id, "--to", &url, "--grace", "0"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("rolled back to {id}")), "{stdout}");
    assert_published(&bucket, "site", &v1);
    assert_consistent(&bucket, "site", DEMO_BASE, "after the rollback");
    let live = bucket.live("site").expect("live");
    let served: BTreeSet<String> =
        live["files"].as_object().expect("files").keys().cloned().collect();
    assert_eq!(
        served,
        site_paths(&v1).into_iter().collect(),
        "the live state is the first deploy's"
    );

    let list = run(&mut aurelio(&["publish", "--list", "--to", &url]));
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), 4, "a header and three deploys:\n{text}");
    assert!(
        text.lines().last().is_some_and(|l| l.contains("rollback") && l.contains("(live)")),
        "{text}"
    );

    let unknown = aurelio(&["publish", "--rollback", "1999", "--to", &url]).output().expect("run");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no deploy `1999`"));
}

#[test]
fn publishes_beyond_keep_prune_old_deploys_and_their_copies_and_kept_ones_roll_back() {
    let bucket = Bucket::new("keep");
    let tmp = tempdir();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    build(&demo_store(), &a, None);
    let catalog = tmp.path().join("catalog");
    demo_with_new_price(&catalog);
    build(&catalog, &b, None);
    build(&demo_store(), &c, Some("bold"));
    let url = bucket.url("shop");
    let records = || bucket.names("shop/_aurelio/deploys").len();

    let mut ids = Vec::new();
    for site in [&a, &b, &c, &a, &b] {
        let report = publish(site, &url, &["--keep", "2", "--grace", "0"]);
        assert_eq!(report["recorded"], true);
        ids.push(report["deploy"]["id"].as_str().expect("id").to_owned());
        assert!(records() <= 2, "{} deploy records, keeping 2", records());
        assert_consistent(&bucket, "shop", DEMO_BASE, "after a publish");
    }
    let again = publish(&b, &url, &["--keep", "2"]);
    assert_eq!(again["recorded"], false, "publishing the live site again records nothing");
    assert_eq!(records(), 2);

    let live = bucket.live("shop").expect("live");
    let history: Vec<&str> = live["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(history, [ids[3].as_str(), ids[4].as_str()]);
    // The copies left are exactly those of the two kept deploys: the bold theme's are gone.
    let mut needed = BTreeSet::new();
    for id in &history {
        let record: aurelio_engine::publish::state::DeployRecord =
            serde_json::from_value(bucket.json(&format!("shop/_aurelio/deploys/{id}.json")))
                .expect("record");
        needed.extend(record.files.values().map(|e| e.object_name()));
    }
    assert_eq!(bucket.names("shop/_aurelio/objects"), needed);

    // The oldest kept deploy rolls back byte for byte; a pruned one is unknown.
    let out = run(&mut aurelio(&["publish", "--rollback", &ids[3], "--to", &url, "--keep", "2"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("rolled back to {}", ids[3])));
    assert_published(&bucket, "shop", &a);
    assert_consistent(&bucket, "shop", DEMO_BASE, "after the rollback");
    assert!(records() <= 2);
    let pruned = aurelio(&["publish", "--rollback", &ids[2], "--to", &url]).output().expect("run");
    assert!(!pruned.status.success());
    assert!(String::from_utf8_lossy(&pruned.stderr).contains(&format!("no deploy `{}`", ids[2])));
}

#[test]
fn a_missing_bucket_is_a_clear_error_naming_it() {
    endpoint();
    let tmp = tempdir();
    let site = tmp.path().join("site");
    build(&demo_store(), &site, None);
    let name = format!("aurelio-missing-{}", std::process::id());
    let out = aurelio(&[
        "publish",
        "--from",
        &site.to_string_lossy(),
        "--to",
        &format!("s3://{name}/shop"),
    ])
    .output()
    .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("bucket `{name}` does not exist")), "{stderr}");
    assert!(stderr.lines().count() <= 2, "one clear line, not a dump: {stderr}");
}

#[test]
fn the_purge_webhook_gets_the_list_and_a_failing_one_does_not_undo_the_deploy() {
    let bucket = Bucket::new("webhook");
    let tmp = tempdir();
    let site = tmp.path().join("site");
    build(&demo_store(), &site, None);

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hook = format!("http://{}/purge", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut request = Vec::new();
        let mut buf = [0; 65536];
        loop {
            let n = conn.read(&mut buf).expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if request.len() >= head_end + 4 + length || n == 0 {
                    break;
                }
            }
        }
        conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").expect("answer");
        String::from_utf8_lossy(&request).into_owned()
    });
    let report = publish(&site, &bucket.url("a"), &["--purge-webhook", &hook]);
    let request = server.join().expect("server");
    assert!(request.starts_with("POST /purge "), "{request}");
    assert!(request.to_ascii_lowercase().contains("content-type: application/json"));
    let body: Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap_or_default())
        .expect("JSON body");
    assert_eq!(body["deploy"], report["deploy"]["id"]);
    assert_eq!(
        body["urls"].as_array().map(Vec::len),
        report["purge_urls"].as_u64().map(|n| n as usize)
    );
    assert_eq!(report["webhook"]["status"], 204);

    // Nothing listens on this port any more.
    let dead = format!(
        "http://{}/purge",
        TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr")
    );
    let out = run(aurelio(&[
        "publish",
        "--json",
        "--from",
        &site.to_string_lossy(),
        "--to",
        &bucket.url("b"),
    ])
    .env("AURELIO_PURGE_WEBHOOK", &dead));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: purge webhook failed"), "{stderr}");
    assert_published(&bucket, "b", &site);
}

#[test]
fn publishes_to_a_local_directory() {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    build(&demo_store(), &site, None);
    let dest = tmp.path().join("www");
    let url = format!("file://{}", dest.display());
    let report = publish(&site, &url, &[]);
    assert_eq!(count(&report, "uploaded"), site_paths(&site).len() as u64);
    for path in site_paths(&site) {
        assert_eq!(
            std::fs::read(dest.join(&path)).ok(),
            std::fs::read(site.join(&path)).ok(),
            "`{path}`"
        );
    }
    assert_eq!(count(&publish(&site, &url, &[]), "uploaded"), 0);
}

/// A small deterministic generator, seeded per run and printed on failure.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn publishes_interrupted_at_random_points_leave_a_whole_site_and_a_rerun_completes_it() {
    let bucket = Bucket::new("kill");
    let tmp = tempdir();
    let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    build(&demo_store(), &v1, None);
    let catalog = tmp.path().join("catalog");
    demo_with_new_price(&catalog);
    build(&catalog, &v2, Some("bold"));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let url = bucket.url("shop");
    let upstream = endpoint().trim_start_matches("http://").to_owned();
    publish(&v1, &url, &[]);
    // The bytes a publish of the change sends to S3, counted by a proxy that holds nothing.
    let counter = StallProxy::start(&upstream, None);
    run(aurelio(&["publish", "--from", &v2.to_string_lossy(), "--to", &url])
        .env("AWS_ENDPOINT_URL", counter.url()));
    let change_bytes = counter.bytes_sent();
    assert!(change_bytes > 0, "the publish of the change went through the proxy");
    publish(&v1, &url, &[]);
    let writes = 2 * site_paths(&v2).len() as u64 + 8;
    let v1_manifest = std::fs::read(v1.join("aurelio-manifest.json")).expect("manifest");

    // Injected failures after a random number of writes, alternating targets.
    for round in 0..6 {
        let (site, name) = if round % 2 == 0 { (&v2, "v2") } else { (&v1, "v1") };
        let n = rng.below(writes);
        let out = aurelio(&["publish", "--from", &site.to_string_lossy(), "--to", &url])
            .env("AURELIO_PUBLISH_FAIL_AFTER", n.to_string())
            .output()
            .expect("run");
        let when =
            format!("seed {seed}, round {round}: publish of {name} stopped after {n} writes");
        assert!(
            out.status.success()
                || String::from_utf8_lossy(&out.stderr).contains("interrupted after"),
            "{when}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_consistent(&bucket, "shop", DEMO_BASE, &when);
    }

    // Real kills (SIGKILL) in the middle of a publish of the site that is not live: it talks
    // to S3 through a proxy that holds back everything after a random number of bytes, so
    // the publish is stuck mid-request at that point when it is killed. No sleeping: the
    // test waits for the proxy to hold bytes back. When a publish needs fewer bytes than
    // the cut (one resumed after an earlier kill), it completes, and the round tries again
    // with a smaller cut, down to one byte, which every publish sends: every round kills.
    for round in 0..4 {
        let mut most = change_bytes;
        loop {
            let live_is_v1 =
                bucket.get("shop/aurelio-manifest.json").is_some_and(|(b, ..)| b == v1_manifest);
            let site = if live_is_v1 { &v2 } else { &v1 };
            let cut = 1 + rng.below(most);
            let proxy = StallProxy::start(&upstream, Some(cut));
            let mut child = aurelio(&["publish", "--from", &site.to_string_lossy(), "--to", &url])
                .env("AWS_ENDPOINT_URL", proxy.url())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            let stuck = proxy.wait_stalled(&mut child);
            let _ = child.kill();
            let status = child.wait().expect("wait");
            let when = format!("seed {seed}, kill round {round}, cut after {cut} bytes ({status})");
            assert_consistent(&bucket, "shop", DEMO_BASE, &when);
            if stuck {
                assert!(!status.success(), "{when}: a publish held mid-request succeeded");
                break;
            }
            assert!(status.success(), "{when}: the publish failed before its cut");
            assert!(cut > 1, "{when}: a whole publish sent a single byte");
            most = cut - 1;
        }
    }

    // A re-run completes the publish; the result equals a clean publish of the same site.
    publish(&v2, &url, &[]);
    assert_consistent(&bucket, "shop", DEMO_BASE, "after the re-run");
    assert_published(&bucket, "shop", &v2);
    assert!(bucket.get("shop/_aurelio/inflight.json").is_none(), "the journal is cleared");
    publish(&v2, &bucket.url("clean"), &[]);
    let (live, clean) = (bucket.live("shop").expect("live"), bucket.live("clean").expect("clean"));
    assert_eq!(live["files"], clean["files"], "the live state equals a clean publish's");
    for path in live["files"].as_object().expect("files").keys() {
        assert_eq!(
            bucket.get(&format!("shop/{path}")),
            bucket.get(&format!("clean/{path}")),
            "`{path}`"
        );
    }
    let again = publish(&v2, &url, &[]);
    assert_eq!(count(&again, "uploaded"), 0, "and nothing is left to do");
}
