//! The audit log's content, on SQLite and PostgreSQL: what provisioning, a key created and
//! revoked, a settings change, a webhook endpoint and a refund record (actor, action,
//! detail), and that no key, token or signing secret is ever in it.

#![allow(clippy::unwrap_used)]

mod common;

use common::shop::{Receiver, checkout, new_cart, register_webhook, shop_with_product};
use common::{ADMIN, Db, Server};
use serde_json::{Value, json};

both!(the_audit_log_says_who_did_what_and_keeps_no_secrets);

async fn the_audit_log_says_who_did_what_and_keeps_no_secrets(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (shop, _, variant) = shop_with_product(&c, 5, "20.00").await;
    let keys = c.get("/api/v1/keys", &shop.secret).await.expect(200).json();
    let owner = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == json!("secret") && k["role"] == json!("owner"))
        .unwrap_or_else(|| panic!("the owner key is listed: {keys}"));
    let owner = format!("key:{}", owner["id"].as_str().unwrap());

    let staff = c
        .post("/api/v1/keys", &shop.secret, json!({"role": "staff", "label": "till"}))
        .await
        .expect(201)
        .json();
    let staff_id = staff["id"].as_str().unwrap().to_owned();
    let staff_key = staff["key"].as_str().unwrap().to_owned();
    c.delete(&format!("/api/v1/keys/{staff_id}"), &shop.secret).await.expect(204);
    let mut settings = c.get("/api/v1/settings/checkout", &shop.secret).await.expect(200).json();
    settings["max_quantity"] = json!(7);
    c.put("/api/v1/settings/checkout", &shop.secret, settings).await.expect(200);
    let (_rx, url) = Receiver::start(true).await;
    let (endpoint, signing) = register_webhook(&c, &shop, &url, &["order.paid"]).await;
    let token =
        new_cart(&c, &shop.publishable, &variant, 1).await["token"].as_str().unwrap().to_owned();
    let order = checkout(&c, &shop.publishable, &token, "a1", "ada@example.com")
        .await
        .expect(201)
        .json()["order"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.post(&format!("/api/v1/orders/{order}/mark-paid"), &shop.secret, json!({})).await.expect(200);
    c.post(&format!("/api/v1/orders/{order}/refund"), &shop.secret, json!({"amount": 300}))
        .await
        .expect(200);

    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT actor, action, detail, at FROM audit_log WHERE shop_id = $1 ORDER BY at, id",
    )
    .bind(&shop.id)
    .fetch_all(&server.platform.registry)
    .await
    .unwrap();
    let log: Vec<(String, String, Value)> = rows
        .iter()
        .map(|(actor, action, detail, _)| {
            (actor.clone(), action.clone(), serde_json::from_str(detail).unwrap())
        })
        .collect();
    let find = |action: &str| {
        log.iter()
            .find(|(_, a, _)| a == action)
            .unwrap_or_else(|| panic!("no `{action}` in the audit log: {log:?}"))
            .clone()
    };
    let entry =
        |actor: &str, action: &str, detail: Value| (actor.to_owned(), action.to_owned(), detail);
    assert_eq!(
        find("tenant.create"),
        entry("admin", "tenant.create", json!({"handle": shop.handle, "demo": false}))
    );
    assert_eq!(
        find("key.create"),
        entry(&owner, "key.create", json!({"id": staff_id, "kind": "secret", "role": "staff"}))
    );
    assert_eq!(find("key.revoke"), entry(&owner, "key.revoke", json!({"id": staff_id})));
    assert_eq!(find("settings.checkout"), entry(&owner, "settings.checkout", json!({})));
    assert_eq!(
        find("webhook.create"),
        entry(&owner, "webhook.create", json!({"id": endpoint, "url": url}))
    );
    assert_eq!(find("order.paid"), entry(&owner, "order.paid", json!({"order": order})));
    assert_eq!(
        find("order.partially_refunded"),
        entry(&owner, "order.partially_refunded", json!({"order": order, "amount": 300}))
    );
    // In the order they happened (two actions can share a millisecond; the setup changed
    // the checkout settings once before, so the last of each counts).
    let at = |a: &str| rows.iter().rev().find(|r| r.1 == a).map(|r| r.3).unwrap();
    assert!(at("key.create") <= at("key.revoke") && at("key.revoke") <= at("settings.checkout"));
    assert!(at("order.paid") <= at("order.partially_refunded"), "{rows:?}");
    // No secret of any kind, whole or in part.
    let text = format!("{rows:?}");
    for secret in [&shop.secret, &shop.publishable, &staff_key, &signing, &ADMIN.to_owned()] {
        let tail = &secret[secret.len() - 16..];
        assert!(!text.contains(tail), "a secret ending …{tail} is in the audit log: {text}");
    }
}
