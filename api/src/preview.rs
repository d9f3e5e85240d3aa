//! The live-reloading preview behind `aurelio watch`: serves a built site, adds a small
//! script to every HTML page, and tells open pages over server-sent events to reload after
//! a rebuild or to show the build error as an overlay.
//!
//! The preview remembers the last build's outcome, so a page that connects while the build
//! is broken is shown the error at once, and a page the site does not have (every page,
//! when the first build failed) is answered with the error and the script, which reloads
//! it once a build succeeds. Each page carries the number of the build it was served
//! after; a page that connects after a later build is told to reload at once.
//!
//! The script is added when serving, never written into the site, so a preview serves the
//! same bytes a publish uploads.

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use futures::StreamExt;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// What the watcher tells open pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewEvent {
    /// A build succeeded: reload.
    Reload,
    /// A build failed: show this message.
    Error(String),
}

/// The watcher's side of the preview: it announces each build's outcome here, and the
/// preview keeps the latest for pages that connect later.
#[derive(Debug, Clone)]
pub struct Preview {
    state: Arc<watch::Sender<Outcome>>,
}

/// The outcome of the latest build.
#[derive(Debug, Clone, Default)]
struct Outcome {
    /// Builds announced so far.
    builds: u64,
    /// The latest build's error, while the build is broken.
    error: Option<String>,
}

impl Default for Preview {
    fn default() -> Self {
        Self::new()
    }
}

impl Preview {
    /// A preview no build has been announced to yet.
    pub fn new() -> Self {
        Self { state: Arc::new(watch::Sender::new(Outcome::default())) }
    }

    /// Announces a build's outcome to every open page (and to pages that open later).
    pub fn send(&self, event: PreviewEvent) {
        self.state.send_modify(|o| {
            o.builds += 1;
            o.error = match event {
                PreviewEvent::Reload => None,
                PreviewEvent::Error(message) => Some(message),
            };
        });
    }

    fn now(&self) -> Outcome {
        self.state.borrow().clone()
    }
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
  var me = document.currentScript;
  var build = me && me.getAttribute('data-build');
  var source = new EventSource('/_aurelio/events' + (build ? '?build=' + build : ''));
  source.addEventListener('reload', function () { location.reload(); });
  source.addEventListener('build-error', function (e) { show(e.data); });
})();
"#;

/// Serves `site_dir` with live reload driven by `preview`.
pub fn app(site_dir: PathBuf, preview: Preview) -> Router {
    let storefront =
        static_site(site_dir).layer(axum::middleware::from_fn_with_state(preview.clone(), live));
    Router::new()
        .route(SCRIPT_PATH, get(script))
        .route(EVENTS_PATH, get(events).with_state(preview))
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

/// The query of the event stream: the build the page was served after.
#[derive(Debug, serde::Deserialize)]
struct Seen {
    build: Option<u64>,
}

async fn events(State(preview): State<Preview>, Query(seen): Query<Seen>) -> impl IntoResponse {
    let mut receiver = preview.state.subscribe();
    let now = receiver.borrow_and_update().clone();
    // A page that connects while the build is broken sees the error; one served before
    // the latest successful build reloads.
    let first = match (now.error, seen.build) {
        (Some(message), _) => Some(error_event(&message)),
        (None, Some(build)) if build != now.builds => Some(reload_event()),
        _ => None,
    };
    let changes = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        let event = match &receiver.borrow_and_update().error {
            Some(message) => error_event(message),
            None => reload_event(),
        };
        Some((event, receiver))
    });
    let stream = futures::stream::iter(first).chain(changes).map(Ok::<_, Infallible>);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn reload_event() -> Event {
    Event::default().event("reload").data("reload")
}

fn error_event(message: &str) -> Event {
    Event::default().event("build-error").data(message)
}

/// Answers a page the site lacks with the build error while the build is broken, then adds
/// the live-reload script to HTML answers and stops caching them.
async fn live(State(preview): State<Preview>, request: Request, next: Next) -> Response<Body> {
    // Read before the file is, so a page is never labelled with a later build than its own.
    let now = preview.now();
    let response = next.run(request).await;
    let response = match now.error {
        Some(message) if response.status() == StatusCode::NOT_FOUND => error_page(&message),
        _ => response,
    };
    inject_script(response, now.builds).await
}

/// The page shown for a page the site lacks while the build is broken (every page when the
/// first build failed): the error itself, readable without the script.
fn error_page(message: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Build failed</title></head>\
         <body><h1>Build failed</h1><p>Fix the problem below and save: this page reloads by itself.</p>\
         <pre>{}</pre></body></html>",
        escape(message)
    );
    let mut response =
        (StatusCode::SERVICE_UNAVAILABLE, axum::response::Html(html)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Adds the live-reload script before `</body>` of HTML responses and stops caching.
async fn inject_script(response: Response<Body>, build: u64) -> Response<Body> {
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
    let tag = format!("<script src=\"{SCRIPT_PATH}\" data-build=\"{build}\"></script>");
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
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> Response<Body> {
        app.clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response")
    }

    async fn text(response: Response<Body>) -> String {
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// The first event of a page's event stream (the stream itself never ends).
    async fn first_event(app: &Router, path: &str) -> String {
        let response = get(app, path).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body().into_data_stream();
        loop {
            let data = body.next().await.expect("an event comes").expect("data");
            let text = String::from_utf8_lossy(&data).into_owned();
            if text.starts_with("event:") {
                return text;
            }
        }
    }

    #[tokio::test]
    async fn html_gets_the_script_and_other_files_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "<html><body><h1>Hi</h1></body></html>")
            .expect("write");
        std::fs::write(dir.path().join("robots.txt"), "User-agent: *").expect("write");
        let preview = Preview::new();
        preview.send(PreviewEvent::Reload);
        let app = app(dir.path().to_owned(), preview);
        let page = get(&app, "/").await;
        assert_eq!(page.status(), StatusCode::OK);
        let text = text(page).await;
        assert!(
            text.contains(&format!(
                "<script src=\"{SCRIPT_PATH}\" data-build=\"1\"></script></body>"
            )),
            "{text}"
        );
        let robots = get(&app, "/robots.txt").await;
        let body = axum::body::to_bytes(robots.into_body(), 1 << 20).await.expect("body");
        assert_eq!(&body[..], b"User-agent: *");
    }

    /// The first build failed, so the site has no pages: every page is the error (escaped)
    /// with the script, a page that connects is told the error at once, and once a build
    /// succeeds the site is served again.
    #[tokio::test]
    async fn a_broken_first_build_shows_its_error_on_every_page_and_every_new_tab() {
        let dir = tempfile::tempdir().expect("tempdir");
        let preview = Preview::new();
        let app = app(dir.path().to_owned(), preview.clone());
        assert_eq!(get(&app, "/").await.status(), StatusCode::NOT_FOUND, "no build announced yet");

        preview.send(PreviewEvent::Error("`products.jsonl` line 1: expected `<value>`".into()));
        let page = get(&app, "/").await;
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
        let html = text(page).await;
        assert!(html.contains("`products.jsonl` line 1: expected `&lt;value&gt;`"), "{html}");
        assert!(
            html.contains(&format!("<script src=\"{SCRIPT_PATH}\" data-build=\"1\">")),
            "{html}"
        );
        assert_eq!(get(&app, "/products/x/").await.status(), StatusCode::SERVICE_UNAVAILABLE);

        let event = first_event(&app, "/_aurelio/events?build=1").await;
        assert!(event.starts_with("event: build-error\n"), "{event}");
        assert!(event.contains("data: `products.jsonl` line 1: expected `<value>`"), "{event}");
        // A tab without the build number (an older script) is told too.
        assert!(first_event(&app, EVENTS_PATH).await.starts_with("event: build-error\n"));

        std::fs::write(dir.path().join("index.html"), "<html><body>shop</body></html>")
            .expect("write");
        preview.send(PreviewEvent::Reload);
        let page = get(&app, "/").await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(text(page).await.contains("shop<script"));
        assert_eq!(get(&app, "/missing/").await.status(), StatusCode::NOT_FOUND);
    }

    /// A page served before the latest build reloads as soon as it connects; an up to date
    /// one waits for the next build.
    #[tokio::test]
    async fn a_page_older_than_the_latest_build_reloads_when_it_connects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let preview = Preview::new();
        let app = app(dir.path().to_owned(), preview.clone());
        preview.send(PreviewEvent::Reload);
        preview.send(PreviewEvent::Reload);
        assert!(first_event(&app, "/_aurelio/events?build=1").await.starts_with("event: reload\n"));

        let current = get(&app, "/_aurelio/events?build=2").await;
        preview.send(PreviewEvent::Error("broken".into()));
        let mut body = current.into_body().into_data_stream();
        let data = body.next().await.expect("an event comes").expect("data");
        let first = String::from_utf8_lossy(&data).into_owned();
        assert!(first.starts_with("event: build-error\n"), "no reload came first: {first}");
    }
}
