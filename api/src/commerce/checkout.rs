//! Checkout: a cart becomes an order, exactly once.
//!
//! `POST /api/v1/carts/{token}/checkout` requires an `Idempotency-Key`. The key is claimed
//! first; the same key with the same body returns the same order, with another body it is
//! refused. Then, in one transaction: the cart is closed (`status = 'open'` → `completed`,
//! conditional, so two checkouts of one cart cannot both win), stock is reserved with one
//! conditional update per line (`inventory >= quantity`, never read-then-write, lines in a
//! fixed order so concurrent checkouts cannot deadlock), discount usage is counted with a
//! conditional update, the order gets its number, the order and its payment are written,
//! and `order.created` goes to the outbox. Any failure rolls all of it back: a failed
//! checkout never half-writes an order. The payment provider is called after the commit
//! (never inside a database lock), with the order id as its idempotency key.
//!
//! If prices changed since the cart was last seen, the answer is `409 cart_changed` listing
//! exactly what changed (the cart now shows the new prices); if stock ran out, `409
//! out_of_stock` listing each line with what is available.

use super::carts::{self, is_email};
use super::discounts::{self, Reason};
use super::orders::{self, OrderResponse};
use super::payments;
use super::settings::is_country;
use super::webhooks;
use crate::auth::{Permission, Tenant};
use crate::catalog::store::next_counter;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult, Detail};
use crate::extract::Body;
use crate::platform::Platform;
use crate::registry::new_id;
use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new().routes(routes!(checkout)).routes(routes!(cart_order))
}

/// A postal address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// More.
    #[serde(default)]
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// Region (state, province, county).
    #[serde(default)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Phone.
    #[serde(default)]
    pub phone: Option<String>,
}

/// The checkout request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Email for the order.
    pub email: String,
    /// Where to ship.
    pub shipping_address: Address,
    /// Shipping rate id (default: the cart's, or the first option).
    #[serde(default)]
    pub shipping_rate: Option<String>,
    /// `manual` (default) or `stripe`.
    #[serde(default)]
    pub payment_provider: Option<String>,
    /// The total the shopper saw; if the server's differs, the answer is `cart_changed`.
    #[serde(default)]
    pub expected_total: Option<i64>,
}

fn check_address(a: &Address) -> ApiResult<()> {
    let field = |f: &str| format!("shipping_address.{f}");
    for (name, value) in [("name", &a.name), ("line1", &a.line1), ("city", &a.city)] {
        if value.trim().is_empty() {
            return Err(ApiError::invalid(field(name), format!("the {name} is empty")));
        }
        if value.len() > 200 {
            return Err(ApiError::invalid(field(name), "at most 200 characters"));
        }
    }
    if !is_country(&a.country) {
        return Err(ApiError::invalid(
            field("country"),
            "not an ISO 3166-1 alpha-2 code like `IE`",
        ));
    }
    if a.postal_code.as_deref().is_some_and(|p| p.len() > 20) {
        return Err(ApiError::invalid(field("postal_code"), "at most 20 characters"));
    }
    Ok(())
}

fn conflict(code: &'static str, message: impl Into<String>, details: Vec<Detail>) -> ApiError {
    let mut e = ApiError::new(StatusCode::CONFLICT, code, message);
    e.details = details;
    e
}

/// Claims an idempotency key; `Some(order id)` when this exact request already succeeded.
async fn claim_key(tenant: &Tenant, key: &str, hash: &str) -> ApiResult<Option<String>> {
    let insert = sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, created_at) VALUES ($1, $2, $3)",
    )
    .bind(key)
    .bind(hash)
    .bind(now_ms());
    let claimed = tenant.platform.pools.backend().write(&tenant.db, insert).await;
    match claimed {
        Ok(_) => Ok(None),
        Err(e) if crate::error::is_unique_violation(&e) => {
            let row: Option<(String, Option<String>)> = {
                use sqlx::Row;
                sqlx::query("SELECT request_hash, response FROM idempotency_keys WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&tenant.db)
                    .await?
                    .map(|r| {
                        Ok::<_, sqlx::Error>((r.try_get("request_hash")?, r.try_get("response")?))
                    })
                    .transpose()?
            };
            match row {
                Some((h, _)) if h != hash => Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )
                .with_field("Idempotency-Key")),
                Some((_, Some(order_id))) => Ok(Some(order_id)),
                _ => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "request_in_progress",
                    "a request with this Idempotency-Key is in progress; retry in a moment",
                )),
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn release_key(tenant: &Tenant, key: &str) {
    let delete =
        sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND response IS NULL").bind(key);
    let _ = tenant.platform.pools.backend().write(&tenant.db, delete).await;
}

/// Place the order. Requires `Idempotency-Key`; the same key returns the same order.
#[utoipa::path(post, path = "/api/v1/carts/{token}/checkout", tag = "carts", request_body = CheckoutRequest,
    params(("token" = String, Path, description = "cart token"),
        ("Idempotency-Key" = String, Header, description = "a unique key per checkout attempt")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 201, body = OrderResponse), (status = 409, body = crate::error::ErrorBody,
        description = "out_of_stock, cart_changed, cart_completed, discount_not_applicable"),
        (status = 422, body = crate::error::ErrorBody)))]
async fn checkout(
    tenant: Tenant,
    Path(token): Path<String>,
    headers: HeaderMap,
    Body(req): Body<CheckoutRequest>,
) -> ApiResult<(StatusCode, Json<OrderResponse>)> {
    tenant.require(Permission::Shop)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request(
                "send a unique `Idempotency-Key` header (1 to 255 characters) with each checkout",
            )
            .with_field("Idempotency-Key")
        })?
        .to_owned();
    let body = serde_json::to_vec(&req).map_err(|e| ApiError::internal(&e))?;
    let hash = blake3::hash(&[token.as_bytes(), b"\n", &body].concat()).to_hex().to_string();
    let scoped = format!("checkout:{token}:{key}");
    if let Some(order_id) = claim_key(&tenant, &scoped, &hash).await? {
        return Ok((
            StatusCode::CREATED,
            Json(OrderResponse { order: orders::load(&tenant.db, &order_id).await? }),
        ));
    }
    let started = std::time::Instant::now();
    let result = place(&tenant, &token, &scoped, &req).await;
    metrics::histogram!("aurelio_checkout_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok((order_id, availability_changed)) => {
            metrics::counter!("aurelio_checkouts_total", "outcome" => "created").increment(1);
            let order = orders::load(&tenant.db, &order_id).await?;
            let provider = order.provider.clone();
            let started = payments::start(&tenant, &provider, &order).await?;
            let backend = tenant.platform.pools.backend();
            payments::record(backend, &tenant.db, &order, &provider, &started).await?;
            webhooks::wake(&tenant.platform, &tenant.shop.id).await;
            // The storefront shows availability, never counts: it is built again only
            // when a variant's availability changed (debounced). The stock is held for
            // the hold of an unpaid order's provider (`holds`).
            if availability_changed {
                crate::platform::jobs::request_build(
                    &tenant.platform,
                    &tenant.shop.id,
                    "stock changed",
                )
                .await?;
            }
            super::holds::schedule_hold(&tenant.platform, &tenant.shop.id, &provider).await;
            Ok((
                StatusCode::CREATED,
                Json(OrderResponse { order: orders::load(&tenant.db, &order_id).await? }),
            ))
        }
        Err(e) => {
            metrics::counter!("aurelio_checkouts_total", "outcome" => e.code).increment(1);
            release_key(&tenant, &scoped).await;
            Err(e)
        }
    }
}

/// Validates, prices and writes the order in one transaction; the order id, and whether
/// the stock it took changed a variant's availability.
async fn place(
    tenant: &Tenant,
    token: &str,
    idem_key: &str,
    req: &CheckoutRequest,
) -> ApiResult<(String, bool)> {
    if !is_email(&req.email) {
        return Err(ApiError::invalid("email", "not an email address"));
    }
    check_address(&req.shipping_address)?;
    let provider = req.payment_provider.clone().unwrap_or_else(|| "manual".into());
    if !payments::is_provider(&provider) {
        return Err(ApiError::invalid("payment_provider", "`manual` or `stripe`"));
    }
    let db = &tenant.db;
    let mut row = carts::cart_row(db, token).await?;
    if row.status != "open" {
        return Err(conflict("cart_completed", "this cart has been checked out", Vec::new()));
    }
    let facts = carts::shop_facts(tenant).await?;
    if !facts.settings.payment_providers.contains(&provider) {
        return Err(ApiError::invalid(
            "payment_provider",
            format!("this shop does not take `{provider}` payments"),
        ));
    }
    row.email = Some(req.email.trim().to_owned());
    row.country = Some(req.shipping_address.country.to_ascii_uppercase());
    row.region = req.shipping_address.region.clone();
    if req.shipping_rate.is_some() {
        row.shipping_rate.clone_from(&req.shipping_rate);
    }
    let lines = carts::stored_lines(db, token).await?;
    if lines.is_empty() {
        return Err(ApiError::invalid("lines", "the cart is empty"));
    }
    let priced = carts::price(&tenant.platform, &tenant.shop.id, db, &row, &lines, &facts).await?;
    let cart = &priced.cart;
    let money =
        |minor: i64| aurelio_engine::money::Money { minor, currency: facts.currency }.decimal();
    // What changed since the shopper last saw the cart.
    let mut changes = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        match l.variant.price {
            None => changes.push(Detail {
                code: "unavailable".into(),
                message: format!("`{}` is no longer for sale", l.variant.title),
                field: Some(format!("lines[{i}]")),
            }),
            Some(now) if now != l.snapshot_price => changes.push(Detail {
                code: "price_changed".into(),
                message: format!(
                    "`{}` {}: {} → {} {}",
                    l.variant.title,
                    l.variant.label,
                    money(l.snapshot_price),
                    money(now),
                    facts.currency.code()
                ),
                field: Some(format!("lines[{i}].unit_price")),
            }),
            _ => {}
        }
    }
    if let Some(expected) = req.expected_total
        && expected != cart.totals.total
    {
        changes.push(Detail {
            code: "total_changed".into(),
            message: format!("the total is {} now, not {expected}", cart.totals.total),
            field: Some("expected_total".into()),
        });
    }
    if zone_required(&facts, &row) {
        return Err(ApiError::invalid(
            "shipping_address.country",
            "this shop does not ship to that country",
        ));
    }
    for s in cart.discount_codes.iter().filter(|s| !s.applied) {
        changes.push(Detail {
            code: "discount_removed".into(),
            message: format!("{}: {}", s.code, s.message.clone().unwrap_or_default()),
            field: Some("discount_codes".into()),
        });
    }
    if !changes.is_empty() {
        // The cart takes the current prices (and drops codes that no longer apply), so the
        // shopper can review and retry.
        let valid: Vec<String> =
            cart.discount_codes.iter().filter(|s| s.applied).map(|s| s.code.clone()).collect();
        let mut tx = tenant.platform.pools.backend().begin_write(db).await?;
        sqlx::query(
            "UPDATE cart_lines SET unit_price = (SELECT v.price FROM variants v WHERE v.id = cart_lines.variant_id) \
             WHERE cart_token = $1 AND EXISTS (SELECT 1 FROM variants v WHERE v.id = cart_lines.variant_id)",
        )
        .bind(token)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE carts SET codes = $1, version = version + 1 WHERE token = $2 AND status = 'open'")
            .bind(json!(valid).to_string())
            .bind(token)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Err(conflict(
            "cart_changed",
            "the cart changed since it was last shown: review it and try again",
            changes,
        ));
    }

    let mut tx = tenant.platform.pools.backend().begin_write(db).await?;
    // Only the cart as priced above: a change since (another tab adding a line) is news.
    let closed = sqlx::query(
        "UPDATE carts SET status = 'completed', updated_at = $1, version = version + 1 \
         WHERE token = $2 AND status = 'open' AND version = $3",
    )
    .bind(now_ms())
    .bind(token)
    .bind(row.version)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if closed != 1 {
        drop(tx);
        if carts::cart_row(db, token).await?.status == "open" {
            return Err(conflict(
                "cart_changed",
                "the cart changed during checkout: review it and try again",
                Vec::new(),
            ));
        }
        return Err(conflict("cart_completed", "this cart has been checked out", Vec::new()));
    }
    // Reserve stock, lines in variant-id order so concurrent checkouts lock alike.
    let mut order_lines: Vec<&carts::StoredLine> = lines.iter().collect();
    order_lines.sort_by(|a, b| a.variant_id.cmp(&b.variant_id));
    let mut short = Vec::new();
    for l in &order_lines {
        let reserved = sqlx::query(
            "UPDATE variants SET inventory = inventory - $1 WHERE id = $2 \
             AND (inventory IS NULL OR inventory_policy = 'continue' OR inventory >= $1)",
        )
        .bind(l.quantity)
        .bind(&l.variant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reserved != 1 {
            let available: Option<i64> =
                sqlx::query_scalar("SELECT inventory FROM variants WHERE id = $1")
                    .bind(&l.variant_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
            let i = lines.iter().position(|x| x.variant_id == l.variant_id).unwrap_or(0);
            short.push(Detail {
                code: "out_of_stock".into(),
                message: format!(
                    "`{}` {}: {} wanted, {} available",
                    l.variant.title,
                    l.variant.label,
                    l.quantity,
                    available.unwrap_or(0).max(0)
                ),
                field: Some(format!("lines[{i}].quantity")),
            });
        }
    }
    if !short.is_empty() {
        drop(tx); // rolls back: nothing was written
        return Err(conflict(
            "out_of_stock",
            "some items are no longer available in the quantity asked",
            short,
        ));
    }
    let taken: Vec<(String, i64)> =
        order_lines.iter().map(|l| (l.variant_id.clone(), l.quantity)).collect();
    let availability_changed = super::holds::availability_changed(&mut tx, &taken, true).await?;
    let order_id = new_id("ord");
    let customer = discounts::customer_key(&req.email);
    for d in &priced.applied {
        let counted = sqlx::query(
            "UPDATE discounts SET usage_count = usage_count + 1 WHERE code = $1 AND active = 1 \
             AND (usage_limit IS NULL OR usage_count < usage_limit)",
        )
        .bind(&d.code)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if counted != 1 {
            return Err(not_applicable(&d.code, Reason::UsageLimitReached));
        }
        // `ON CONFLICT DO NOTHING`, not a caught unique violation: on PostgreSQL a failed
        // statement aborts the whole transaction.
        let redeemed = sqlx::query(
            "INSERT INTO discount_redemptions (code, customer, order_id) VALUES ($1, $2, $3) \
             ON CONFLICT (code, customer) DO NOTHING",
        )
        .bind(&d.code)
        .bind(&customer)
        .bind(&order_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if redeemed == 0 && d.once_per_customer {
            return Err(not_applicable(&d.code, Reason::AlreadyUsedByCustomer));
        }
    }
    let number = 1000 + next_counter(&mut tx, "order").await?;
    let now = now_ms();
    let t = &cart.totals;
    let doc = json!({
        "lines": cart.lines.iter().map(|l| json!({
            "variant_id": l.variant_id, "sku": l.sku, "product_handle": l.product_handle,
            "title": l.title, "variant_title": l.variant_title, "quantity": l.quantity,
            "unit_price": l.unit_price, "amounts": l.amounts,
        })).collect::<Vec<_>>(),
        "shipping_address": req.shipping_address,
        "shipping_rate": cart.shipping_rate,
        "discount_codes": cart.discount_codes,
        "tax_rate_bp": cart.tax_rate_bp,
        "totals": t,
        "breakdown": cart.breakdown,
    });
    sqlx::query(
        "INSERT INTO orders (id, number, cart_token, email, status, currency, subtotal, discount, shipping, \
         tax, total, refunded, provider, doc, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, 0, $11, $12, $13, $13)",
    )
    .bind(&order_id)
    .bind(number)
    .bind(token)
    .bind(req.email.trim())
    .bind(&cart.currency)
    .bind(t.subtotal)
    .bind(t.discount + t.shipping_discount)
    .bind(t.shipping)
    .bind(t.tax)
    .bind(t.total)
    .bind(&provider)
    .bind(doc.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO payments (id, order_id, provider, status, amount, created_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', $4, $5, $5)",
    )
    .bind(new_id("pay"))
    .bind(&order_id)
    .bind(&provider)
    .bind(t.total)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE carts SET order_id = $1, email = $2, country = $3, region = $4 WHERE token = $5",
    )
    .bind(&order_id)
    .bind(req.email.trim())
    .bind(&row.country)
    .bind(&row.region)
    .bind(token)
    .execute(&mut *tx)
    .await?;
    orders::event(&mut tx, &order_id, "created", &json!({ "number": number })).await?;
    webhooks::enqueue_in(&mut tx, "order.created", &json!({ "order_id": order_id, "number": number, "total": t.total, "currency": cart.currency })).await?;
    sqlx::query("UPDATE idempotency_keys SET status = 201, response = $1 WHERE key = $2")
        .bind(&order_id)
        .bind(idem_key)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((order_id, availability_changed))
}

fn zone_required(facts: &carts::ShopFacts, row: &carts::CartRow) -> bool {
    !facts.settings.shipping_zones.is_empty()
        && facts.settings.zone(row.country.as_deref().unwrap_or_default()).is_none()
}

fn not_applicable(code: &str, reason: Reason) -> ApiError {
    let mut e = ApiError::new(StatusCode::CONFLICT, "discount_not_applicable", reason.message())
        .with_field("discount_codes");
    e.details.push(Detail {
        code: reason.code(),
        message: format!("{code}: {}", reason.message()),
        field: Some("discount_codes".into()),
    });
    e
}

/// The order placed from a cart (for the confirmation page; the cart token is the secret).
#[utoipa::path(get, path = "/api/v1/carts/{token}/order", tag = "carts",
    params(("token" = String, Path, description = "cart token")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn cart_order(tenant: Tenant, Path(token): Path<String>) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::Shop)?;
    let order_id = carts::order_of(&tenant.db, &token).await?;
    Ok(Json(OrderResponse { order: orders::load(&tenant.db, &order_id).await? }))
}
