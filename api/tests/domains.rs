//! Custom domains against real servers: pebble-challtestsrv answers DNS (each test sets
//! its records through the management API: right and wrong TXT values, CNAMEs to us and
//! elsewhere, A records, CAA, SERVFAIL), a UDP socket that never answers stands for a dead
//! nameserver, and Debian's pebble issues a certificate through HTTP-01 served by the
//! origin.
//!
//! `./scripts/test` starts both servers and sets `AURELIO_TEST_DNS`,
//! `AURELIO_TEST_CHALLTESTSRV`, `AURELIO_TEST_ACME_DIRECTORY`, `AURELIO_TEST_ACME_ROOT` and
//! `AURELIO_TEST_ACME_HTTP_PORT`; run by hand, these tests fail and say how to start them.

mod common;

use aurelio_api::{Config, Platform};
use common::{Client, Db, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const SECRET: &str = "8f4c2a1b9e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c";
const TARGET: &str = "edge.aurelio.test";

#[track_caller]
fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => panic!(
            "{name} is not set: the domain tests need a DNS server with an API to set records \
             (pebble-challtestsrv) and an ACME server (pebble).\n\
             Run `./scripts/test`, which installs and starts both (Debian package `pebble`), or \
             start them by hand as its \"DNS and ACME servers\" step does and set \
             AURELIO_TEST_DNS, AURELIO_TEST_CHALLTESTSRV, AURELIO_TEST_ACME_DIRECTORY, \
             AURELIO_TEST_ACME_ROOT and AURELIO_TEST_ACME_HTTP_PORT."
        ),
    }
}

fn dns_config(c: &mut Config, nameserver: SocketAddr) {
    c.domains.nameservers = vec![nameserver];
    c.domains.dns_timeout_ms = 1500;
    c.domains.cname_target = TARGET.into();
    c.domains.addresses = vec![IpAddr::from([127, 0, 0, 1])];
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
        self.call(
            "/set-txt",
            json!({ "host": format!("_aurelio-verify.{host}."), "value": value }),
        )
        .await;
    }

    async fn clear_txt(&self, host: &str) {
        self.call("/clear-txt", json!({ "host": format!("_aurelio-verify.{host}.") })).await;
    }

    async fn cname(&self, host: &str, target: &str) {
        self.call(
            "/set-cname",
            json!({ "host": format!("{host}."), "target": format!("{target}.") }),
        )
        .await;
    }

    async fn a(&self, host: &str, ip: &str) {
        self.call("/add-a", json!({ "host": format!("{host}."), "addresses": [ip] })).await;
    }

    async fn caa(&self, host: &str, issuer: &str) {
        self.call(
            "/add-caa",
            json!({ "host": format!("{host}."), "policies": [{ "tag": "issue", "value": issuer }] }),
        )
        .await;
    }

    async fn servfail(&self, host: &str) {
        self.call("/set-servfail", json!({ "host": format!("{host}.") })).await;
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

async fn host_get(c: &Client, host: &str, path: &str) -> common::Resp {
    c.send_with(Method::GET, path, None, common::Payload::None, &[("host", host)]).await
}

// ---------------------------------------------------------------------------------------

async fn claims_normalize_and_reject(db: Db) {
    let server = Server::start(db, |c| dns_config(c, "127.0.0.1:9".parse().expect("addr")));
    let c = server.client();
    let shop = c.provision(&unique("claims"), false).await;
    let label = unique("Shop");
    let typed = format!("{}.Café-Example.TEST.", label.to_uppercase());
    let d = claim(&c, &shop.secret, &typed).await;
    let host = format!("{}.xn--caf-example-dbb.test", label.to_lowercase());
    assert_eq!(d["hostname"], json!(host), "{d}");
    assert_eq!(d["display_name"], json!(format!("{}.café-example.test", label.to_lowercase())));
    assert_eq!(d["status"], json!("pending"));
    assert_eq!(d["ownership"]["state"], json!("pending_verification"));
    assert_eq!(d["routing"]["state"], json!("pending_dns"));
    assert_eq!(d["certificate"]["state"], json!("none"));
    let txt = &d["records"][0];
    assert_eq!(txt["type"], json!("TXT"));
    assert_eq!(txt["name"], json!(format!("_aurelio-verify.{host}")));
    assert_eq!(txt["relative_name"], json!(format!("_aurelio-verify.{}", label.to_lowercase())));
    assert_eq!(txt["zone"], json!("xn--caf-example-dbb.test"));
    assert!(
        txt["value"].as_str().is_some_and(|v| v.starts_with("aurelio-verify=") && v.len() >= 47)
    );
    assert_eq!(d["records"][1]["type"], json!("CNAME"));
    assert_eq!(d["records"][1]["value"], json!(TARGET));
    // The same claim again: the same token, 200.
    let again = c
        .post("/api/v1/domains", &shop.secret, json!({ "hostname": host }))
        .await
        .expect(200)
        .json();
    assert_eq!(txt_value(&again), txt_value(&d));
    // An apex gets A records, named `@`.
    let apex = claim(&c, &shop.secret, &format!("{}.test", unique("apex"))).await;
    assert_eq!(apex["records"][1]["type"], json!("A"));
    assert_eq!(apex["records"][1]["relative_name"], json!("@"));
    assert_eq!(apex["records"][1]["value"], json!("127.0.0.1"));
    for bad in [
        "co.uk",
        "com",
        "192.0.2.1",
        "[2001:db8::1]",
        "https://shop.example.com/",
        "a..b.com",
        "github.io",
    ] {
        c.post("/api/v1/domains", &shop.secret, json!({ "hostname": bad })).await.error(
            422,
            "validation_failed",
            Some("hostname"),
        );
    }
    let list = c.get("/api/v1/domains", &shop.secret).await.expect(200).json();
    assert_eq!(list["domains"].as_array().map(Vec::len), Some(2), "{list}");
    // Another shop's key finds nothing.
    let other = c.provision(&unique("other"), false).await;
    c.get(&format!("/api/v1/domains/{host}"), &other.secret).await.expect(404);
    c.delete(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(204);
    c.get(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(404);
    // The OpenAPI document lists the routes.
    let doc = c.get("/api/v1/openapi.json", "").await.expect(200).json();
    assert!(doc["paths"]["/api/v1/domains/{hostname}/verify"]["post"].is_object());
}

async fn verification_states(db: Db) {
    let dns: SocketAddr = var("AURELIO_TEST_DNS").parse().expect("AURELIO_TEST_DNS is ip:port");
    let records = Records::new();
    let server = Server::start(db, |c| dns_config(c, dns));
    let c = server.client();
    let shop = c.provision(&unique("verify"), false).await;
    let zone = format!("{}.test", unique("zone"));
    let host = |label: &str| format!("{label}.{zone}");

    // Nothing in DNS yet: pending, "no TXT record".
    let missing = host("missing");
    claim(&c, &shop.secret, &missing).await;
    let d = verify(&c, &shop.secret, &missing).await;
    assert_eq!(d["status"], json!("pending"), "{d}");
    assert_eq!(d["ownership"]["check"]["outcome"], json!("missing"), "{d}");
    assert!(d["reason"].as_str().is_some_and(|r| r.contains("no TXT record")), "{d}");
    assert!(d["last_checked_at"].is_string() && d["next_check_at"].is_string(), "{d}");

    // A TXT record with another value: action needed, and what was seen.
    let wrong = host("wrong");
    claim(&c, &shop.secret, &wrong).await;
    records.txt(&wrong, "aurelio-verify=not-the-token").await;
    let d = verify(&c, &shop.secret, &wrong).await;
    assert_eq!(d["status"], json!("action_needed"), "{d}");
    assert_eq!(d["ownership"]["check"]["outcome"], json!("wrong"));
    assert!(
        d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("different value: `aurelio-verify=not-the-token`")),
        "{d}"
    );
    assert_eq!(
        d["ownership"]["check"]["seen"][0],
        json!(format!("TXT _aurelio-verify.{wrong} aurelio-verify=not-the-token"))
    );

    // The right TXT, a CNAME elsewhere: verified, routing misconfigured.
    let elsewhere = host("elsewhere");
    let claimed = claim(&c, &shop.secret, &elsewhere).await;
    records.txt(&elsewhere, &txt_value(&claimed)).await;
    records.cname(&elsewhere, "shops.other-platform.test").await;
    let d = verify(&c, &shop.secret, &elsewhere).await;
    assert_eq!(d["ownership"]["state"], json!("verified"), "{d}");
    assert_eq!(d["routing"]["state"], json!("misconfigured"), "{d}");
    assert_eq!(d["status"], json!("action_needed"));
    assert!(
        d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("CNAME points to shops.other-platform.test")),
        "{d}"
    );

    // Both right: active (this server manages no certificates), and the shop's primary.
    let good = host("good");
    let claimed = claim(&c, &shop.secret, &good).await;
    records.txt(&good, &txt_value(&claimed)).await;
    records.cname(&good, TARGET).await;
    let d = verify(&c, &shop.secret, &good).await;
    assert_eq!(d["status"], json!("active"), "{d}");
    assert_eq!(d["routing"]["state"], json!("configured"));
    assert_eq!(d["primary"], json!(true));
    assert_eq!(d["certificate"]["state"], json!("none"));
    // The TXT record may go once verified: the hostname stays verified.
    records.clear_txt(&good).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let d = verify(&c, &shop.secret, &good).await;
    assert_eq!(d["status"], json!("active"), "{d}");

    // SERVFAIL: unknown, still pending, never failed.
    let broken = host("broken");
    claim(&c, &shop.secret, &broken).await;
    records.servfail(&format!("_aurelio-verify.{broken}")).await;
    let d = verify(&c, &shop.secret, &broken).await;
    assert_eq!(d["status"], json!("pending"), "{d}");
    assert_eq!(d["ownership"]["check"]["outcome"], json!("unknown"), "{d}");
    assert!(
        d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("SERVFAIL") || r.contains("Server Failure")),
        "{d}"
    );

    // A nameserver that never answers: unknown too, within the timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let silent_addr = silent.local_addr().expect("its address");
    let dead = Server::start(db, |c| {
        dns_config(c, silent_addr);
        c.domains.dns_timeout_ms = 300;
    });
    let dc = dead.client();
    let other = dc.provision(&unique("dead"), false).await;
    let h = host("unanswered");
    claim(&dc, &other.secret, &h).await;
    let started = Instant::now();
    let d = verify(&dc, &other.secret, &h).await;
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(d["status"], json!("pending"), "{d}");
    assert_eq!(d["ownership"]["check"]["outcome"], json!("unknown"), "{d}");
    assert!(d["reason"].as_str().is_some_and(|r| r.contains("could not check")), "{d}");
    drop(silent);
}

async fn routing_and_redirects(db: Db) {
    let dns: SocketAddr = var("AURELIO_TEST_DNS").parse().expect("AURELIO_TEST_DNS is ip:port");
    let records = Records::new();
    let server = Server::start(db, |c| dns_config(c, dns));
    let c = server.client();
    let shop = c.provision(&unique("route"), true).await;
    let apex = format!("{}.test", unique("apex"));
    let www = format!("www.{apex}");
    let port = server.addr.port();

    // Unknown hosts get the clear 404 page.
    let r = host_get(&c, &apex, "/").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains(&format!("No shop at {apex}")), "{}", r.text());

    let d = claim(&c, &shop.secret, &apex).await;
    records.txt(&apex, &txt_value(&d)).await;
    records.a(&apex, "127.0.0.1").await;
    let d = verify(&c, &shop.secret, &apex).await;
    assert_eq!(d["status"], json!("active"), "{d}");
    assert_eq!(d["routing"]["check"]["seen"][0], json!(format!("A {apex} 127.0.0.1")));

    // The verified apex serves the shop's storefront.
    let home = host_get(&c, &format!("{apex}:{port}"), "/").await.expect(200);
    assert!(home.text().contains("<html"), "{}", home.text());
    // Its www counterpart, claimed or not, redirects to the primary hostname.
    let r = host_get(&c, &format!("{www}:{port}"), "/collections/?page=2").await.expect(308);
    assert_eq!(r.header("location"), Some(format!("http://{apex}:{port}/collections/?page=2")));

    let d = claim(&c, &shop.secret, &www).await;
    records.txt(&www, &txt_value(&d)).await;
    records.cname(&www, TARGET).await;
    let d = verify(&c, &shop.secret, &www).await;
    assert_eq!(d["status"], json!("active"), "{d}");
    assert_eq!(d["primary"], json!(false));
    let r = host_get(&c, &www, "/").await.expect(308);
    assert_eq!(r.header("location"), Some(format!("http://{apex}/")));

    // www becomes the primary: now the apex redirects.
    let d = c
        .post(&format!("/api/v1/domains/{www}/primary"), &shop.secret, json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(d["primary"], json!(true));
    let r = host_get(&c, &apex, "/products/").await.expect(308);
    assert_eq!(r.header("location"), Some(format!("http://{www}/products/")));
    host_get(&c, &www, "/").await.expect(200);

    // An unverified hostname cannot be the primary.
    let pending = format!("pending.{apex}");
    claim(&c, &shop.secret, &pending).await;
    c.post(&format!("/api/v1/domains/{pending}/primary"), &shop.secret, json!({})).await.error(
        409,
        "conflict",
        Some("hostname"),
    );
    // No ACME challenge is answered for hostnames that are not verified and routed.
    host_get(&c, &pending, "/.well-known/acme-challenge/abc").await.expect(404);
}

async fn takeover_needs_proof(db: Db) {
    let dns: SocketAddr = var("AURELIO_TEST_DNS").parse().expect("AURELIO_TEST_DNS is ip:port");
    let records = Records::new();
    let server = Server::start(db, |c| dns_config(c, dns));
    let c = server.client();
    let a = c.provision(&unique("holder"), false).await;
    let b = c.provision(&unique("taker"), false).await;
    let host = format!("shop.{}.test", unique("contested"));

    // An unverified claim does not block another shop, nor does the other claim remove
    // it: both stand, each with its own token.
    let d = claim(&c, &a.secret, &host).await;
    let t = claim(&c, &b.secret, &host).await;
    assert_eq!(t["takeover"], json!(true), "{t}");
    c.get(&format!("/api/v1/domains/{host}"), &a.secret).await.expect(200);

    // A proves ownership first; B's claim still needs its own proof.
    let a_txt = txt_value(&d);
    records.txt(&host, &a_txt).await;
    records.cname(&host, TARGET).await;
    assert_eq!(verify(&c, &a.secret, &host).await["status"], json!("active"));
    assert_eq!(t["status"], json!("pending"));
    assert!(t["reason"].as_str().is_some_and(|r| r.contains("connected to another shop")), "{t}");
    let b_txt = txt_value(&t);
    assert_ne!(a_txt, b_txt);
    // A's record is still there: B's verify finds a different value, A keeps the hostname.
    let t = verify(&c, &b.secret, &host).await;
    assert_eq!(t["takeover"], json!(true));
    assert_eq!(t["status"], json!("action_needed"), "{t}");
    assert_eq!(
        c.get(&format!("/api/v1/domains/{host}"), &a.secret).await.expect(200).json()["status"],
        json!("active")
    );
    // B publishes its own value: the hostname moves to B, verified; A no longer has it.
    records.txt(&host, &b_txt).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t = verify(&c, &b.secret, &host).await;
    assert_eq!(t["takeover"], json!(false), "{t}");
    assert_eq!(t["ownership"]["state"], json!("verified"));
    assert_eq!(t["status"], json!("active"));
    c.get(&format!("/api/v1/domains/{host}"), &a.secret).await.expect(404);
    let list = c.get("/api/v1/domains", &a.secret).await.expect(200).json();
    assert_eq!(list["domains"], json!([]));
}

/// Makes a domain due for its background check now.
async fn make_due(server: &Server, host: &str) {
    sqlx::query("UPDATE domains SET next_check_at = 0 WHERE hostname = $1")
        .bind(host)
        .execute(&server.platform.registry)
        .await
        .expect("update next_check_at");
}

async fn background_rechecks(db: Db) {
    let dns: SocketAddr = var("AURELIO_TEST_DNS").parse().expect("AURELIO_TEST_DNS is ip:port");
    let records = Records::new();
    // The server's own checker runs once at start, then not for an hour: this test drives it.
    let server = Server::start(db, |c| {
        dns_config(c, dns);
        c.domains.poll_ms = 3_600_000;
    });
    let c = server.client();
    let shop = c.provision(&unique("recheck"), false).await;
    let host = format!("shop.{}.test", unique("bg"));
    let d = claim(&c, &shop.secret, &host).await;
    let (_stop, mut stop_rx) = tokio::sync::watch::channel(false);

    // Records published after the claim are found by the background check when it is due.
    records.txt(&host, &txt_value(&d)).await;
    records.cname(&host, TARGET).await;
    aurelio_api::domains::run_due(&server.platform, &mut stop_rx).await.expect("a round");
    let d = c.get(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(200).json();
    assert_eq!(d["status"], json!("pending"), "not due yet, so not checked: {d}");
    make_due(&server, &host).await;
    aurelio_api::domains::run_due(&server.platform, &mut stop_rx).await.expect("a round");
    let d = c.get(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(200).json();
    assert_eq!(d["status"], json!("active"), "{d}");

    // An active domain whose CNAME moves away is flagged only after three failed checks in
    // a row; a DNS outage in between counts for nothing.
    records.cname(&host, "elsewhere.test").await;
    for round in 1..=3 {
        if round == 2 {
            records.servfail(&host).await;
            make_due(&server, &host).await;
            aurelio_api::domains::run_due(&server.platform, &mut stop_rx).await.expect("a round");
            let d =
                c.get(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(200).json();
            assert_eq!(d["status"], json!("active"), "an outage flagged the domain: {d}");
            assert_eq!(d["routing"]["check"]["outcome"], json!("unknown"), "{d}");
            records.call("/clear-servfail", json!({ "host": format!("{host}.") })).await;
        }
        make_due(&server, &host).await;
        aurelio_api::domains::run_due(&server.platform, &mut stop_rx).await.expect("a round");
        let d = c.get(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(200).json();
        if round < 3 {
            assert_eq!(d["status"], json!("active"), "flagged after {round} failure(s): {d}");
            assert!(
                d["reason"].as_str().is_some_and(|r| r.contains("CNAME points to elsewhere.test")),
                "{d}"
            );
        } else {
            assert_eq!(d["status"], json!("action_needed"), "{d}");
            assert_eq!(d["routing"]["state"], json!("misconfigured"), "{d}");
        }
    }
}

both!(
    background_rechecks,
    claims_normalize_and_reject,
    verification_states,
    routing_and_redirects,
    takeover_needs_proof
);

// ---------------------------------------------------------------------------------------
// ACME end to end
// ---------------------------------------------------------------------------------------

/// A certificate from pebble through HTTP-01: pebble resolves the hostname through the
/// DNS server and fetches the challenge answer from this server's origin on the port
/// pebble was configured with. A CAA record naming another authority stops the order.
#[test]
fn certificate_from_pebble_through_http01() {
    common::run(async {
        let dns: SocketAddr = var("AURELIO_TEST_DNS").parse().expect("AURELIO_TEST_DNS is ip:port");
        let directory = var("AURELIO_TEST_ACME_DIRECTORY");
        let root = var("AURELIO_TEST_ACME_ROOT");
        let port: u16 = var("AURELIO_TEST_ACME_HTTP_PORT").parse().expect("a port");
        let records = Records::new();
        aurelio_engine::publish::install_crypto_provider();
        let data = tempfile::tempdir().expect("a data directory");
        let mut config = Config {
            data_dir: data.path().to_owned(),
            admin_token: Some(common::ADMIN.into()),
            demo_catalog: common::repo_path("fixtures/demo-store"),
            ..Config::default()
        };
        dns_config(&mut config, dns);
        config.domains.acme_directory = Some(directory);
        config.domains.acme_root_ca = Some(root.into());
        config.secret_key = Some(SECRET.into());
        config.domains.poll_ms = 100;
        let platform = Platform::open(config).await.expect("the platform");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("port {port} (AURELIO_TEST_ACME_HTTP_PORT): {e}"));
        let running = aurelio_api::start(platform, listener).await.expect("the server");
        let c = Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            base: format!("http://{}", running.addr),
        };
        let shop = c.provision(&unique("tls"), false).await;
        let host = format!("shop.{}.test", unique("acme"));
        let d = claim(&c, &shop.secret, &host).await;
        records.txt(&host, &txt_value(&d)).await;
        records.a(&host, "127.0.0.1").await;
        let d = verify(&c, &shop.secret, &host).await;
        assert_eq!(d["routing"]["state"], json!("configured"), "{d}");
        assert!(matches!(d["certificate"]["state"].as_str(), Some("pending" | "issuing")), "{d}");
        assert_eq!(d["status"], json!("pending"));

        let started = Instant::now();
        let d = loop {
            let d =
                c.get(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(200).json();
            match d["certificate"]["state"].as_str() {
                Some("active") => break d,
                Some("failed") => panic!("the certificate failed: {d}"),
                _ => {}
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no certificate in 120 s: {d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        eprintln!("certificate issued in {:?}", started.elapsed());
        assert_eq!(d["status"], json!("active"), "{d}");
        assert_eq!(d["certificate"]["caa"]["outcome"], json!("ok"), "{d}");
        let not_after = d["certificate"]["not_after"].as_str().expect("not_after");
        assert!(not_after > chrono::Utc::now().to_rfc3339().as_str(), "{not_after}");

        // Stored sealed; it opens with the key into a chain for the hostname and its key.
        let sealed: String =
            sqlx::query_scalar("SELECT sealed FROM domain_certificates WHERE hostname = $1")
                .bind(&host)
                .fetch_one(&running.platform.registry)
                .await
                .expect("a stored certificate");
        assert!(!sealed.contains("BEGIN"), "the certificate is stored in the clear");
        let cert = aurelio_api::domains::acme::load(&running.platform, &host)
            .await
            .expect("opens")
            .expect("present");
        assert!(cert.chain_pem.matches("BEGIN CERTIFICATE").count() >= 2, "{}", cert.chain_pem);
        assert!(cert.key_pem.contains("PRIVATE KEY"));
        let challenges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM acme_challenges")
            .fetch_one(&running.platform.registry)
            .await
            .expect("count");
        assert_eq!(challenges, 0, "challenge answers are removed after the order");

        // Due for renewal (inside `renew_before_days`): renewed in the background, and the
        // domain stays active meanwhile.
        let issued_at: i64 =
            sqlx::query_scalar("SELECT issued_at FROM domain_certificates WHERE hostname = $1")
                .bind(&host)
                .fetch_one(&running.platform.registry)
                .await
                .expect("issued_at");
        let soon = chrono::Utc::now().timestamp_millis() + 86_400_000;
        sqlx::query("UPDATE domains SET cert_not_after = $1 WHERE hostname = $2")
            .bind(soon)
            .bind(&host)
            .execute(&running.platform.registry)
            .await
            .expect("update cert_not_after");
        let started = Instant::now();
        loop {
            let d =
                c.get(&format!("/api/v1/domains/{host}"), &shop.secret).await.expect(200).json();
            assert_eq!(d["status"], json!("active"), "{d}");
            let renewed: i64 =
                sqlx::query_scalar("SELECT issued_at FROM domain_certificates WHERE hostname = $1")
                    .bind(&host)
                    .fetch_one(&running.platform.registry)
                    .await
                    .expect("issued_at");
            if renewed > issued_at && d["certificate"]["state"] == json!("active") {
                let renewed_until = d["certificate"]["not_after"].as_str().expect("not_after");
                assert!(renewed_until >= not_after, "{renewed_until} < {not_after}");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "not renewed in 120 s: {d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("certificate renewed in {:?}", started.elapsed());

        // CAA naming another authority: no order, the reason says what to add.
        let blocked = format!("shop.{}.test", unique("caa"));
        let d = claim(&c, &shop.secret, &blocked).await;
        records.txt(&blocked, &txt_value(&d)).await;
        records.a(&blocked, "127.0.0.1").await;
        records.caa(&blocked.replacen("shop.", "", 1), "ca.other.test").await;
        verify(&c, &shop.secret, &blocked).await;
        let started = Instant::now();
        let d = loop {
            let d =
                c.get(&format!("/api/v1/domains/{blocked}"), &shop.secret).await.expect(200).json();
            if d["certificate"]["state"] == json!("failed") {
                break d;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "CAA did not stop the order: {d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(d["status"], json!("action_needed"), "{d}");
        assert!(
            d["reason"].as_str().is_some_and(|r| r.contains("allow only ca.other.test")),
            "{d}"
        );
        assert_eq!(d["certificate"]["caa"]["outcome"], json!("wrong"));
        running.shutdown().await.expect("a clean shutdown");
    });
}
