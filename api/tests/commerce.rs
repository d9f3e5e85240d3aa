//! Carts, discounts, checkout, payments and orders through HTTP, on SQLite and PostgreSQL:
//! totals from catalog prices, discount reasons, idempotent checkout, 200 simultaneous
//! checkouts of a variant with 10 in stock, usage limits under concurrency, price changes
//! between cart and checkout, the order state machine, Stripe (a local stand-in of its
//! API) with signed webhooks racing the browser's return, and outgoing webhooks that
//! survive a receiver being down.

#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::{Path as AxPath, State};
use axum::routing::{get, post};
use common::{Client, Db, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both!(
    totals_come_from_the_catalog,
    cart_limits_order_and_a_checked_out_cart,
    concurrent_adds_to_one_cart_all_count,
    adds_follow_catalog_changes_at_once,
    discount_codes_say_why_they_do_not_apply,
    checkout_is_idempotent_and_reports_changes,
    two_hundred_checkouts_for_ten_units,
    usage_limits_hold_under_concurrency,
    orders_follow_the_state_machine,
    stripe_webhook_and_return_mark_paid_once,
    outgoing_webhooks_survive_a_receiver_outage,
);

const SEALING_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// A shop without demo data and one product with `stock` units of one variant.
async fn shop_with_product(c: &Client, stock: i64, price: &str) -> (common::Shop, String, String) {
    let shop = c.provision(&unique("shop"), false).await;
    let product = c
        .post(
            "/api/v1/products",
            &shop.secret,
            json!({
                "handle": "tee", "title": "Tee",
                "variants": [{"sku": "TEE-1", "price": price, "inventory": stock, "weight": "200 g"}]
            }),
        )
        .await
        .expect(201)
        .json();
    let variant = product["product"]["variants"][0]["id"].as_str().unwrap().to_owned();
    let product_id = product["product"]["id"].as_str().unwrap().to_owned();
    c.put(
        "/api/v1/settings/checkout",
        &shop.secret,
        json!({
            "shipping_zones": [{"name": "EU", "countries": ["IE", "FR"], "rates": [
                {"id": "standard", "name": "Standard", "amount": 495, "free_over": 10000},
                {"id": "heavy", "name": "By weight", "amount": 1500,
                 "weight_tiers": [{"max_grams": 500, "amount": 700}, {"max_grams": 2000, "amount": 1100}]}
            ]}],
            "tax_rates": [{"country": "IE", "rate_bp": 2300}, {"country": "FR", "rate_bp": 2000}],
            "payment_providers": ["manual", "stripe"]
        }),
    )
    .await
    .expect(200);
    (shop, product_id, variant)
}

async fn new_cart(c: &Client, key: &str, variant: &str, quantity: i64) -> Value {
    c.post("/api/v1/carts", key, json!({"lines": [{"variant_id": variant, "quantity": quantity}]}))
        .await
        .expect(201)
        .json()["cart"]
        .clone()
}

fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "1 Quay Street", "city": "Galway", "postal_code": "H91", "country": "IE"})
}

async fn checkout(c: &Client, key: &str, token: &str, idem: &str, email: &str) -> common::Resp {
    c.send_with(
        Method::POST,
        &format!("/api/v1/carts/{token}/checkout"),
        Some(key),
        common::Payload::Json(json!({"email": email, "shipping_address": address()})),
        &[("Idempotency-Key", idem)],
    )
    .await
}

async fn totals_come_from_the_catalog(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 50, "19.99").await;
    let cart = new_cart(&c, &shop.publishable, &variant, 3).await;
    let token = cart["token"].as_str().unwrap();
    assert_eq!(token.len(), 32, "an unguessable token");
    assert_eq!(cart["totals"]["subtotal"], json!(5997));
    // Adding the same variant again merges the line.
    let cart = c
        .post(
            &format!("/api/v1/carts/{token}/lines"),
            &shop.publishable,
            json!({"variant_id": variant, "quantity": 2}),
        )
        .await
        .expect(200)
        .json()["cart"]
        .clone();
    assert_eq!(cart["lines"].as_array().unwrap().len(), 1);
    assert_eq!(cart["lines"][0]["quantity"], json!(5));
    // Destination: shipping options and tax (prices exclude tax in a new shop).
    let cart = c
        .patch(
            &format!("/api/v1/carts/{token}"),
            &shop.publishable,
            json!({"country": "ie", "shipping_rate": "heavy"}),
        )
        .await
        .expect(200)
        .json()["cart"]
        .clone();
    let t = &cart["totals"];
    // 5 × 200 g = 1000 g → the 2000 g tier: 11.00
    assert_eq!(t["shipping"], json!(1100), "{cart}");
    // tax 23 % of 99.95 = 22.9885 → 22.99, of 11.00 = 2.53
    assert_eq!(t["tax"], json!(2299 + 253), "{cart}");
    assert_eq!(t["total"], json!(9995 + 1100 + 2299 + 253));
    assert_eq!(t["tax_included"], json!(false));
    assert!(cart["breakdown"].as_array().unwrap().len() >= 4);
    // The standard rate is free over 100.00: 99.95 is not over.
    let options = cart["shipping_options"].as_array().unwrap();
    assert_eq!(options.iter().find(|o| o["id"] == "standard").unwrap()["amount"], json!(495));
    // Quantity limits and stock are checked; a client cannot set a price.
    c.patch(
        &format!("/api/v1/carts/{token}/lines/{variant}"),
        &shop.publishable,
        json!({"quantity": 51}),
    )
    .await
    .error(409, "out_of_stock", Some("quantity"));
    c.patch(
        &format!("/api/v1/carts/{token}/lines/{variant}"),
        &shop.publishable,
        json!({"quantity": 0, "price": 1}),
    )
    .await
    .error(422, "validation_failed", None);
    c.post(
        &format!("/api/v1/carts/{token}/lines"),
        &shop.publishable,
        json!({"variant_id": "var_nope", "quantity": 1}),
    )
    .await
    .error(422, "validation_failed", Some("variant_id"));
    // Another shop's key finds no such cart.
    let other = c.provision(&unique("other"), false).await;
    c.get(&format!("/api/v1/carts/{token}"), &other.publishable).await.error(
        404,
        "not_found",
        None,
    );
}

async fn discount_codes_say_why_they_do_not_apply(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 50, "20.00").await;
    for d in [
        json!({"code": "TENOFF", "kind": "percentage", "value": 1000}),
        json!({"code": "BIGSPEND", "kind": "fixed_amount", "value": 500, "min_subtotal": 10000}),
        json!({"code": "OLD", "kind": "percentage", "value": 500, "ends_at": "2020-01-01T00:00:00Z"}),
        json!({"code": "LATER", "kind": "percentage", "value": 500, "starts_at": "2999-01-01T00:00:00Z"}),
        json!({"code": "SHIPFREE", "kind": "free_shipping", "combinable": true}),
        json!({"code": "OTHERPRODUCT", "kind": "percentage", "value": 500, "products": ["mug"]}),
    ] {
        c.post("/api/v1/discounts", &shop.secret, d).await.expect(201);
    }
    c.post(
        "/api/v1/discounts",
        &shop.secret,
        json!({"code": "tenoff", "kind": "percentage", "value": 1}),
    )
    .await
    .error(409, "conflict", Some("code"));
    let cart = new_cart(&c, &shop.publishable, &variant, 2).await;
    let token = cart["token"].as_str().unwrap();
    let path = format!("/api/v1/carts/{token}/discounts");
    for (code, reason) in [
        ("NOPE", "unknown_code"),
        ("BIGSPEND", "minimum_not_met"),
        ("OLD", "expired"),
        ("LATER", "not_started"),
        ("OTHERPRODUCT", "no_eligible_products"),
    ] {
        let e = c.post(&path, &shop.publishable, json!({"code": code})).await.error(
            422,
            "discount_not_applicable",
            Some("code"),
        );
        assert_eq!(e["details"][0]["code"], json!(reason), "{code}: {e}");
    }
    let cart = c.post(&path, &shop.publishable, json!({"code": "tenoff"})).await.expect(200).json()
        ["cart"]
        .clone();
    assert_eq!(cart["totals"]["discount"], json!(400));
    // SHIPFREE combines, TENOFF does not: refused with a reason.
    let e = c.post(&path, &shop.publishable, json!({"code": "SHIPFREE"})).await.error(
        422,
        "discount_not_applicable",
        None,
    );
    assert_eq!(e["details"][0]["code"], json!("not_combinable"));
    c.delete(&format!("{path}/TENOFF"), &shop.publishable).await.expect(200);
    c.patch(&format!("/api/v1/carts/{token}"), &shop.publishable, json!({"country": "FR"}))
        .await
        .expect(200);
    let cart = c
        .post(&path, &shop.publishable, json!({"code": "SHIPFREE"}))
        .await
        .expect(200)
        .json()["cart"]
        .clone();
    assert_eq!(cart["totals"]["shipping"], json!(0), "{cart}");
    assert_eq!(cart["totals"]["shipping_discount"], json!(495), "{cart}");
}

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

/// A local stand-in for the parts of Stripe's API Aurelio calls.
#[derive(Default)]
struct FakeStripe {
    intents: Mutex<HashMap<String, (String, String)>>, // id → (order_id, status)
    refunds: Mutex<Vec<String>>,
    auth: Mutex<Vec<String>>,
}

async fn fake_stripe() -> (String, Arc<FakeStripe>) {
    let state = Arc::new(FakeStripe::default());
    async fn create(
        State(s): State<Arc<FakeStripe>>,
        headers: axum::http::HeaderMap,
        body: String,
    ) -> axum::Json<Value> {
        s.auth.lock().unwrap().push(
            headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
        );
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        let order = form.get("metadata[order_id]").cloned().unwrap_or_default();
        let key =
            headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let id = format!("pi_{}", &blake3::hash(key.as_bytes()).to_hex()[..12]);
        s.intents
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_insert((order, "requires_payment_method".into()));
        axum::Json(
            json!({"id": id, "client_secret": format!("{id}_secret_x"), "status": "requires_payment_method",
            "amount": form.get("amount").and_then(|a| a.parse::<i64>().ok())}),
        )
    }
    async fn read(
        State(s): State<Arc<FakeStripe>>,
        AxPath(id): AxPath<String>,
    ) -> axum::Json<Value> {
        let status =
            s.intents.lock().unwrap().get(&id).map(|(_, st)| st.clone()).unwrap_or_default();
        axum::Json(json!({"id": id, "status": status}))
    }
    async fn refund(State(s): State<Arc<FakeStripe>>, body: String) -> axum::Json<Value> {
        s.refunds.lock().unwrap().push(body);
        axum::Json(json!({"id": "re_1", "status": "succeeded"}))
    }
    let app = axum::Router::new()
        .route("/v1/payment_intents", post(create))
        .route("/v1/payment_intents/{id}", get(read))
        .route("/v1/refunds", post(refund))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

fn signed(secret: &str, body: &str, at: i64) -> String {
    aurelio_api::crypto::sign(secret.as_bytes(), at, body.as_bytes())
}

async fn stripe_webhook_and_return_mark_paid_once(db: Db) {
    // Stripe's API base is the platform's configuration (never a shop's).
    let (stripe, fake) = fake_stripe().await;
    let server = Server::start(db, |c| {
        c.secret_key = Some(SEALING_KEY.into());
        c.stripe_api_base = Some(stripe.clone());
    });
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 10, "42.00").await;
    let whsec = "whsec_test_5ecret";
    let status = c
        .put(
            "/api/v1/payments/stripe",
            &shop.secret,
            json!({"secret_key": "sk_test_abc", "webhook_secret": whsec}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(status["configured"], json!(true));
    assert!(!status.to_string().contains("sk_test_abc"), "secrets are never shown: {status}");
    // Stored sealed: the secret is not in the shop's database in clear.
    if db == Db::Sqlite {
        let raw = std::fs::read(server.sqlite_file(&shop.id)).unwrap();
        let wal = std::fs::read(server.sqlite_file(&shop.id).with_extension("db-wal"))
            .unwrap_or_default();
        for bytes in [raw, wal] {
            assert!(
                !bytes.windows(11).any(|w| w == b"sk_test_abc"),
                "the Stripe key is stored in clear"
            );
        }
    }
    let token =
        new_cart(&c, &shop.publishable, &variant, 1).await["token"].as_str().unwrap().to_owned();
    let order = c
        .send_with(
            Method::POST,
            &format!("/api/v1/carts/{token}/checkout"),
            Some(&shop.publishable),
            common::Payload::Json(json!({"email": "ada@example.com", "shipping_address": address(), "payment_provider": "stripe"})),
            &[("Idempotency-Key", "s1")],
        )
        .await
        .expect(201)
        .json()["order"]
        .clone();
    let intent = order["payment"]["external_id"].as_str().unwrap().to_owned();
    assert!(order["payment"]["client_secret"].as_str().unwrap().starts_with(&intent));
    assert_eq!(order["status"], json!("pending"));
    assert_eq!(fake.auth.lock().unwrap()[0], "Bearer sk_test_abc");
    let order_id = order["id"].as_str().unwrap().to_owned();
    let hook = format!("/api/v1/payments/stripe/webhook/{}", shop.id);
    let event = json!({"id": "evt_1", "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent, "object": "payment_intent", "metadata": {"order_id": order_id}}}})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let send = |sig: String, body: String| {
        let c = c.clone();
        let hook = hook.clone();
        async move {
            c.send_with(
                Method::POST,
                &hook,
                None,
                common::Payload::Raw("application/json".into(), body.into_bytes()),
                &[("Stripe-Signature", &sig)],
            )
            .await
        }
    };
    // Bad signatures, an old timestamp: refused, nothing changes.
    send(signed("whsec_wrong", &event, now), event.clone()).await.error(
        400,
        "invalid_signature",
        None,
    );
    send(signed(whsec, &event, now - 3600), event.clone()).await.error(
        400,
        "invalid_signature",
        None,
    );
    send("t=1".into(), event.clone()).await.error(400, "invalid_signature", None);
    let tampered = event.replace("evt_1", "evt_2");
    send(signed(whsec, &event, now), tampered).await.error(400, "invalid_signature", None);
    assert_eq!(
        c.get(&format!("/api/v1/orders/{order_id}"), &shop.secret).await.json()["order"]["status"],
        json!("pending")
    );
    // The browser's return and the webhook race: the order is paid once, one event.
    fake.intents.lock().unwrap().get_mut(&intent).unwrap().1 = "succeeded".into();
    let confirm = format!("/api/v1/carts/{token}/payment/confirm");
    let (ret, hooked) = tokio::join!(
        c.post(&confirm, &shop.publishable, json!({})),
        send(signed(whsec, &event, now), event.clone())
    );
    ret.expect(200);
    hooked.expect(200);
    let replay = send(signed(whsec, &event, now), event.clone()).await.expect(200).json();
    assert_eq!(replay["duplicate"], json!(true));
    let paid = c.get(&format!("/api/v1/orders/{order_id}"), &shop.secret).await.expect(200).json();
    assert_eq!(paid["order"]["status"], json!("paid"));
    assert_eq!(paid["order"]["payment"]["status"], json!("succeeded"));
    // Refunds go through the provider.
    c.post(&format!("/api/v1/orders/{order_id}/refund"), &shop.secret, json!({"amount": 500}))
        .await
        .expect(200);
    assert!(fake.refunds.lock().unwrap()[0].contains("amount=500"));
    // The shop's id in the path with another shop's secret fails verification.
    let other = c.provision(&unique("other"), false).await;
    let other_hook = format!("/api/v1/payments/stripe/webhook/{}", other.id);
    c.send_with(
        Method::POST,
        &other_hook,
        None,
        common::Payload::Raw("application/json".into(), event.clone().into_bytes()),
        &[("Stripe-Signature", &signed(whsec, &event, now))],
    )
    .await
    .error(404, "not_found", None);
}

/// A receiver that records deliveries and can be switched off.
#[derive(Default)]
struct Receiver {
    up: std::sync::atomic::AtomicBool,
    got: Mutex<Vec<(String, String, String)>>, // (event id, signature, body)
}

async fn outgoing_webhooks_survive_a_receiver_outage(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let rx = Arc::new(Receiver::default());
    async fn receive(
        State(r): State<Arc<Receiver>>,
        headers: axum::http::HeaderMap,
        body: String,
    ) -> axum::http::StatusCode {
        if !r.up.load(std::sync::atomic::Ordering::SeqCst) {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
        }
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        r.got.lock().unwrap().push((h("aurelio-event-id"), h("aurelio-signature"), body));
        axum::http::StatusCode::OK
    }
    let app = axum::Router::new().route("/hook", post(receive)).with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (shop, _, variant) = shop_with_product(&c, 10, "9.00").await;
    let endpoint = c
        .post("/api/v1/webhooks", &shop.secret, json!({"url": format!("http://{addr}/hook"), "events": ["order.created", "order.paid"]}))
        .await
        .expect(201)
        .json();
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    // The receiver is down when the order is placed.
    let token =
        new_cart(&c, &shop.publishable, &variant, 1).await["token"].as_str().unwrap().to_owned();
    let order = checkout(&c, &shop.publishable, &token, "w1", "ada@example.com")
        .await
        .expect(201)
        .json()["order"]
        .clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.got.lock().unwrap().is_empty());
    rx.up.store(true, std::sync::atomic::Ordering::SeqCst);
    c.post(
        &format!("/api/v1/orders/{}/mark-paid", order["id"].as_str().unwrap()),
        &shop.secret,
        json!({}),
    )
    .await
    .expect(200);
    // Both events arrive (the first after its backoff), signed, each once.
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.got.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = rx.got.lock().unwrap().clone();
    let kinds: Vec<String> = got
        .iter()
        .map(|(_, _, b)| {
            serde_json::from_str::<Value>(b).unwrap()["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(got.len(), 2, "{kinds:?}");
    assert!(
        kinds.contains(&"order.created".to_owned()) && kinds.contains(&"order.paid".to_owned()),
        "{kinds:?}"
    );
    let now = chrono::Utc::now().timestamp();
    for (id, sig, body) in &got {
        assert!(id.starts_with("msg_"));
        assert_eq!(
            aurelio_api::crypto::verify(secret.as_bytes(), sig, body.as_bytes(), now, 300),
            Ok(()),
            "{sig}"
        );
        assert_eq!(serde_json::from_str::<Value>(body).unwrap()["data"]["order_id"], order["id"]);
    }
}

async fn concurrent_adds_to_one_cart_all_count(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 1000, "1.00").await;
    let cart = c.post("/api/v1/carts", &shop.publishable, json!({})).await.expect(201).json();
    let token = cart["cart"]["token"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/carts/{token}/lines");
    let answers = futures::future::join_all((0..40).map(|_| {
        let c = c.clone();
        let key = shop.publishable.clone();
        let path = path.clone();
        let variant = variant.clone();
        async move { c.post(&path, &key, json!({"variant_id": variant, "quantity": 1})).await }
    }))
    .await;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let cart = c.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200).json();
    assert_eq!(cart["cart"]["lines"].as_array().unwrap().len(), 1, "{cart}");
    assert_eq!(cart["cart"]["lines"][0]["quantity"], json!(40), "every add counted once");
    assert_eq!(cart["cart"]["totals"]["subtotal"], json!(4000));
}

/// What an add answers follows the catalog at once, also for the cart's other lines: a new
/// price, less stock, a deleted product (SQLite's writer thread remembers the variants it
/// read and must forget them when the catalog changes).
async fn adds_follow_catalog_changes_at_once(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, tee) = shop_with_product(&c, 5, "10.00").await;
    let body = json!({"handle": "mug", "title": "Mug",
        "variants": [{"sku": "MUG", "price": "3.00", "inventory": 100}]});
    let mug = c.post("/api/v1/products", &shop.secret, body).await.expect(201).json();
    let (mug_product, mug) = (&mug["product"]["id"], &mug["product"]["variants"][0]["id"]);
    let (mug_product, mug) = (mug_product.as_str().unwrap(), mug.as_str().unwrap());
    let cart = new_cart(&c, &shop.publishable, &tee, 1).await;
    let lines = format!("/api/v1/carts/{}/lines", cart["token"].as_str().unwrap());
    let add = |variant: &str| {
        c.post(&lines, &shop.publishable, json!({"variant_id": variant, "quantity": 1}))
    };
    let cart = add(mug).await.expect(200).json();
    assert_eq!(cart["cart"]["totals"]["subtotal"], json!(1000 + 300), "{cart}");

    c.patch(&format!("/api/v1/variants/{tee}"), &shop.secret, json!({"price": 1250}))
        .await
        .expect(200);
    let cart = add(mug).await.expect(200).json();
    let tee_line = &cart["cart"]["lines"][0];
    assert_eq!(tee_line["unit_price"], json!(1250), "{cart}");
    assert_eq!(tee_line["previous_unit_price"], json!(1000), "{cart}");
    assert_eq!(cart["cart"]["totals"]["subtotal"], json!(1250 + 600), "{cart}");

    c.patch(&format!("/api/v1/variants/{tee}"), &shop.secret, json!({"inventory": 1}))
        .await
        .expect(200);
    let e = add(&tee).await.error(409, "out_of_stock", Some("quantity"));
    assert_eq!(e["details"][0]["message"], json!("1"), "{e}");

    c.delete(&format!("/api/v1/products/{mug_product}"), &shop.secret).await.expect(204);
    add(mug).await.error(422, "validation_failed", Some("variant_id"));
    c.patch(&format!("/api/v1/variants/{tee}"), &shop.secret, json!({"inventory": 10}))
        .await
        .expect(200);
    let cart = add(&tee).await.expect(200).json();
    assert_eq!(cart["cart"]["totals"]["subtotal"], json!(2 * 1250), "the mug is gone: {cart}");
    // The gone line can still be removed; removing it again changes nothing.
    for _ in 0..2 {
        let cart = c.delete(&format!("{lines}/{mug}"), &shop.publishable).await.expect(200).json();
        let left: Vec<&Value> = cart["cart"]["lines"].as_array().unwrap().iter().collect();
        assert_eq!(left.len(), 1, "{cart}");
        assert_eq!(left[0]["variant_id"], json!(tee), "{cart}");
    }
}

async fn cart_limits_order_and_a_checked_out_cart(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, tee) = shop_with_product(&c, 100, "5.00").await;
    let variant = |handle: &'static str, status: &'static str| {
        let c = c.clone();
        let secret = shop.secret.clone();
        async move {
            let body = json!({"handle": handle, "title": handle, "status": status,
                "variants": [{"sku": handle.to_uppercase(), "price": "3.00", "inventory": 100}]});
            let p = c.post("/api/v1/products", &secret, body).await.expect(201).json();
            p["product"]["variants"][0]["id"].as_str().unwrap().to_owned()
        }
    };
    let mug = variant("mug", "active").await;
    let cap = variant("cap", "active").await;
    let draft = variant("secret", "draft").await;
    let mut settings = c.get("/api/v1/settings/checkout", &shop.secret).await.expect(200).json();
    settings["max_quantity"] = json!(5);
    settings["max_lines"] = json!(2);
    settings["tax_rates"]
        .as_array_mut()
        .unwrap()
        .push(json!({"country": "FR", "region": "COR", "rate_bp": 1000}));
    c.put("/api/v1/settings/checkout", &shop.secret, settings).await.expect(200);

    let cart = new_cart(&c, &shop.publishable, &tee, 1).await;
    let token = cart["token"].as_str().unwrap().to_owned();
    let lines = format!("/api/v1/carts/{token}/lines");
    let add = |variant: &str, quantity: i64| {
        c.post(&lines, &shop.publishable, json!({"variant_id": variant, "quantity": quantity}))
    };
    let handles = |cart: &Value| -> Vec<(String, i64)> {
        cart["cart"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (l["product_handle"].as_str().unwrap().to_owned(), l["quantity"].as_i64().unwrap())
            })
            .collect()
    };
    let cart = add(&mug, 2).await.expect(200).json();
    assert_eq!(handles(&cart), [("tee".into(), 1), ("mug".into(), 2)]);
    assert_eq!(cart["cart"]["totals"]["subtotal"], json!(500 + 600));
    // Limits: a third line, a sixth unit, a product not for sale; nothing changes.
    add(&cap, 1).await.error(422, "validation_failed", Some("variant_id"));
    add(&tee, 5).await.error(422, "validation_failed", Some("quantity"));
    add(&draft, 1).await.error(422, "validation_failed", Some("variant_id"));
    // Setting a quantity keeps the line's place; 0 removes it; a line added again goes last.
    let set = |variant: &str, quantity: i64| {
        let path = format!("{lines}/{variant}");
        let c = c.clone();
        let key = shop.publishable.clone();
        async move { c.patch(&path, &key, json!({"quantity": quantity})).await }
    };
    assert_eq!(
        handles(&set(&tee, 4).await.expect(200).json()),
        [("tee".into(), 4), ("mug".into(), 2)]
    );
    assert_eq!(handles(&set(&tee, 0).await.expect(200).json()), [("mug".into(), 2)]);
    let added = add(&cap, 1).await.expect(200).json();
    assert_eq!(handles(&added), [("mug".into(), 2), ("cap".into(), 1)]);
    add(&tee, 1).await.error(422, "validation_failed", Some("variant_id"));
    let shown =
        c.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200).json();
    assert_eq!(
        handles(&shown),
        [("mug".into(), 2), ("cap".into(), 1)],
        "what the adds answered is stored"
    );
    assert_eq!(shown["cart"]["totals"], added["cart"]["totals"]);
    assert_eq!(shown["cart"]["totals"]["subtotal"], json!(600 + 300));

    // A region belongs to its country: `null` clears it, and so does a move to another
    // country; the tax rate follows.
    let details = |body: Value| {
        let c = c.clone();
        let key = shop.publishable.clone();
        let path = format!("/api/v1/carts/{token}");
        async move { c.patch(&path, &key, body).await.expect(200).json()["cart"].clone() }
    };
    let cart = details(json!({"country": "FR", "region": "COR", "shipping_rate": "heavy"})).await;
    assert_eq!((cart["region"].clone(), cart["tax_rate_bp"].clone()), (json!("COR"), json!(1000)));
    assert_eq!(cart["shipping_rate"], json!("heavy"));
    let cart = details(json!({"region": null, "shipping_rate": null})).await;
    assert_eq!((cart["region"].clone(), cart["tax_rate_bp"].clone()), (json!(null), json!(2000)));
    assert_eq!(cart["shipping_rate"], json!("standard"), "back to the first option");
    details(json!({"region": "COR"})).await;
    let cart = details(json!({"country": "IE"})).await;
    assert_eq!((cart["region"].clone(), cart["tax_rate_bp"].clone()), (json!(null), json!(2300)));
    let cart = details(json!({"country": "IE", "region": "  "})).await;
    assert_eq!(cart["region"], json!(null), "a blank region is none");

    // Once checked out, no change of any kind reaches the cart.
    checkout(&c, &shop.publishable, &token, "done", "ada@example.com").await.expect(201);
    add(&mug, 1).await.error(409, "cart_completed", None);
    set(&mug, 1).await.error(409, "cart_completed", None);
    c.delete(&format!("{lines}/{mug}"), &shop.publishable).await.error(409, "cart_completed", None);
    c.patch(
        &format!("/api/v1/carts/{token}"),
        &shop.publishable,
        json!({"email": "eve@example.com"}),
    )
    .await
    .error(409, "cart_completed", None);
    c.post(&format!("/api/v1/carts/{token}/discounts"), &shop.publishable, json!({"code": "X"}))
        .await
        .error(409, "cart_completed", None);
    let after =
        c.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200).json();
    assert_eq!(handles(&after), handles(&shown));
    assert_eq!(after["cart"]["email"], json!("ada@example.com"));
    assert_eq!(after["cart"]["status"], json!("completed"));
}
