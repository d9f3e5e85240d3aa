//! The storefront origin (files by `Host`, ETag / 304, compression, redirects, 404 pages)
//! and the service's own endpoints (health, readiness, metrics, request ids). Every test
//! runs on SQLite and on PostgreSQL.

mod common;

use common::{Db, Payload, Server, product, unique};
use reqwest::Method;
use std::collections::BTreeSet;

both!(storefront_origin, hosts_unknown_then_provisioned, health_metrics_and_request_ids);

async fn storefront_origin(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("origin"), false).await;
    let made = api.post("/api/v1/products", &shop.secret, product("lamp", "LAMP-1", "49.00")).await;
    api.wait_built(&shop.secret, made.expect(201).json()["build_id"].as_str().expect("build"))
        .await;
    let h = shop.handle.as_str();

    // ETag and 304.
    let home = api.storefront(h, "/").await.expect(200);
    let etag = home.header("etag").expect("an ETag");
    assert!(etag.starts_with("W/\"") && etag.ends_with('"') && etag.len() > 10, "{etag}");
    assert_eq!(
        home.header("cache-control").as_deref(),
        Some("public, max-age=60, must-revalidate"),
        "a page is revalidated"
    );
    assert!(home.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    let again = api.storefront_with(h, "/", &[("if-none-match", &etag)]).await.expect(304);
    assert!(again.body.is_empty(), "a 304 has no body");
    assert_eq!(again.header("etag"), Some(etag.clone()));
    let listed = format!("\"nope\", {etag}");
    api.storefront_with(h, "/", &[("if-none-match", &listed)]).await.expect(304);
    let changed = api.storefront_with(h, "/", &[("if-none-match", "\"other\"")]).await.expect(200);
    assert_eq!(changed.body, home.body);
    let product_page = api.storefront(h, "/products/lamp/").await.expect(200);
    assert_ne!(product_page.header("etag"), Some(etag.clone()), "each file has its own ETag");

    // Compression when asked for, and the same bytes inside.
    assert!(home.header("content-encoding").is_none(), "identity unless asked");
    let gz = api.storefront_with(h, "/", &[("accept-encoding", "gzip")]).await.expect(200);
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gz.body[..2], [0x1f, 0x8b], "a gzip stream");
    assert!(gz.body.len() < home.body.len(), "compressed is smaller");
    // The gzip trailer holds the length of the original (mod 2^32).
    let n = gz.body.len();
    let isize =
        u32::from_le_bytes([gz.body[n - 4], gz.body[n - 3], gz.body[n - 2], gz.body[n - 1]]);
    assert_eq!(usize::try_from(isize).expect("fits"), home.body.len(), "gzip of the same page");

    // A directory without its slash redirects; a missing page is the shop's 404 page.
    let r = api.storefront(h, "/products/lamp").await;
    assert!(matches!(r.status, 301 | 308), "{} {}", r.status, r.text());
    assert_eq!(r.header("location").as_deref(), Some("/products/lamp/"));
    let missing = api.storefront(h, "/products/no-such-thing/").await.expect(404);
    assert!(missing.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    assert!(missing.text().contains(h) || missing.text().contains("<html"), "the shop's 404 page");
    // Internals and tricks are never served.
    api.storefront(h, "/_aurelio/manifest.json").await.expect(404);
    api.storefront(h, "/..%2f..%2fregistry.db").await.expect(404);
    let post = api
        .send_with(Method::POST, "/", None, Payload::None, &[("host", &format!("{h}.localhost"))])
        .await;
    assert_eq!(post.status, 405, "storefronts are read-only");

    // Unknown hosts get a page saying so.
    let unknown = api.storefront(&unique("nobody"), "/").await.expect(404);
    assert!(unknown.text().contains("No shop"), "{}", unknown.text());
    let bare = api.send_with(Method::GET, "/", None, Payload::None, &[]).await.expect(404);
    assert!(bare.text().contains("No shop"));
}

async fn hosts_unknown_then_provisioned(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    // Asked for before the shop exists, then provisioned: served at once.
    let handle = unique("early");
    api.storefront(&handle, "/").await.expect(404);
    api.provision(&handle, false).await;
    api.storefront(&handle, "/").await.expect(200);
}

async fn health_metrics_and_request_ids(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let get = |path: &'static str| {
        let api = api.clone();
        async move { api.send_with(Method::GET, path, None, Payload::None, &[]).await }
    };
    let health = get("/healthz").await.expect(200);
    assert_eq!(health.text().trim(), "ok");
    get("/readyz").await.expect(200);
    // Some traffic first, so the counters exist.
    let shop = api.provision(&unique("metrics"), false).await;
    api.get("/api/v1/products", &shop.secret).await.expect(200);
    let metrics = get("/metrics").await.expect(200);
    assert!(metrics.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    let text = metrics.text();
    assert!(text.contains("# TYPE aurelio_http_requests_total counter"), "{text}");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("aurelio_http_requests_total{")
                && l.contains("route=\"/api/v1/products\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("a counter of GET /api/v1/products: {text}"));
    let count: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a count");
    assert!(count >= 1.0, "{line}");
    assert!(text.contains("aurelio_http_request_duration_seconds"), "latencies are measured");
    assert!(text.contains("aurelio_builds_total"), "builds are counted");

    // Every answer carries a request id: new ones differ, a given one comes back.
    let mut ids = BTreeSet::new();
    for r in [
        get("/healthz").await,
        api.get("/api/v1/products", &shop.secret).await,
        api.get("/api/v1/products", "sk_unknown").await,
        api.storefront(&shop.handle, "/").await,
        api.storefront(&shop.handle, "/nope/").await,
    ] {
        let id =
            r.header("x-request-id").unwrap_or_else(|| panic!("{}: no x-request-id", r.request));
        assert!(id.len() >= 16, "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 5, "request ids are unique: {ids:?}");
    let mine = api
        .send_with(
            Method::GET,
            "/healthz",
            None,
            Payload::None,
            &[("x-request-id", "trace-me-123")],
        )
        .await;
    assert_eq!(mine.header("x-request-id").as_deref(), Some("trace-me-123"));
}
