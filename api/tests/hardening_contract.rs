//! The security review's findings replayed through HTTP (issue 20), on SQLite and
//! PostgreSQL: webhooks to private addresses and through redirects, Stripe's API base set
//! by a shop, an admin key revoking the owner's, a blank admin token, sealed values copied
//! into another shop, cart tokens in the request logs, and errors that are not the
//! documented JSON body or not in the OpenAPI document.

#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::State;
use axum::routing::post;
use common::{ADMIN, Client, Db, Payload, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

both!(
    webhooks_to_private_addresses_are_refused,
    redirects_are_not_followed_and_old_secrets_still_sign,
    stripe_api_base_is_the_platforms,
    sealed_values_do_not_open_in_another_shop,
    keys_are_not_revoked_or_created_above_the_callers_role,
    a_blank_admin_token_is_no_token,
    malformed_requests_answer_the_error_body,
    request_logs_name_routes_not_cart_tokens,
);

/// A shop with one product and manual payments: (shop, variant id).
async fn shop_with_product(c: &Client) -> (common::Shop, String) {
    let shop = c.provision(&unique("hard"), false).await;
    let product = c
        .post(
            "/api/v1/products",
            &shop.secret,
            json!({"handle": "tee", "title": "Tee",
                "variants": [{"sku": "TEE-1", "price": "9.00", "inventory": 50}]}),
        )
        .await
        .expect(201)
        .json();
    let variant = product["product"]["variants"][0]["id"].as_str().unwrap().to_owned();
    c.put(
        "/api/v1/settings/checkout",
        &shop.secret,
        json!({"shipping_zones": [{"name": "EU", "countries": ["IE"], "rates": [
            {"id": "standard", "name": "Standard", "amount": 495}]}],
            "tax_rates": [], "payment_providers": ["manual"]}),
    )
    .await
    .expect(200);
    (shop, variant)
}

/// Places an order (which announces `order.created`); its id.
async fn place_order(c: &Client, shop: &common::Shop, variant: &str) -> String {
    let cart = c
        .post(
            "/api/v1/carts",
            &shop.publishable,
            json!({"lines": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await
        .expect(201)
        .json();
    let token = cart["cart"]["token"].as_str().unwrap();
    let order = c
        .send_with(
            Method::POST,
            &format!("/api/v1/carts/{token}/checkout"),
            Some(&shop.publishable),
            Payload::Json(json!({"email": "ada@example.com", "shipping_address": {
                "name": "Ada", "line1": "1 Quay Street", "city": "Galway",
                "postal_code": "H91", "country": "IE"}})),
            &[("Idempotency-Key", &unique("idem"))],
        )
        .await
        .expect(201)
        .json();
    order["order"]["id"].as_str().unwrap().to_owned()
}

/// A connection to a shop's own database, as someone with access to the database
/// (not to `AURELIO_SECRET_KEY`) has.
async fn shop_db(server: &Server, shop_id: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = match server.db {
        Db::Sqlite => format!("sqlite://{}", server.sqlite_file(shop_id).display()),
        Db::Postgres => {
            let mut url = server.database_url.clone().unwrap();
            url.set_path(&format!("/{}", server.postgres_shop_db(shop_id)));
            url.to_string()
        }
    };
    sqlx::pool::PoolOptions::<sqlx::Any>::new().max_connections(1).connect(&url).await.unwrap()
}

/// Waits until every outbox row of `endpoint` was attempted at least once; their last
/// errors (empty when delivered).
async fn attempted(db: &sqlx::AnyPool, endpoint: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE endpoint_id = $1")
                .bind(endpoint)
                .fetch_all(db)
                .await
                .unwrap();
        if !rows.is_empty() && rows.iter().all(|(a, _)| *a >= 1) {
            return rows.into_iter().map(|(_, e)| e.unwrap_or_default()).collect();
        }
        assert!(Instant::now() < deadline, "no delivery attempt of {endpoint} in 60 s: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local receiver: counts and keeps what it is sent; answers `status` (with `Location`
/// when redirecting).
#[derive(Default)]
struct Receiver {
    hits: AtomicUsize,
    got: Mutex<Vec<(String, String)>>, // (signature, body)
    redirect_to: Option<String>,
}

async fn receiver(redirect_to: Option<String>) -> (std::net::SocketAddr, Arc<Receiver>) {
    async fn receive(
        State(r): State<Arc<Receiver>>,
        headers: axum::http::HeaderMap,
        body: String,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        r.hits.fetch_add(1, Ordering::SeqCst);
        let sig = headers
            .get("aurelio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        r.got.lock().unwrap().push((sig, body));
        match &r.redirect_to {
            Some(to) => (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", to.clone())])
                .into_response(),
            None => axum::http::StatusCode::OK.into_response(),
        }
    }
    let state = Arc::new(Receiver { redirect_to, ..Receiver::default() });
    let app = axum::Router::new().route("/hook", post(receive)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

async fn webhooks_to_private_addresses_are_refused(db: Db) {
    // The platform's default: the guard is on.
    let server = Server::start(db, |c| c.allow_private_egress = false);
    let c = server.client();
    let (shop, variant) = shop_with_product(&c).await;
    let (addr, rx) = receiver(None).await;
    let port = addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        "http://10.0.0.7/hook".into(),
        "http://192.168.1.1/hook".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://100.64.0.1/hook".into(),
        "http://[fd00::1]/hook".into(),
        "https://user:secret@hooks.example.com/in".into(),
        "ftp://hooks.example.com/in".into(),
    ] {
        c.post("/api/v1/webhooks", &shop.secret, json!({ "url": url })).await.error(
            422,
            "validation_failed",
            Some("url"),
        );
    }
    // Rows made before the check (or whose name now resolves elsewhere) are checked again
    // at delivery, on the address connected to: nothing reaches the loopback receiver.
    let shop_db = shop_db(&server, &shop.id).await;
    let planted = [
        ("whe_a", format!("http://127.0.0.1:{port}/hook")),
        ("whe_b", format!("http://localhost:{port}/hook")),
    ];
    for (id, url) in &planted {
        sqlx::query("INSERT INTO webhook_endpoints (id, url, secret, events, created_at) VALUES ($1, $2, 'whsec_old', '[\"*\"]', 0)")
            .bind(*id)
            .bind(url)
            .execute(&shop_db)
            .await
            .unwrap();
    }
    place_order(&c, &shop, &variant).await;
    for (id, _) in &planted {
        for error in attempted(&shop_db, id).await {
            assert!(error.contains("refused"), "{id}: {error}");
        }
    }
    assert_eq!(rx.hits.load(Ordering::SeqCst), 0, "a webhook reached a loopback listener");
    // The shop still works.
    c.get("/api/v1/webhooks", &shop.secret).await.expect(200);
    place_order(&c, &shop, &variant).await;
}

async fn redirects_are_not_followed_and_old_secrets_still_sign(db: Db) {
    // Test servers let webhooks reach 127.0.0.1 (local receivers).
    let server = Server::shared(db);
    let c = server.client();
    let (shop, variant) = shop_with_product(&c).await;
    let (target, target_rx) = receiver(None).await;
    let (redirector, redirect_rx) = receiver(Some(format!("http://{target}/hook"))).await;
    let direct = c
        .post("/api/v1/webhooks", &shop.secret, json!({ "url": format!("http://{target}/hook") }))
        .await
        .expect(201)
        .json();
    let secret = direct["secret"].as_str().unwrap().to_owned();
    let redirecting = c
        .post(
            "/api/v1/webhooks",
            &shop.secret,
            json!({ "url": format!("http://{redirector}/hook") }),
        )
        .await
        .expect(201)
        .json();
    // The signing secret is stored sealed, not in clear.
    let shop_db = shop_db(server, &shop.id).await;
    let stored: String = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
        .bind(direct["id"].as_str().unwrap())
        .fetch_one(&shop_db)
        .await
        .unwrap();
    assert!(stored.starts_with("sealed:") && !stored.contains(&secret), "{stored}");
    // A secret stored in clear by an earlier version still signs, and is sealed after.
    sqlx::query("INSERT INTO webhook_endpoints (id, url, secret, events, created_at) VALUES ('whe_old', $1, 'whsec_in_clear', '[\"*\"]', 0)")
        .bind(format!("http://{target}/hook"))
        .execute(&shop_db)
        .await
        .unwrap();
    place_order(&c, &shop, &variant).await;
    let errors = attempted(&shop_db, redirecting["id"].as_str().unwrap()).await;
    assert!(errors.iter().all(|e| e.contains("307")), "{errors:?}");
    for id in [direct["id"].as_str().unwrap(), "whe_old"] {
        assert_eq!(attempted(&shop_db, id).await, vec![String::new()], "{id} delivered");
    }
    assert_eq!(redirect_rx.hits.load(Ordering::SeqCst), 1);
    // Two deliveries (direct and old), none through the redirect.
    assert_eq!(target_rx.hits.load(Ordering::SeqCst), 2, "the redirect was followed");
    let now = chrono::Utc::now().timestamp();
    let got = target_rx.got.lock().unwrap().clone();
    for key in [secret.as_str(), "whsec_in_clear"] {
        assert!(
            got.iter().any(|(sig, body)| {
                aurelio_api::crypto::verify(key.as_bytes(), sig, body.as_bytes(), now, 300).is_ok()
            }),
            "no delivery signed with {key}"
        );
    }
    let old: String =
        sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = 'whe_old'")
            .fetch_one(&shop_db)
            .await
            .unwrap();
    assert!(old.starts_with("sealed:"), "the old secret was not sealed: {old}");
}

async fn stripe_api_base_is_the_platforms(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("stripe"), false).await;
    // A shop pointing Stripe calls (with its secret key as bearer token) elsewhere: refused.
    c.put(
        "/api/v1/payments/stripe",
        &shop.secret,
        json!({"secret_key": "sk_test_x", "webhook_secret": "whsec_x",
            "base_url": "http://169.254.169.254/latest"}),
    )
    .await
    .error(422, "validation_failed", Some("base_url"));
    let status = c
        .put(
            "/api/v1/payments/stripe",
            &shop.secret,
            json!({"secret_key": "sk_test_x", "webhook_secret": "whsec_x"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(status["base_url"], json!("https://api.stripe.com"));
}

async fn sealed_values_do_not_open_in_another_shop(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let (a, _) = shop_with_product(&c).await;
    let (b, variant_b) = shop_with_product(&c).await;
    let (target, rx) = receiver(None).await;
    c.put(
        "/api/v1/payments/stripe",
        &a.secret,
        json!({"secret_key": "sk_test_shop_a", "webhook_secret": "whsec_shop_a"}),
    )
    .await
    .expect(200);
    let endpoint = c
        .post("/api/v1/webhooks", &a.secret, json!({ "url": format!("http://{target}/hook") }))
        .await
        .expect(201)
        .json();
    let endpoint = endpoint["id"].as_str().unwrap();
    // Someone with write access to the databases copies A's sealed values into B.
    let (db_a, db_b) = (shop_db(server, &a.id).await, shop_db(server, &b.id).await);
    let stripe: String =
        sqlx::query_scalar("SELECT sealed FROM payment_providers WHERE name = 'stripe'")
            .fetch_one(&db_a)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO payment_providers (name, sealed, updated_at) VALUES ('stripe', $1, 0)",
    )
    .bind(&stripe)
    .execute(&db_b)
    .await
    .unwrap();
    let (url, secret): (String, String) =
        sqlx::query_as("SELECT url, secret FROM webhook_endpoints WHERE id = $1")
            .bind(endpoint)
            .fetch_one(&db_a)
            .await
            .unwrap();
    sqlx::query("INSERT INTO webhook_endpoints (id, url, secret, events, created_at) VALUES ($1, $2, $3, '[\"*\"]', 0)")
        .bind(endpoint)
        .bind(&url)
        .bind(&secret)
        .execute(&db_b)
        .await
        .unwrap();
    // B cannot use A's Stripe credentials: a clear 409, not a 500.
    let error = c.get("/api/v1/payments/stripe", &b.secret).await.error(
        409,
        "credentials_unreadable",
        None,
    );
    assert!(error["message"].as_str().unwrap().contains("connect Stripe again"), "{error}");
    // Nor sign with A's webhook secret: the delivery fails, nothing is sent.
    place_order(&c, &b, &variant_b).await;
    let errors = attempted(&db_b, endpoint).await;
    assert!(errors.iter().all(|e| e.contains("cannot be read")), "{errors:?}");
    assert_eq!(rx.hits.load(Ordering::SeqCst), 0);
    // A's own values still work, and B recovers by connecting Stripe again.
    let status = c.get("/api/v1/payments/stripe", &a.secret).await.expect(200).json();
    assert_eq!(status["key_prefix"], json!("sk_test_"));
    c.put(
        "/api/v1/payments/stripe",
        &b.secret,
        json!({"secret_key": "sk_test_shop_b", "webhook_secret": "whsec_shop_b"}),
    )
    .await
    .expect(200);
    c.get("/api/v1/payments/stripe", &b.secret).await.expect(200);
}

async fn keys_are_not_revoked_or_created_above_the_callers_role(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("keys"), false).await;
    let keys = c.get("/api/v1/keys", &shop.secret).await.expect(200).json();
    let owner_id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == json!("owner"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let make = |role: &'static str| {
        let c = c.clone();
        let owner = shop.secret.clone();
        async move { c.post("/api/v1/keys", &owner, json!({ "role": role })).await.expect(201).json() }
    };
    let admin = make("admin").await;
    let admin_key = admin["key"].as_str().unwrap();
    let staff = make("staff").await;
    // The attack: an admin key revoking the owner's key. Refused, and the owner key works.
    c.delete(&format!("/api/v1/keys/{owner_id}"), admin_key).await.error(403, "forbidden", None);
    c.get("/api/v1/keys", &shop.secret).await.expect(200);
    c.post("/api/v1/keys", admin_key, json!({ "role": "owner" })).await.error(
        403,
        "forbidden",
        None,
    );
    // At or below its own role, an admin key manages keys.
    c.delete(&format!("/api/v1/keys/{}", staff["id"].as_str().unwrap()), admin_key)
        .await
        .expect(204);
    let other_admin = make("admin").await;
    c.delete(&format!("/api/v1/keys/{}", other_admin["id"].as_str().unwrap()), admin_key)
        .await
        .expect(204);
    // A staff key manages no keys at all; the owner can revoke anything, the admin key too.
    let staff2 = make("staff").await;
    c.delete(&format!("/api/v1/keys/{owner_id}"), staff2["key"].as_str().unwrap()).await.error(
        403,
        "forbidden",
        None,
    );
    c.delete(&format!("/api/v1/keys/{}", admin["id"].as_str().unwrap()), &shop.secret)
        .await
        .expect(204);
    c.get("/api/v1/keys", admin_key).await.error(401, "unauthorized", None);
}

async fn a_blank_admin_token_is_no_token(db: Db) {
    for blank in ["", "   "] {
        let server = Server::start(db, |c| c.admin_token = Some(blank.into()));
        let c = server.client();
        for auth in [Some("Bearer "), Some("Bearer"), Some("Bearer \t"), None] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
            let resp = c
                .send_with(
                    Method::POST,
                    "/api/v1/tenants",
                    None,
                    Payload::Json(json!({"handle": unique("blank"), "name": "Blank"})),
                    &headers,
                )
                .await;
            let error = resp.error(403, "forbidden", None);
            assert!(error["message"].as_str().unwrap().contains("no admin token"), "{error}");
            c.send_with(Method::GET, "/api/v1/tenants", None, Payload::None, &headers).await.error(
                403,
                "forbidden",
                None,
            );
        }
    }
}

async fn malformed_requests_answer_the_error_body(db: Db) {
    let server = Server::shared(db);
    let c = server.client();
    let shop = c.provision(&unique("errs"), false).await;
    c.get("/api/v1/products?limit=abc", &shop.secret).await.error(
        422,
        "validation_failed",
        Some("limit"),
    );
    c.get("/api/v1/tenants?limit=1e3", ADMIN).await.error(422, "validation_failed", Some("limit"));
    c.send_with(Method::PATCH, "/api/v1/tenants", Some(ADMIN), Payload::None, &[]).await.error(
        405,
        "method_not_allowed",
        None,
    );
    c.send_with(
        Method::POST,
        "/api/v1/products",
        Some(&shop.secret),
        Payload::Raw("application/json".into(), b"{\"handle\": ".to_vec()),
        &[],
    )
    .await
    .error(400, "bad_request", None);
    // Just over the default limit of 2 MiB, on a connection of its own (the server closes
    // it after answering without reading the rest).
    let big = vec![b' '; 2 * 1024 * 1024 + 1];
    server
        .client()
        .send_with(
            Method::POST,
            "/api/v1/products",
            Some(&shop.secret),
            Payload::Raw("application/json".into(), big),
            &[],
        )
        .await
        .error(413, "payload_too_large", None);
    c.get("/api/v1/products/%FF%FE", &shop.secret).await.error(400, "bad_request", None);
    // The shop still works, and the document lists these answers.
    c.get("/api/v1/products?limit=5", &shop.secret).await.expect(200);
    let doc = c.get("/api/v1/openapi.json", &shop.secret).await.expect(200).json();
    let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
    for (path, method, status) in [
        ("/api/v1/products", "get", "422"),
        ("/api/v1/products", "get", "401"),
        ("/api/v1/products", "get", "429"),
        ("/api/v1/products", "post", "413"),
        ("/api/v1/products", "post", "400"),
        ("/api/v1/products/{id}", "get", "404"),
        ("/api/v1/keys/{id}", "delete", "403"),
    ] {
        let listed = responses(path, method);
        assert!(listed.get(status).is_some(), "{method} {path} does not list {status}: {listed}");
        assert_eq!(
            listed[status]["content"]["application/json"]["schema"]["$ref"],
            json!("#/components/schemas/ErrorBody"),
            "{method} {path} {status}"
        );
    }
}

/// Records the `path` of every `request` span.
struct Spans {
    paths: Mutex<Vec<String>>,
    next: std::sync::atomic::AtomicU64,
}

struct PathField<'a>(&'a mut Option<String>);

impl tracing::field::Visit for PathField<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "path" {
            *self.0 = Some(format!("{value:?}"));
        }
    }
}

impl tracing::Subscriber for &'static Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if span.metadata().name() == "request" {
            let mut path = None;
            span.record(&mut PathField(&mut path));
            if let Some(p) = path {
                self.paths.lock().unwrap().push(p);
            }
        }
        tracing::span::Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn spans() -> &'static Spans {
    static SPANS: OnceLock<&'static Spans> = OnceLock::new();
    SPANS.get_or_init(|| {
        let spans: &'static Spans = Box::leak(Box::new(Spans {
            paths: Mutex::default(),
            next: std::sync::atomic::AtomicU64::new(1),
        }));
        tracing::subscriber::set_global_default(spans).expect("no other subscriber");
        spans
    })
}

async fn request_logs_name_routes_not_cart_tokens(db: Db) {
    let spans = spans();
    let server = Server::start(db, |_| {});
    let c = server.client();
    let (shop, variant) = shop_with_product(&c).await;
    let cart = c
        .post(
            "/api/v1/carts",
            &shop.publishable,
            json!({"lines": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await
        .expect(201)
        .json();
    let token = cart["cart"]["token"].as_str().unwrap().to_owned();
    c.get(&format!("/api/v1/carts/{token}"), &shop.publishable).await.expect(200);
    c.get(&format!("/api/v1/carts/{token}/nothing-here"), &shop.publishable).await;
    let paths = spans.paths.lock().unwrap().clone();
    assert!(paths.iter().any(|p| p == "/api/v1/carts/{token}"), "{paths:?}");
    let leaked: Vec<&String> = paths.iter().filter(|p| p.contains(&token)).collect();
    assert!(leaked.is_empty(), "cart tokens in the request log: {leaked:?}");
    let _: Value = c.get("/api/v1/keys", &shop.secret).await.expect(200).json();
}
