//! Jobs under abuse, on SQLite and PostgreSQL: checkouts that leave every variant's
//! availability as it was queue no build and add no deploy record (one that sells a
//! variant out does); many builds keep the published deploy records bounded; unpaid
//! `manual` orders give their stock back once after the hold (exactly once, even when
//! released concurrently; a paid order is untouched); idle carts are deleted.

#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::State;
use axum::routing::post;
use common::{Client, Db, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both!(
    checkouts_that_keep_availability_build_nothing,
    deploy_records_stay_bounded_over_many_builds,
    unpaid_orders_release_their_stock_once_after_the_hold,
    an_order_is_released_once_however_many_release_it,
    idle_carts_are_deleted,
);

/// A shop without demo data and one product with `stock` units of one variant, every
/// build so far finished.
async fn shop_with_product(c: &Client, stock: i64) -> (common::Shop, String, String) {
    let shop = c.provision(&unique("jobs"), false).await;
    let product = c
        .post(
            "/api/v1/products",
            &shop.secret,
            json!({"handle": "tee", "title": "Tee",
                "variants": [{"sku": "TEE-1", "price": "10.00", "inventory": stock}]}),
        )
        .await
        .expect(201)
        .json();
    let variant = product["product"]["variants"][0]["id"].as_str().unwrap().to_owned();
    let product_id = product["product"]["id"].as_str().unwrap().to_owned();
    c.put(
        "/api/v1/settings/checkout",
        &shop.secret,
        json!({"shipping_zones": [{"name": "EU", "countries": ["IE"],
            "rates": [{"id": "standard", "name": "Standard", "amount": 495}]}],
            "payment_providers": ["manual"]}),
    )
    .await
    .expect(200);
    settle(c, &shop).await;
    (shop, product_id, variant)
}

/// The shop's builds, newest first.
async fn builds(c: &Client, shop: &common::Shop) -> Vec<Value> {
    let list = c.get("/api/v1/builds?limit=100", &shop.secret).await.expect(200).json();
    list["builds"].as_array().unwrap().clone()
}

/// Waits until no build of the shop is queued or running.
async fn settle(c: &Client, shop: &common::Shop) {
    let started = Instant::now();
    loop {
        let list = builds(c, shop).await;
        if list.iter().all(|b| b["status"] == "succeeded" || b["status"] == "failed") {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "builds did not settle: {list:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn published(server: &Server, shop: &common::Shop) -> std::path::PathBuf {
    server.data_dir.join("published").join(&shop.id)
}

/// Deploy records in the shop's published destination.
fn records(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("_aurelio/deploys")).map_or(0, |d| d.count())
}

/// A cart of `quantity` units checked out with the `manual` provider: its order, with the
/// cart's token under `cart_token`.
async fn checkout(c: &Client, key: &str, variant: &str, quantity: i64, idem: &str) -> Value {
    let cart = c
        .post(
            "/api/v1/carts",
            key,
            json!({"lines": [{"variant_id": variant, "quantity": quantity}]}),
        )
        .await
        .expect(201)
        .json();
    let token = cart["cart"]["token"].as_str().unwrap();
    let mut order = c
        .send_with(
            Method::POST,
            &format!("/api/v1/carts/{token}/checkout"),
            Some(key),
            common::Payload::Json(json!({"email": "ada@example.com", "shipping_address":
            {"name": "Ada", "line1": "1 Quay Street", "city": "Galway", "country": "IE"}})),
            &[("Idempotency-Key", idem)],
        )
        .await
        .expect(201)
        .json()["order"]
        .clone();
    order["cart_token"] = json!(token);
    order
}

async fn stock(c: &Client, shop: &common::Shop, product: &str) -> i64 {
    let p = c.get(&format!("/api/v1/products/{product}"), &shop.secret).await.expect(200).json();
    p["product"]["variants"][0]["inventory"].as_i64().unwrap()
}

async fn order_status(c: &Client, shop: &common::Shop, id: &str) -> String {
    let o = c.get(&format!("/api/v1/orders/{id}"), &shop.secret).await.expect(200).json();
    o["order"]["status"].as_str().unwrap().to_owned()
}

async fn checkouts_that_keep_availability_build_nothing(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, product, variant) = shop_with_product(&c, 12).await;
    let dir = published(server, &shop);
    let (builds_before, records_before) = (builds(&c, &shop).await.len(), records(&dir));
    assert!(records_before >= 1, "the shop is published");

    // Ten checkouts, each leaving the variant in stock: no build, no deploy.
    for i in 0..10 {
        checkout(&c, &shop.publishable, &variant, 1, &format!("keep-{i}")).await;
    }
    assert_eq!(stock(&c, &shop, &product).await, 2);
    let after = builds(&c, &shop).await;
    assert_eq!(after.len(), builds_before, "stock-only checkouts queued builds: {after:?}");
    settle(&c, &shop).await;
    assert_eq!(records(&dir), records_before, "stock-only checkouts added deploy records");
    let page = c.storefront(&shop.handle, "/products/tee/").await.expect(200).text();
    assert!(page.contains("In stock"), "{page}");

    // The checkout that sells the last units out does rebuild: the page says so.
    checkout(&c, &shop.publishable, &variant, 2, "sell-out").await;
    let after = builds(&c, &shop).await;
    assert_eq!(after.len(), builds_before + 1, "selling out queues one build");
    let id = after[0]["id"].as_str().unwrap();
    assert_eq!(after[0]["reason"], "stock changed");
    c.wait_built(&shop.secret, id).await;
    let page = c.storefront(&shop.handle, "/products/tee/").await.expect(200).text();
    assert!(page.contains("Sold out"), "the storefront follows a sell-out: {page}");
    assert!(records(&dir) > records_before);
}

async fn deploy_records_stay_bounded_over_many_builds(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 5).await;
    let dir = published(server, &shop);
    // Each price change is a build and a deploy (two when feeds are on): 24 and more.
    for i in 0..24 {
        let price = 1150 + 100 * i;
        c.patch(&format!("/api/v1/variants/{variant}"), &shop.secret, json!({"price": price}))
            .await
            .expect(200);
        settle(&c, &shop).await;
        assert!(records(&dir) <= 20, "{} deploy records after {} builds", records(&dir), i + 1);
    }
    let live: Value =
        serde_json::from_slice(&std::fs::read(dir.join("_aurelio/manifest.json")).unwrap())
            .unwrap();
    let history = live["history"].as_array().unwrap();
    assert_eq!(history.len(), 20, "the live state keeps the last 20 deploys");
    assert_eq!(records(&dir), 20);
    for deploy in history {
        let id = deploy["id"].as_str().unwrap();
        assert!(dir.join(format!("_aurelio/deploys/{id}.json")).is_file(), "record of {id}");
    }
    let page = c.storefront(&shop.handle, "/products/tee/").await.expect(200).text();
    assert!(page.contains("34.50") || page.contains("34,50"), "the last price is live: {page}");
}

/// Counts the `order.expired` events a webhook receiver gets.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Value>>,
}

async fn receiver() -> (String, Arc<Receiver>) {
    async fn receive(State(r): State<Arc<Receiver>>, body: String) -> axum::http::StatusCode {
        r.got.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::Null));
        axum::http::StatusCode::OK
    }
    let rx = Arc::new(Receiver::default());
    let app = axum::Router::new().route("/hook", post(receive)).with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

async fn unpaid_orders_release_their_stock_once_after_the_hold(db: Db) {
    let server = Server::start(db, |c| c.order_hold = Duration::from_secs(1));
    let c = server.client();
    let (shop, product, variant) = shop_with_product(&c, 5).await;
    let (hook, rx) = receiver().await;
    c.post("/api/v1/webhooks", &shop.secret, json!({"url": hook, "events": ["order.expired"]}))
        .await
        .expect(201);

    let unpaid = checkout(&c, &shop.publishable, &variant, 2, "unpaid").await;
    let paid = checkout(&c, &shop.publishable, &variant, 1, "paid").await;
    let (unpaid, paid) = (unpaid["id"].as_str().unwrap(), paid["id"].as_str().unwrap());
    assert_eq!(stock(&c, &shop, &product).await, 2, "checkout takes the stock");
    c.post(&format!("/api/v1/orders/{paid}/mark-paid"), &shop.secret, json!({})).await.expect(200);

    let started = Instant::now();
    while order_status(&c, &shop, unpaid).await != "expired" {
        assert!(started.elapsed() < Duration::from_secs(30), "the unpaid order never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stock(&c, &shop, &product).await, 4, "the unpaid order's units are back");
    // Well past the hold again: released once, and the paid order kept its units.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(stock(&c, &shop, &product).await, 4, "released exactly once");
    assert_eq!(order_status(&c, &shop, paid).await, "paid");
    let events: Vec<Value> = rx.got.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "one order.expired event: {events:?}");
    assert_eq!(events[0]["type"], "order.expired");
    assert_eq!(events[0]["data"]["order_id"], unpaid);
    // An expired order cannot be paid; the shop still sells.
    c.post(&format!("/api/v1/orders/{unpaid}/mark-paid"), &shop.secret, json!({})).await.error(
        409,
        "invalid_transition",
        None,
    );
    let again = checkout(&c, &shop.publishable, &variant, 4, "again").await;
    assert_eq!(again["status"], "pending");
    assert_eq!(stock(&c, &shop, &product).await, 0);
}

async fn an_order_is_released_once_however_many_release_it(db: Db) {
    // A long hold: only the calls below release the order.
    let server = Server::start(db, |c| c.order_hold = Duration::from_secs(3600));
    let c = server.client();
    let (shop, product, variant) = shop_with_product(&c, 5).await;
    let order = checkout(&c, &shop.publishable, &variant, 3, "race").await;
    let id = order["id"].as_str().unwrap().to_owned();
    let platform = server.platform.clone();
    let registered = aurelio_api::registry::shop(&platform.registry, &shop.id).await.unwrap();
    let pool = platform.shop_db(&registered.unwrap()).await.unwrap();
    let cutoff = aurelio_api::db::now_ms();
    let racers = (0..8).map(|_| {
        let (platform, pool, id, shop_id) =
            (platform.clone(), pool.clone(), id.clone(), shop.id.clone());
        tokio::spawn(async move {
            aurelio_api::commerce::orders::expire(&platform, &shop_id, &pool, &id, cutoff).await
        })
    });
    let mut released = 0;
    for racer in racers.collect::<Vec<_>>() {
        if racer.await.unwrap().unwrap().is_some() {
            released += 1;
        }
    }
    assert_eq!(released, 1, "one of eight concurrent releases wins");
    assert_eq!(stock(&c, &shop, &product).await, 5, "the units came back once");
    assert_eq!(order_status(&c, &shop, &id).await, "expired");
    // A paid order is never released.
    let paid = checkout(&c, &shop.publishable, &variant, 1, "paid").await;
    let paid = paid["id"].as_str().unwrap();
    c.post(&format!("/api/v1/orders/{paid}/mark-paid"), &shop.secret, json!({})).await.expect(200);
    let again = aurelio_api::commerce::orders::expire(&platform, &shop.id, &pool, paid, i64::MAX)
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(order_status(&c, &shop, paid).await, "paid");
    assert_eq!(stock(&c, &shop, &product).await, 4);
}

async fn idle_carts_are_deleted(db: Db) {
    let server = Server::start(db, |c| c.cart_ttl = Duration::from_secs(1));
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 5).await;
    let idle = c
        .post(
            "/api/v1/carts",
            &shop.publishable,
            json!({"lines": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await
        .expect(201)
        .json();
    let idle = idle["cart"]["token"].as_str().unwrap().to_owned();
    let order = checkout(&c, &shop.publishable, &variant, 1, "kept").await;
    let started = Instant::now();
    while c.get(&format!("/api/v1/carts/{idle}"), &shop.publishable).await.status != 404 {
        assert!(started.elapsed() < Duration::from_secs(30), "the idle cart was never deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The checked-out cart stays: its order is still found through it.
    let token = order["cart_token"].as_str().unwrap();
    let found = c.get(&format!("/api/v1/carts/{token}/order"), &shop.publishable).await;
    assert_eq!(found.expect(200).json()["order"]["id"], order["id"]);
    let orders = c.get("/api/v1/orders", &shop.secret).await.expect(200).json();
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1);
    // The shop still takes carts.
    c.post(
        "/api/v1/carts",
        &shop.publishable,
        json!({"lines": [{"variant_id": variant, "quantity": 1}]}),
    )
    .await
    .expect(201);
}
