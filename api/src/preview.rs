//! The live-reloading preview behind `aurelio watch`: serves a built site, adds a small
//! script to every HTML page, and tells open pages over server-sent events to reload after
//! a rebuild or to show the build error as an overlay.
//!
//! The script is added when serving, never written into the site, so a preview serves the
//! same bytes a publish uploads.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;

/// What the watcher tells open pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewEvent {
    /// A build succeeded: reload.
    Reload,
    /// A build failed: show this message.
    Error(String),
}

/// Paths the preview reserves for itself.
pub const EVENTS_PATH: &str = "/_aurelio/events";
/// The live-reload script.
pub const SCRIPT_PATH: &str = "/_aurelio/live.js";

const SCRIPT: &str = r#"(function () {
  'use strict';
  var overlay = null;
  function show(message) {
    if (!overlay) {
      overlay = document.createElement('div');
      overlay.setAttribute('role', 'alert');
      overlay.style.cssText = 'position:fixed;inset:0;z-index:2147483647;overflow:auto;padding:2rem;' +
        'background:rgba(20,20,24,.94);color:#ffdede;font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap';
      document.body.appendChild(overlay);
    }
    overlay.textContent = 'Build failed — the preview shows the last good build.\n\n' + message;
  }
  var source = new EventSource('/_aurelio/events');
  source.addEventListener('reload', function () { location.reload(); });
  source.addEventListener('build-error', function (e) { show(e.data); });
})();
"#;

/// Serves `site_dir` with live reload driven by `events`.
pub fn app(site_dir: PathBuf, events: broadcast::Sender<PreviewEvent>) -> Router {
    let events = Arc::new(events);
    let storefront = static_site(site_dir).layer(axum::middleware::map_response(inject_script));
    Router::new()
        .route(SCRIPT_PATH, get(script))
        .route(
            EVENTS_PATH,
            get(move || {
                let receiver = events.subscribe();
                async move { stream(receiver) }
            }),
        )
        .route("/_aurelio/", get(|| async { Redirect::to("/") }))
        .merge(storefront)
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        SCRIPT,
    )
}

fn stream(receiver: broadcast::Receiver<PreviewEvent>) -> impl IntoResponse {
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(PreviewEvent::Reload) => {
                    return Some((
                        Ok::<_, Infallible>(Event::default().event("reload").data("reload")),
                        receiver,
                    ));
                }
                Ok(PreviewEvent::Error(message)) => {
                    return Some((
                        Ok(Event::default().event("build-error").data(message)),
                        receiver,
                    ));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Adds the live-reload script before `</body>` of HTML responses and stops caching.
async fn inject_script(response: Response<Body>) -> Response<Body> {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut html = String::from_utf8_lossy(&bytes).into_owned();
    let tag = format!("<script src=\"{SCRIPT_PATH}\"></script>");
    match html.rfind("</body>") {
        Some(i) => html.insert_str(i, &tag),
        None => html.push_str(&tag),
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Response::from_parts(parts, Body::from(html))
}

/// The built site as files: `index.html` for directories, the site's `404.html` (or a
/// plain 404) for what is missing, and the health checks.
fn static_site(site_dir: PathBuf) -> Router {
    use axum::http::StatusCode;
    use axum::response::{Html, IntoResponse};
    use axum::routing::get;
    let not_found_page = site_dir.join("404.html");
    let not_found = get(move || {
        let page = not_found_page.clone();
        async move {
            match tokio::fs::read_to_string(&page).await {
                Ok(html) => (StatusCode::NOT_FOUND, Html(html)).into_response(),
                Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
            }
        }
    });
    let storefront = tower_http::services::ServeDir::new(site_dir)
        .append_index_html_on_directories(true)
        .fallback(not_found);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .fallback_service(storefront)
}

/// Serves `app` on `listener` until Ctrl-C or SIGTERM, finishing in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(crate::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn html_gets_the_script_and_other_files_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "<html><body><h1>Hi</h1></body></html>")
            .expect("write");
        std::fs::write(dir.path().join("robots.txt"), "User-agent: *").expect("write");
        let (tx, _rx) = broadcast::channel(4);
        let app = app(dir.path().to_owned(), tx);
        let page = app
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(page.status(), StatusCode::OK);
        let body = axum::body::to_bytes(page.into_body(), 1 << 20).await.expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(&format!("<script src=\"{SCRIPT_PATH}\"></script></body>")),
            "{text}"
        );
        let robots = app
            .oneshot(Request::get("/robots.txt").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let body = axum::body::to_bytes(robots.into_body(), 1 << 20).await.expect("body");
        assert_eq!(&body[..], b"User-agent: *");
    }
}
