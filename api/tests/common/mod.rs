//! The harness of the API integration tests: a real server (`Platform::open` + `start`) on
//! 127.0.0.1:0 with a temporary data directory, talked to over HTTP with `reqwest`.
//!
//! Every test runs twice, on SQLite files and on PostgreSQL (`both!`). PostgreSQL comes
//! from `AURELIO_TEST_DATABASE_URL` (`./scripts/test` starts a private server and sets it);
//! each server gets a registry database of its own, `aurelio_t_<time><random>`, which the
//! server creates. Without the variable the PostgreSQL tests fail and say how to run them.
//!
//! A server runs on a runtime of its own (so tests, each on its own small runtime, can
//! share one server per test file), and all servers of a test binary share one image cache
//! directory, so the demo's images are encoded once per binary.

#![allow(dead_code, clippy::unwrap_used)]

use aurelio_api::{Config, Platform};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The platform admin token of every test server.
pub const ADMIN: &str = "test-admin-token-5f2c";

/// The sealing key (`AURELIO_SECRET_KEY`) of every test server, unless a test sets another.
pub const TEST_SECRET_KEY: &str =
    "5e1f0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

/// The variable naming the PostgreSQL server of the tests.
pub const DATABASE_VAR: &str = "AURELIO_TEST_DATABASE_URL";

/// Which database backend a server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// SQLite files under the data directory.
    Sqlite,
    /// A PostgreSQL server (`AURELIO_TEST_DATABASE_URL`).
    Postgres,
}

/// Generates, for each named `async fn NAME(db: Db)`, a module `NAME` with the tests
/// `sqlite` and `postgres` (`NAME::sqlite`, `NAME::postgres`).
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                $crate::common::run(super::$name($crate::common::Db::Sqlite));
            }
            #[test]
            fn postgres() {
                $crate::common::run(super::$name($crate::common::Db::Postgres));
            }
        }
    )*};
}

/// Runs a test body on a small runtime of its own.
pub fn run<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(test);
}

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A handle no other test uses: `prefix-<random>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(4))
}

/// The PostgreSQL URL of the tests; fails the test, saying how to get one, when unset.
#[track_caller]
pub fn postgres_url() -> url::Url {
    match std::env::var(DATABASE_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            url::Url::parse(url.trim()).expect("AURELIO_TEST_DATABASE_URL is a URL")
        }
        _ => panic!(
            "{DATABASE_VAR} is not set: the API tests run on SQLite and on PostgreSQL.\n\
             Run `./scripts/test`, which installs and starts a private PostgreSQL server, or \
             point the tests at one by hand:\n  \
             {DATABASE_VAR}=postgres://postgres@127.0.0.1:5432/postgres \
             cargo test -p aurelio-api"
        ),
    }
}

/// A test database name with the time it was made, so leftovers of killed runs can be
/// recognised and dropped: `aurelio_t_<unix seconds, hex><random>`.
fn test_database_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("aurelio_t_{secs:08x}{}", random_hex(2))
}

/// Drops test databases (registry and shops) left over by runs that ended more than two
/// hours ago, once per test binary.
async fn drop_stale_databases(url: &url::Url) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let Ok(pool) = sqlx::PgPool::connect(url.as_str()).await else { return };
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'aurelio\\_t\\_%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        for name in names {
            let made = name.get(10..18).and_then(|h| u64::from_str_radix(h, 16).ok());
            if made.is_some_and(|t| t + 7200 < now)
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
            }
        }
        pool.close().await;
    })
    .await;
}

/// The image cache every server of this test binary shares.
fn shared_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a cache directory")).path()
}

/// A running server with its own data directory (and registry database).
pub struct Server {
    /// Its address.
    pub addr: SocketAddr,
    /// The platform, to look inside (pool counts, registry).
    pub platform: Arc<Platform>,
    /// `sqlite` or `postgres`.
    pub db: Db,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The registry's URL on PostgreSQL.
    pub database_url: Option<url::Url>,
    _data: tempfile::TempDir,
    running: Option<aurelio_api::Running>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).field("db", &self.db).finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropping `Running` asks the server to stop; the runtime then ends its tasks.
        drop(self.running.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Server {
    /// Starts a server with the test defaults, changed by `tweak`.
    #[track_caller]
    pub fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Self {
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                let mut url = postgres_url();
                url.set_path(&format!("/{}", test_database_name()));
                Some(url)
            }
        };
        let data = tempfile::tempdir().expect("a data directory");
        std::os::unix::fs::symlink(shared_cache(), data.path().join("cache"))
            .expect("link the shared image cache");
        Self::start_at(db, data, database_url, tweak)
    }

    /// Starts a server on a data directory and registry database (new or left by another).
    #[track_caller]
    fn start_at(
        db: Db,
        data: tempfile::TempDir,
        database_url: Option<url::Url>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data.path().to_owned(),
            database_url: database_url.as_ref().map(ToString::to_string),
            admin_token: Some(ADMIN.into()),
            demo_catalog: repo_path("fixtures/demo-store"),
            build_debounce: Duration::from_millis(20),
            secret_key: Some(TEST_SECRET_KEY.into()),
            // Tests receive webhooks and stand in for Stripe on 127.0.0.1; tests of the
            // egress guard switch it back on.
            allow_private_egress: true,
            // Tests send far more from one address than a client may; the limits' own
            // tests turn them on.
            // The demo shop's provisioning build, in a debug binary on a loaded machine, can
            // take longer than the default 30 s a request may; the limit's own test sets it.
            limits: aurelio_api::limits::LimitsConfig {
                enabled: false,
                request_timeout_ms: 300_000,
                ..aurelio_api::limits::LimitsConfig::default()
            },
            ..Config::default()
        };
        tweak(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a server runtime");
        let (tx, rx) = std::sync::mpsc::channel();
        let admin_url = database_url.clone();
        runtime.spawn(async move {
            if let Some(url) = &admin_url {
                let mut postgres = url.clone();
                postgres.set_path("/postgres");
                drop_stale_databases(&postgres).await;
            }
            let started = async {
                let platform = Platform::open(config).await?;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                aurelio_api::start(platform, listener).await
            }
            .await;
            let _ = tx.send(started.map(|r| (r.addr, r.platform.clone(), r)));
        });
        let (addr, platform, running) = rx
            .recv()
            .expect("the server task answers")
            .unwrap_or_else(|e| panic!("the {db:?} test server did not start: {e:#}"));
        let data_dir = platform.config.data_dir.clone();
        Self {
            addr,
            platform,
            db,
            data_dir,
            database_url,
            _data: data,
            running: Some(running),
            runtime: Some(runtime),
        }
    }

    /// The server of this test binary for `db`, started on first use and shared by the
    /// tests of the file (each works on shops of its own).
    #[track_caller]
    pub fn shared(db: Db) -> &'static Self {
        static SQLITE: OnceLock<Server> = OnceLock::new();
        static POSTGRES: OnceLock<Server> = OnceLock::new();
        let cell = match db {
            Db::Sqlite => &SQLITE,
            Db::Postgres => {
                postgres_url();
                &POSTGRES
            }
        };
        cell.get_or_init(|| Self::start(db, |_| {}))
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client of this server (one per test: a client belongs to the test's runtime).
    pub fn client(&self) -> Client {
        // reqwest is built without a TLS provider of its own: the engine's (ring).
        aurelio_engine::publish::install_crypto_provider();
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            base: self.url(""),
        }
    }

    /// The path of a shop's SQLite database file.
    pub fn sqlite_file(&self, shop_id: &str) -> PathBuf {
        self.data_dir.join("shops").join(format!("{shop_id}.db"))
    }

    /// Whether a PostgreSQL database of that name exists.
    pub async fn postgres_database_exists(&self, name: &str) -> bool {
        let url = self.database_url.as_ref().expect("a PostgreSQL server");
        let pool = sqlx::PgPool::connect(url.as_str()).await.expect("connect to PostgreSQL");
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&pool)
            .await
            .expect("query pg_database");
        pool.close().await;
        found.is_some()
    }

    /// The PostgreSQL database name of a shop, as the server names it.
    pub fn postgres_shop_db(&self, shop_id: &str) -> String {
        assert!(self.database_url.is_some(), "a PostgreSQL server");
        self.platform.pools.backend().shop_db_name(shop_id)
    }
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Resp {
    /// What was asked (for messages).
    pub request: String,
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics, showing it, when it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{}: the body is not JSON ({e}): {}", self.request, self.text())
        })
    }

    /// Panics, showing the body, unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "{} answered {} (expected {status}): {}",
            self.request,
            self.status,
            self.text()
        );
        self
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// Asserts the standard error body: `{"error": {"code", "message", "field"}}` with
    /// this status and code, a message, and the field when one is given. The error.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str, field: Option<&str>) -> Value {
        let body = self.json();
        assert_eq!(self.status, status, "{}: {body}", self.request);
        let error = body.get("error").unwrap_or_else(|| {
            panic!("{}: no `error` member in the error body: {body}", self.request)
        });
        assert_eq!(error["code"], json!(code), "{}: {body}", self.request);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: the error has no message: {body}",
            self.request
        );
        if let Some(field) = field {
            assert_eq!(error["field"], json!(field), "{}: {body}", self.request);
        }
        error.clone()
    }
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:port`.
    pub base: String,
}

/// What to send.
#[derive(Debug, Clone, Default)]
pub enum Payload {
    /// Nothing.
    #[default]
    None,
    /// A JSON body.
    Json(Value),
    /// Raw bytes with a content type.
    Raw(String, Vec<u8>),
}

impl Client {
    /// Sends a request with an optional bearer key and extra headers; the whole answer.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        payload: Payload,
        headers: &[(&str, &str)],
    ) -> Resp {
        let request = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req = match payload {
            Payload::None => req,
            Payload::Json(v) => req.json(&v),
            Payload::Raw(content_type, bytes) => {
                req.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes)
            }
        };
        let response =
            req.send().await.unwrap_or_else(|e| panic!("{request}: the request failed: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{request}: reading the body failed: {e}"))
            .to_vec();
        Resp { request, status, headers, body }
    }

    /// `GET path` with a key.
    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.send_with(Method::GET, path, Some(key), Payload::None, &[]).await
    }

    /// `DELETE path` with a key.
    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.send_with(Method::DELETE, path, Some(key), Payload::None, &[]).await
    }

    /// A request with a JSON body.
    pub async fn send(&self, method: Method, path: &str, key: &str, body: Value) -> Resp {
        self.send_with(method, path, Some(key), Payload::Json(body), &[]).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.send(Method::POST, path, key, body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, key: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, key, body).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, key, body).await
    }

    /// Provisions a shop with the admin token (`demo`: with the demo catalog, built and
    /// published before the answer).
    pub async fn provision(&self, handle: &str, demo: bool) -> Shop {
        let resp = self
            .post(
                "/api/v1/tenants",
                ADMIN,
                json!({ "handle": handle, "name": handle, "demo": demo }),
            )
            .await
            .expect(201);
        let body = resp.json();
        let shop = Shop {
            id: body["tenant"]["id"].as_str().expect("tenant.id").to_owned(),
            handle: handle.to_owned(),
            secret: body["secret_key"].as_str().expect("secret_key").to_owned(),
            publishable: body["publishable_key"].as_str().expect("publishable_key").to_owned(),
            build_id: body["build_id"].as_str().expect("build_id").to_owned(),
            body,
        };
        if demo {
            let build = self.build(&shop.secret, &shop.build_id).await;
            assert_eq!(build["status"], json!("succeeded"), "first build of {handle}: {build}");
        }
        shop
    }

    /// A build, as `GET /api/v1/builds/{id}` shows it.
    pub async fn build(&self, key: &str, id: &str) -> Value {
        self.get(&format!("/api/v1/builds/{id}"), key).await.expect(200).json()
    }

    /// Waits until a build has finished (succeeded or failed); what the API shows of it.
    pub async fn wait_build(&self, key: &str, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let build = self.build(key, id).await;
            match build["status"].as_str() {
                Some("succeeded" | "failed") => return build,
                Some("queued" | "running") => {}
                other => panic!("build {id}: unexpected status {other:?}: {build}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "build {id} did not finish in 60 s: {build}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a build and asserts that it succeeded.
    pub async fn wait_built(&self, key: &str, id: &str) -> Value {
        let build = self.wait_build(key, id).await;
        assert_eq!(build["status"], json!("succeeded"), "build {id} failed: {build}");
        build
    }

    /// A storefront file through the origin: `Host: <handle>.localhost`.
    pub async fn storefront(&self, handle: &str, path: &str) -> Resp {
        self.storefront_with(handle, path, &[]).await
    }

    /// A storefront file with extra request headers.
    pub async fn storefront_with(
        &self,
        handle: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let host = format!("{handle}.localhost");
        let mut all = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        self.send_with(Method::GET, path, None, Payload::None, &all).await
    }

    /// Every product of a shop, walking the cursor pages of `limit`.
    pub async fn all_products(&self, key: &str, limit: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let path = match &cursor {
                Some(c) => format!("/api/v1/products?limit={limit}&cursor={c}"),
                None => format!("/api/v1/products?limit={limit}"),
            };
            let page = self.get(&path, key).await.expect(200).json();
            let products = page["products"].as_array().expect("products").clone();
            assert!(products.len() <= limit, "{path}: more than {limit} products");
            out.extend(products);
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
        panic!("the product pages never end");
    }
}

/// A provisioned shop and its keys.
#[derive(Debug, Clone)]
pub struct Shop {
    /// Shop id.
    pub id: String,
    /// Handle.
    pub handle: String,
    /// Owner secret key.
    pub secret: String,
    /// Publishable key.
    pub publishable: String,
    /// The first build.
    pub build_id: String,
    /// The provisioning answer.
    pub body: Value,
}

/// A `multipart/form-data` body with one file field; its content type and bytes.
pub fn multipart(
    field: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!("aurelio-test-{}", random_hex(8));
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
             filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The demo catalog's products, as lines of `products.jsonl`.
pub fn demo_products() -> Vec<Value> {
    std::fs::read_to_string(repo_path("fixtures/demo-store/products.jsonl"))
        .expect("the demo products")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a demo product line"))
        .collect()
}

/// A small valid product body (one line of `products.jsonl`).
pub fn product(handle: &str, sku: &str, price: &str) -> Value {
    json!({
        "handle": handle,
        "title": format!("Test {handle}"),
        "description": "A product made by a test.",
        "status": "active",
        "variants": [{ "sku": sku, "price": price, "inventory": 5 }],
    })
}

pub mod shop;

impl Server {
    /// Stops this server gracefully (as on SIGTERM) and starts another on the same data
    /// directory and registry database: a restart of the process, with the test defaults
    /// changed by `tweak`.
    #[track_caller]
    pub fn restart(mut self, tweak: impl FnOnce(&mut Config)) -> Self {
        let running = self.running.take().expect("a running server");
        let runtime = self.runtime.take().expect("its runtime");
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = tx.send(running.shutdown().await.map_err(|e| e.to_string()));
        });
        rx.recv()
            .expect("the shutdown answers")
            .unwrap_or_else(|e| panic!("the server did not stop cleanly: {e}"));
        runtime.shutdown_background();
        let data = std::mem::replace(&mut self._data, tempfile::tempdir().expect("a directory"));
        Self::start_at(self.db, data, self.database_url.clone(), tweak)
    }
}
