//! What checkouts hold and what shoppers leave behind, released by jobs in the registry.
//!
//! A `manual` order takes its stock at checkout; unpaid after `Config::order_hold` it
//! expires (`orders::expire`: stock and discount usage back, `order.expired`), through a
//! `holds` job per shop due when the oldest unpaid order's hold is over. A `cleanup` job
//! per shop deletes open carts without an order untouched for `Config::cart_ttl`,
//! idempotency keys older than `IDEMPOTENCY_TTL` and the shop's finished jobs older than
//! `JOB_HISTORY`. Both jobs are claimed like builds (any number of processes) and queue
//! their own next run while there is work ahead.
//!
//! Stock changes reach the storefront only through availability: pages and feeds print
//! whether a variant is in stock, on backorder or sold out, never how many units are
//! left, so `availability_changed` decides whether a stock change needs a build.

use super::orders;
use crate::db::now_ms;
use crate::error::ApiResult;
use crate::platform::Platform;
use crate::platform::jobs::{self, NewJob};
use crate::registry;
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use std::time::Duration;

/// Providers whose unpaid orders expire after the hold. Stripe orders are not: their
/// PaymentIntent can still succeed, and is not cancelled with Stripe yet.
pub const HELD_PROVIDERS: &[&str] = &["manual"];
/// How long a checkout's idempotency key answers with its order.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long finished jobs of a shop (builds, deliveries, these) stay listed.
pub const JOB_HISTORY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Rows one job handles before it queues itself again at once.
const BATCH: i64 = 500;
/// Batches one job run handles at most.
const BATCHES: usize = 20;
/// A process queues a shop's cleanup at most this often (the job queues its own next run).
const CLEANUP_EVERY: Duration = Duration::from_secs(60);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A variant's availability from its stock and policy, as the engine derives it
/// (`Variant::availability`): not counted or above zero is in stock, else backorder when
/// the policy continues selling, else sold out.
fn availability(inventory: Option<i64>, policy: &str) -> &'static str {
    match inventory {
        None => "in_stock",
        Some(n) if n > 0 => "in_stock",
        Some(_) if policy == "continue" => "backorder",
        Some(_) => "out_of_stock",
    }
}

/// Whether taking (`taken`) or putting back (`!taken`) these units, already applied in
/// `tx`, changed the availability of a variant. Read in the transaction that changed the
/// stock, so concurrent checkouts cannot hide a change from each other.
pub async fn availability_changed(
    tx: &mut sqlx::AnyConnection,
    lines: &[(String, i64)],
    taken: bool,
) -> ApiResult<bool> {
    for (variant, quantity) in lines {
        let row = sqlx::query("SELECT inventory, inventory_policy FROM variants WHERE id = $1")
            .bind(variant)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { continue };
        let now: Option<i64> = row.try_get("inventory")?;
        let policy: String = row.try_get("inventory_policy")?;
        let Some(after) = now else { continue };
        let before =
            if taken { after.checked_add(*quantity) } else { after.checked_sub(*quantity) };
        match before {
            Some(before) if availability(Some(before), &policy) == availability(now, &policy) => {}
            _ => return Ok(true),
        }
    }
    Ok(false)
}

/// After a checkout: the shop's `holds` job is due when this order's hold is over (or
/// stays due earlier). Failures are logged: the next checkout or hold job queues it.
pub async fn schedule_hold(platform: &Platform, shop_id: &str, provider: &str) {
    let hold = platform.config.order_hold;
    if hold.is_zero() || !HELD_PROVIDERS.contains(&provider) {
        return;
    }
    let due = now_ms().saturating_add(millis(hold));
    if let Err(e) = queue(platform, shop_id, "holds", "order hold", due).await {
        tracing::warn!(shop = shop_id, error = %e.message, "cannot queue the order hold job");
    }
}

/// After a cart was created: the shop's `cleanup` job is queued (at most once a minute by
/// this process), due when a cart created now could expire.
pub async fn schedule_cleanup(platform: &Platform, shop_id: &str) {
    if !platform.jobs.first_in(shop_id, "cleanup", CLEANUP_EVERY) {
        return;
    }
    let due = now_ms().saturating_add(millis(platform.config.cart_ttl.min(IDEMPOTENCY_TTL)));
    if let Err(e) = queue(platform, shop_id, "cleanup", "expire carts", due).await {
        tracing::warn!(shop = shop_id, error = %e.message, "cannot queue the cleanup job");
    }
}

/// Queues the shop's job of `kind` due at `due` (or keeps the queued one if due earlier).
async fn queue(
    platform: &Platform,
    shop_id: &str,
    kind: &str,
    reason: &str,
    due: i64,
) -> ApiResult<String> {
    jobs::enqueue(platform, NewJob::shop(kind, shop_id, reason).run_at(due)).await
}

fn held_providers_sql() -> String {
    HELD_PROVIDERS.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
}

async fn shop_db(platform: &Platform, shop_id: &str) -> Result<AnyPool, Value> {
    let fail = |m: String| json!({ "message": m });
    let shop = registry::shop(&platform.registry, shop_id)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("the shop no longer exists".into()))?;
    platform.shop_db(&shop).await.map_err(|e| fail(e.message))
}

/// The `holds` job: expires the shop's unpaid orders whose hold is over, queues a build
/// when that made a variant available again, and queues itself for the next hold.
pub async fn release_due(platform: &Platform, shop_id: &str) -> Result<Value, Value> {
    let fail = |m: String| json!({ "message": m });
    let db = shop_db(platform, shop_id).await?;
    let hold = millis(platform.config.order_hold);
    if hold == 0 {
        return Ok(json!({ "expired": 0 }));
    }
    let providers = held_providers_sql();
    let (mut expired, mut restocked, mut full) = (0_u64, false, false);
    for _ in 0..BATCHES {
        let sql = format!(
            "SELECT id FROM orders WHERE status = 'pending' AND provider IN ({providers}) \
             AND created_at <= $1 ORDER BY created_at, id LIMIT $2"
        );
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(now_ms().saturating_sub(hold))
            .bind(BATCH)
            .fetch_all(&db)
            .await
            .map_err(|e| fail(e.to_string()))?;
        for id in &ids {
            let cutoff = now_ms().saturating_sub(hold);
            match orders::expire(platform, shop_id, &db, id, cutoff).await {
                Ok(Some(changed)) => {
                    expired += 1;
                    restocked |= changed;
                }
                Ok(None) => {}
                Err(e) => return Err(fail(e.message)),
            }
        }
        full = ids.len() as i64 == BATCH;
        if !full {
            break;
        }
    }
    if expired > 0 {
        metrics::counter!("aurelio_orders_expired_total").increment(expired);
    }
    if restocked {
        jobs::request_build(platform, shop_id, "stock released")
            .await
            .map_err(|e| fail(e.message))?;
    }
    let next: Option<i64> = if full {
        Some(now_ms())
    } else {
        let sql = format!(
            "SELECT MIN(created_at) FROM orders WHERE status = 'pending' AND provider IN ({providers})"
        );
        let oldest: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&db)
            .await
            .map_err(|e| fail(e.to_string()))?;
        oldest.map(|t| t.saturating_add(hold).max(now_ms()))
    };
    if let Some(due) = next {
        queue(platform, shop_id, "holds", "order hold", due).await.map_err(|e| fail(e.message))?;
    }
    Ok(json!({ "expired": expired, "restocked": restocked }))
}

/// The `cleanup` job: deletes open carts without an order untouched for the cart TTL,
/// idempotency keys past theirs and the shop's old finished jobs, in batches; queues
/// itself for when the next cart or key expires.
pub async fn clean(platform: &Platform, shop_id: &str) -> Result<Value, Value> {
    let fail = |m: String| json!({ "message": m });
    let db = shop_db(platform, shop_id).await?;
    let backend = platform.pools.backend();
    let cart_ttl = millis(platform.config.cart_ttl);
    let key_ttl = millis(IDEMPOTENCY_TTL);
    let (mut carts, mut keys, mut full) = (0_u64, 0_u64, false);
    for _ in 0..BATCHES {
        let cutoff = now_ms().saturating_sub(cart_ttl);
        let tokens: Vec<String> = sqlx::query_scalar(
            "SELECT token FROM carts WHERE status = 'open' AND order_id IS NULL \
             AND updated_at < $1 ORDER BY updated_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(BATCH)
        .fetch_all(&db)
        .await
        .map_err(|e| fail(e.to_string()))?;
        if !tokens.is_empty() {
            let mut tx = backend.begin_write(&db).await.map_err(|e| fail(e.to_string()))?;
            for token in &tokens {
                // Touched meanwhile (a line added): it stays.
                let gone = sqlx::query(
                    "DELETE FROM carts WHERE token = $1 AND status = 'open' \
                     AND order_id IS NULL AND updated_at < $2",
                )
                .bind(token)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(|e| fail(e.to_string()))?
                .rows_affected();
                if gone == 1 {
                    sqlx::query("DELETE FROM cart_lines WHERE cart_token = $1")
                        .bind(token)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    carts += 1;
                }
            }
            tx.commit().await.map_err(|e| fail(e.to_string()))?;
        }
        let stale = sqlx::query(
            "DELETE FROM idempotency_keys WHERE key IN \
             (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        )
        .bind(now_ms().saturating_sub(key_ttl))
        .bind(BATCH);
        keys += backend.write(&db, stale).await.map_err(|e| fail(e.to_string()))?.rows_affected();
        full = tokens.len() as i64 == BATCH;
        if !full {
            break;
        }
    }
    let jobs = sqlx::query(
        "DELETE FROM jobs WHERE shop_id = $1 AND status IN ('succeeded', 'failed') \
         AND finished_at < $2",
    )
    .bind(shop_id)
    .bind(now_ms().saturating_sub(millis(JOB_HISTORY)))
    .execute(&platform.registry)
    .await
    .map_err(|e| fail(e.to_string()))?
    .rows_affected();
    let next = if full {
        Some(now_ms())
    } else {
        let cart: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(updated_at) FROM carts WHERE status = 'open' AND order_id IS NULL",
        )
        .fetch_one(&db)
        .await
        .map_err(|e| fail(e.to_string()))?;
        let key: Option<i64> = sqlx::query_scalar("SELECT MIN(created_at) FROM idempotency_keys")
            .fetch_one(&db)
            .await
            .map_err(|e| fail(e.to_string()))?;
        [cart.map(|t| t.saturating_add(cart_ttl)), key.map(|t| t.saturating_add(key_ttl))]
            .into_iter()
            .flatten()
            .min()
            .map(|due| due.max(now_ms().saturating_add(1000)))
    };
    if let Some(due) = next {
        queue(platform, shop_id, "cleanup", "expire carts", due)
            .await
            .map_err(|e| fail(e.message))?;
    }
    Ok(json!({ "carts": carts, "idempotency_keys": keys, "jobs": jobs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_follows_the_engine() {
        assert_eq!(availability(None, "deny"), "in_stock");
        assert_eq!(availability(Some(1), "deny"), "in_stock");
        assert_eq!(availability(Some(0), "deny"), "out_of_stock");
        assert_eq!(availability(Some(0), "continue"), "backorder");
        assert_eq!(availability(Some(-3), "continue"), "backorder");
    }
}
