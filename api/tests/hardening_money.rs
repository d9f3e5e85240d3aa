//! The money and stock path under attack, through HTTP on SQLite and PostgreSQL: the
//! quantity overflow that froze a shop with one publishable-key request, hostile
//! quantities and prices, two refunds racing for the same money, a once-per-customer code
//! used again (with a `+tag` alias, and inside PostgreSQL's checkout transaction).
//! After each attack the shop must still list, build and check out.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Db, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};

both!(
    quantity_overflow_is_refused_and_the_shop_keeps_selling,
    hostile_quantities_and_prices_get_clear_errors,
    racing_refunds_never_pass_the_total,
    once_per_customer_holds_for_aliases_and_inside_checkout,
);

/// A shop with one product of `stock` units at `price`, shipping to Ireland.
async fn shop(c: &Client, stock: i64, price: &str) -> (common::Shop, String) {
    let shop = c.provision(&unique("money"), false).await;
    let product = c
        .post(
            "/api/v1/products",
            &shop.secret,
            json!({"handle": "tee", "title": "Tee",
                   "variants": [{"sku": "TEE-1", "price": price, "inventory": stock}]}),
        )
        .await
        .expect(201)
        .json();
    let variant = product["product"]["variants"][0]["id"].as_str().unwrap().to_owned();
    c.put(
        "/api/v1/settings/checkout",
        &shop.secret,
        json!({"shipping_zones": [{"name": "EU", "countries": ["IE"],
                "rates": [{"id": "standard", "name": "Standard", "amount": 495}]}],
               "payment_providers": ["manual"]}),
    )
    .await
    .expect(200);
    (shop, variant)
}

async fn cart(c: &Client, key: &str, variant: &str, quantity: i64) -> String {
    let body = json!({"lines": [{"variant_id": variant, "quantity": quantity}]});
    let cart = c.post("/api/v1/carts", key, body).await.expect(201).json();
    cart["cart"]["token"].as_str().unwrap().to_owned()
}

async fn checkout(c: &Client, key: &str, token: &str, email: &str) -> common::Resp {
    let address =
        json!({"name": "Ada", "line1": "1 Quay Street", "city": "Galway", "country": "IE"});
    c.send_with(
        Method::POST,
        &format!("/api/v1/carts/{token}/checkout"),
        Some(key),
        common::Payload::Json(json!({"email": email, "shipping_address": address})),
        &[("Idempotency-Key", &unique("idem"))],
    )
    .await
}

/// The shop still works: its products list, a build succeeds, a shopper checks out with a
/// positive total, and stock is a whole number that went down.
async fn still_sells(c: &Client, shop: &common::Shop, variant: &str) {
    let products = c.get("/api/v1/products", &shop.publishable).await.expect(200).json();
    let stock_before = products["products"][0]["variants"][0]["inventory"].as_i64();
    let stock_before = stock_before.unwrap_or_else(|| panic!("whole-number stock: {products}"));
    let build = c.post("/api/v1/builds", &shop.secret, json!({})).await.expect(202).json();
    let id = build["build_id"].as_str().unwrap().to_owned();
    let done = c.wait_build(&shop.secret, &id).await;
    assert_eq!(done["status"], json!("succeeded"), "{done}");
    let token = cart(c, &shop.publishable, variant, 1).await;
    let order = checkout(c, &shop.publishable, &token, "ada@example.com").await.expect(201).json();
    assert!(order["order"]["total"].as_i64().unwrap() > 0, "{order}");
    let products = c.get("/api/v1/products", &shop.publishable).await.expect(200).json();
    assert_eq!(products["products"][0]["variants"][0]["inventory"], json!(stock_before - 1));
}

async fn quantity_overflow_is_refused_and_the_shop_keeps_selling(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, variant) = shop(&c, 50, "19.99").await;
    let token = cart(&c, &shop.publishable, &variant, 1).await;
    let lines = format!("/api/v1/carts/{token}/lines");
    // The exploit: i64::MAX more of a variant already in the cart (current + quantity wraps).
    for quantity in [i64::MAX, i64::MAX - 1, 1 << 62] {
        let body = json!({"variant_id": variant, "quantity": quantity});
        c.post(&lines, &shop.publishable, body).await.error(
            422,
            "validation_failed",
            Some("quantity"),
        );
    }
    // Setting the line directly, and a number past i64.
    let line = format!("/api/v1/carts/{token}/lines/{variant}");
    let body = json!({"quantity": i64::MAX});
    c.patch(&line, &shop.publishable, body).await.error(422, "validation_failed", Some("quantity"));
    let raw = format!(r#"{{"variant_id": "{variant}", "quantity": 99999999999999999999999}}"#);
    let resp = c
        .send_with(
            Method::POST,
            &lines,
            Some(&shop.publishable),
            common::Payload::Raw("application/json".into(), raw.into_bytes()),
            &[],
        )
        .await;
    assert_eq!(resp.status, 422, "{}", resp.text());
    // The cart is as it was: one line of 1, a positive total.
    let cart = c.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200).json();
    assert_eq!(cart["cart"]["lines"][0]["quantity"], json!(1), "{cart}");
    assert_eq!(cart["cart"]["totals"]["subtotal"], json!(1999));
    let order = checkout(&c, &shop.publishable, &token, "eve@example.com").await.expect(201).json();
    assert_eq!(order["order"]["subtotal"], json!(1999), "{order}");
    still_sells(&c, &shop, &variant).await;
}

async fn hostile_quantities_and_prices_get_clear_errors(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, variant) = shop(&c, 1_000_000_000, "50000000000000.00").await;
    let token = cart(&c, &shop.publishable, &variant, 1).await;
    let lines = format!("/api/v1/carts/{token}/lines");
    for quantity in [-1, 0, i64::MIN, 10_001] {
        let body = json!({"variant_id": variant, "quantity": quantity});
        c.post(&lines, &shop.publishable, body).await.error(
            422,
            "validation_failed",
            Some("quantity"),
        );
    }
    // A price of 5 × 10^15 minor units, twice: the subtotal would pass 2^53 − 1.
    let body = json!({"variant_id": variant, "quantity": 1});
    c.post(&lines, &shop.publishable, body).await.error(422, "amount_too_large", Some("quantity"));
    // Prices and stock beyond the bounds are refused where they are written.
    let too_dear = json!({"handle": "dear", "title": "Dear",
        "variants": [{"sku": "DEAR", "price": "90071992547409.92", "inventory": 1}]});
    let e = c.post("/api/v1/products", &shop.secret, too_dear).await.error(
        422,
        "validation_failed",
        None,
    );
    assert_eq!(e["field"], json!("variants[0].price"), "{e}");
    let too_many = json!({"handle": "many", "title": "Many",
        "variants": [{"sku": "MANY", "price": "1.00", "inventory": 1_000_000_001_i64}]});
    let e = c.post("/api/v1/products", &shop.secret, too_many).await.error(
        422,
        "validation_failed",
        None,
    );
    assert_eq!(e["field"], json!("variants[0].inventory"), "{e}");
    let products = c.get("/api/v1/products", &shop.secret).await.expect(200).json();
    let variant_id = products["products"][0]["variants"][0]["id"].as_str().unwrap().to_owned();
    let patch = json!({"inventory": i64::MAX});
    c.patch(&format!("/api/v1/variants/{variant_id}"), &shop.secret, patch).await.error(
        422,
        "validation_failed",
        Some("variants[0].inventory"),
    );
    // Shipping amounts and discounts past the largest amount.
    let settings = json!({"shipping_zones": [{"name": "EU", "countries": ["IE"],
        "rates": [{"id": "x", "name": "X", "amount": i64::MAX}]}]});
    c.put("/api/v1/settings/checkout", &shop.secret, settings).await.error(
        422,
        "validation_failed",
        Some("shipping_zones[0].rates[0].amount"),
    );
    let discount = json!({"code": "HUGE", "kind": "fixed_amount", "value": i64::MAX});
    c.post("/api/v1/discounts", &shop.secret, discount).await.error(
        422,
        "validation_failed",
        Some("value"),
    );
    // And the shop still sells its (very dear) product.
    let order = checkout(&c, &shop.publishable, &token, "ada@example.com").await.expect(201).json();
    assert_eq!(order["order"]["total"], json!(5_000_000_000_000_000_i64 + 495), "{order}");
}

async fn racing_refunds_never_pass_the_total(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, variant) = shop(&c, 100, "10.00").await;
    for round in 0..3 {
        let token = cart(&c, &shop.publishable, &variant, 10).await;
        let order = checkout(&c, &shop.publishable, &token, "ada@example.com").await.expect(201);
        let order = order.json()["order"].clone();
        let (id, total) =
            (order["id"].as_str().unwrap().to_owned(), order["total"].as_i64().unwrap());
        c.post(&format!("/api/v1/orders/{id}/mark-paid"), &shop.secret, json!({}))
            .await
            .expect(200);
        if round == 2 {
            // From partially refunded: the status does not change, so only the amount guards.
            let first = json!({"amount": 1});
            c.post(&format!("/api/v1/orders/{id}/refund"), &shop.secret, first).await.expect(200);
        }
        // Eight refunds of 60 % at once: only one may take the money.
        let amount = total * 6 / 10;
        let path = format!("/api/v1/orders/{id}/refund");
        let refunds = (0..8).map(|_| c.post(&path, &shop.secret, json!({"amount": amount})));
        let answers = futures::future::join_all(refunds).await;
        let ok = answers.iter().filter(|r| r.status == 200).count();
        assert_eq!(
            ok,
            1,
            "round {round}: {:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        for r in answers.iter().filter(|r| r.status != 200) {
            assert!(r.status == 409 || r.status == 422, "{}: {}", r.status, r.text());
        }
        let order: Value =
            c.get(&format!("/api/v1/orders/{id}"), &shop.secret).await.expect(200).json();
        let refunded = order["order"]["refunded"].as_i64().unwrap();
        assert!(refunded <= total, "refunded {refunded} of {total}");
        assert_eq!(refunded, amount + i64::from(round == 2), "{order}");
    }
}

async fn once_per_customer_holds_for_aliases_and_inside_checkout(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, variant) = shop(&c, 100, "10.00").await;
    let code =
        json!({"code": "WELCOME", "kind": "percentage", "value": 1000, "once_per_customer": true});
    c.post("/api/v1/discounts", &shop.secret, code).await.expect(201);
    let with_code = |email: &'static str| {
        let (c, shop, variant) = (&c, &shop, &variant);
        async move {
            let token = cart(c, &shop.publishable, variant, 1).await;
            let path = format!("/api/v1/carts/{token}/discounts");
            c.post(&path, &shop.publishable, json!({"code": "WELCOME"})).await;
            checkout(c, &shop.publishable, &token, email).await
        }
    };
    let first = with_code("Ada@Example.com").await.expect(201).json();
    assert!(first["order"]["discount"].as_i64().unwrap() > 0, "{first}");
    // The same mailbox under an alias: refused with the reason, never a 500.
    for alias in ["ada+again@example.com", "ADA@example.com"] {
        let again = with_code(alias).await;
        assert!(again.status == 409 || again.status == 201, "{alias}: {}", again.text());
        if again.status == 201 {
            let order = again.json();
            assert_eq!(order["order"]["discount"], json!(0), "{alias} got the code again: {order}");
        }
    }
    // Two checkouts of one new customer at once: one gets the code, the other a clear no.
    let (a, b) = futures::join!(with_code("grace@example.com"), with_code("grace+2@example.com"));
    let discounted = [&a, &b]
        .iter()
        .filter(|r| r.status == 201 && r.json()["order"]["discount"].as_i64() > Some(0))
        .count();
    assert_eq!(discounted, 1, "{} / {}", a.text(), b.text());
    for r in [&a, &b] {
        assert!(r.status == 201 || r.status == 409, "{}: {}", r.status, r.text());
    }
    still_sells(&c, &shop, &variant).await;
}
