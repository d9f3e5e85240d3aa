//! Graceful shutdown, on SQLite and PostgreSQL: a request in flight when the server is
//! asked to stop (stopped while the build it started runs) is answered in full, the build
//! finishes (its storefront is published), and afterwards the server accepts nothing.

#![allow(clippy::unwrap_used)]

mod common;

use aurelio_api::{Config, Platform};
use common::{ADMIN, Db, postgres_url, random_hex, repo_path};
use serde_json::json;
use std::time::Duration;

both!(in_flight_requests_finish);

async fn in_flight_requests_finish(db: Db) {
    let data = tempfile::tempdir().unwrap();
    let database_url = (db == Db::Postgres).then(|| {
        let mut url = postgres_url();
        url.set_path(&format!("/aurelio_t_shutdown_{}", random_hex(6)));
        url.to_string()
    });
    let config = Config {
        data_dir: data.path().to_owned(),
        database_url,
        admin_token: Some(ADMIN.into()),
        demo_catalog: repo_path("fixtures/demo-store"),
        build_debounce: Duration::from_millis(10),
        // Provisioning the demo shop builds it in a debug binary: on a loaded machine that
        // nears the default 30 s request limit, which is not what this test is about.
        limits: aurelio_api::limits::LimitsConfig {
            request_timeout_ms: 300_000,
            ..aurelio_api::limits::LimitsConfig::default()
        },
        ..Config::default()
    };
    let platform = Platform::open(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = aurelio_api::start(platform.clone(), listener).await.unwrap();
    let base = format!("http://{}", running.addr);
    aurelio_engine::publish::install_crypto_provider();
    let http = reqwest::Client::new();
    // Provisioning with demo data builds and publishes before it answers: long enough to
    // be in flight when the stop comes.
    let request = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/api/v1/tenants");
        async move {
            http.post(url)
                .bearer_auth(ADMIN)
                .json(&json!({"handle": "late", "name": "Late", "demo": true}))
                .send()
                .await
        }
    });
    // Stop once the request is in its build (its job is running), not after a guess.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'build' AND status = 'running'",
        )
        .fetch_one(&platform.registry)
        .await
        .unwrap();
        if running > 0 || request.is_finished() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the provisioning build never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if request.is_finished() {
        let early = request.await.unwrap().unwrap();
        panic!(
            "provisioning answered before the stop, the test proves nothing: {} {}",
            early.status(),
            early.text().await.unwrap_or_default()
        );
    }
    running.shutdown().await.unwrap();
    let answer = request.await.unwrap().expect("the in-flight request is answered");
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    // The build it ran finished: the storefront was published before the server stopped.
    let shop = body["tenant"]["id"].as_str().unwrap();
    assert!(platform.published_dir(shop).join("index.html").is_file(), "published before stopping");
    // Nothing is accepted any more.
    let after = http.get(format!("{base}/healthz")).timeout(Duration::from_secs(2)).send().await;
    assert!(after.is_err(), "the server still answers after shutdown");
}
