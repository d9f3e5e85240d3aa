//! Checkout and orders through HTTP, on SQLite and PostgreSQL: idempotent checkout that
//! reports what changed, 200 simultaneous checkouts of a variant with 10 in stock, usage
//! limits under concurrency, and the order state machine.

#![allow(clippy::unwrap_used)]

mod common;

use common::shop::{address, checkout, new_cart, shop_with_product};
use common::{Client, Db, Server};
use serde_json::{Value, json};
use std::time::Instant;

both!(
    checkout_is_idempotent_and_reports_changes,
    two_hundred_checkouts_for_ten_units,
    usage_limits_hold_under_concurrency,
    orders_follow_the_state_machine,
);

async fn checkout_is_idempotent_and_reports_changes(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 5, "10.00").await;
    let cart = new_cart(&c, &shop.publishable, &variant, 2).await;
    let token = cart["token"].as_str().unwrap().to_owned();
    // The price changes after the cart was built: the answer says exactly what changed.
    c.patch(&format!("/api/v1/variants/{variant}"), &shop.secret, json!({"price": 1250}))
        .await
        .expect(200);
    let e = checkout(&c, &shop.publishable, &token, "attempt-1", "ada@example.com").await;
    let err = e.error(409, "cart_changed", None);
    assert_eq!(err["details"][0]["code"], json!("price_changed"), "{err}");
    assert_eq!(err["details"][0]["field"], json!("lines[0].unit_price"));
    assert!(err["details"][0]["message"].as_str().unwrap().contains("10.00 → 12.50 EUR"), "{err}");
    // Nothing was written: stock unchanged, no order.
    let product = c.get("/api/v1/products?limit=1", &shop.secret).await.expect(200).json();
    assert_eq!(product["products"][0]["variants"][0]["inventory"], json!(5));
    assert_eq!(c.get("/api/v1/orders", &shop.secret).await.expect(200).json()["orders"], json!([]));
    // Missing key, bad email, bad address: clear errors.
    c.post(
        &format!("/api/v1/carts/{token}/checkout"),
        &shop.publishable,
        json!({"email": "a@b.co", "shipping_address": address()}),
    )
    .await
    .error(400, "bad_request", Some("Idempotency-Key"));
    checkout(&c, &shop.publishable, &token, "attempt-2", "not-an-email").await.error(
        422,
        "validation_failed",
        Some("email"),
    );
    // Having seen the new price, the shopper retries: one order.
    let first = checkout(&c, &shop.publishable, &token, "attempt-3", "ada@example.com")
        .await
        .expect(201)
        .json();
    let order = &first["order"];
    assert_eq!(order["total"], json!(2500 + 495 + 575 + 114), "{order}");
    assert_eq!(order["number"], json!(1001));
    // The same key returns the same order; the cart cannot make a second one.
    let again = checkout(&c, &shop.publishable, &token, "attempt-3", "ada@example.com")
        .await
        .expect(201)
        .json();
    assert_eq!(again["order"]["id"], order["id"]);
    checkout(&c, &shop.publishable, &token, "attempt-3", "eve@example.com").await.error(
        422,
        "idempotency_key_reused",
        None,
    );
    checkout(&c, &shop.publishable, &token, "attempt-4", "ada@example.com").await.error(
        409,
        "cart_completed",
        None,
    );
    let orders = c.get("/api/v1/orders", &shop.secret).await.expect(200).json();
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1);
    let product = c.get("/api/v1/products?limit=1", &shop.secret).await.expect(200).json();
    assert_eq!(product["products"][0]["variants"][0]["inventory"], json!(3));
    // The confirmation page reads the order with the cart token.
    let mine =
        c.get(&format!("/api/v1/carts/{token}/order"), &shop.publishable).await.expect(200).json();
    assert_eq!(mine["order"]["id"], order["id"]);
}

async fn two_hundred_checkouts_for_ten_units(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 10, "5.00").await;
    let mut tokens = Vec::new();
    for _ in 0..200 {
        tokens.push(
            new_cart(&c, &shop.publishable, &variant, 1).await["token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let started = Instant::now();
    let answers = futures::future::join_all(tokens.iter().enumerate().map(|(i, token)| {
        let c = c.clone();
        let key = shop.publishable.clone();
        async move {
            checkout(&c, &key, token, &format!("k{i}"), &format!("buyer{i}@example.com")).await
        }
    }))
    .await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let out = answers
        .iter()
        .filter(|a| a.status == 409 && a.json()["error"]["code"] == json!("out_of_stock"))
        .count();
    let other: Vec<String> = answers
        .iter()
        .filter(|a| a.status != 201 && a.status != 409)
        .map(|a| format!("{} {}", a.status, a.text()))
        .collect();
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!((created, out), (10, 190), "after {:?}", started.elapsed());
    let product = c.get("/api/v1/products?limit=1", &shop.secret).await.expect(200).json();
    assert_eq!(product["products"][0]["variants"][0]["inventory"], json!(0));
    let orders = c.get("/api/v1/orders?limit=250", &shop.secret).await.expect(200).json();
    let numbers: std::collections::BTreeSet<i64> = orders["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1001..=1010).collect(), "ten orders, numbered without gaps");
    // An out-of-stock answer says what is available.
    let refused = answers.iter().find(|a| a.status == 409).unwrap().json();
    assert!(
        refused["error"]["details"][0]["message"].as_str().unwrap().contains("0 available"),
        "{refused}"
    );
}

async fn usage_limits_hold_under_concurrency(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 1000, "5.00").await;
    c.post(
        "/api/v1/discounts",
        &shop.secret,
        json!({"code": "FIRST5", "kind": "fixed_amount", "value": 100, "usage_limit": 5}),
    )
    .await
    .expect(201);
    c.post(
        "/api/v1/discounts",
        &shop.secret,
        json!({"code": "ONCE", "kind": "fixed_amount", "value": 50, "once_per_customer": true}),
    )
    .await
    .expect(201);
    let mut tokens = Vec::new();
    for _ in 0..30 {
        let token = new_cart(&c, &shop.publishable, &variant, 1).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        c.post(
            &format!("/api/v1/carts/{token}/discounts"),
            &shop.publishable,
            json!({"code": "FIRST5"}),
        )
        .await
        .expect(200);
        tokens.push(token);
    }
    let answers = futures::future::join_all(tokens.iter().enumerate().map(|(i, token)| {
        let c = c.clone();
        let key = shop.publishable.clone();
        async move {
            checkout(&c, &key, token, "same-key-different-carts", &format!("b{i}@example.com"))
                .await
        }
    }))
    .await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused: Vec<Value> =
        answers.iter().filter(|a| a.status == 409).map(common::Resp::json).collect();
    assert_eq!(created, 5, "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    assert_eq!(refused.len(), 25);
    // Refused either at the final conditional count (`discount_not_applicable`) or, when
    // the limit was already reached as the request started, as a change to review.
    for r in &refused {
        let code = r["error"]["code"].as_str().unwrap();
        match code {
            "discount_not_applicable" => {
                assert_eq!(r["error"]["details"][0]["code"], json!("usage_limit_reached"), "{r}");
            }
            "cart_changed" => assert!(r["error"]["details"].to_string().contains("used up"), "{r}"),
            other => panic!("unexpected refusal {other}: {r}"),
        }
    }
    let d = c.get("/api/v1/discounts/FIRST5", &shop.secret).await.expect(200).json();
    assert_eq!(d["usage_count"], json!(5));
    // Once per customer: the same email cannot use ONCE twice.
    for (n, expect) in [(1, 201), (2, 409)] {
        let token = new_cart(&c, &shop.publishable, &variant, 1).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let applied = c
            .post(
                &format!("/api/v1/carts/{token}/discounts"),
                &shop.publishable,
                json!({"code": "ONCE"}),
            )
            .await;
        if expect == 201 {
            applied.expect(200);
            checkout(&c, &shop.publishable, &token, &format!("once{n}"), "Same@Example.com")
                .await
                .expect(201);
        } else {
            applied.expect(200); // the cart has no email yet: checked at checkout
            let e =
                checkout(&c, &shop.publishable, &token, &format!("once{n}"), "same@example.com ")
                    .await;
            let err = e.error(409, "cart_changed", None);
            assert!(err["details"].to_string().contains("already used"), "{err}");
        }
    }
}

async fn orders_follow_the_state_machine(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 10, "30.00").await;
    let token =
        new_cart(&c, &shop.publishable, &variant, 4).await["token"].as_str().unwrap().to_owned();
    let order = checkout(&c, &shop.publishable, &token, "k", "ada@example.com")
        .await
        .expect(201)
        .json()["order"]
        .clone();
    let id = order["id"].as_str().unwrap();
    let stock = |c: Client, key: String| async move {
        c.get("/api/v1/products?limit=1", &key).await.expect(200).json()["products"][0]["variants"]
            [0]["inventory"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(stock(c.clone(), shop.secret.clone()).await, 6);
    let path = |action: &str| format!("/api/v1/orders/{id}/{action}");
    c.post(&path("fulfil"), &shop.secret, json!({})).await.error(409, "invalid_transition", None);
    c.post(&path("refund"), &shop.secret, json!({})).await.error(409, "invalid_transition", None);
    let paid = c.post(&path("mark-paid"), &shop.secret, json!({})).await.expect(200).json();
    assert_eq!(paid["order"]["status"], json!("paid"));
    // Marking paid again changes nothing.
    c.post(&path("mark-paid"), &shop.secret, json!({})).await.expect(200);
    let refunded =
        c.post(&path("refund"), &shop.secret, json!({"amount": 1000})).await.expect(200).json();
    assert_eq!(refunded["order"]["status"], json!("partially_refunded"));
    assert_eq!(refunded["order"]["refunded"], json!(1000));
    let total = refunded["order"]["total"].as_i64().unwrap();
    c.post(&path("refund"), &shop.secret, json!({"amount": total})).await.error(
        422,
        "validation_failed",
        Some("amount"),
    );
    c.post(&path("cancel"), &shop.secret, json!({})).await.error(409, "invalid_transition", None);
    let done = c.post(&path("refund"), &shop.secret, json!({})).await.expect(200).json();
    assert_eq!(done["order"]["status"], json!("refunded"));
    assert_eq!(done["order"]["refunded"], json!(total));
    // Cancelling a pending order puts its units back.
    let token =
        new_cart(&c, &shop.publishable, &variant, 3).await["token"].as_str().unwrap().to_owned();
    let second = checkout(&c, &shop.publishable, &token, "k2", "bob@example.com")
        .await
        .expect(201)
        .json()["order"]
        .clone();
    assert_eq!(stock(c.clone(), shop.secret.clone()).await, 3);
    let cancelled = c
        .post(
            &format!("/api/v1/orders/{}/cancel", second["id"].as_str().unwrap()),
            &shop.secret,
            json!({}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(cancelled["order"]["status"], json!("cancelled"));
    assert_eq!(stock(c.clone(), shop.secret.clone()).await, 6);
    // A viewer key reads orders but cannot change them; a publishable key cannot read them.
    let viewer =
        c.post("/api/v1/keys", &shop.secret, json!({"role": "viewer"})).await.expect(201).json();
    let viewer = viewer["key"].as_str().unwrap();
    c.get(&format!("/api/v1/orders/{id}"), viewer).await.expect(200);
    c.post(&path("fulfil"), viewer, json!({})).await.error(403, "forbidden", None);
    c.get(&format!("/api/v1/orders/{id}"), &shop.publishable).await.error(403, "forbidden", None);
}
