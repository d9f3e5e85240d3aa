//! Helpers of the commerce tests: a shop with one product and checkout settings, carts,
//! checkouts, a webhook receiver that can be switched off, and waiting for a condition.

use super::{Client, Resp, Server, Shop, unique};
use axum::extract::State;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A shop without demo data and one product with `stock` units of one variant; the shop,
/// the product id and the variant id.
pub async fn shop_with_product(c: &Client, stock: i64, price: &str) -> (Shop, String, String) {
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

/// A new cart with one line; the cart as answered.
pub async fn new_cart(c: &Client, key: &str, variant: &str, quantity: i64) -> Value {
    c.post("/api/v1/carts", key, json!({"lines": [{"variant_id": variant, "quantity": quantity}]}))
        .await
        .expect(201)
        .json()["cart"]
        .clone()
}

/// A shipping address in Ireland.
pub fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "1 Quay Street", "city": "Galway", "postal_code": "H91", "country": "IE"})
}

/// Checks a cart out with an `Idempotency-Key`.
pub async fn checkout(c: &Client, key: &str, token: &str, idem: &str, email: &str) -> Resp {
    c.send_with(
        Method::POST,
        &format!("/api/v1/carts/{token}/checkout"),
        Some(key),
        super::Payload::Json(json!({"email": email, "shipping_address": address()})),
        &[("Idempotency-Key", idem)],
    )
    .await
}

/// The stock of a variant, as the API shows it.
pub async fn stock(c: &Client, key: &str, product_id: &str, variant_id: &str) -> Option<i64> {
    let p = c.get(&format!("/api/v1/products/{product_id}"), key).await.expect(200).json();
    p["product"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == json!(variant_id))
        .unwrap_or_else(|| panic!("no variant {variant_id}: {p}"))["inventory"]
        .as_i64()
}

/// Waits, polling every 20 ms, until `check` holds; panics saying `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One delivery a receiver accepted.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `Aurelio-Event-Id`.
    pub id: String,
    /// `Aurelio-Signature`.
    pub signature: String,
    /// The body.
    pub body: String,
}

impl Delivery {
    /// The event type (`order.created`…).
    pub fn kind(&self) -> String {
        let body: Value = serde_json::from_str(&self.body).unwrap();
        body["type"].as_str().unwrap().to_owned()
    }
}

/// A webhook receiver on 127.0.0.1: records what it accepts while up, counts what it
/// refuses (503) while down.
#[derive(Debug, Default)]
pub struct Receiver {
    /// Whether it accepts deliveries.
    pub up: AtomicBool,
    /// Deliveries refused while down.
    pub refused: AtomicUsize,
    /// Deliveries accepted.
    pub got: Mutex<Vec<Delivery>>,
}

impl Receiver {
    /// Starts one (`up` as given) on the test's runtime; it and its URL.
    pub async fn start(up: bool) -> (Arc<Self>, String) {
        let rx = Arc::new(Self::default());
        rx.up.store(up, Ordering::SeqCst);
        async fn receive(
            State(r): State<Arc<Receiver>>,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> axum::http::StatusCode {
            if !r.up.load(Ordering::SeqCst) {
                r.refused.fetch_add(1, Ordering::SeqCst);
                return axum::http::StatusCode::SERVICE_UNAVAILABLE;
            }
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let delivery =
                Delivery { id: h("aurelio-event-id"), signature: h("aurelio-signature"), body };
            r.got.lock().unwrap().push(delivery);
            axum::http::StatusCode::OK
        }
        let app =
            axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (rx, format!("http://{addr}/hook"))
    }

    /// What it accepted so far.
    pub fn got(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Accepted deliveries of one event type.
    pub fn count(&self, kind: &str) -> usize {
        self.got().iter().filter(|d| d.kind() == kind).count()
    }

    /// Deliveries refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// Registers a webhook endpoint for `events`; its id and signing secret.
pub async fn register_webhook(
    c: &Client,
    shop: &Shop,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let endpoint = c
        .post("/api/v1/webhooks", &shop.secret, json!({"url": url, "events": events}))
        .await
        .expect(201)
        .json();
    (endpoint["id"].as_str().unwrap().to_owned(), endpoint["secret"].as_str().unwrap().to_owned())
}

/// The shop's own database, to look inside (the outbox).
pub async fn shop_db(server: &Server, shop_id: &str) -> sqlx::AnyPool {
    let shop = aurelio_api::registry::shop(&server.platform.registry, shop_id)
        .await
        .expect("the registry")
        .expect("the shop");
    server
        .platform
        .shop_db(&shop)
        .await
        .unwrap_or_else(|e| panic!("the shop database: {}", e.message))
}

/// Outbox rows of the shop: (event, attempts, delivered, last error), oldest first.
pub async fn outbox(server: &Server, shop_id: &str) -> Vec<(String, i64, bool, Option<String>)> {
    let db = shop_db(server, shop_id).await;
    sqlx::query_as::<_, (String, i64, Option<i64>, Option<String>)>(
        "SELECT event, attempts, delivered_at, last_error FROM outbox ORDER BY created_at, id",
    )
    .fetch_all(&db)
    .await
    .expect("the outbox")
    .into_iter()
    .map(|(e, a, d, l)| (e, a, d.is_some(), l))
    .collect()
}

/// A demo shop for the tests of a binary that only read it or change it in their own
/// corner (one product each); provisioned once per server.
pub async fn demo_shop(server: &'static Server) -> Shop {
    use std::net::SocketAddr;
    static SHOPS: Mutex<Vec<(SocketAddr, Shop)>> = Mutex::new(Vec::new());
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = LOCK.lock().await;
    if let Some((_, shop)) =
        SHOPS.lock().expect("shops").iter().find(|(addr, _)| *addr == server.addr)
    {
        return shop.clone();
    }
    let shop = server.client().provision(&unique("cat"), true).await;
    SHOPS.lock().expect("shops").push((server.addr, shop.clone()));
    shop
}
