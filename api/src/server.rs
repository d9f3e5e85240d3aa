//! `aurelio serve`: configuration, the shared `Platform`, the router with its middleware
//! (request ids, structured logs, metrics, compression) and graceful shutdown that
//! finishes in-flight requests and the build in progress.

use crate::error::ApiError;
pub use crate::extract::{Body, parse_json};
use crate::platform::jobs;
pub use crate::platform::{Config, Platform};
use crate::{builds, commerce, domains, openapi, origin};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

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

/// Wires every feature to the core: their job kinds, schedules and cache hooks (with
/// `router`, the one place that names features). `start` calls it; so does anything that
/// runs jobs before serving (`aurelio demo` provisions first). Once per platform.
pub async fn install(platform: &Platform) -> anyhow::Result<()> {
    #[derive(Default)]
    struct Installed(std::sync::atomic::AtomicBool);
    if platform.state.get::<Installed>().0.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    jobs::install_core(platform).await.map_err(|e| anyhow::anyhow!(e.message))?;
    builds::install(platform);
    commerce::install(platform);
    domains::install(platform).await.map_err(|e| anyhow::anyhow!(e.message))?;
    platform.state.on_forget(origin::forget);
    Ok(())
}

/// Binds, wires the features (`install`), starts the job dispatcher and the pool janitor,
/// and serves until Ctrl-C, SIGTERM or `Running::shutdown`.
pub async fn start(
    platform: Arc<Platform>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    install(&platform).await?;
    let app = router(platform.clone());
    let workers: Vec<_> = (platform.config.workers > 0)
        .then(|| {
            tokio::spawn(jobs::run(platform.clone(), platform.config.workers, stop_rx.clone()))
        })
        .into_iter()
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
