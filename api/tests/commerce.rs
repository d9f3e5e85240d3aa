//! Carts and discounts through HTTP, on SQLite and PostgreSQL: totals from catalog prices,
//! cart limits and line order, concurrent adds to one cart, adds that follow catalog
//! changes at once, and discount codes that say why they do not apply. Checkout and orders
//! are in `commerce_checkout.rs`, payments and outgoing webhooks in `commerce_payments.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use common::shop::{checkout, new_cart, shop_with_product};
use common::{Db, Server, unique};
use serde_json::{Value, json};

both!(
    totals_come_from_the_catalog,
    cart_limits_order_and_a_checked_out_cart,
    concurrent_adds_to_one_cart_all_count,
    adds_follow_catalog_changes_at_once,
    discount_codes_say_why_they_do_not_apply,
);

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
