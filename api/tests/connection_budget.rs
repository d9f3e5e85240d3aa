//! The connection budget on PostgreSQL (`db_connections`): a server with a budget of 8
//! (`AURELIO_TEST_BUDGET`), whose role may open 4 connections more, provisions and uses five
//! times more shops than its budget, one after another and then 16 at once; every request
//! succeeds and the role never holds more than 8 connections (sampled from
//! `pg_stat_activity`).
//!
//! PostgreSQL only: skipped, saying so, when `AURELIO_TEST_DATABASE_URL` is unset.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Db, Server, Shop, product, random_hex, unique};
use futures::{FutureExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// The server's budget, and the role's limit above it (room for backends still exiting).
/// `AURELIO_TEST_BUDGET` sets another budget, to measure (`docs/benchmarks.md`).
fn budget() -> u32 {
    std::env::var("AURELIO_TEST_BUDGET").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}
const ROOM: u32 = 4;

/// Shops made one after another, then 16 at a time.
const SEQUENTIAL: usize = 40;
const CONCURRENT: usize = 24;
const AT_ONCE: usize = 16;

#[test]
fn many_shops_stay_within_the_connection_budget() {
    let admin = match std::env::var(common::DATABASE_VAR) {
        Ok(url) if !url.trim().is_empty() => url::Url::parse(url.trim()).expect("a URL"),
        _ => {
            eprintln!(
                "skipped: {} is not set (this test needs PostgreSQL; see api/tests/common)",
                common::DATABASE_VAR
            );
            return;
        }
    };
    common::run(async move {
        let su = sqlx::PgPool::connect(admin.as_str()).await.expect("connect as the superuser");
        let role = format!("aurelio_tb_{}", random_hex(6));
        let password = random_hex(12);
        let limit = budget() + ROOM;
        let create = format!(
            "CREATE ROLE {role} LOGIN CREATEDB CONNECTION LIMIT {limit} PASSWORD '{password}'"
        );
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&su).await.expect("create the role");
        let outcome =
            std::panic::AssertUnwindSafe(exercise(&su, &role, &password)).catch_unwind().await;
        drop_role(&su, &role).await;
        su.close().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}

async fn exercise(su: &sqlx::PgPool, role: &str, password: &str) {
    let budget_of = budget();
    let server = Server::start(Db::Postgres, |c| {
        let mut url =
            url::Url::parse(c.database_url.as_deref().expect("a PostgreSQL URL")).expect("a URL");
        url.set_username(role).expect("a user");
        url.set_password(Some(password)).expect("a password");
        c.database_url = Some(url.to_string());
        c.db_connections = budget_of;
    });
    let budget = server.platform.pools.budget();
    assert_eq!(budget.total, budget_of);

    // Samples the role's connections all along.
    let most = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample(su.clone(), role.to_owned(), most.clone(), stop.clone()));

    let api = server.client();
    let started = Instant::now();
    let mut shops = Vec::new();
    for i in 0..SEQUENTIAL {
        shops.push(provision_and_use(&api, i).await);
    }
    let sequential = started.elapsed();

    let started = Instant::now();
    let made: Vec<Shop> = futures::stream::iter(SEQUENTIAL..SEQUENTIAL + CONCURRENT)
        .map(|i| {
            let api = api.clone();
            async move { provision_and_use(&api, i).await }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let concurrent = started.elapsed();
    shops.extend(made);

    // Every shop again, 16 at a time: each reopens a pool after others took its room.
    let started = Instant::now();
    futures::stream::iter(shops.iter())
        .for_each_concurrent(AT_ONCE, |shop| {
            let api = api.clone();
            async move { use_shop(&api, shop).await }
        })
        .await;
    let reuse = started.elapsed();

    stop.store(true, Ordering::Relaxed);
    sampler.await.expect("the sampler");
    let most = most.load(Ordering::Relaxed);
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    eprintln!(
        "budget {budget_of} ({} registry + {} shops): {SEQUENTIAL} shops provisioned and used one \
         at a time in {sequential:.2?} ({:.1}/s), {CONCURRENT} {AT_ONCE} at once in \
         {concurrent:.2?} ({:.1}/s), all {} used again {AT_ONCE} at once in {reuse:.2?} \
         ({:.1}/s); at most {most} connections of the role",
        budget.registry,
        budget.shops,
        rate(SEQUENTIAL, sequential),
        rate(CONCURRENT, concurrent),
        shops.len(),
        rate(shops.len(), reuse),
    );
    assert!(most >= 2, "the sampler saw the server's connections ({most})");
    assert!(
        most <= i64::from(budget_of),
        "the role held {most} connections, over the budget of {budget_of}"
    );
    assert!(server.platform.pools.lent() <= budget.shops);
    drop(server);
}

/// Provisions shop `i` and uses it.
async fn provision_and_use(api: &Client, i: usize) -> Shop {
    let shop = api.provision(&unique(&format!("budget{i}")), false).await;
    let made = api
        .post("/api/v1/products", &shop.secret, product("tee", &format!("TEE-{i}"), "5.00"))
        .await
        .expect(201)
        .json();
    assert!(made["product"]["variants"][0]["id"].is_string(), "{made}");
    use_shop(api, &shop).await;
    shop
}

/// Reads the shop's product, makes a cart, adds to it and reads it back.
async fn use_shop(api: &Client, shop: &Shop) {
    let list = api.get("/api/v1/products", &shop.secret).await.expect(200).json();
    let variant = list["products"][0]["variants"][0]["id"].as_str().expect("a variant").to_owned();
    let cart = api
        .post(
            "/api/v1/carts",
            &shop.publishable,
            json!({"lines": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await
        .expect(201)
        .json();
    let token = cart["cart"]["token"].as_str().expect("a cart token").to_owned();
    api.post(
        &format!("/api/v1/carts/{token}/lines"),
        &shop.publishable,
        json!({"variant_id": variant, "quantity": 2}),
    )
    .await
    .expect(200);
    let read = api.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200);
    assert_eq!(read.json()["cart"]["lines"][0]["quantity"], json!(3), "{}", shop.handle);
}

/// Records the most connections `role` held, every few milliseconds until `stop`.
async fn sample(su: sqlx::PgPool, role: String, most: Arc<AtomicI64>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
            .bind(role.as_str())
            .fetch_one(&su)
            .await
            .expect("read pg_stat_activity");
        most.fetch_max(n, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Drops the databases `role` made (the registry and the shops'), then the role.
async fn drop_role(su: &sqlx::PgPool, role: &str) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT d.datname::text FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba \
         WHERE r.rolname = $1",
    )
    .bind(role)
    .fetch_all(su)
    .await
    .unwrap_or_default();
    for name in names {
        if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(su).await;
        }
    }
    let _ =
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}"))).execute(su).await;
}
