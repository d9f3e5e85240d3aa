//! Payments and outgoing webhooks through HTTP, on SQLite and PostgreSQL: Stripe (a local
//! stand-in of its API) with signed webhooks racing the browser's return, and outgoing
//! webhooks that survive a receiver being down.

#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::{Path as AxPath, State};
use axum::routing::{get, post};
use common::shop::{
    Receiver, address, checkout, eventually, new_cart, outbox, register_webhook, shop_with_product,
};
use common::{Db, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

both!(stripe_webhook_and_return_mark_paid_once, outgoing_webhooks_survive_a_receiver_outage);

const SEALING_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

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
    // A receiver of `order.paid`, to count what the race below announces.
    let (paid_rx, paid_url) = Receiver::start(true).await;
    register_webhook(&c, &shop, &paid_url, &["order.paid"]).await;
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
    // Paid once: one `order.paid` in the outbox, delivered once.
    eventually(Duration::from_secs(60), "order.paid delivered", || async {
        let rows = outbox(&server, &shop.id).await;
        !rows.is_empty() && rows.iter().all(|(_, _, delivered, _)| *delivered)
    })
    .await;
    let rows = outbox(&server, &shop.id).await;
    let events: Vec<&str> = rows.iter().map(|(e, ..)| e.as_str()).collect();
    assert_eq!(events, ["order.paid"], "one event for the return and the webhook together");
    assert_eq!(paid_rx.count("order.paid"), 1, "{:?}", paid_rx.got());
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

async fn outgoing_webhooks_survive_a_receiver_outage(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (rx, url) = Receiver::start(false).await;
    let (shop, _, variant) = shop_with_product(&c, 10, "9.00").await;
    let events = ["order.created", "order.paid"];
    let (endpoint, secret) = register_webhook(&c, &shop, &url, &events).await;
    let deliveries = || {
        let (c, key) = (c.clone(), shop.secret.clone());
        let path = format!("/api/v1/webhooks/{endpoint}/deliveries");
        async move { c.get(&path, &key).await.expect(200).json()["deliveries"].clone() }
    };
    // The receiver is down when the order is placed: delivery is tried, and refused.
    let token =
        new_cart(&c, &shop.publishable, &variant, 1).await["token"].as_str().unwrap().to_owned();
    let order = checkout(&c, &shop.publishable, &token, "w1", "ada@example.com")
        .await
        .expect(201)
        .json()["order"]
        .clone();
    eventually(Duration::from_secs(60), "a delivery tried while the receiver is down", || async {
        rx.refused() >= 1
    })
    .await;
    assert!(rx.got().is_empty(), "nothing was accepted while down");
    let pending = deliveries().await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["event"], json!("order.created"), "{pending}");
    assert_eq!(pending[0]["status"], json!("pending"), "{pending}");
    assert!(pending[0]["attempts"].as_i64().unwrap() >= 1, "{pending}");
    assert!(pending[0]["last_error"].as_str().unwrap().contains("503"), "{pending}");
    rx.up.store(true, Ordering::SeqCst);
    c.post(
        &format!("/api/v1/orders/{}/mark-paid", order["id"].as_str().unwrap()),
        &shop.secret,
        json!({}),
    )
    .await
    .expect(200);
    // Both events arrive (the first after its backoff), signed, each once.
    eventually(Duration::from_secs(120), "both events delivered", || async {
        let shown = deliveries().await;
        let all = shown.as_array().unwrap();
        all.len() == 2 && all.iter().all(|d| d["status"] == json!("delivered"))
    })
    .await;
    let got = rx.got();
    let kinds: Vec<String> = got.iter().map(common::shop::Delivery::kind).collect();
    assert_eq!((rx.count("order.created"), rx.count("order.paid")), (1, 1), "{kinds:?}");
    let shown = deliveries().await;
    let created = shown.as_array().unwrap().iter().find(|d| d["event"] == json!("order.created"));
    let created = created.unwrap_or_else(|| panic!("order.created is listed: {shown}"));
    assert!(created["attempts"].as_i64().unwrap() >= 2, "refused, then delivered: {created}");
    assert_eq!(created["last_error"], json!(null), "{created}");
    let now = chrono::Utc::now().timestamp();
    for d in &got {
        assert!(d.id.starts_with("msg_"));
        let verified = aurelio_api::crypto::verify(
            secret.as_bytes(),
            &d.signature,
            d.body.as_bytes(),
            now,
            300,
        );
        assert_eq!(verified, Ok(()), "{}", d.signature);
        let body: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(body["data"]["order_id"], order["id"]);
        assert_eq!(body["id"], json!(d.id), "the body names the event id of the header");
    }
}
