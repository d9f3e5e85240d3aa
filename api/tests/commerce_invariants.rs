//! Invariants of checkout, on SQLite and PostgreSQL: concurrent checkouts of one cart
//! with one `Idempotency-Key` make exactly one order (every answer names it, the stock is
//! taken once, one `order.created` is queued), and a checkout rolled back half-way (a
//! line out of stock after another was reserved) leaves no order, no event, no stock
//! taken and an open cart.

#![allow(clippy::unwrap_used)]

mod common;

use common::shop::{
    Receiver, checkout, eventually, new_cart, outbox, register_webhook, shop_with_product, stock,
};
use common::{Db, Server};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

both!(one_idempotency_key_at_once_makes_one_order, a_rolled_back_checkout_leaves_no_trace);

async fn one_idempotency_key_at_once_makes_one_order(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, product, variant) = shop_with_product(&c, 10, "6.00").await;
    let (_rx, url) = Receiver::start(true).await;
    register_webhook(&c, &shop, &url, &["order.created"]).await;
    let token =
        new_cart(&c, &shop.publishable, &variant, 2).await["token"].as_str().unwrap().to_owned();
    let attempt = || checkout(&c, &shop.publishable, &token, "one-key", "ada@example.com");
    let answers = futures::future::join_all((0..16).map(|_| attempt())).await;
    let mut orders = BTreeSet::new();
    let mut in_progress = 0;
    for a in &answers {
        match a.status {
            201 => {
                orders.insert(a.json()["order"]["id"].as_str().unwrap().to_owned());
            }
            // The one request still placing the order: the others are told to retry.
            409 => {
                a.error(409, "request_in_progress", None);
                in_progress += 1;
            }
            other => panic!("unexpected answer {other}: {}", a.text()),
        }
    }
    assert!(!orders.is_empty(), "one of the sixteen made the order");
    // Retried, each of them is answered with the order.
    for _ in 0..in_progress {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let a = attempt().await;
            if a.status == 201 {
                orders.insert(a.json()["order"]["id"].as_str().unwrap().to_owned());
                break;
            }
            a.error(409, "request_in_progress", None);
            assert!(Instant::now() < deadline, "a retry is never answered with the order");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(orders.len(), 1, "every answer names the same order: {orders:?}");
    let listed = c.get("/api/v1/orders", &shop.secret).await.expect(200).json();
    let listed: Vec<&str> =
        listed["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(listed, orders.iter().map(String::as_str).collect::<Vec<_>>(), "one order");
    assert_eq!(stock(&c, &shop.secret, &product, &variant).await, Some(8), "taken once");
    let events: Vec<String> = outbox(server, &shop.id).await.into_iter().map(|r| r.0).collect();
    assert_eq!(events, ["order.created"], "one event");
}

async fn a_rolled_back_checkout_leaves_no_trace(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, tee_product, tee) = shop_with_product(&c, 5, "10.00").await;
    let body = json!({"handle": "mug", "title": "Mug",
        "variants": [{"sku": "MUG", "price": "3.00", "inventory": 2}]});
    let mug = c.post("/api/v1/products", &shop.secret, body).await.expect(201).json();
    let mug_product = mug["product"]["id"].as_str().unwrap().to_owned();
    let mug = mug["product"]["variants"][0]["id"].as_str().unwrap().to_owned();
    let (rx, url) = Receiver::start(true).await;
    register_webhook(&c, &shop, &url, &[]).await;
    let token =
        new_cart(&c, &shop.publishable, &tee, 1).await["token"].as_str().unwrap().to_owned();
    c.post(
        &format!("/api/v1/carts/{token}/lines"),
        &shop.publishable,
        json!({"variant_id": mug, "quantity": 2}),
    )
    .await
    .expect(200);
    // The mug sells out after the cart was filled: the checkout closes the cart and
    // reserves the tee in its transaction, then finds the mug short and rolls back.
    c.patch(&format!("/api/v1/variants/{mug}"), &shop.secret, json!({"inventory": 1}))
        .await
        .expect(200);
    let refused = checkout(&c, &shop.publishable, &token, "k1", "ada@example.com").await;
    let e = refused.error(409, "out_of_stock", None);
    let details = e["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "only the mug is short: {e}");
    assert_eq!(details[0]["field"], json!("lines[1].quantity"), "{e}");
    assert!(details[0]["message"].as_str().unwrap().contains("1 available"), "{e}");
    // No trace: no order, no event, no stock taken, the cart still open.
    let orders = c.get("/api/v1/orders", &shop.secret).await.expect(200).json();
    assert_eq!(orders["orders"], json!([]), "{orders}");
    assert!(outbox(server, &shop.id).await.is_empty(), "no event for a rolled-back checkout");
    assert_eq!(stock(&c, &shop.secret, &tee_product, &tee).await, Some(5), "the tee is back");
    assert_eq!(stock(&c, &shop.secret, &mug_product, &mug).await, Some(1));
    let cart = c.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200).json();
    assert_eq!(cart["cart"]["status"], json!("open"), "{cart}");
    c.get(&format!("/api/v1/carts/{token}/order"), &shop.publishable).await.error(
        404,
        "not_found",
        None,
    );
    // With the stock back the same attempt (its key was released) makes the first order,
    // and exactly one event.
    c.patch(&format!("/api/v1/variants/{mug}"), &shop.secret, json!({"inventory": 4}))
        .await
        .expect(200);
    let order = checkout(&c, &shop.publishable, &token, "k1", "ada@example.com")
        .await
        .expect(201)
        .json()["order"]
        .clone();
    assert_eq!(order["number"], json!(1001), "the failed attempt used no number");
    assert_eq!(stock(&c, &shop.secret, &tee_product, &tee).await, Some(4));
    assert_eq!(stock(&c, &shop.secret, &mug_product, &mug).await, Some(2));
    let events: Vec<String> = outbox(server, &shop.id).await.into_iter().map(|r| r.0).collect();
    assert_eq!(events, ["order.created"]);
    eventually(Duration::from_secs(60), "order.created delivered", || async {
        rx.count("order.created") == 1
    })
    .await;
    let body: Value = serde_json::from_str(&rx.got()[0].body).unwrap();
    assert_eq!(body["data"]["order_id"], order["id"]);
}
