//! Outgoing webhooks (`order.created`, `order.paid`, ...): signed with HMAC-SHA256 and a
//! timestamp (`Aurelio-Signature: t=<unix>,v1=<hex>` over `"<t>.<body>"`), written to the
//! shop's outbox in the same transaction as the change they announce, and delivered by the
//! job workers with retries and exponential backoff, so none is lost while a receiver is
//! down. Each delivery carries `Aurelio-Event-Id` for receivers to drop duplicates.
//!
//! Receivers are called through `egress::Egress`: public addresses only (checked when an
//! endpoint is registered and again, on the resolved address, at every delivery), no
//! redirects followed, bounded time. Signing secrets are stored sealed with
//! `AURELIO_SECRET_KEY`, bound to the shop and the endpoint (`sealed:<hex>`); secrets
//! stored in clear by earlier versions (`whsec_...`) still sign, and are sealed at their
//! next delivery.

use crate::auth::{Permission, Tenant};
use crate::crypto::{self, Sealer};
use crate::db::{now_ms, rfc3339};
use crate::egress::{Egress, EgressError};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use crate::registry::{self, new_id, random_hex};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Attempts before a delivery is given up (about two days of backoff).
pub const MAX_ATTEMPTS: i64 = 15;
/// Longest a delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of a receiver's answer read (the rest is ignored).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// Endpoints a shop may register.
pub const MAX_ENDPOINTS: i64 = 20;
/// Prefix of a sealed signing secret in `webhook_endpoints.secret`.
const SEALED: &str = "sealed:";

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(delete_endpoint))
        .routes(routes!(list_deliveries))
}

/// The events a shop can subscribe to.
pub const EVENTS: &[&str] = &[
    "order.created",
    "order.paid",
    "order.fulfilled",
    "order.delivered",
    "order.cancelled",
    "order.partially_refunded",
    "order.refunded",
    "order.expired",
];

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoint {
    /// Id.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Subscribed events (`*` for all).
    pub events: Vec<String>,
    /// The signing secret: shown only when the endpoint is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Created.
    pub created_at: String,
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https://...` or `http://...` at a public address (no user name or password).
    pub url: String,
    /// Events to receive (default all).
    #[serde(default)]
    pub events: Vec<String>,
}

/// The endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// List webhook endpoints.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("secret_key" = [])),
    responses((status = 200, body = EndpointList)))]
async fn list_endpoints(tenant: Tenant) -> ApiResult<Json<EndpointList>> {
    tenant.require(Permission::Settings)?;
    let rows = sqlx::query(
        "SELECT id, url, events, created_at FROM webhook_endpoints ORDER BY created_at, id",
    )
    .fetch_all(&tenant.db)
    .await?;
    let endpoints = rows
        .iter()
        .map(|r| {
            Ok(Endpoint {
                id: r.try_get("id")?,
                url: r.try_get("url")?,
                events: serde_json::from_str(&r.try_get::<String, _>("events")?)
                    .unwrap_or_default(),
                secret: None,
                created_at: rfc3339(r.try_get("created_at")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(EndpointList { endpoints }))
}

/// Register a webhook endpoint; the answer holds its signing secret, shown once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewEndpoint,
    security(("secret_key" = [])),
    responses((status = 201, body = Endpoint), (status = 422, body = crate::error::ErrorBody)))]
async fn create_endpoint(
    tenant: Tenant,
    Body(req): Body<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<Endpoint>)> {
    tenant.require(Permission::Settings)?;
    if req.url.len() > MAX_URL_LEN {
        return Err(ApiError::invalid(
            "url",
            format!("the URL is longer than {MAX_URL_LEN} bytes"),
        ));
    }
    let url = tenant.platform.http.vet_url(&req.url).await.map_err(|e| match e {
        EgressError::Refused(why) => ApiError::invalid(
            "url",
            format!("refused: {why}; webhooks are delivered to public addresses only"),
        ),
        other => ApiError::invalid("url", other.to_string()),
    })?;
    if req.events.len() > EVENTS.len() + 1 {
        return Err(ApiError::invalid("events", "more events than there are"));
    }
    for (i, e) in req.events.iter().enumerate() {
        if e != "*" && !EVENTS.contains(&e.as_str()) {
            return Err(ApiError::invalid(
                format!("events[{i}]"),
                format!("unknown event; one of {}", EVENTS.join(", ")),
            ));
        }
    }
    let sealer = tenant.platform.sealer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secret_key_missing",
            format!(
                "set {} (64 hex digits) on the server to store webhook signing secrets",
                crypto::SECRET_KEY_VAR
            ),
        )
    })?;
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints").fetch_one(&tenant.db).await?;
    if count >= MAX_ENDPOINTS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "limit_reached",
            format!("a shop has at most {MAX_ENDPOINTS} webhook endpoints"),
        ));
    }
    let events = if req.events.is_empty() { vec!["*".to_owned()] } else { req.events };
    let id = new_id("whe");
    let secret = format!("whsec_{}", random_hex(24));
    let now = now_ms();
    let url = url.to_string();
    sqlx::query("INSERT INTO webhook_endpoints (id, url, secret, events, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&id)
        .bind(&url)
        .bind(seal(sealer, &tenant.shop.id, &id, &secret))
        .bind(json!(events).to_string())
        .bind(now)
        .execute(&tenant.db)
        .await?;
    tenant.audit("webhook.create", json!({ "id": id, "url": url })).await;
    Ok((
        StatusCode::CREATED,
        Json(Endpoint { id, url, events, secret: Some(secret), created_at: rfc3339(now) }),
    ))
}

/// Remove a webhook endpoint (its undelivered events are dropped).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "endpoint id")), security(("secret_key" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_endpoint(tenant: Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    tenant.require(Permission::Settings)?;
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(&id)
        .execute(&tenant.db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    sqlx::query("DELETE FROM outbox WHERE endpoint_id = $1 AND delivered_at IS NULL")
        .bind(&id)
        .execute(&tenant.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One event for an endpoint and how its delivery went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Event id (`Aurelio-Event-Id`).
    pub id: String,
    /// Event type (`order.created`…).
    pub event: String,
    /// `pending` (to be tried again), `delivered`, or `failed` (given up after
    /// `MAX_ATTEMPTS` attempts: never tried again).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last attempt failed (`null` once delivered).
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<String>,
    /// When the event happened.
    pub created_at: String,
}

/// An endpoint's deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// The latest 100 events, newest first.
    pub deliveries: Vec<Delivery>,
}

/// The latest events for an endpoint and how their delivery went (failed ones included).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "endpoint id")), security(("secret_key" = [])),
    responses((status = 200, body = DeliveryList), (status = 404, body = crate::error::ErrorBody)))]
async fn list_deliveries(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<DeliveryList>> {
    tenant.require(Permission::Settings)?;
    let known: Option<String> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1")
            .bind(&id)
            .fetch_optional(&tenant.db)
            .await?;
    if known.is_none() {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let rows = sqlx::query(
        "SELECT id, event, attempts, next_attempt_at, delivered_at, last_error, created_at \
         FROM outbox WHERE endpoint_id = $1 ORDER BY created_at DESC, id DESC LIMIT 100",
    )
    .bind(&id)
    .fetch_all(&tenant.db)
    .await?;
    let deliveries = rows
        .iter()
        .map(|r| {
            let attempts: i64 = r.try_get("attempts")?;
            let delivered: Option<i64> = r.try_get("delivered_at")?;
            let status = match delivered {
                Some(_) => "delivered",
                None if attempts >= MAX_ATTEMPTS => "failed",
                None => "pending",
            };
            let next: i64 = r.try_get("next_attempt_at")?;
            Ok(Delivery {
                id: r.try_get("id")?,
                event: r.try_get("event")?,
                status: status.to_owned(),
                attempts,
                last_error: r.try_get("last_error")?,
                next_attempt_at: (status == "pending").then(|| rfc3339(next)),
                delivered_at: delivered.map(rfc3339),
                created_at: rfc3339(r.try_get("created_at")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(DeliveryList { deliveries }))
}

/// Writes an event to the outbox for every subscribed endpoint, inside the caller's
/// transaction: the event exists if and only if the change does.
pub async fn enqueue_in(tx: &mut sqlx::AnyConnection, event: &str, data: &Value) -> ApiResult<()> {
    let endpoints =
        sqlx::query("SELECT id, events FROM webhook_endpoints").fetch_all(&mut *tx).await?;
    let now = now_ms();
    for e in endpoints {
        let events: Vec<String> =
            serde_json::from_str(&e.try_get::<String, _>("events")?).unwrap_or_default();
        if !events.iter().any(|x| x == "*" || x == event) {
            continue;
        }
        let id = new_id("msg");
        let payload = json!({ "id": id, "type": event, "created_at": rfc3339(now), "data": data });
        sqlx::query(
            "INSERT INTO outbox (id, endpoint_id, event, payload, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $5)",
        )
        .bind(&id)
        .bind(e.try_get::<String, _>("id")?)
        .bind(event)
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Queues a delivery job for the shop (after the transaction that wrote events commits).
pub async fn wake(platform: &Platform, shop_id: &str) {
    if let Err(e) = enqueue_job(platform, shop_id, now_ms()).await {
        tracing::warn!(shop = shop_id, error = %e.message, "cannot queue webhook delivery");
    }
}

async fn enqueue_job(platform: &Platform, shop_id: &str, due: i64) -> ApiResult<()> {
    crate::platform::jobs::enqueue(
        platform,
        crate::platform::jobs::NewJob::shop("webhooks", shop_id, "deliver").run_at(due),
    )
    .await?;
    Ok(())
}

/// Delay before attempt `n` (1-based) after a failure: 2^n seconds, at most 4 hours.
pub fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(1, 14).unsigned_abs())
        .min(Duration::from_secs(4 * 3600))
}

/// Delivers the shop's due events; queues the next delivery job when some remain.
/// The job's result: counts.
pub async fn deliver_due(platform: &Platform, shop_id: &str) -> Result<Value, Value> {
    let fail = |m: String| json!({ "message": m });
    let shop = registry::shop(&platform.registry, shop_id)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("the shop no longer exists".into()))?;
    let db = platform.shop_db(&shop).await.map_err(|e| fail(e.message))?;
    let (delivered, failed) =
        deliver_batch(platform, &db, shop_id).await.map_err(|e| fail(e.message))?;
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE delivered_at IS NULL AND attempts < $1",
    )
    .bind(MAX_ATTEMPTS)
    .fetch_one(&db)
    .await
    .map_err(|e| fail(e.to_string()))?;
    if let Some(due) = next {
        enqueue_job(platform, shop_id, due).await.map_err(|e| fail(e.message))?;
    }
    Ok(json!({ "delivered": delivered, "failed": failed }))
}

/// What a signing secret is sealed for: its shop and endpoint.
fn seal(sealer: &Sealer, shop_id: &str, endpoint_id: &str, secret: &str) -> String {
    let context = crypto::context(shop_id, &format!("webhook:{endpoint_id}"));
    format!("{SEALED}{}", sealer.seal(&context, secret.as_bytes()))
}

/// The signing secret of an endpoint as stored: sealed, or in clear (earlier versions;
/// sealed now when a key is set).
async fn signing_secret(
    platform: &Platform,
    db: &AnyPool,
    shop_id: &str,
    endpoint_id: &str,
    stored: &str,
) -> Result<String, String> {
    let Some(sealed) = stored.strip_prefix(SEALED) else {
        if let Some(sealer) = &platform.sealer {
            let update = sqlx::query(
                "UPDATE webhook_endpoints SET secret = $1 WHERE id = $2 AND secret = $3",
            )
            .bind(seal(sealer, shop_id, endpoint_id, stored))
            .bind(endpoint_id)
            .bind(stored);
            if let Err(e) = platform.pools.backend().write(db, update).await {
                tracing::warn!(shop = shop_id, error = %e, "cannot seal a webhook secret");
            }
        }
        return Ok(stored.to_owned());
    };
    let sealer = platform.sealer.as_ref().ok_or_else(|| {
        format!("the signing secret is sealed and {} is not set", crypto::SECRET_KEY_VAR)
    })?;
    let context = crypto::context(shop_id, &format!("webhook:{endpoint_id}"));
    let plain = sealer
        .open(&context, sealed)
        .map_err(|e| format!("the endpoint's signing secret cannot be read: {e}"))?;
    String::from_utf8(plain).map_err(|_| "the endpoint's signing secret is not text".to_owned())
}

/// Posts one event; what went wrong, if anything.
async fn post(
    platform: &Platform,
    url: &str,
    id: &str,
    secret: &str,
    payload: String,
) -> Option<String> {
    let t = now_ms() / 1000;
    let signature = crypto::sign(secret.as_bytes(), t, payload.as_bytes());
    let req = match platform.http.post(url) {
        Ok(req) => req
            .header("content-type", "application/json")
            .header("aurelio-event-id", id)
            .header("aurelio-signature", signature)
            .body(payload)
            .timeout(DELIVERY_TIMEOUT),
        Err(e) => return Some(format!("not delivered: {e}")),
    };
    match Egress::send(req, MAX_ANSWER_BYTES).await {
        Ok(answer) if answer.status.is_success() => None,
        Ok(answer) if answer.status.is_redirection() => Some(format!(
            "the receiver answered {} (redirects are not followed: register the final URL)",
            answer.status
        )),
        Ok(answer) => Some(format!("the receiver answered {}", answer.status)),
        Err(e @ EgressError::Refused(_)) => Some(format!("not delivered: {e}")),
        Err(e) => Some(format!("cannot reach the receiver: {e}")),
    }
}

async fn deliver_batch(
    platform: &Platform,
    db: &AnyPool,
    shop_id: &str,
) -> ApiResult<(usize, usize)> {
    let backend = platform.pools.backend();
    let rows = sqlx::query(
        "SELECT o.id, o.payload, o.attempts, e.id AS endpoint_id, e.url, e.secret FROM outbox o \
         JOIN webhook_endpoints e ON e.id = o.endpoint_id \
         WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 AND o.attempts < $2 \
         ORDER BY o.created_at, o.id LIMIT 100",
    )
    .bind(now_ms())
    .bind(MAX_ATTEMPTS)
    .fetch_all(db)
    .await?;
    let (mut delivered, mut failed) = (0, 0);
    for r in rows {
        let id: String = r.try_get("id")?;
        let payload: String = r.try_get("payload")?;
        let url: String = r.try_get("url")?;
        let endpoint: String = r.try_get("endpoint_id")?;
        let stored: String = r.try_get("secret")?;
        let attempts: i64 = r.try_get::<i64, _>("attempts")? + 1;
        let error = match signing_secret(platform, db, shop_id, &endpoint, &stored).await {
            Ok(secret) => post(platform, &url, &id, &secret, payload).await,
            Err(e) => Some(e),
        };
        if let Some(e) = &error {
            tracing::debug!(shop = shop_id, endpoint = %endpoint, error = %e, "webhook not delivered");
        }
        match error {
            None => {
                delivered += 1;
                let done = sqlx::query("UPDATE outbox SET delivered_at = $1, attempts = $2, last_error = NULL WHERE id = $3")
                    .bind(now_ms())
                    .bind(attempts)
                    .bind(&id);
                backend.write(db, done).await?;
            }
            Some(message) => {
                failed += 1;
                let wait = i64::try_from(backoff(attempts).as_millis()).unwrap_or(i64::MAX);
                let retry = sqlx::query("UPDATE outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4")
                    .bind(attempts)
                    .bind(now_ms() + wait)
                    .bind(&message)
                    .bind(&id);
                backend.write(db, retry).await?;
            }
        }
    }
    metrics::counter!("aurelio_webhooks_delivered_total").increment(delivered as u64);
    metrics::counter!("aurelio_webhooks_failed_total").increment(failed as u64);
    Ok((delivered, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), Duration::from_secs(4 * 3600));
    }
}
