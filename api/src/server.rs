//! `aurelio serve`: configuration, the shared `Platform`, the router with its middleware
//! (request ids, structured logs, metrics, compression) and graceful shutdown that
//! finishes in-flight requests and the build in progress.

use crate::db::{Backend, Pools, ShopPools};
use crate::error::{ApiError, ApiResult};
pub use crate::extract::{Body, parse_json};
use crate::origin::OriginCache;
use crate::registry::Shop;
use crate::{builds, openapi, origin, schema};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use object_store::ObjectStore;
use serde::Deserialize;
use sqlx::AnyPool;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Everything `serve` needs to know. Built from flags, the environment and an optional
/// TOML file (in that order of precedence) by the command line.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: SQLite files, build work, published sites, media, caches.
    pub data_dir: PathBuf,
    /// PostgreSQL URL for the registry and the shops' databases; SQLite when absent.
    pub database_url: Option<String>,
    /// Token of the platform admin (`AURELIO_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Public URL of this API, written into storefronts for their script.
    pub public_url: String,
    /// Storefront URL of a shop; `{shop}` is replaced by its handle.
    pub storefront_url: String,
    /// Where storefronts are published; `{shop}` is replaced by the shop id. Default:
    /// `file://<data>/published/{shop}`, which this server also serves.
    pub publish_url: Option<String>,
    /// Where uploaded images are kept (an object store URL); default `<data>/media`.
    pub media_url: Option<String>,
    /// Handle of the shop served for hosts that name none (`aurelio demo`).
    pub default_shop: Option<String>,
    /// The demo catalog loaded by provisioning with `"demo": true`.
    pub demo_catalog: PathBuf,
    /// Custom domains: nameservers for checks, routing targets, the ACME authority.
    pub domains: crate::domains::DomainConfig,
    /// How long writes coalesce: the first catalog write after this long without one
    /// builds at once, later ones wait this long after the last (`builds::enqueue`).
    #[serde(with = "millis")]
    pub build_debounce: Duration,
    /// Build workers in this process (0: none, another process builds).
    pub workers: usize,
    /// Connections per shop pool.
    pub pool_size: u32,
    /// Shop pools kept open at most.
    pub max_open_pools: usize,
    /// Shop pools unused this long are closed.
    #[serde(with = "millis")]
    pub pool_idle: Duration,
    /// Key that seals secrets at rest (payment credentials, certificates): 64 hex digits
    /// (`AURELIO_SECRET_KEY`). Without it such secrets cannot be stored.
    pub secret_key: Option<String>,
    /// Stripe's API base URL (`AURELIO_STRIPE_API_BASE`); `https://api.stripe.com` when
    /// absent. Platform configuration, for tests against a stand-in: never set by a shop.
    pub stripe_api_base: Option<String>,
    /// Lets outgoing requests (webhooks, payment providers) reach loopback, private and
    /// link-local addresses (`AURELIO_ALLOW_PRIVATE_EGRESS`): local development and tests
    /// only, never in production.
    pub allow_private_egress: bool,
    /// Rate limits, requests in flight, request time, connections (`limits`).
    pub limits: crate::limits::LimitsConfig,
    /// How long an unpaid `manual` order holds its stock before it expires (0: forever).
    #[serde(with = "millis")]
    pub order_hold: Duration,
    /// Open carts without an order untouched this long are deleted.
    #[serde(with = "millis")]
    pub cart_ttl: Duration,
    /// Bytes of uploaded images a shop may keep (all its images together); an upload past
    /// it is refused with 413 `media_quota_exceeded`. Default 2 GiB.
    pub media_quota_bytes: u64,
}

mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".aurelio/data"),
            database_url: None,
            admin_token: None,
            public_url: "http://127.0.0.1:8080".into(),
            storefront_url: "http://{shop}.localhost:8080".into(),
            publish_url: None,
            media_url: None,
            default_shop: None,
            demo_catalog: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../fixtures/demo-store"
            )),
            domains: crate::domains::DomainConfig::default(),
            build_debounce: Duration::from_millis(250),
            workers: 1,
            pool_size: 4,
            max_open_pools: 200,
            pool_idle: Duration::from_secs(300),
            secret_key: None,
            stripe_api_base: None,
            allow_private_egress: false,
            limits: crate::limits::LimitsConfig::default(),
            order_hold: Duration::from_secs(30 * 60),
            cart_ttl: Duration::from_secs(30 * 24 * 3600),
            media_quota_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Reads a TOML configuration file (keys as the fields of `Config`).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))
    }
}

/// What every request and job shares: configuration, databases, stores, caches.
pub struct Platform {
    /// The configuration.
    pub config: Config,
    /// The registry database.
    pub registry: AnyPool,
    /// Shop database pools.
    pub pools: Pools,
    /// Uploaded images.
    pub media: Arc<dyn ObjectStore>,
    /// Wakes the build workers.
    pub wake: tokio::sync::Notify,
    /// The id of the last finished build (tests and `demo` wait on it).
    pub builds_done: tokio::sync::watch::Sender<String>,
    /// Parsed catalogs kept between builds.
    pub sessions: builds::Sessions,
    /// The storefront origin's caches.
    pub origin: OriginCache,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Custom domains' routes cache.
    pub domains: crate::domains::Domains,
    /// Outgoing HTTP: payment providers, webhooks (public addresses only, `egress`).
    pub http: crate::egress::Egress,
    /// Seals secrets at rest (`AURELIO_SECRET_KEY`); `None` when no key is set.
    pub sealer: Option<crate::crypto::Sealer>,
    /// Key hash → shop and access, for a few seconds (cleared on revoke and suspend).
    pub keys: crate::cache::TtlCache<String, crate::auth::KeyHit>,
    /// Shop id → what cart totals need (currency, tax mode, checkout settings).
    pub facts: crate::cache::TtlCache<String, Arc<crate::commerce::carts::ShopFacts>>,
    /// Rate limits and the requests in flight (`limits`).
    pub limits: Arc<crate::limits::Limits>,
    /// Collection membership per shop, for discounts limited to collections.
    pub members: std::sync::Mutex<
        std::collections::HashMap<
            String,
            (std::time::SystemTime, Arc<crate::commerce::carts::Members>),
        >,
    >,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

impl Platform {
    /// Opens the databases (migrating the registry) and stores.
    pub async fn open(mut config: Config) -> anyhow::Result<Arc<Self>> {
        aurelio_engine::publish::install_crypto_provider();
        std::fs::create_dir_all(&config.data_dir)?;
        config.data_dir = std::fs::canonicalize(&config.data_dir)?;
        let backend = Backend::new(config.database_url.as_deref(), &config.data_dir)?;
        let registry = backend.open_registry().await?;
        crate::db::migrate(&backend, &registry, schema::REGISTRY).await?;
        let media: Arc<dyn ObjectStore> = match &config.media_url {
            None => {
                let dir = config.data_dir.join("media");
                std::fs::create_dir_all(&dir)?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?)
            }
            Some(url) => {
                let url = url::Url::parse(url)?;
                let (store, _) = object_store::parse_url_opts(
                    &url,
                    std::env::vars()
                        .filter(|(k, _)| k.starts_with("AWS_"))
                        .map(|(k, v)| (k.to_ascii_lowercase(), v)),
                )?;
                Arc::from(store)
            }
        };
        let sealer = config
            .secret_key
            .as_deref()
            .map(|k| crate::crypto::Sealer::from_secret(Some(k)))
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?;
        let http = crate::egress::Egress::new(config.allow_private_egress)?;
        let pools = Arc::new(ShopPools::new(
            backend,
            config.pool_size,
            config.max_open_pools,
            config.pool_idle,
        ));
        let limits = Arc::new(crate::limits::Limits::new(config.limits.clone()));
        Ok(Arc::new(Self {
            limits,
            config,
            registry,
            pools,
            media,
            wake: tokio::sync::Notify::new(),
            builds_done: tokio::sync::watch::Sender::new(String::new()),
            sessions: builds::Sessions::default(),
            origin: OriginCache::default(),
            metrics: metrics_handle(),
            domains: crate::domains::Domains::default(),
            http,
            sealer,
            members: std::sync::Mutex::default(),
            keys: crate::cache::TtlCache::new(Duration::from_secs(5), 100_000),
            facts: crate::cache::TtlCache::new(Duration::from_secs(5), 10_000),
        }))
    }

    /// The pool of a shop's database (opened and migrated on first use).
    pub async fn shop_db(&self, shop: &Shop) -> ApiResult<AnyPool> {
        self.pools.get(&shop.db_name, schema::SHOP).await.map_err(|e| {
            tracing::error!(shop = %shop.id, error = %e, "shop database unavailable");
            ApiError::unavailable("the shop's database is unavailable, try again")
        })
    }

    /// The storefront URL of a shop (no trailing slash).
    pub fn storefront_url(&self, handle: &str) -> String {
        self.config.storefront_url.replace("{shop}", handle).trim_end_matches('/').to_owned()
    }

    /// Where a shop's builds happen: its exported catalog and built site.
    pub fn work_dir(&self, shop_id: &str) -> PathBuf {
        self.config.data_dir.join("work").join(shop_id)
    }

    /// The local directory a shop is published to (the default publish target).
    pub fn published_dir(&self, shop_id: &str) -> PathBuf {
        self.config.data_dir.join("published").join(shop_id)
    }

    /// The publish target URL of a shop.
    pub fn publish_url(&self, shop_id: &str) -> String {
        match &self.config.publish_url {
            Some(url) => url.replace("{shop}", shop_id),
            None => format!("file://{}", self.published_dir(shop_id).display()),
        }
    }
}

/// The process-wide Prometheus recorder (installed once; every server in the process
/// renders the same registry).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ])
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The whole service: API, health, metrics and the storefront origin as fallback.
pub fn router(platform: Arc<Platform>) -> Router {
    let (api, mut doc) = openapi::api_router()
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(ready))
        .routes(utoipa_axum::routes!(metrics_text))
        .split_for_parts();
    openapi::add_document_path(&mut doc);
    let doc = Arc::new(doc);
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // An API route's template, never its path: paths hold secrets (cart tokens).
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path(), MatchedPath::as_str);
        tracing::info_span!("request", id = %id, method = %req.method(), path = %path)
    });
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/api/{*rest}", axum::routing::any(no_route))
        .fallback(origin::serve)
        // `/metrics` and the OpenAPI document on the API's hosts only, not storefronts'.
        .layer(axum::middleware::from_fn_with_state(platform.clone(), origin::api_host_only))
        .layer(axum::middleware::from_fn_with_state(platform.limits.clone(), crate::limits::limit))
        .layer(axum::middleware::from_fn(track))
        .layer(axum::middleware::from_fn(crate::cors::allow_any_origin))
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(platform)
}

/// An API path no route matches: the standard error body, not the storefront origin's page.
async fn no_route(req: Request) -> ApiError {
    let message = format!("no API route for {} {}", req.method(), req.uri().path());
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", message)
}

/// Liveness: answers while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: answers `ok` when the registry database answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = String), (status = 503, body = String)))]
async fn ready(State(platform): State<Arc<Platform>>) -> Response {
    match sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&platform.registry).await {
        Ok(_) => "ok".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "registry not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "registry unavailable").into_response()
        }
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, body = String, content_type = "text/plain")))]
async fn metrics_text(State(platform): State<Arc<Platform>>) -> Response {
    metrics::gauge!("aurelio_shop_pools_open").set(platform.pools.open_count() as f64);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], platform.metrics.render())
        .into_response()
}

/// Counts requests and their latency by route and status.
async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "storefront".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("aurelio_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("aurelio_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A running server: its address and a way to stop it.
#[derive(Debug)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The platform (for `demo` and tests).
    pub platform: Arc<Platform>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests and the running build, then returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.stop.send_replace(true);
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Waits until the server stops (Ctrl-C or SIGTERM, or `shutdown`).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Binds, starts the build workers and the pool janitor, and serves until Ctrl-C, SIGTERM
/// or `Running::shutdown`.
pub async fn start(
    platform: Arc<Platform>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let app = router(platform.clone());
    let workers: Vec<_> = (0..platform.config.workers)
        .map(|_| tokio::spawn(builds::worker(platform.clone(), stop_rx.clone())))
        .chain(std::iter::once(tokio::spawn(crate::domains::worker(
            platform.clone(),
            stop_rx.clone(),
        ))))
        .collect();
    let janitor = {
        let platform = platform.clone();
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(30)) => {
                        let closed = platform.pools.evict_idle().await;
                        if closed > 0 {
                            tracing::debug!(closed, "closed idle shop pools");
                        }
                    }
                    _ = stop_rx.changed() => break,
                }
            }
        })
    };
    let platform_for_task = platform.clone();
    let stop_signal = stop.clone();
    let mut serve_stop = stop_rx.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            tokio::select! {
                () = crate::shutdown_signal() => { stop_signal.send_replace(true); }
                _ = serve_stop.changed() => {}
            }
        };
        let limits = platform_for_task.config.limits.clone();
        let drain = Duration::from_secs(30);
        let served = crate::conn::serve(listener, app, &limits, signal, drain).await;
        for w in workers {
            let _ = w.await;
        }
        let _ = janitor.await;
        platform_for_task.pools.close_all().await;
        platform_for_task.registry.close().await;
        served
    });
    Ok(Running { addr, platform, stop, task })
}
