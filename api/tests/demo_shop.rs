//! The demo shop sells like a real one: provisioned with `demo: true`, it ships to Ireland,
//! the rest of the EU and the UK with VAT included at the destination's rate, has discount
//! codes to try, and an order's totals are the cart's.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};

both!(demo_checkout_has_shipping_and_vat);

async fn demo_checkout_has_shipping_and_vat(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("demo"), true).await;
    let products = c.get("/api/v1/products?limit=100", &shop.publishable).await.expect(200).json();
    // A €69.00 shirt, as the shopper in the issue bought (any in-stock variant of 69.00).
    let variant = products["products"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["variants"].as_array().unwrap().iter())
        .find(|v| v["price"] == json!(6900) && v["inventory"].as_i64() > Some(0))
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .expect("a 69.00 variant in stock");
    let body = json!({"lines": [{"variant_id": variant, "quantity": 1}]});
    let cart = c.post("/api/v1/carts", &shop.publishable, body).await.expect(201).json();
    let token = cart["cart"]["token"].as_str().unwrap().to_owned();
    let to = |country: &'static str| {
        let (c, shop, token) = (&c, &shop, &token);
        async move {
            let path = format!("/api/v1/carts/{token}");
            c.patch(&path, &shop.publishable, json!({"country": country})).await.expect(200).json()
        }
    };

    // Ireland: standard and express, 23 % VAT included in the €69.00.
    let ie: Value = to("IE").await;
    let options: Vec<&str> = ie["cart"]["shipping_options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["standard", "express"], "{ie}");
    let t = &ie["cart"]["totals"];
    assert_eq!(t["shipping"], json!(495), "standard to Ireland: {t}");
    assert_eq!(t["tax_included"], json!(true));
    // 23 % included: (6900 + 495) × 23 / 123, rounded per line (1290 + 93).
    assert_eq!(t["tax"], json!(1290 + 93), "{t}");
    assert_eq!(t["total"], json!(6900 + 495));

    // The Netherlands: 21 %, EU shipping.
    let nl: Value = to("NL").await;
    let t = &nl["cart"]["totals"];
    assert_eq!(t["shipping"], json!(995), "{t}");
    assert_eq!(t["tax"], json!(1198 + 173), "21 % of 69.00 and of 9.95, included: {t}");

    // A code from the demo, and the order keeps the cart's totals.
    let path = format!("/api/v1/carts/{token}/discounts");
    let coded = c.post(&path, &shop.publishable, json!({"code": "northwind10"})).await;
    let coded = coded.expect(200).json();
    to("IE").await;
    let cart = c.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200).json();
    let totals = cart["cart"]["totals"].clone();
    assert_eq!(totals["discount"], json!(690), "NORTHWIND10 takes 10 %: {coded}");
    let address =
        json!({"name": "Ada", "line1": "1 Quay Street", "city": "Galway", "country": "IE"});
    let order = c
        .send_with(
            Method::POST,
            &format!("/api/v1/carts/{token}/checkout"),
            Some(&shop.publishable),
            common::Payload::Json(json!({"email": "ada@example.com", "shipping_address": address})),
            &[("Idempotency-Key", &unique("idem"))],
        )
        .await
        .expect(201)
        .json();
    let o = &order["order"];
    for field in ["subtotal", "shipping", "tax", "total"] {
        assert_eq!(o[field], totals[field], "{field}: order {o} / cart {totals}");
    }
    assert!(o["tax"].as_i64().unwrap() > 0, "VAT is charged: {o}");
}
