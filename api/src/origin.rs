//! The storefront origin for local use: serves each shop's published files by `Host`
//! (`<handle>.localhost`, or the default shop for a bare host), with the content type and
//! cache policy recorded at publish, a strong `ETag` (the content hash) answering
//! `If-None-Match` with 304, and compression (added by the router's layer).
//!
//! Only files in the live state are served: `_aurelio/` internals and files of a publish
//! in progress never are.

use crate::registry;
use crate::server::Platform;
use aurelio_engine::publish::state::{Entry, LIVE, Live};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Live states read from disk, per shop, refreshed when the file changes.
#[derive(Default)]
pub struct OriginCache {
    live: Mutex<HashMap<String, (SystemTime, Arc<Live>)>>,
    hosts: Mutex<HashMap<String, Option<(String, String)>>>,
}

impl OriginCache {
    /// Forgets what is cached for a shop (after a publish or delete).
    pub fn forget(&self, shop_id: &str) {
        self.live.lock().expect("origin cache").remove(shop_id);
        self.hosts
            .lock()
            .expect("origin cache")
            .retain(|_, v| v.as_ref().is_none_or(|(id, _)| id != shop_id));
    }

    fn live(&self, shop_id: &str, dir: &std::path::Path) -> Option<Arc<Live>> {
        let path = dir.join(LIVE);
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        if let Some((seen, live)) = self.live.lock().expect("origin cache").get(shop_id)
            && *seen == modified
        {
            return Some(live.clone());
        }
        let live: Live = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let live = Arc::new(live);
        self.live
            .lock()
            .expect("origin cache")
            .insert(shop_id.to_owned(), (modified, live.clone()));
        Some(live)
    }
}

/// The shop a `Host` header names: `<handle>.localhost[:port]`, or the default shop for
/// any other host when one is configured.
fn shop_handle<'a>(host: &'a str, default: Option<&'a str>) -> Option<&'a str> {
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    match host.strip_suffix(".localhost") {
        Some(handle) if !handle.is_empty() && !handle.contains('.') => Some(handle),
        _ => default,
    }
}

async fn resolve(platform: &Platform, host: &str) -> Option<(String, String)> {
    let handle = shop_handle(host, platform.config.default_shop.as_deref())?.to_ascii_lowercase();
    if let Some(hit) = platform.origin.hosts.lock().expect("origin cache").get(&handle) {
        return hit.clone();
    }
    let shop = registry::shop_by_handle(&platform.registry, &handle).await.ok()?;
    let found = shop.filter(|s| s.status == "active").map(|s| (s.id, s.handle))?;
    // Only shops are remembered: a host that names none now (not provisioned yet, or
    // suspended) may name one later, and any Host header must not grow the cache.
    platform.origin.hosts.lock().expect("origin cache").insert(handle, Some(found.clone()));
    Some(found)
}

/// Serves a storefront file.
pub async fn serve(State(platform): State<Arc<Platform>>, req: Request<Body>) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "storefronts are read-only").into_response();
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or_default()
        .to_owned();
    // Custom domains: ACME HTTP-01 answers, verified hostnames, redirects to the primary.
    if let Some(token) = req.uri().path().strip_prefix("/.well-known/acme-challenge/")
        && let Some(answer) = crate::domains::acme::challenge_answer(
            &platform,
            &crate::domains::bare_host(&host),
            token,
        )
        .await
    {
        return ([(header::CONTENT_TYPE, "text/plain")], answer).into_response();
    }
    let resolved = match crate::domains::route(&platform, &host).await {
        Some(crate::domains::Route::Redirect(to)) => {
            return redirect_to_primary(&req, &host, &to);
        }
        Some(crate::domains::Route::Shop(id, handle)) => Some((id, handle)),
        None => resolve(&platform, &host).await,
    };
    let Some((shop_id, _handle)) = resolved else {
        return unknown_host(&host);
    };
    let dir = platform.published_dir(&shop_id);
    let Some(live) = platform.origin.live(&shop_id, &dir) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "this storefront has not been published yet")
            .into_response();
    };
    let path = req.uri().path().trim_start_matches('/');
    let decoded = percent_decode(path);
    let (key, entry) = match lookup(&live, &decoded) {
        Found::File(key, entry) => (key, entry),
        Found::Redirect(to) => return Redirect::permanent(&to).into_response(),
        Found::Missing => match live.files.get("404.html") {
            Some(entry) => {
                return file_response(
                    &dir,
                    "404.html",
                    entry,
                    req.headers(),
                    StatusCode::NOT_FOUND,
                )
                .await;
            }
            None => return (StatusCode::NOT_FOUND, "not found").into_response(),
        },
    };
    file_response(&dir, &key, entry, req.headers(), StatusCode::OK).await
}

/// A published file of a shop by its path in the site (`feeds/google.xml`), with the
/// origin's headers (type, cache policy, ETag, 304); `None` when it is not published.
pub async fn published_file(
    platform: &Platform,
    shop_id: &str,
    path: &str,
    request: &HeaderMap,
) -> Option<Response> {
    let dir = platform.published_dir(shop_id);
    let live = platform.origin.live(shop_id, &dir)?;
    let entry = live.files.get(path)?;
    Some(file_response(&dir, path, entry, request, StatusCode::OK).await)
}

enum Found<'a> {
    File(String, &'a Entry),
    Redirect(String),
    Missing,
}

fn lookup<'a>(live: &'a Live, path: &str) -> Found<'a> {
    if path.split('/').any(|s| s == ".." || s == ".") || path.starts_with("_aurelio") {
        return Found::Missing;
    }
    let candidates = if path.is_empty() || path.ends_with('/') {
        vec![format!("{path}index.html")]
    } else {
        vec![path.to_owned()]
    };
    for c in candidates {
        if let Some(e) = live.files.get(&c) {
            return Found::File(c, e);
        }
    }
    if !path.is_empty()
        && !path.ends_with('/')
        && live.files.contains_key(&format!("{path}/index.html"))
    {
        return Found::Redirect(format!("/{path}/"));
    }
    Found::Missing
}

async fn file_response(
    dir: &std::path::Path,
    key: &str,
    entry: &Entry,
    request: &HeaderMap,
    status: StatusCode,
) -> Response {
    let etag = format!("\"{}\"", entry.hash);
    let cache = entry.cache.header();
    if status == StatusCode::OK
        && request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache.to_owned())],
        )
            .into_response();
    }
    let path: PathBuf = dir.join(key);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&entry.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&etag) {
                headers.insert(header::ETAG, v);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            response
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "published file missing");
            (StatusCode::NOT_FOUND, "not found").into_response()
        }
    }
}

/// A permanent redirect to the same path on `primary`, keeping the scheme (as a proxy in
/// front reports it) and the port the request came to.
fn redirect_to_primary(req: &Request<Body>, host: &str, primary: &str) -> Response {
    let scheme = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let port = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.contains(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(String::new(), |(_, p)| format!(":{p}"));
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    Redirect::permanent(&format!("{scheme}://{primary}{port}{path}")).into_response()
}

fn unknown_host(host: &str) -> Response {
    let host = host.replace(['<', '>', '&', '"'], "");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>No shop here</title></head>\
         <body style=\"font-family:system-ui;max-width:36rem;margin:4rem auto;padding:0 1rem\">\
         <h1>No shop at {host}</h1><p>This address is not connected to a shop on this Aurelio server. \
         If it is your domain, add it to your shop and verify it.</p></body></html>"
    );
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html)
        .into_response()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) =
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_shops() {
        assert_eq!(shop_handle("acme.localhost:8080", None), Some("acme"));
        assert_eq!(shop_handle("acme.localhost", None), Some("acme"));
        assert_eq!(shop_handle("127.0.0.1:8080", Some("demo")), Some("demo"));
        assert_eq!(shop_handle("127.0.0.1:8080", None), None);
        assert_eq!(shop_handle("a.b.localhost", None), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("caf%C3%A9/x"), "café/x");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
