//! Payment providers: `manual` (paid offline; the merchant marks the order paid) and
//! `stripe` (PaymentIntents over Stripe's REST API; its base URL is the platform's
//! configuration, `AURELIO_STRIPE_API_BASE`, so tests run it against a local stand-in, and
//! never a shop's: the shop's secret key is sent there).
//!
//! The browser's return (`POST /carts/{token}/payment/confirm`) and Stripe's webhook
//! (`payment_intent.succeeded`) both end in `orders::mark_paid`, which changes the order
//! only once: whichever comes second changes nothing. The webhook checks the
//! `Stripe-Signature` header (HMAC-SHA256 over `"<t>.<body>"`, 5 minutes of tolerance)
//! and records event ids so a replayed event is acknowledged and ignored.
//! Credentials are stored sealed with AES-GCM (`crypto::Sealer`), bound to the shop;
//! credentials sealed before that (bound to a constant) still open and are sealed again,
//! bound to the shop, the first time they are read.

use super::orders::{self, Order, OrderResponse};
use crate::auth::{Permission, Tenant};
use crate::crypto::{self, SignatureError};
use crate::db::{Backend, now_ms};
use crate::egress::{Egress, EgressError};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use crate::registry;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::AnyPool;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Seconds a webhook's timestamp may differ from our clock.
pub const TOLERANCE_SECS: i64 = 300;
/// What sealed Stripe credentials are bound to, within their shop.
const STRIPE_CONTEXT: &str = "payments:stripe";
/// Most bytes of Stripe's answer read.
const MAX_STRIPE_ANSWER: usize = crate::egress::MAX_ANSWER_BYTES;
/// Stripe's API, unless configured otherwise.
pub const STRIPE_API: &str = "https://api.stripe.com";

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(get_stripe, put_stripe))
        .routes(routes!(stripe_webhook))
        .routes(routes!(confirm_payment))
}

/// A shop's Stripe account. Stripe's API base is the platform's configuration: a
/// `base_url` here is refused (422).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Secret API key (`sk_live_...` / `sk_test_...`).
    pub secret_key: String,
    /// Signing secret of the webhook endpoint (`whsec_...`).
    pub webhook_secret: String,
}

/// Stored credentials, as sealed (members of older versions, such as a per-shop
/// `base_url`, are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stripe {
    /// Secret API key.
    pub secret_key: String,
    /// Signing secret of Stripe's webhook.
    pub webhook_secret: String,
}

/// Whether Stripe is configured (secrets are never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeStatus {
    /// Configured.
    pub configured: bool,
    /// First characters of the secret key.
    pub key_prefix: Option<String>,
    /// Stripe's API base URL in use (the platform's).
    pub base_url: String,
    /// Where to point Stripe's webhook for this shop.
    pub webhook_url: String,
}

fn sealer(platform: &Platform) -> ApiResult<&crypto::Sealer> {
    platform.sealer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secret_key_missing",
            format!(
                "set {} (64 hex digits) on the server to store payment credentials",
                crypto::SECRET_KEY_VAR
            ),
        )
    })
}

/// The shop's Stripe credentials, if any. Credentials that do not open for this shop (sealed
/// for another shop, or with another key) are a 409 saying to connect Stripe again.
pub async fn stripe_config(
    platform: &Platform,
    db: &AnyPool,
    shop_id: &str,
) -> ApiResult<Option<Stripe>> {
    let sealed: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM payment_providers WHERE name = 'stripe'")
            .fetch_optional(db)
            .await?;
    let Some(sealed) = sealed else { return Ok(None) };
    let sealer = sealer(platform)?;
    let context = crypto::context(shop_id, STRIPE_CONTEXT);
    let (plain, which) = sealer.open_any(&[&context, STRIPE_CONTEXT], &sealed).map_err(|e| {
        tracing::warn!(shop = shop_id, error = %e, "stored Stripe credentials do not open");
        ApiError::new(
            StatusCode::CONFLICT,
            "credentials_unreadable",
            "the stored Stripe credentials cannot be read (sealed for another shop or with \
             another AURELIO_SECRET_KEY): connect Stripe again with PUT /api/v1/payments/stripe",
        )
    })?;
    let stripe: Stripe = serde_json::from_slice(&plain).map_err(|e| ApiError::internal(&e))?;
    if which > 0 {
        // Sealed before credentials were bound to their shop: bind them now.
        store(platform, db, sealer, &context, &stripe).await?;
    }
    Ok(Some(stripe))
}

async fn store(
    platform: &Platform,
    db: &AnyPool,
    sealer: &crypto::Sealer,
    context: &str,
    stripe: &Stripe,
) -> ApiResult<()> {
    let plain = serde_json::to_vec(stripe).map_err(|e| ApiError::internal(&e))?;
    let query = sqlx::query(
        "INSERT INTO payment_providers (name, sealed, updated_at) VALUES ('stripe', $1, $2) \
         ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
    )
    .bind(sealer.seal(context, &plain))
    .bind(now_ms());
    platform.pools.backend().write(db, query).await?;
    Ok(())
}

/// Stripe's API base (no trailing slash).
fn stripe_base(platform: &Platform) -> String {
    platform
        .config
        .stripe_api_base
        .as_deref()
        .unwrap_or(STRIPE_API)
        .trim_end_matches('/')
        .to_owned()
}

fn webhook_url(platform: &Platform, shop_id: &str) -> String {
    format!(
        "{}/api/v1/payments/stripe/webhook/{shop_id}",
        platform.config.public_url.trim_end_matches('/')
    )
}

/// Stripe settings (never the secrets).
#[utoipa::path(get, path = "/api/v1/payments/stripe", tag = "payments", security(("secret_key" = [])),
    responses((status = 200, body = StripeStatus)))]
async fn get_stripe(tenant: Tenant) -> ApiResult<Json<StripeStatus>> {
    tenant.require(Permission::Settings)?;
    let config = stripe_config(&tenant.platform, &tenant.db, &tenant.shop.id).await?;
    Ok(Json(StripeStatus {
        configured: config.is_some(),
        key_prefix: config.as_ref().map(|c| c.secret_key.chars().take(8).collect()),
        base_url: stripe_base(&tenant.platform),
        webhook_url: webhook_url(&tenant.platform, &tenant.shop.id),
    }))
}

/// Connect a Stripe account: credentials are stored encrypted.
#[utoipa::path(put, path = "/api/v1/payments/stripe", tag = "payments", request_body = StripeConfig,
    security(("secret_key" = [])),
    responses((status = 200, body = StripeStatus), (status = 422, body = crate::error::ErrorBody)))]
async fn put_stripe(
    tenant: Tenant,
    Body(config): Body<StripeConfig>,
) -> ApiResult<Json<StripeStatus>> {
    tenant.require(Permission::Settings)?;
    if !config.secret_key.starts_with("sk_") && !config.secret_key.starts_with("rk_") {
        return Err(ApiError::invalid(
            "secret_key",
            "a Stripe secret key starts with `sk_` or `rk_`",
        ));
    }
    if !config.webhook_secret.starts_with("whsec_") {
        return Err(ApiError::invalid(
            "webhook_secret",
            "a Stripe webhook secret starts with `whsec_`",
        ));
    }
    let stripe = Stripe { secret_key: config.secret_key, webhook_secret: config.webhook_secret };
    let context = crypto::context(&tenant.shop.id, STRIPE_CONTEXT);
    store(&tenant.platform, &tenant.db, sealer(&tenant.platform)?, &context, &stripe).await?;
    tenant.audit("payments.stripe", json!({})).await;
    Ok(Json(StripeStatus {
        configured: true,
        key_prefix: Some(stripe.secret_key.chars().take(8).collect()),
        base_url: stripe_base(&tenant.platform),
        webhook_url: webhook_url(&tenant.platform, &tenant.shop.id),
    }))
}

/// What starting a payment gave.
#[derive(Debug, Clone, Default)]
pub struct Started {
    /// The provider's id (PaymentIntent id).
    pub external_id: Option<String>,
    /// What the browser confirms with.
    pub client_secret: Option<String>,
    /// `pending` (manual), `requires_payment` (Stripe), `error`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
}

fn form(pairs: &[(&str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Sends a request to Stripe: its answer's JSON on success, else what went wrong.
async fn call(req: Result<reqwest::RequestBuilder, EgressError>) -> Result<Value, String> {
    let answer =
        Egress::send(req.map_err(|e| format!("cannot reach Stripe: {e}"))?, MAX_STRIPE_ANSWER)
            .await
            .map_err(|e| format!("cannot reach Stripe: {e}"))?;
    if !answer.status.is_success() {
        let text: String = answer.text().chars().take(500).collect();
        return Err(format!("Stripe answered {}: {text}", answer.status));
    }
    answer.json().map_err(|e| format!("Stripe's answer: {e}"))
}

/// Starts the payment of a new order with its provider. Stripe: a PaymentIntent created
/// with the order id as Stripe's idempotency key, so a retry never makes a second charge.
pub async fn start(tenant: &Tenant, provider: &str, order: &Order) -> ApiResult<Started> {
    let platform = &tenant.platform;
    match provider {
        "manual" => Ok(Started { status: "pending".into(), ..Started::default() }),
        "stripe" => {
            let not_started = |message: String| Started {
                status: "error".into(),
                error: Some(message),
                ..Started::default()
            };
            let c = match stripe_config(platform, &tenant.db, &tenant.shop.id).await {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(not_started("Stripe is not configured".into())),
                Err(e) => return Ok(not_started(e.message)),
            };
            let body = form(&[
                ("amount", order.total.to_string()),
                ("currency", order.currency.to_ascii_lowercase()),
                ("metadata[order_id]", order.id.clone()),
                ("metadata[order_number]", order.number.to_string()),
                ("receipt_email", order.email.clone()),
                ("automatic_payment_methods[enabled]", "true".into()),
            ]);
            let req = platform.http.post(&format!("{}/v1/payment_intents", stripe_base(platform)));
            let answer = call(req.map(|r| {
                r.bearer_auth(&c.secret_key)
                    .header("idempotency-key", format!("aurelio-order-{}", order.id))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }))
            .await;
            Ok(match answer {
                Ok(v) => Started {
                    external_id: v.get("id").and_then(Value::as_str).map(str::to_owned),
                    client_secret: v
                        .get("client_secret")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    status: "requires_payment".into(),
                    error: None,
                },
                Err(e) => {
                    tracing::warn!(order = %order.id, error = %e, "creating the PaymentIntent failed");
                    Started { status: "error".into(), error: Some(e), ..Started::default() }
                }
            })
        }
        other => Err(ApiError::invalid("payment_provider", format!("unknown provider `{other}`"))),
    }
}

/// Returns money through the order's provider; nothing changes when the provider refuses.
pub async fn refund(tenant: &Tenant, order: &Order, amount: i64) -> ApiResult<()> {
    if order.provider != "stripe" {
        return Ok(()); // manual: the merchant returns the money themselves
    }
    let intent = order.payment.get("external_id").and_then(Value::as_str).unwrap_or_default();
    let c =
        stripe_config(&tenant.platform, &tenant.db, &tenant.shop.id).await?.ok_or_else(|| {
            ApiError::new(StatusCode::CONFLICT, "provider_missing", "Stripe is not configured")
        })?;
    let req = tenant.platform.http.post(&format!("{}/v1/refunds", stripe_base(&tenant.platform)));
    call(req.map(|r| {
        r.bearer_auth(&c.secret_key)
            .header(
                "idempotency-key",
                format!("aurelio-refund-{}-{}-{amount}", order.id, order.refunded),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("payment_intent", intent.to_owned()), ("amount", amount.to_string())]))
    }))
    .await
    .map(drop)
    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", e))
}

/// Stripe's webhook for a shop. Authenticated by the `Stripe-Signature` header with the
/// shop's webhook secret (no API key).
#[utoipa::path(post, path = "/api/v1/payments/stripe/webhook/{shop_id}", tag = "payments",
    params(("shop_id" = String, Path, description = "the shop's id")),
    request_body(content = Object, description = "a Stripe event"),
    responses((status = 200, body = Object), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
async fn stripe_webhook(
    State(platform): State<Arc<Platform>>,
    Path(shop_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let shop = registry::shop(&platform.registry, &shop_id)
        .await?
        .ok_or_else(|| ApiError::not_found("shop"))?;
    let db = platform.shop_db(&shop).await?;
    let config = stripe_config(&platform, &db, &shop.id)
        .await?
        .ok_or_else(|| ApiError::not_found("shop"))?;
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    crypto::verify(
        config.webhook_secret.as_bytes(),
        header,
        &body,
        now_ms() / 1000,
        TOLERANCE_SECS,
    )
    .map_err(|e| {
        let message = match e {
            SignatureError::Malformed => "missing or malformed Stripe-Signature header",
            SignatureError::Expired => "the signature's timestamp is too old (replay?)",
            SignatureError::Mismatch => "the signature does not match",
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_signature", message)
    })?;
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not JSON: {e}")))?;
    let id = event.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    if id.is_empty() {
        return Err(ApiError::bad_request("the event has no id"));
    }
    // Replays: an event id is handled once.
    let backend = platform.pools.backend();
    let fresh = sqlx::query("INSERT INTO provider_events (id, received_at) VALUES ($1, $2)")
        .bind(format!("stripe:{id}"))
        .bind(now_ms());
    let fresh = backend.write(&db, fresh).await;
    match fresh {
        Ok(_) => {}
        Err(e) if crate::error::is_unique_violation(&e) => {
            return Ok(Json(json!({ "received": true, "duplicate": true })));
        }
        Err(e) => return Err(e.into()),
    }
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default();
    let object = &event["data"]["object"];
    let order_id = object["metadata"]["order_id"].as_str().unwrap_or_default().to_owned();
    let mut changed = false;
    match kind {
        "payment_intent.succeeded" if !order_id.is_empty() => {
            let intent = object["id"].as_str().unwrap_or_default();
            let owns: Option<String> =
                sqlx::query_scalar("SELECT order_id FROM payments WHERE external_id = $1")
                    .bind(intent)
                    .fetch_optional(&db)
                    .await?;
            if owns.as_deref() == Some(order_id.as_str()) {
                changed = orders::mark_paid(&platform, &shop.id, &db, &order_id, "stripe webhook")
                    .await?;
            }
        }
        "payment_intent.payment_failed" if !order_id.is_empty() => {
            let failed = sqlx::query("UPDATE payments SET status = 'failed', updated_at = $1 WHERE order_id = $2 AND status <> 'succeeded'")
                .bind(now_ms())
                .bind(&order_id);
            backend.write(&db, failed).await?;
        }
        _ => {}
    }
    Ok(Json(json!({ "received": true, "changed": changed })))
}

/// The browser's return after paying: asks the provider and marks the order paid when it
/// is. Safe to call any number of times, before or after the webhook.
#[utoipa::path(post, path = "/api/v1/carts/{token}/payment/confirm", tag = "payments",
    params(("token" = String, Path, description = "cart token")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn confirm_payment(
    tenant: Tenant,
    Path(token): Path<String>,
) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::Shop)?;
    let order_id = super::carts::order_of(&tenant.db, &token).await?;
    let order = orders::load(&tenant.db, &order_id).await?;
    if order.provider == "stripe" && order.status == orders::Status::Pending {
        let intent =
            order.payment.get("external_id").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(c) = stripe_config(&tenant.platform, &tenant.db, &tenant.shop.id).await?
            && !intent.is_empty()
        {
            let base = stripe_base(&tenant.platform);
            let path: String = url::form_urlencoded::byte_serialize(intent.as_bytes()).collect();
            let req = tenant.platform.http.get(&format!("{base}/v1/payment_intents/{path}"));
            let got = call(req.map(|r| r.bearer_auth(&c.secret_key))).await;
            if let Ok(v) = got
                && v.get("status").and_then(Value::as_str) == Some("succeeded")
            {
                orders::mark_paid(
                    &tenant.platform,
                    &tenant.shop.id,
                    &tenant.db,
                    &order_id,
                    "browser return",
                )
                .await?;
            }
        }
    }
    Ok(Json(OrderResponse { order: orders::load(&tenant.db, &order_id).await? }))
}

/// Records a started payment for an order (and its error, if any) in one write.
pub async fn record(
    backend: &Backend,
    db: &AnyPool,
    order: &Order,
    provider: &str,
    started: &Started,
) -> ApiResult<()> {
    let now = now_ms();
    let mut tx = backend.begin_write(db).await?;
    sqlx::query(
        "UPDATE payments SET status = $1, external_id = $2, client_secret = $3, updated_at = $4 \
         WHERE order_id = $5 AND provider = $6",
    )
    .bind(&started.status)
    .bind(&started.external_id)
    .bind(&started.client_secret)
    .bind(now)
    .bind(&order.id)
    .bind(provider)
    .execute(&mut *tx)
    .await?;
    if let Some(error) = &started.error {
        sqlx::query("INSERT INTO order_events (id, order_id, kind, detail, at) VALUES ($1, $2, 'payment_error', $3, $4)")
            .bind(registry::new_id("evt"))
            .bind(&order.id)
            .bind(json!({ "error": error }).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether a provider name is known.
pub fn is_provider(name: &str) -> bool {
    matches!(name, "manual" | "stripe")
}
