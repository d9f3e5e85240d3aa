//! The storefront origin for local use: serves each shop's published files by `Host`
//! (`<handle>.localhost`, a verified custom domain, or the default shop for a bare host),
//! with the content type and cache policy recorded at publish, a weak `ETag` (the content
//! hash; the same for the gzip, brotli and identity bodies the compression layer makes of
//! one file, which only a weak validator may be) answering `If-None-Match` with 304, and
//! compression (added by the router's layer).
//!
//! The `Host` header is checked before anything is looked up (400 when it is no hostname),
//! and lowercased once. Only files in the live state are served: `_aurelio/` internals and
//! files of a publish in progress never are. Pages carry a Content-Security-Policy that
//! lets in the storefront's own files, the platform API (`public_url`), the media store
//! and the payment provider's script, and nothing else.

use crate::cache::TtlCache;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::registry;
use aurelio_engine::publish::state::{Entry, LIVE, Live};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// How long the origin trusts what it found about a shop handle: another process's suspend
/// or delete takes effect here within this time.
pub const SHOP_TTL: Duration = Duration::from_secs(3);
/// Shop handles kept at most (only handles that name an active shop are kept: a handle
/// that names none may name one a moment later).
pub const SHOP_CACHE_MAX: usize = 10_000;

/// Live states read from disk, per shop, refreshed when the file changes; the shops
/// behind handles, for a few seconds.
pub struct OriginCache {
    live: Mutex<HashMap<String, (SystemTime, Arc<Live>)>>,
    hosts: TtlCache<String, (String, String)>,
    policy: OnceLock<Option<HeaderValue>>,
}

impl Default for OriginCache {
    fn default() -> Self {
        Self {
            live: Mutex::default(),
            hosts: TtlCache::new(SHOP_TTL, SHOP_CACHE_MAX),
            policy: OnceLock::new(),
        }
    }
}

/// This process's origin cache.
pub fn cache(platform: &Platform) -> Arc<OriginCache> {
    platform.state.get::<OriginCache>()
}

/// Forgets what the origin cached for a shop (after a publish, a suspension or a delete).
pub fn forget(platform: &Platform, shop_id: &str) {
    cache(platform).forget(shop_id);
}

impl OriginCache {
    /// Forgets what is cached for a shop (after a publish or delete).
    pub fn forget(&self, shop_id: &str) {
        self.live.lock().expect("origin cache").remove(shop_id);
        self.hosts.retain(|_, (id, _)| id != shop_id);
    }

    /// Handles cached (at most `SHOP_CACHE_MAX`).
    pub fn cached_hosts(&self) -> usize {
        self.hosts.len()
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

/// The shop a host names (a normalized name, without port): `<handle>.localhost`, or the
/// default shop for any other host when one is configured.
fn shop_handle<'a>(host: &'a str, default: Option<&'a str>) -> Option<&'a str> {
    match host.strip_suffix(".localhost") {
        Some(handle) if !handle.is_empty() && !handle.contains('.') => Some(handle),
        _ => default,
    }
}

async fn resolve(platform: &Platform, host: &str) -> Option<(String, String)> {
    let handle = shop_handle(host, platform.config.default_shop.as_deref())?.to_ascii_lowercase();
    if !aurelio_engine::catalog::is_handle(&handle) || handle.len() > 40 {
        return None;
    }
    let cache = cache(platform);
    if let Some(hit) = cache.hosts.get(&handle) {
        return Some(hit);
    }
    let shop = registry::shop_by_handle(&platform.registry, &handle).await.ok()?;
    let found = shop.filter(|s| s.status == "active").map(|s| (s.id, s.handle))?;
    cache.hosts.insert(handle, found.clone());
    Some(found)
}

/// The request's `Host` (or the URI's authority), as sent.
fn raw_host<B>(req: &Request<B>) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or_default()
}

/// Whether `name` (a normalized host name) is where the platform's own API answers: the
/// host of `public_url`, or `localhost` / a loopback address for local use.
pub fn is_api_host(platform: &Platform, name: &str) -> bool {
    let public = url::Url::parse(&platform.config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase()));
    public.as_deref() == Some(name) || matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// Paths of the platform itself that storefront hosts do not answer.
const API_HOST_ONLY: [&str; 2] = ["/metrics", "/api/v1/openapi.json"];

/// Middleware: `/metrics` and the OpenAPI document answer only on the API's hosts; on a
/// shop's storefront host or custom domain the storefront origin answers instead.
pub async fn api_host_only(
    State(platform): State<Arc<Platform>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if API_HOST_ONLY.contains(&req.uri().path()) {
        let api = crate::domains::parse_host(raw_host(&req))
            .is_ok_and(|h| is_api_host(&platform, &h.name));
        if !api {
            return serve(State(platform), req).await;
        }
    }
    next.run(req).await
}

/// Serves a storefront file.
pub async fn serve(State(platform): State<Arc<Platform>>, req: Request<Body>) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "storefronts are read-only").into_response();
    }
    // Checked before anything is looked up: any `Host` must not cost a registry query.
    let host = match crate::domains::parse_host(raw_host(&req)) {
        Ok(h) => h,
        Err(why) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid_host", why)
                .with_field("host")
                .into_response();
        }
    };
    let name = host.name.as_str();
    // Custom domains: ACME HTTP-01 answers, verified hostnames, redirects to the primary.
    let route = crate::domains::route(&platform, name).await;
    // Challenge answers are looked up only for hostnames a shop verified (the route
    // cache knows them), and only for tokens that can be ACME tokens (base64url).
    if route.is_some()
        && let Some(token) = req.uri().path().strip_prefix("/.well-known/acme-challenge/")
        && (1..=256).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && let Some(answer) = crate::domains::acme::challenge_answer(&platform, name, token).await
    {
        return ([(header::CONTENT_TYPE, "text/plain")], answer).into_response();
    }
    let resolved = match route {
        Some(crate::domains::Route::Redirect(to)) => {
            return redirect_to_primary(&req, host.port, &to);
        }
        Some(crate::domains::Route::Shop(id, handle)) => Some((id, handle)),
        None => resolve(&platform, name).await,
    };
    let Some((shop_id, _handle)) = resolved else {
        return unknown_host(name);
    };
    let dir = platform.published_dir(&shop_id);
    let Some(live) = cache(&platform).live(&shop_id, &dir) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "this storefront has not been published yet")
            .into_response();
    };
    let path = req.uri().path().trim_start_matches('/');
    let decoded = percent_decode(path);
    let origin = cache(&platform);
    let policy = origin.policy.get_or_init(|| page_policy(&platform)).as_ref();
    let (key, entry) = match lookup(&live, &decoded) {
        Found::File(key, entry) => (key, entry),
        Found::Redirect(to) => return Redirect::permanent(&to).into_response(),
        Found::Missing => match live.files.get("404.html") {
            Some(entry) => {
                let mut r =
                    file_response(&dir, "404.html", entry, req.headers(), StatusCode::NOT_FOUND)
                        .await;
                page_headers(r.headers_mut(), policy);
                return r;
            }
            None => return (StatusCode::NOT_FOUND, "not found").into_response(),
        },
    };
    let mut r = file_response(&dir, &key, entry, req.headers(), StatusCode::OK).await;
    page_headers(r.headers_mut(), policy);
    r
}

/// An origin of an `http(s)` URL (`https://api.example.com`), for a policy's source list.
fn url_origin(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    origin.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',').then_some(origin)
}

/// The Content-Security-Policy of storefront pages: the site's own files; the API the
/// storefront script calls (`public_url`); images from the media store when it is served
/// over HTTP; Stripe.js (script, frames, API).
pub fn content_security_policy(public_url: &str, media_url: Option<&str>) -> String {
    let api = url_origin(public_url).map(|o| format!(" {o}")).unwrap_or_default();
    let media = media_url.and_then(url_origin).map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' https://js.stripe.com; style-src 'self'; \
         img-src 'self' data:{media}; font-src 'self' data:; \
         connect-src 'self'{api} https://api.stripe.com; \
         frame-src https://js.stripe.com https://hooks.stripe.com; form-action 'self'{api}; \
         base-uri 'self'; object-src 'none'; frame-ancestors 'self'"
    )
}

fn page_policy(platform: &Platform) -> Option<HeaderValue> {
    let csp =
        content_security_policy(&platform.config.public_url, platform.config.media_url.as_deref());
    HeaderValue::from_str(&csp).ok()
}

/// Headers of every storefront answer; the policy on HTML pages.
fn page_headers(headers: &mut HeaderMap, policy: Option<&HeaderValue>) {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html && let Some(p) = policy {
        headers.insert(header::CONTENT_SECURITY_POLICY, p.clone());
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    }
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
    let live = cache(platform).live(shop_id, &dir)?;
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
    // Weak: the compression layer makes gzip, brotli and identity bodies of this one
    // file, equivalent but not byte for byte the same, so no strong validator fits them.
    let opaque = format!("\"{}\"", entry.hash);
    let etag = format!("W/{opaque}");
    let cache = entry.cache.header();
    if status == StatusCode::OK
        && request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| if_none_match(v, &opaque))
    {
        let mut response = (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache.to_owned())],
        )
            .into_response();
        common_headers(response.headers_mut());
        return response;
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
            common_headers(headers);
            response
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "published file missing");
            (StatusCode::NOT_FOUND, "not found").into_response()
        }
    }
}

/// Whether an `If-None-Match` list names `opaque` (weak comparison: `W/` is ignored), or
/// is `*`.
fn if_none_match(list: &str, opaque: &str) -> bool {
    list.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == opaque)
}

/// `nosniff`, the referrer policy, and `Vary` (bodies differ by accepted encoding).
fn common_headers(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if !headers.contains_key(header::VARY) {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// A permanent redirect to the same path on `primary`, keeping the scheme (as a proxy in
/// front reports it) and the port the request came to.
fn redirect_to_primary(req: &Request<Body>, port: Option<u16>, primary: &str) -> Response {
    let scheme = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let port = port.map_or(String::new(), |p| format!(":{p}"));
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    Redirect::permanent(&format!("{scheme}://{primary}{port}{path}")).into_response()
}

fn unknown_host(host: &str) -> Response {
    // A checked hostname: letters, digits, `-`, `.` (or an IPv6 literal); nothing to escape.
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>No shop here</title></head>\
         <body style=\"font-family:system-ui;max-width:36rem;margin:4rem auto;padding:0 1rem\">\
         <h1>No shop at {host}</h1><p>This address is not connected to a shop on this Aurelio server. \
         If it is your domain, add it to your shop and verify it.</p></body></html>"
    );
    let mut response =
        (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html)
            .into_response();
    common_headers(response.headers_mut());
    response
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
        assert_eq!(shop_handle("acme.localhost", None), Some("acme"));
        assert_eq!(shop_handle("127.0.0.1", Some("demo")), Some("demo"));
        assert_eq!(shop_handle("127.0.0.1", None), None);
        assert_eq!(shop_handle("a.b.localhost", None), None);
    }

    #[test]
    fn weak_comparison_of_validators() {
        let tag = "\"abc\"";
        assert!(if_none_match("W/\"abc\"", tag));
        assert!(if_none_match("\"abc\"", tag));
        assert!(if_none_match("\"x\", W/\"abc\"", tag));
        assert!(if_none_match("*", tag));
        assert!(!if_none_match("W/\"abcd\"", tag));
        assert!(!if_none_match("", tag));
    }

    #[test]
    fn the_policy_names_the_api_media_and_stripe() {
        let csp = content_security_policy(
            "https://api.example.com/",
            Some("https://media.example.com/bucket"),
        );
        assert!(csp.contains("connect-src 'self' https://api.example.com https://api.stripe.com"));
        assert!(csp.contains("img-src 'self' data: https://media.example.com;"));
        assert!(csp.contains("script-src 'self' https://js.stripe.com;"));
        assert!(csp.contains("frame-src https://js.stripe.com https://hooks.stripe.com;"));
        assert!(csp.contains("frame-ancestors 'self'"));
        assert!(!csp.contains("unsafe"));
        // An object store that browsers cannot read adds nothing.
        let csp = content_security_policy("http://127.0.0.1:8080", Some("s3://bucket/media"));
        assert!(csp.contains("img-src 'self' data:;"), "{csp}");
        assert!(csp.contains("connect-src 'self' http://127.0.0.1:8080 "), "{csp}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("caf%C3%A9/x"), "café/x");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
