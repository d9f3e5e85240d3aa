//! Orders: a state machine that refuses invalid transitions, each change one conditional
//! update (`... WHERE status = <expected>`), stock restored on cancel, an event log, and
//! outgoing webhooks written to the outbox in the same transaction.
//!
//! ```text
//! pending ──mark paid──▶ paid ──fulfil──▶ fulfilled ──deliver──▶ delivered
//!    │                    │  ╲                 │                     │
//!  cancel               cancel  refund ────────┴──── refund ─────────┘
//!    ▼                    ▼        ▼
//! cancelled          cancelled   partially_refunded ──refund──▶ refunded
//! ```

use super::payments;
use super::webhooks;
use crate::auth::{Permission, Tenant};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use crate::registry::new_id;
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(mark_paid_route))
        .routes(routes!(fulfil))
        .routes(routes!(deliver))
        .routes(routes!(cancel))
        .routes(routes!(refund))
}

/// An order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Placed, not paid.
    Pending,
    /// Paid.
    Paid,
    /// Shipped.
    Fulfilled,
    /// Arrived.
    Delivered,
    /// Cancelled (stock restored).
    Cancelled,
    /// Part of the amount refunded.
    PartiallyRefunded,
    /// All of it refunded.
    Refunded,
    /// Unpaid when its hold was over (stock restored; see `holds`).
    Expired,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Paid,
            Self::Fulfilled,
            Self::Delivered,
            Self::Cancelled,
            Self::PartiallyRefunded,
            Self::Refunded,
            Self::Expired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Payment arrived.
    MarkPaid,
    /// Shipped.
    Fulfil,
    /// Arrived.
    Deliver,
    /// Cancelled.
    Cancel,
    /// Unpaid when its hold was over.
    Expire,
    /// Money returned: whether it is all of what is left.
    Refund {
        /// The refund brings the refunded amount to the total.
        full: bool,
    },
}

/// The state after `action`, or `None` when the transition is not allowed.
pub fn next(from: Status, action: Action) -> Option<Status> {
    use Status::*;
    match (from, action) {
        (Pending, Action::MarkPaid) => Some(Paid),
        (Pending, Action::Expire) => Some(Expired),
        (Paid, Action::Fulfil) => Some(Fulfilled),
        (Fulfilled, Action::Deliver) => Some(Delivered),
        (Pending | Paid, Action::Cancel) => Some(Cancelled),
        (Paid | Fulfilled | Delivered | PartiallyRefunded, Action::Refund { full }) => {
            Some(if full { Refunded } else { PartiallyRefunded })
        }
        _ => None,
    }
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    /// Id.
    pub id: String,
    /// Number, per shop, from 1001.
    pub number: i64,
    /// State.
    pub status: Status,
    /// Customer email.
    pub email: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Sum of lines (minor units).
    pub subtotal: i64,
    /// Discounts.
    pub discount: i64,
    /// Shipping.
    pub shipping: i64,
    /// Tax (included or added, see `details.totals.tax_included`).
    pub tax: i64,
    /// Charged.
    pub total: i64,
    /// Refunded so far.
    pub refunded: i64,
    /// Payment provider.
    pub provider: String,
    /// Lines, address, discounts, breakdown.
    #[schema(value_type = Object)]
    pub details: Value,
    /// The payment: status, and for Stripe the `client_secret` the browser confirms with.
    #[schema(value_type = Object)]
    pub payment: Value,
    /// Placed.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// `{"order": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    /// The order.
    pub order: Order,
}

/// Loads an order.
pub async fn load(db: &AnyPool, id: &str) -> ApiResult<Order> {
    let r = sqlx::query(
        "SELECT id, number, status, email, currency, subtotal, discount, shipping, tax, total, refunded, \
         provider, doc, created_at, updated_at FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::not_found("order"))?;
    let payment = sqlx::query(
        "SELECT id, provider, status, amount, external_id, client_secret FROM payments WHERE order_id = $1 \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(|p| -> Result<Value, sqlx::Error> {
        Ok(json!({
            "id": p.try_get::<String, _>("id")?,
            "provider": p.try_get::<String, _>("provider")?,
            "status": p.try_get::<String, _>("status")?,
            "amount": p.try_get::<i64, _>("amount")?,
            "external_id": p.try_get::<Option<String>, _>("external_id")?,
            "client_secret": p.try_get::<Option<String>, _>("client_secret")?,
        }))
    })
    .transpose()?
    .unwrap_or(Value::Null);
    Ok(Order {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        status: Status::parse(&r.try_get::<String, _>("status")?).unwrap_or(Status::Pending),
        email: r.try_get("email")?,
        currency: r.try_get("currency")?,
        subtotal: r.try_get("subtotal")?,
        discount: r.try_get("discount")?,
        shipping: r.try_get("shipping")?,
        tax: r.try_get("tax")?,
        total: r.try_get("total")?,
        refunded: r.try_get("refunded")?,
        provider: r.try_get("provider")?,
        details: serde_json::from_str(&r.try_get::<String, _>("doc")?).unwrap_or(Value::Null),
        payment,
        created_at: rfc3339(r.try_get("created_at")?),
        updated_at: rfc3339(r.try_get("updated_at")?),
    })
}

/// Records an order event (inside the caller's transaction).
pub async fn event(
    tx: &mut sqlx::AnyConnection,
    order_id: &str,
    kind: &str,
    detail: &Value,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO order_events (id, order_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id("evt"))
    .bind(order_id)
    .bind(kind)
    .bind(detail.to_string())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Marks an order paid: the one step behind the webhook, the browser's return and the
/// merchant's button. Whichever comes second changes nothing. Whether it changed the order.
pub async fn mark_paid(
    platform: &Platform,
    shop_id: &str,
    db: &AnyPool,
    order_id: &str,
    source: &str,
) -> ApiResult<bool> {
    let mut tx = platform.pools.backend().begin_write(db).await?;
    let moved = sqlx::query(
        "UPDATE orders SET status = 'paid', updated_at = $1 WHERE id = $2 AND status = 'pending'",
    )
    .bind(now_ms())
    .bind(order_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if moved {
        sqlx::query(
            "UPDATE payments SET status = 'succeeded', updated_at = $1 WHERE order_id = $2",
        )
        .bind(now_ms())
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        event(&mut tx, order_id, "paid", &json!({ "source": source })).await?;
        webhooks::enqueue_in(
            &mut tx,
            "order.paid",
            &json!({ "order_id": order_id, "source": source }),
        )
        .await?;
    }
    tx.commit().await?;
    if moved {
        webhooks::wake(platform, shop_id).await;
    }
    Ok(moved)
}

/// Applies a transition with a conditional update; 409 `invalid_transition` when the
/// order is not in a state that allows it. `refund_amount` was already added to
/// `refunded` by `reserve_refund` (refunds reserve before the provider is called).
async fn transition(
    tenant: &Tenant,
    id: &str,
    action: Action,
    refund_amount: i64,
) -> ApiResult<Order> {
    let platform = &tenant.platform;
    let order = load(&tenant.db, id).await?;
    let Some(to) = next(order.status, action) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("an order that is {} cannot be {}", order.status.as_str(), action_name(action)),
        )
        .with_field("status"));
    };
    let mut tx = platform.pools.backend().begin_write(&tenant.db).await?;
    let moved =
        sqlx::query("UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(to.as_str())
            .bind(now_ms())
            .bind(id)
            .bind(order.status.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if !moved {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the order changed meanwhile, try again",
        ));
    }
    if action == Action::Cancel {
        restore_stock(&mut tx, &order).await?;
    }
    let name = format!("order.{}", to.as_str());
    event(
        &mut tx,
        id,
        to.as_str(),
        &json!({ "from": order.status.as_str(), "refund": refund_amount }),
    )
    .await?;
    webhooks::enqueue_in(&mut tx, &name, &json!({ "order_id": id, "status": to.as_str() })).await?;
    tx.commit().await?;
    webhooks::wake(platform, &tenant.shop.id).await;
    if action == Action::Cancel {
        crate::platform::jobs::request_build(platform, &tenant.shop.id, "stock restored").await?;
    }
    // A refund's amount is what the log is read for.
    let detail = match action {
        Action::Refund { .. } => json!({ "order": id, "amount": refund_amount }),
        _ => json!({ "order": id }),
    };
    tenant.audit(&name, detail).await;
    load(&tenant.db, id).await
}

/// Takes `amount` of what is left to refund, before the provider is asked: of two
/// refunds at once only one can take the same money (the update is conditional on the
/// refunded amount it saw and on the total). 409 `conflict` when another won.
async fn reserve_refund(tenant: &Tenant, order: &Order, amount: i64) -> ApiResult<()> {
    let query = sqlx::query(
        "UPDATE orders SET refunded = refunded + $1, updated_at = $2 \
         WHERE id = $3 AND status = $4 AND refunded = $5 AND refunded + $1 <= total",
    )
    .bind(amount)
    .bind(now_ms())
    .bind(&order.id)
    .bind(order.status.as_str())
    .bind(order.refunded);
    let reserved = tenant.platform.pools.backend().write(&tenant.db, query).await?;
    if reserved.rows_affected() != 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the order changed meanwhile (another refund or cancellation): reload it and try again",
        ));
    }
    Ok(())
}

/// Gives back a reservation the provider refused.
async fn release_refund(tenant: &Tenant, order: &Order, amount: i64) {
    let query =
        sqlx::query("UPDATE orders SET refunded = refunded - $1 WHERE id = $2 AND refunded = $3")
            .bind(amount)
            .bind(&order.id)
            .bind(order.refunded + amount);
    if let Err(e) = tenant.platform.pools.backend().write(&tenant.db, query).await {
        tracing::error!(order = %order.id, error = %e, "cannot release a refused refund's reservation");
    }
}

/// Refunds `amount` through the order's provider: reserved first, released if the
/// provider refuses.
async fn refund_through_provider(tenant: &Tenant, order: &Order, amount: i64) -> ApiResult<()> {
    reserve_refund(tenant, order, amount).await?;
    if let Err(e) = payments::refund(tenant, order, amount).await {
        release_refund(tenant, order, amount).await;
        return Err(e);
    }
    Ok(())
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::MarkPaid => "marked paid",
        Action::Fulfil => "fulfilled",
        Action::Deliver => "delivered",
        Action::Cancel => "cancelled",
        Action::Expire => "expired",
        Action::Refund { .. } => "refunded",
    }
}

/// Puts the order's units back in stock (counted variants only).
async fn restore_stock(tx: &mut sqlx::AnyConnection, order: &Order) -> ApiResult<()> {
    let lines = order.details.get("lines").and_then(Value::as_array).cloned().unwrap_or_default();
    for l in lines {
        let (Some(variant), Some(q)) = (
            l.get("variant_id").and_then(Value::as_str),
            l.get("quantity").and_then(Value::as_i64),
        ) else {
            continue;
        };
        sqlx::query("UPDATE variants SET inventory = inventory + $1 WHERE id = $2 AND inventory IS NOT NULL")
            .bind(q)
            .bind(variant)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Cursor pagination of orders.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// At most this many (default 50, at most 250).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    /// Orders.
    pub orders: Vec<Order>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderQuery), security(("secret_key" = [])),
    responses((status = 200, body = OrderList)))]
async fn list_orders(tenant: Tenant, Query(q): Query<OrderQuery>) -> ApiResult<Json<OrderList>> {
    tenant.require(Permission::Read)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 250);
    let before: i64 = match &q.cursor {
        None => i64::MAX,
        Some(c) => c
            .strip_prefix('o')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::invalid("cursor", "not a cursor from this API"))?,
    };
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM orders WHERE number < $1 ORDER BY number DESC LIMIT $2")
            .bind(before)
            .bind(limit + 1)
            .fetch_all(&tenant.db)
            .await?;
    let mut orders = Vec::new();
    for id in ids.iter().take(usize::try_from(limit).unwrap_or(0)) {
        orders.push(load(&tenant.db, id).await?);
    }
    let next_cursor = (ids.len() > orders.len())
        .then(|| orders.last().map(|o| format!("o{}", o.number)))
        .flatten();
    Ok(Json(OrderList { orders, next_cursor }))
}

/// One order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "order id")), security(("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_order(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::Read)?;
    Ok(Json(OrderResponse { order: load(&tenant.db, &id).await? }))
}

/// Mark an order paid (payments made offline, `manual` provider).
#[utoipa::path(post, path = "/api/v1/orders/{id}/mark-paid", tag = "orders",
    params(("id" = String, Path, description = "order id")), security(("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 409, body = crate::error::ErrorBody)))]
async fn mark_paid_route(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::CatalogWrite)?;
    let order = load(&tenant.db, &id).await?;
    if next(order.status, Action::MarkPaid).is_none() && order.status != Status::Paid {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("an order that is {} cannot be marked paid", order.status.as_str()),
        ));
    }
    if mark_paid(&tenant.platform, &tenant.shop.id, &tenant.db, &id, "merchant").await? {
        tenant.audit("order.paid", json!({ "order": id })).await;
    }
    Ok(Json(OrderResponse { order: load(&tenant.db, &id).await? }))
}

/// Mark an order shipped.
#[utoipa::path(post, path = "/api/v1/orders/{id}/fulfil", tag = "orders",
    params(("id" = String, Path, description = "order id")), security(("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 409, body = crate::error::ErrorBody)))]
async fn fulfil(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::CatalogWrite)?;
    Ok(Json(OrderResponse { order: transition(&tenant, &id, Action::Fulfil, 0).await? }))
}

/// Mark an order delivered.
#[utoipa::path(post, path = "/api/v1/orders/{id}/deliver", tag = "orders",
    params(("id" = String, Path, description = "order id")), security(("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 409, body = crate::error::ErrorBody)))]
async fn deliver(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::CatalogWrite)?;
    Ok(Json(OrderResponse { order: transition(&tenant, &id, Action::Deliver, 0).await? }))
}

/// Cancel an order: its units go back in stock; a paid order is refunded in full.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "order id")), security(("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 409, body = crate::error::ErrorBody)))]
async fn cancel(tenant: Tenant, Path(id): Path<String>) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::Settings)?;
    let order = load(&tenant.db, &id).await?;
    if next(order.status, Action::Cancel).is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("an order that is {} cannot be cancelled", order.status.as_str()),
        )
        .with_field("status"));
    }
    let refund = if order.status == Status::Paid {
        let left = order.total - order.refunded;
        refund_through_provider(&tenant, &order, left).await?;
        left
    } else {
        0
    };
    Ok(Json(OrderResponse { order: transition(&tenant, &id, Action::Cancel, refund).await? }))
}

/// A refund.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Minor units; all that is left when absent.
    pub amount: Option<i64>,
}

/// Refund part or all of a paid order (through its payment provider).
#[utoipa::path(post, path = "/api/v1/orders/{id}/refund", tag = "orders", request_body = RefundRequest,
    params(("id" = String, Path, description = "order id")), security(("secret_key" = [])),
    responses((status = 200, body = OrderResponse), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn refund(
    tenant: Tenant,
    Path(id): Path<String>,
    Body(req): Body<RefundRequest>,
) -> ApiResult<Json<OrderResponse>> {
    tenant.require(Permission::Settings)?;
    let order = load(&tenant.db, &id).await?;
    let left = order.total - order.refunded;
    let amount = req.amount.unwrap_or(left);
    if amount < 1 || amount > left {
        return Err(ApiError::invalid(
            "amount",
            format!("between 1 and {left} (what is left to refund)"),
        ));
    }
    let action = Action::Refund { full: amount == left };
    if next(order.status, action).is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("an order that is {} cannot be refunded", order.status.as_str()),
        ));
    }
    refund_through_provider(&tenant, &order, amount).await?;
    Ok(Json(OrderResponse { order: transition(&tenant, &id, action, amount).await? }))
}

/// Expires an unpaid order placed at or before `cutoff` (its hold is over): one
/// conditional update from `pending`, so an order paid or cancelled meanwhile is left
/// alone and two workers never release one twice; in the same transaction its units go
/// back in stock, its discount redemptions are undone, its payment is marked `expired`,
/// and `order.expired` goes to the outbox. `None` when it did not expire it; else whether
/// a variant's availability changed with the stock put back.
pub async fn expire(
    platform: &Platform,
    shop_id: &str,
    db: &AnyPool,
    order_id: &str,
    cutoff: i64,
) -> ApiResult<Option<bool>> {
    let order = load(db, order_id).await?;
    if next(order.status, Action::Expire).is_none() {
        return Ok(None);
    }
    let mut tx = platform.pools.backend().begin_write(db).await?;
    let now = now_ms();
    let moved = sqlx::query(
        "UPDATE orders SET status = 'expired', updated_at = $1 \
         WHERE id = $2 AND status = 'pending' AND created_at <= $3",
    )
    .bind(now)
    .bind(order_id)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !moved {
        return Ok(None); // dropping the transaction rolls it back: nothing was written
    }
    restore_stock(&mut tx, &order).await?;
    let lines: Vec<(String, i64)> = order
        .details
        .get("lines")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            Some((l.get("variant_id")?.as_str()?.to_owned(), l.get("quantity")?.as_i64()?))
        })
        .collect();
    let restocked = super::holds::availability_changed(&mut tx, &lines, false).await?;
    let codes = order.details.get("discount_codes").and_then(Value::as_array);
    for code in codes.into_iter().flatten().filter(|c| c["applied"] == json!(true)) {
        sqlx::query(
            "UPDATE discounts SET usage_count = usage_count - 1 WHERE code = $1 AND usage_count > 0",
        )
        .bind(code["code"].as_str().unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM discount_redemptions WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE payments SET status = 'expired', updated_at = $1 \
         WHERE order_id = $2 AND status <> 'succeeded'",
    )
    .bind(now)
    .bind(order_id)
    .execute(&mut *tx)
    .await?;
    event(&mut tx, order_id, "expired", &json!({ "from": "pending" })).await?;
    webhooks::enqueue_in(
        &mut tx,
        "order.expired",
        &json!({ "order_id": order_id, "number": order.number, "status": "expired" }),
    )
    .await?;
    tx.commit().await?;
    webhooks::wake(platform, shop_id).await;
    Ok(Some(restocked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_refuses_invalid_transitions() {
        use Status::*;
        assert_eq!(next(Pending, Action::MarkPaid), Some(Paid));
        assert_eq!(next(Paid, Action::MarkPaid), None);
        assert_eq!(next(Pending, Action::Fulfil), None);
        assert_eq!(next(Paid, Action::Fulfil), Some(Fulfilled));
        assert_eq!(next(Fulfilled, Action::Deliver), Some(Delivered));
        assert_eq!(next(Delivered, Action::Cancel), None);
        assert_eq!(next(Cancelled, Action::MarkPaid), None);
        assert_eq!(next(Paid, Action::Refund { full: false }), Some(PartiallyRefunded));
        assert_eq!(next(PartiallyRefunded, Action::Refund { full: true }), Some(Refunded));
        assert_eq!(next(Refunded, Action::Refund { full: true }), None);
        assert_eq!(next(Pending, Action::Refund { full: true }), None);
        assert_eq!(next(Pending, Action::Expire), Some(Expired));
        assert_eq!(next(Paid, Action::Expire), None);
        assert_eq!(next(Cancelled, Action::Expire), None);
        assert_eq!(next(Expired, Action::MarkPaid), None);
        for s in
            [Pending, Paid, Fulfilled, Delivered, Cancelled, PartiallyRefunded, Refunded, Expired]
        {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
