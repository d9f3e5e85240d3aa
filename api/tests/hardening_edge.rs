//! The edge, hardened: findings of the security reviews replayed through the HTTP API and
//! the storefront origin, each on SQLite and PostgreSQL.
//!
//! * claims of one hostname by several shops (no claim removes another's; the first to
//!   prove ownership gets it; competing claims count against the shop's limit);
//! * `/metrics` and the OpenAPI document only on the API's hosts; another process's
//!   suspend reaches this process's storefront within seconds;
//! * hostile `Host` headers: checked before any lookup, caches bounded, case-insensitive;
//! * certificate orders: fair across shops, limited per shop and hour, backing off in a
//!   way a verify cannot undo, re-checking routing first, and under a time limit;
//! * the storefront's security headers and validators.
//!
//! The domain tests need a DNS server with a management API (pebble-challtestsrv), as
//! `api/tests/domains.rs` does: `AURELIO_TEST_DNS` and `AURELIO_TEST_CHALLTESTSRV`
//! (`./scripts/test` starts one). No certificate is issued here: the ACME directory is an
//! address that refuses connections, or one that never answers.

mod common;

use aurelio_api::domains::{MISS_CACHE_MAX, ROUTE_CACHE_MAX};
use common::{ADMIN, Client, Db, Payload, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const SECRET: &str = "3b1f7a9c2e5d4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6";
const TARGET: &str = "edge.aurelio.test";

#[track_caller]
fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => panic!(
            "{name} is not set: these tests need a DNS server with an API to set records \
             (pebble-challtestsrv). Run `./scripts/test`, or start one as its \"DNS and ACME \
             servers\" step does and set AURELIO_TEST_DNS and AURELIO_TEST_CHALLTESTSRV."
        ),
    }
}

fn dns_addr() -> SocketAddr {
    var("AURELIO_TEST_DNS").parse().expect("AURELIO_TEST_DNS is ip:port")
}

fn dns_config(c: &mut aurelio_api::Config, nameserver: SocketAddr) {
    c.domains.nameservers = vec![nameserver];
    c.domains.dns_timeout_ms = 1500;
    c.domains.cname_target = TARGET.into();
    c.domains.addresses = vec![IpAddr::from([127, 0, 0, 1])];
}

/// Certificates managed against a directory that refuses connections: every order fails
/// at once, worth retrying. The worker's own rounds are an hour apart: tests drive it.
fn dead_acme(c: &mut aurelio_api::Config) {
    dns_config(c, dns_addr());
    c.domains.acme_directory = Some("https://127.0.0.1:1/directory".into());
    c.secret_key = Some(SECRET.into());
    c.domains.poll_ms = 3_600_000;
}

/// The DNS server's management API.
struct Records {
    http: reqwest::Client,
    api: String,
}

impl Records {
    fn new() -> Self {
        aurelio_engine::publish::install_crypto_provider();
        Self { http: reqwest::Client::new(), api: var("AURELIO_TEST_CHALLTESTSRV") }
    }

    async fn call(&self, path: &str, body: Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.api))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("pebble-challtestsrv {path}: {e}"));
        assert!(resp.status().is_success(), "pebble-challtestsrv {path} {body}: {}", resp.status());
    }

    async fn txt(&self, host: &str, value: &str) {
        let host = format!("_aurelio-verify.{host}.");
        self.call("/set-txt", json!({ "host": host, "value": value })).await;
    }

    async fn cname(&self, host: &str) {
        let body = json!({ "host": format!("{host}."), "target": format!("{TARGET}.") });
        self.call("/set-cname", body).await;
    }

    async fn a(&self, host: &str, ip: &str) {
        self.call("/add-a", json!({ "host": format!("{host}."), "addresses": [ip] })).await;
    }

    async fn clear_a(&self, host: &str) {
        self.call("/clear-a", json!({ "host": format!("{host}.") })).await;
    }
}

fn txt_value(domain: &Value) -> String {
    domain["records"][0]["value"].as_str().expect("records[0].value").to_owned()
}

async fn claim(c: &Client, key: &str, host: &str) -> Value {
    c.post("/api/v1/domains", key, json!({ "hostname": host })).await.expect(201).json()
}

async fn verify(c: &Client, key: &str, host: &str) -> Value {
    c.post(&format!("/api/v1/domains/{host}/verify"), key, json!({})).await.expect(200).json()
}

async fn domain(c: &Client, key: &str, host: &str) -> Value {
    c.get(&format!("/api/v1/domains/{host}"), key).await.expect(200).json()
}

async fn host_get(c: &Client, host: &str, path: &str) -> common::Resp {
    c.send_with(Method::GET, path, None, Payload::None, &[("host", host)]).await
}

/// Claims `host` for the shop and makes it verified and routed (TXT + an A record here).
async fn activate(c: &Client, records: &Records, key: &str, host: &str) -> Value {
    let d = claim(c, key, host).await;
    records.txt(host, &txt_value(&d)).await;
    records.a(host, "127.0.0.1").await;
    let d = verify(c, key, host).await;
    assert_eq!(d["ownership"]["state"], json!("verified"), "{d}");
    assert_eq!(d["routing"]["state"], json!("configured"), "{d}");
    d
}

/// One round of the background worker (checks and certificate orders).
async fn round(server: &Server) {
    let (_stop, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::time::timeout(
        Duration::from_secs(60),
        aurelio_api::domains::run_due(&server.platform, &mut stop_rx),
    )
    .await
    .expect("a round of the domain worker ends")
    .expect("a round of the domain worker");
}

// ---------------------------------------------------------------------------------------
// 20.4: domain claim griefing
// ---------------------------------------------------------------------------------------

/// A second shop claiming a hostname used to delete the first shop's pending claim and
/// its token, so the rightful owner could never verify. Now both claims stand, each with
/// its own token, and the first shop to publish its TXT value gets the hostname.
async fn claims_never_remove_another_shops(db: Db) {
    let records = Records::new();
    let server = Server::start(db, |c| dns_config(c, dns_addr()));
    let c = server.client();
    let owner = c.provision(&unique("owner"), false).await;
    let griefer = c.provision(&unique("griefer"), false).await;
    let host = format!("shop.{}.test", unique("grief"));

    let mine = claim(&c, &owner.secret, &host).await;
    let token = txt_value(&mine);
    // The griefer claims it again and again: a claim of its own each time (200 once it
    // exists), and the owner's claim and token stay as they were.
    let theirs = claim(&c, &griefer.secret, &host).await;
    assert_eq!(theirs["takeover"], json!(true), "{theirs}");
    assert_ne!(txt_value(&theirs), token);
    for _ in 0..3 {
        c.post("/api/v1/domains", &griefer.secret, json!({ "hostname": host })).await.expect(200);
        let d = domain(&c, &owner.secret, &host).await;
        assert_eq!(txt_value(&d), token, "the owner's token changed: {d}");
    }
    // The owner publishes its value: verified and serving, the griefer's claim unproven.
    records.txt(&host, &token).await;
    records.cname(&host).await;
    let d = verify(&c, &owner.secret, &host).await;
    assert_eq!(d["status"], json!("active"), "{d}");
    let g = verify(&c, &griefer.secret, &host).await;
    assert_eq!(g["takeover"], json!(true), "{g}");
    assert_eq!(g["ownership"]["check"]["outcome"], json!("wrong"), "{g}");
    assert_eq!(domain(&c, &owner.secret, &host).await["status"], json!("active"));

    // The griefer claims first this time: the owner's later claim stands beside it and
    // wins with its own value; the griefer's claim goes.
    let first = host;
    let host = format!("www.{}.test", unique("first"));
    claim(&c, &griefer.secret, &host).await;
    let d = claim(&c, &owner.secret, &host).await;
    assert_eq!(d["takeover"], json!(true), "{d}");
    records.txt(&host, &txt_value(&d)).await;
    records.cname(&host).await;
    let d = verify(&c, &owner.secret, &host).await;
    assert_eq!(d["takeover"], json!(false), "{d}");
    assert_eq!(d["status"], json!("active"), "{d}");
    c.get(&format!("/api/v1/domains/{host}"), &griefer.secret).await.expect(404);
    // It routes to the owner's shop: a redirect to its primary hostname, the first one,
    // which serves the owner's storefront.
    let r = host_get(&c, &host, "/").await.expect(308);
    assert_eq!(r.header("location"), Some(format!("http://{first}/")));
    let served = host_get(&c, &first, "/").await.expect(200).text();
    assert!(served.contains(&format!("<title>{}</title>", owner.handle)), "{served}");
}

/// Claims of hostnames another shop holds used not to count against the shop's limit of
/// 50 hostnames.
async fn competing_claims_count_against_the_limit(db: Db) {
    let records = Records::new();
    let server = Server::start(db, |c| dns_config(c, dns_addr()));
    let c = server.client();
    let holder = c.provision(&unique("holder"), false).await;
    let shop = c.provision(&unique("many"), false).await;
    let zone = format!("{}.test", unique("limit"));
    // One hostname the holder verified: the shop's claim of it is a takeover.
    let held = format!("held.{zone}");
    let d = claim(&c, &holder.secret, &held).await;
    records.txt(&held, &txt_value(&d)).await;
    records.cname(&held).await;
    assert_eq!(verify(&c, &holder.secret, &held).await["status"], json!("active"));
    let t = claim(&c, &shop.secret, &held).await;
    assert_eq!(t["takeover"], json!(true));
    for i in 0..(aurelio_api::domains::MAX_PER_SHOP - 1) {
        claim(&c, &shop.secret, &format!("h{i}.{zone}")).await;
    }
    let list = c.get("/api/v1/domains", &shop.secret).await.expect(200).json();
    assert_eq!(list["domains"].as_array().map(Vec::len), Some(50), "{list}");
    let e = c
        .post("/api/v1/domains", &shop.secret, json!({ "hostname": format!("over.{zone}") }))
        .await
        .error(422, "validation_failed", Some("hostname"));
    assert!(e["message"].as_str().is_some_and(|m| m.contains("at most 50")), "{e}");
    // Removing the takeover claim makes room.
    c.delete(&format!("/api/v1/domains/{held}"), &shop.secret).await.expect(204);
    claim(&c, &shop.secret, &format!("over.{zone}")).await;
    assert_eq!(domain(&c, &holder.secret, &held).await["status"], json!("active"));
}

// ---------------------------------------------------------------------------------------
// 20.7: platform endpoints on storefront hosts; another process's suspend
// ---------------------------------------------------------------------------------------

async fn platform_endpoints_only_on_api_hosts(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("hosts"), true).await;
    let port = server.addr.port();
    let storefront = format!("{}.localhost:{port}", shop.handle);
    for path in ["/metrics", "/api/v1/openapi.json"] {
        for host in [storefront.as_str(), "shop.customer-domain.test", "SHOP.Customer-Domain.TEST."]
        {
            let r = host_get(&c, host, path).await;
            assert_eq!(r.status, 404, "{path} on {host}: {}", r.text());
            let text = r.text();
            assert!(
                !text.contains("aurelio_http_requests") && !text.contains("\"openapi\""),
                "{path} answered on {host}: {text}"
            );
        }
        // The API's own hosts: the configured public URL's host, and loopback.
        for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "127.0.0.1".into()] {
            host_get(&c, &host, path).await.expect(200);
        }
    }
    // The storefront itself is unaffected.
    host_get(&c, &storefront, "/").await.expect(200);
}

/// The origin remembered the shop behind a handle for ever, so a shop suspended by
/// another process stayed online here.
async fn suspend_elsewhere_reaches_this_storefront(db: Db) {
    let first = Server::start(db, |_| {});
    let c = first.client();
    let shop = c.provision(&unique("suspend"), true).await;
    c.storefront(&shop.handle, "/").await.expect(200);
    // A second process on the same data suspends the shop.
    let data_dir = first.data_dir.clone();
    let url = first.database_url.as_ref().map(ToString::to_string);
    let second = Server::start(db, move |cfg| {
        cfg.data_dir = data_dir;
        cfg.database_url = url;
        cfg.workers = 0;
    });
    let other = second.client();
    other.post(&format!("/api/v1/tenants/{}/suspend", shop.id), ADMIN, json!({})).await.expect(200);
    let started = Instant::now();
    loop {
        let r = c.storefront(&shop.handle, "/").await;
        if r.status == 404 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the suspended shop is still served after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("suspend seen by the other process after {:?}", started.elapsed());
    other.post(&format!("/api/v1/tenants/{}/resume", shop.id), ADMIN, json!({})).await.expect(200);
    let started = Instant::now();
    while c.storefront(&shop.handle, "/").await.status != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "not served again after resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// 34.2: memory growth through `Host`; 34.8: case-insensitive hosts
// ---------------------------------------------------------------------------------------

async fn hostile_hosts_are_refused_and_caches_stay_bounded(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("bounded"), true).await;
    let junk = "x".repeat(60_000);
    for bad in [junk.as_str(), "shop_1.example.test", "a..b.test", "shop.test:99999", "a b"] {
        let r = host_get(&c, bad, "/").await;
        r.error(400, "invalid_host", Some("host"));
    }
    // Thousands of distinct hostnames that name nothing, and distinct `.localhost` handles.
    let mut work = Vec::new();
    for w in 0..4 {
        let c = c.clone();
        work.push(tokio::spawn(async move {
            for i in 0..750 {
                let host = if i % 3 == 0 {
                    format!("{}.localhost", common::random_hex(20))
                } else {
                    format!("w{w}-{}.{}.example.test", common::random_hex(24), i)
                };
                let r = host_get(&c, &host, "/").await;
                assert_eq!(r.status, 404, "{host}: {}", r.text());
            }
        }));
    }
    for w in work {
        w.await.expect("a worker");
    }
    let routes = server.platform.state.get::<aurelio_api::domains::Domains>().cached();
    assert!(routes <= MISS_CACHE_MAX, "{routes} cached routes for 3,000 unknown hosts");
    const { assert!(MISS_CACHE_MAX < 3000 && ROUTE_CACHE_MAX <= 10_000) };
    let shops = aurelio_api::origin::cache(&server.platform).cached_hosts();
    assert!(shops < 100, "{shops} handles cached, though only a few name shops");
    // The shop is still served, whatever the case of its host or a final dot.
    let home = c.storefront(&shop.handle, "/").await.expect(200);
    let upper = format!("{}.LOCALHOST", shop.handle.to_uppercase());
    let same = host_get(&c, &upper, "/").await.expect(200);
    assert_eq!(same.body, home.body, "another shop answered {upper}");
    host_get(&c, &format!("{}.localhost.:{}", shop.handle, server.addr.port()), "/")
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------------------
// 34.8: the storefront's security headers and validators
// ---------------------------------------------------------------------------------------

async fn storefront_security_headers_and_validators(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("csp"), true).await;
    let h = shop.handle.as_str();
    let home = c.storefront(h, "/").await.expect(200);
    let csp = home.header("content-security-policy").expect("a Content-Security-Policy");
    let api = server.platform.config.public_url.trim_end_matches('/').to_owned();
    for part in [
        "default-src 'self'",
        "script-src 'self' https://js.stripe.com",
        "frame-src https://js.stripe.com https://hooks.stripe.com",
        "frame-ancestors 'self'",
        "object-src 'none'",
        "base-uri 'self'",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(csp.contains(&format!("connect-src 'self' {api} https://api.stripe.com")), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    // The page names the API it calls, and the policy lets it in.
    assert!(home.text().contains(&format!("data-api=\"{api}\"")), "the page calls another API");
    assert_eq!(home.header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(home.header("referrer-policy").as_deref(), Some("strict-origin-when-cross-origin"));
    let css = home
        .text()
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the stylesheet link")
        .to_owned();
    let css = c.storefront(h, &css).await.expect(200);
    assert_eq!(css.header("x-content-type-options").as_deref(), Some("nosniff"));
    assert!(css.header("content-security-policy").is_none(), "a policy on a stylesheet");

    // Each encoding's body gets a validator that is not claimed to be byte-identical to
    // the others' (weak, or different), and revalidates to 304 in every encoding.
    let mut tags = Vec::new();
    for enc in ["identity", "gzip", "br"] {
        let r = c.storefront_with(h, "/", &[("accept-encoding", enc)]).await.expect(200);
        let tag = r.header("etag").expect("an ETag");
        let got = r.header("content-encoding").unwrap_or_else(|| "identity".into());
        assert_eq!(got, enc, "asked for {enc}");
        let again = c
            .storefront_with(h, "/", &[("accept-encoding", enc), ("if-none-match", &tag)])
            .await
            .expect(304);
        assert_eq!(again.header("etag"), Some(tag.clone()));
        tags.push(tag);
    }
    assert!(
        tags.iter().all(|t| t.starts_with("W/")) || tags[0] != tags[1] && tags[1] != tags[2],
        "one strong ETag for different bodies: {tags:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 34.7: certificate orders
// ---------------------------------------------------------------------------------------

/// A merchant's verify used to reset a failed certificate to be ordered again at once.
async fn verify_does_not_undo_certificate_backoff(db: Db) {
    let records = Records::new();
    let server = Server::start(db, dead_acme);
    let c = server.client();
    let shop = c.provision(&unique("backoff"), false).await;
    let host = format!("shop.{}.test", unique("backoff"));
    let d = activate(&c, &records, &shop.secret, &host).await;
    assert_eq!(d["certificate"]["state"], json!("pending"), "{d}");
    round(&server).await;
    let d = domain(&c, &shop.secret, &host).await;
    assert_eq!(d["certificate"]["failed_orders"], json!(1), "{d}");
    let next = d["certificate"]["next_attempt_at"].as_str().expect("next_attempt_at").to_owned();
    assert!(next > chrono::Utc::now().to_rfc3339(), "{next}");
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let v = verify(&c, &shop.secret, &host).await;
        assert_eq!(v["certificate"]["next_attempt_at"], json!(next), "{v}");
        round(&server).await;
        let d = domain(&c, &shop.secret, &host).await;
        assert_eq!(d["certificate"]["failed_orders"], json!(1), "ordered again: {d}");
        assert_eq!(d["certificate"]["next_attempt_at"], json!(next), "{d}");
    }
    // The domain itself still works: verified, routed, and checked.
    assert_eq!(d["routing"]["state"], json!("configured"));
    // Removing the hostname and claiming it again does not buy an order either.
    c.delete(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(204);
    activate(&c, &records, &shop.secret, &host).await;
    round(&server).await;
    let d = domain(&c, &shop.secret, &host).await;
    assert_eq!(d["certificate"]["failed_orders"], json!(0), "{d}");
    assert!(d["certificate"]["reason"].is_null(), "ordered again at once: {d}");
    assert_eq!(d["certificate"]["state"], json!("pending"), "{d}");
}

/// One shop with more due domains than a round used to take, named to sort first, held
/// up every other shop's certificates.
async fn certificate_orders_are_fair_and_limited(db: Db) {
    let records = Records::new();
    let server = Server::start(db, |c| {
        dead_acme(c);
        c.domains.orders_per_shop_hour = 3;
    });
    let c = server.client();
    let greedy = c.provision(&unique("greedy"), false).await;
    let other = c.provision(&unique("other"), false).await;
    let zone = format!("{}.test", unique("fair"));
    let mine: Vec<String> = (0..11).map(|i| format!("a{i:02}.{zone}")).collect();
    for h in &mine {
        activate(&c, &records, &greedy.secret, h).await;
    }
    let theirs = format!("zz.{zone}");
    activate(&c, &records, &other.secret, &theirs).await;
    let attempted = |d: &Value| d["certificate"]["reason"].is_string();

    round(&server).await;
    let d = domain(&c, &other.secret, &theirs).await;
    assert!(attempted(&d), "the other shop's certificate waited: {d}");
    assert_eq!(d["certificate"]["failed_orders"], json!(1), "{d}");
    let list = c.get("/api/v1/domains", &greedy.secret).await.expect(200).json();
    let count = |list: &Value| {
        list["domains"].as_array().expect("domains").iter().filter(|d| attempted(d)).count()
    };
    assert_eq!(count(&list), 1, "more than one order for one shop in a round: {list}");
    // More rounds: the greedy shop gets at most its hourly limit of orders.
    for _ in 0..5 {
        round(&server).await;
    }
    let list = c.get("/api/v1/domains", &greedy.secret).await.expect(200).json();
    assert_eq!(count(&list), 3, "orders beyond the hourly limit: {list}");
    let d = domain(&c, &other.secret, &theirs).await;
    assert_eq!(d["certificate"]["failed_orders"], json!(1), "no backoff: {d}");
}

/// An order was placed for a hostname whose routing had moved away since its last check.
async fn routing_is_checked_again_before_an_order(db: Db) {
    let records = Records::new();
    let server = Server::start(db, dead_acme);
    let c = server.client();
    let shop = c.provision(&unique("moved"), false).await;
    let host = format!("shop.{}.test", unique("moved"));
    activate(&c, &records, &shop.secret, &host).await;
    records.clear_a(&host).await;
    records.a(&host, "192.0.2.55").await;
    round(&server).await;
    let d = domain(&c, &shop.secret, &host).await;
    assert_eq!(d["certificate"]["failed_orders"], json!(0), "ordered anyway: {d}");
    let reason = d["certificate"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no certificate ordered"), "{d}");
    // Pointed back here: the order is placed (and fails against the dead directory).
    records.clear_a(&host).await;
    records.a(&host, "127.0.0.1").await;
    sqlx::query("UPDATE domains SET cert_retry_at = NULL WHERE hostname = $1")
        .bind(&host)
        .execute(&server.platform.registry)
        .await
        .expect("due now");
    round(&server).await;
    let d = domain(&c, &shop.secret, &host).await;
    assert_eq!(d["certificate"]["failed_orders"], json!(1), "{d}");
}

/// An authority that accepts the connection and never answers held the worker for good.
async fn certificate_orders_time_out(db: Db) {
    let records = Records::new();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a listener");
    let port = silent.local_addr().expect("its address").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let server = Server::start(db, move |c| {
        dead_acme(c);
        c.domains.acme_directory = Some(format!("https://127.0.0.1:{port}/directory"));
        c.domains.order_timeout_ms = 1500;
    });
    let c = server.client();
    let shop = c.provision(&unique("hang"), false).await;
    let host = format!("shop.{}.test", unique("hang"));
    activate(&c, &records, &shop.secret, &host).await;
    let started = Instant::now();
    round(&server).await;
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let d = domain(&c, &shop.secret, &host).await;
    let reason = d["certificate"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("did not finish within"), "{d}");
    assert_eq!(d["certificate"]["state"], json!("pending"), "{d}");
    assert_eq!(d["certificate"]["failed_orders"], json!(1), "{d}");
    held.abort();
}

both!(
    claims_never_remove_another_shops,
    competing_claims_count_against_the_limit,
    platform_endpoints_only_on_api_hosts,
    suspend_elsewhere_reaches_this_storefront,
    hostile_hosts_are_refused_and_caches_stay_bounded,
    storefront_security_headers_and_validators,
    verify_does_not_undo_certificate_backoff,
    certificate_orders_are_fair_and_limited,
    routing_is_checked_again_before_an_order,
    certificate_orders_time_out,
);
