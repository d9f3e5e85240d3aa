//! Payment providers: `manual` (paid offline; the merchant marks the order paid) and
//! `stripe` (PaymentIntents over Stripe's REST API, at a configurable base URL so tests run
//! it against a local stand-in).
//!
//! The browser's return (`POST /carts/{token}/payment/confirm`) and Stripe's webhook
//! (`payment_intent.succeeded`) both end in `orders::mark_paid`, which changes the order
//! only once: whichever comes second changes nothing. The webhook checks the
//! `Stripe-Signature` header (HMAC-SHA256 over `"<t>.<body>"`, 5 minutes of tolerance)
//! and records event ids so a replayed event is acknowledged and ignored.
//! Credentials are stored sealed with AES-GCM (`crypto::Sealer`).

use super::orders::{self, Order, OrderResponse};
use crate::auth::{Permission, Tenant};
use crate::crypto::{self, SignatureError};
use crate::db::{Backend, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::registry;
use crate::server::{Body, Platform};
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
/// What sealed Stripe credentials are bound to.
const STRIPE_CONTEXT: &str = "payments:stripe";
/// Stripe's API, unless configured otherwise.
pub const STRIPE_API: &str = "https://api.stripe.com";

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(get_stripe, put_stripe))
        .routes(routes!(stripe_webhook))
        .routes(routes!(confirm_payment))
}

/// A shop's Stripe account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Secret API key (`sk_live_...` / `sk_test_...`).
    pub secret_key: String,
    /// Signing secret of the webhook endpoint (`whsec_...`).
    pub webhook_secret: String,
    /// API base URL (default `https://api.stripe.com`).
    #[serde(default)]
    pub base_url: Option<String>,
}

/// Whether Stripe is configured (secrets are never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeStatus {
    /// Configured.
    pub configured: bool,
    /// First characters of the secret key.
    pub key_prefix: Option<String>,
    /// API base URL in use.
    pub base_url: Option<String>,
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

/// The shop's Stripe configuration, if any.
pub async fn stripe_config(platform: &Platform, db: &AnyPool) -> ApiResult<Option<StripeConfig>> {
    let sealed: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM payment_providers WHERE name = 'stripe'")
            .fetch_optional(db)
            .await?;
    let Some(sealed) = sealed else { return Ok(None) };
    let plain =
        sealer(platform)?.open(STRIPE_CONTEXT, &sealed).map_err(|e| ApiError::internal(&e))?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| ApiError::internal(&e))
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
    let config = stripe_config(&tenant.platform, &tenant.db).await?;
    Ok(Json(StripeStatus {
        configured: config.is_some(),
        key_prefix: config.as_ref().map(|c| c.secret_key.chars().take(8).collect()),
        base_url: config.map(|c| c.base_url.unwrap_or_else(|| STRIPE_API.into())),
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
    if let Some(base) = &config.base_url {
        url::Url::parse(base).map_err(|e| ApiError::invalid("base_url", e.to_string()))?;
    }
    let plain = serde_json::to_vec(&config).map_err(|e| ApiError::internal(&e))?;
    let sealed = sealer(&tenant.platform)?.seal(STRIPE_CONTEXT, &plain);
    sqlx::query(
        "INSERT INTO payment_providers (name, sealed, updated_at) VALUES ('stripe', $1, $2) \
         ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
    )
    .bind(sealed)
    .bind(now_ms())
    .execute(&tenant.db)
    .await?;
    tenant.audit("payments.stripe", json!({})).await;
    Ok(Json(StripeStatus {
        configured: true,
        key_prefix: Some(config.secret_key.chars().take(8).collect()),
        base_url: Some(config.base_url.unwrap_or_else(|| STRIPE_API.into())),
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

fn stripe_base(c: &StripeConfig) -> String {
    c.base_url.clone().unwrap_or_else(|| STRIPE_API.into()).trim_end_matches('/').to_owned()
}

fn form(pairs: &[(&str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Starts the payment of a new order with its provider. Stripe: a PaymentIntent created
/// with the order id as Stripe's idempotency key, so a retry never makes a second charge.
pub async fn start(
    platform: &Platform,
    db: &AnyPool,
    provider: &str,
    order: &Order,
) -> ApiResult<Started> {
    match provider {
        "manual" => Ok(Started { status: "pending".into(), ..Started::default() }),
        "stripe" => {
            let Some(c) = stripe_config(platform, db).await? else {
                return Ok(Started {
                    status: "error".into(),
                    error: Some("Stripe is not configured".into()),
                    ..Started::default()
                });
            };
            let body = form(&[
                ("amount", order.total.to_string()),
                ("currency", order.currency.to_ascii_lowercase()),
                ("metadata[order_id]", order.id.clone()),
                ("metadata[order_number]", order.number.to_string()),
                ("receipt_email", order.email.clone()),
                ("automatic_payment_methods[enabled]", "true".into()),
            ]);
            let sent = platform
                .http
                .post(format!("{}/v1/payment_intents", stripe_base(&c)))
                .bearer_auth(&c.secret_key)
                .header("idempotency-key", format!("aurelio-order-{}", order.id))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await;
            let answer: Result<Value, String> = match sent {
                Ok(r) if r.status().is_success() => r.json().await.map_err(|e| e.to_string()),
                Ok(r) => Err(format!(
                    "Stripe answered {}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => Err(format!("cannot reach Stripe: {e}")),
            };
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
    let c = stripe_config(&tenant.platform, &tenant.db).await?.ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "provider_missing", "Stripe is not configured")
    })?;
    let sent = tenant
        .platform
        .http
        .post(format!("{}/v1/refunds", stripe_base(&c)))
        .bearer_auth(&c.secret_key)
        .header(
            "idempotency-key",
            format!("aurelio-refund-{}-{}-{amount}", order.id, order.refunded),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("payment_intent", intent.to_owned()), ("amount", amount.to_string())]))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_error",
            format!("Stripe refused the refund: {}", r.status()),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_error",
            format!("cannot reach Stripe: {e}"),
        )),
    }
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
    let config = stripe_config(&platform, &db).await?.ok_or_else(|| ApiError::not_found("shop"))?;
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
        if let Some(c) = stripe_config(&tenant.platform, &tenant.db).await?
            && !intent.is_empty()
        {
            let got = tenant
                .platform
                .http
                .get(format!("{}/v1/payment_intents/{intent}", stripe_base(&c)))
                .bearer_auth(&c.secret_key)
                .send()
                .await;
            if let Ok(r) = got
                && let Ok(v) = r.json::<Value>().await
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
