//! A shop exported over the API (`GET /api/v1/export`) is a catalog directory the real
//! `aurelio build` builds: a demo shop is provisioned on an in-process API server (SQLite,
//! and PostgreSQL from `AURELIO_TEST_DATABASE_URL`, which `./scripts/test` sets), changed
//! over HTTP, exported, unpacked with `tar`, and built by the binary.
//!
//! HTTP is spoken with a few lines over a `TcpStream`, so the root package needs no HTTP
//! client.

mod common;

use common::{aurelio, tempdir};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;

const ADMIN: &str = "export-test-admin";

/// One HTTP/1.1 request; the status and body (sent with a `Content-Length`, or chunked as
/// the export is, which is streamed).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect to the test server");
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a header");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let body = &answer[split + 4..];
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return (status, body.to_vec());
    }
    // Chunks: a hexadecimal size line, the bytes, CRLF; a size of 0 ends the body.
    let (mut rest, mut whole) = (body, Vec::new());
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = std::str::from_utf8(&rest[..line]).ok().and_then(|l| {
            usize::from_str_radix(l.split(';').next().unwrap_or_default().trim(), 16).ok()
        });
        let size = size.expect("a chunk size");
        if size == 0 {
            return (status, whole);
        }
        whole.extend_from_slice(&rest[line + 2..line + 2 + size]);
        rest = &rest[line + 2 + size + 2..];
    }
}

fn json_of(status: u16, body: &[u8], expected: u16) -> Value {
    let text = String::from_utf8_lossy(body);
    assert_eq!(status, expected, "{text}");
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The image cache both servers and both builds of this file share: the demo's images
/// are encoded once.
fn shared_cache() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(tempdir).path()
}

fn export_builds(database_url: Option<String>) {
    let data = tempdir();
    std::fs::create_dir_all(data.path().join("data")).expect("a data directory");
    std::os::unix::fs::symlink(shared_cache(), data.path().join("data/cache"))
        .expect("link the shared cache");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let config = aurelio_api::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data.path().join("data"),
        database_url,
        admin_token: Some(ADMIN.into()),
        demo_catalog: common::demo_store(),
        build_debounce: std::time::Duration::from_millis(20),
        ..aurelio_api::Config::default()
    };
    let running = runtime
        .block_on(async {
            let platform = aurelio_api::Platform::open(config).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            aurelio_api::start(platform, listener).await
        })
        .expect("the API server starts");
    let addr = running.addr;

    let handle = format!("export-{}", std::process::id());
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/tenants",
        ADMIN,
        Some(&json!({ "handle": handle, "name": "Export Test", "demo": true })),
    );
    let shop = json_of(status, &body, 201);
    let key = shop["secret_key"].as_str().expect("a secret key").to_owned();
    // A change made over the API is in the export.
    let new_product = json!({
        "handle": "exported-kettle", "title": "Exported Kettle", "status": "active",
        "variants": [{ "sku": "EXP-KETTLE", "price": "34.50", "inventory": 3 }],
    });
    let (status, body) = http(addr, "POST", "/api/v1/products", &key, Some(&new_product));
    json_of(status, &body, 201);

    let (status, tar) = http(addr, "GET", "/api/v1/export", &key, None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&tar));
    let unpacked = tempdir();
    let archive = unpacked.path().join("shop.tar");
    std::fs::write(&archive, &tar).expect("write the archive");
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(unpacked.path())
        .output()
        .expect("run tar");
    assert!(untar.status.success(), "{}", String::from_utf8_lossy(&untar.stderr));
    let site = unpacked.path().join(&handle);
    let lines = std::fs::read_to_string(site.join("products.jsonl")).expect("products.jsonl");
    assert!(lines.lines().any(|l| l.contains("\"exported-kettle\"") && l.contains("\"34.50\"")));

    let out = unpacked.path().join("out");
    let run = aurelio(&[
        "build".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--cache".as_ref(),
        shared_cache().as_os_str(),
    ])
    .success();
    assert!(run.stdout.contains("pages") || run.stderr.contains("pages"), "a summary: {run:?}");
    let page = std::fs::read_to_string(out.join("products/exported-kettle/index.html"))
        .expect("the exported product was built");
    assert!(page.contains("Exported Kettle") && page.contains("34.50"));
    let demo_lines = std::fs::read_to_string(common::demo_store().join("products.jsonl"))
        .expect("the demo catalog");
    let first: Value =
        serde_json::from_str(demo_lines.lines().next().expect("a line")).expect("JSON");
    let first = first["handle"].as_str().expect("handle");
    assert!(Path::new(&out).join("products").join(first).join("index.html").is_file());

    let stopped = runtime.block_on(running.shutdown());
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[test]
fn export_builds_with_the_binary_sqlite() {
    export_builds(None);
}

#[test]
fn export_builds_with_the_binary_postgres() {
    let var = "AURELIO_TEST_DATABASE_URL";
    let Some(mut url) = std::env::var(var).ok().filter(|u| !u.trim().is_empty()) else {
        panic!(
            "{var} is not set: the API tests run on SQLite and on PostgreSQL.\n\
             Run `./scripts/test`, which starts a private PostgreSQL server, or set it by hand:\n  \
             {var}=postgres://postgres@127.0.0.1:5432/postgres cargo test --test api_export"
        );
    };
    // A registry database of its own (the server creates it), named as the API tests name
    // theirs so that leftovers are recognised: `aurelio_t_<unix seconds, hex><random>`.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let name = format!("aurelio_t_{secs:08x}{:04x}", std::process::id() & 0xffff);
    let cut = url.rfind('/').filter(|i| *i > "postgres://".len()).expect("a database path");
    url.truncate(cut);
    url.push('/');
    url.push_str(&name);
    export_builds(Some(url));
}
