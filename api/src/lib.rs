//! The Aurelio HTTP service: the headless commerce API (`server`), the storefront origin
//! (`origin`) and the live-reloading preview of `aurelio watch` (`preview`).
//!
//! `server::router` is the one place API routers are merged; `aurelio serve`, `aurelio
//! demo` and the tests go through it. Shops are resolved from keys in `auth` and nowhere
//! else.

pub mod auth;
pub mod builds;
pub mod cache;
pub mod catalog;
pub mod commerce;
pub mod conn;
pub mod cors;
pub mod crypto;
pub mod db;
pub mod domains;
pub mod egress;
pub mod error;
pub mod extract;
pub mod feeds;
pub mod limits;
pub mod openapi;
pub mod origin;
pub mod preview;
pub mod registry;
pub mod schema;
pub mod server;
pub mod sqlite_writer;
pub mod tenants;

pub use server::{Config, Platform, Running, start};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::services::ServeDir;

/// Shared state of the service.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The built storefront served at `/`.
    pub site_dir: Arc<PathBuf>,
}

/// The whole application: health checks plus the storefront origin.
pub fn app(state: AppState) -> Router {
    let not_found_page = state.site_dir.join("404.html");
    let not_found = get(move || {
        let page = not_found_page.clone();
        async move {
            match tokio::fs::read_to_string(&page).await {
                Ok(html) => (StatusCode::NOT_FOUND, Html(html)).into_response(),
                Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
            }
        }
    });
    let storefront = ServeDir::new(state.site_dir.as_ref())
        .append_index_html_on_directories(true)
        .fallback(not_found);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .fallback_service(storefront)
        .with_state(state)
}

/// Serves `app` on `listener` until Ctrl-C or SIGTERM, finishing in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
