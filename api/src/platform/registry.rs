//! The registry database: shops, their keys, their primary domains and the audit log
//! (jobs are in `jobs`).

use crate::db::{now_ms, rfc3339};
use serde::Serialize;
use sqlx::{AnyPool, Row};

/// A shop as the registry knows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Shop {
    /// Opaque id (`shop_...`).
    pub id: String,
    /// URL-safe handle: `<handle>.localhost` locally.
    pub handle: String,
    /// Display name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// The shop's database name (file stem on SQLite, database on PostgreSQL).
    #[serde(skip)]
    pub db_name: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

const SHOP_COLUMNS: &str = "id, handle, name, status, db_name, created_at";

fn shop_from_row(row: &sqlx::any::AnyRow) -> Result<Shop, sqlx::Error> {
    Ok(Shop {
        id: row.try_get("id")?,
        handle: row.try_get("handle")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        db_name: row.try_get("db_name")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// A random id with a prefix: `shop_3f9a...` (16 random bytes, hex).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(16))
}

/// `n` random bytes from the operating system, as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let mut out = String::with_capacity(2 * n);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Inserts a shop.
pub async fn insert_shop(
    pool: &AnyPool,
    id: &str,
    handle: &str,
    name: &str,
    db_name: &str,
) -> Result<Shop, sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO shops (id, handle, name, status, db_name, created_at, updated_at) \
         VALUES ($1, $2, $3, 'active', $4, $5, $5)",
    )
    .bind(id)
    .bind(handle)
    .bind(name)
    .bind(db_name)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(Shop {
        id: id.into(),
        handle: handle.into(),
        name: name.into(),
        status: "active".into(),
        db_name: db_name.into(),
        created_at: rfc3339(now),
    })
}

/// A shop by id.
pub async fn shop(pool: &AnyPool, id: &str) -> Result<Option<Shop>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {SHOP_COLUMNS} FROM shops WHERE id = $1"));
    sqlx::query(sql).bind(id).fetch_optional(pool).await?.as_ref().map(shop_from_row).transpose()
}

/// A shop by handle.
pub async fn shop_by_handle(pool: &AnyPool, handle: &str) -> Result<Option<Shop>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {SHOP_COLUMNS} FROM shops WHERE handle = $1"));
    sqlx::query(sql)
        .bind(handle)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(shop_from_row)
        .transpose()
}

/// Shops in handle order after `after` (a handle), at most `limit`.
pub async fn shops(pool: &AnyPool, after: &str, limit: i64) -> Result<Vec<Shop>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {SHOP_COLUMNS} FROM shops WHERE handle > $1 ORDER BY handle LIMIT $2"
    ));
    let rows = sqlx::query(sql).bind(after).bind(limit).fetch_all(pool).await?;
    rows.iter().map(shop_from_row).collect()
}

/// Sets a shop's status (`active`, `suspended`).
pub async fn set_status(pool: &AnyPool, id: &str, status: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE shops SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a shop's registry rows (keys, jobs and domains go with it).
pub async fn delete_shop(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    for sql in [
        "DELETE FROM api_keys WHERE shop_id = $1",
        "DELETE FROM jobs WHERE shop_id = $1",
        "DELETE FROM domains WHERE shop_id = $1",
        "DELETE FROM schedules WHERE shop_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    let done = sqlx::query("DELETE FROM shops WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// The verified primary custom domain of a shop, if it has one.
pub async fn primary_domain(pool: &AnyPool, shop_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT hostname FROM domains WHERE shop_id = $1 AND is_primary = 1 AND ownership = 'verified'",
    )
    .bind(shop_id)
    .fetch_optional(pool)
    .await
}

/// Appends to the audit log. Never contains secrets.
pub async fn audit(
    pool: &AnyPool,
    shop_id: Option<&str>,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (id, shop_id, actor, action, detail, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id("aud"))
    .bind(shop_id)
    .bind(actor)
    .bind(action)
    .bind(detail.to_string())
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}
