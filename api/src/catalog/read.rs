//! Products as the API shows them (`ProductOut`): rows read from the shop's database, then
//! mapped to their output shape off the async worker threads when there is much to map.
//!
//! A page of products is bounded by its variants and the size of its stored lines as well
//! as by its product count, so one anonymous request never costs more than one full page.

use super::store::{currency, line_with_stock};
use crate::db::rfc3339;
use crate::error::{ApiError, ApiResult};
use aurelio_engine::money::Currency;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{AnyPool, Row};
use std::collections::HashMap;

/// Variants on one page of `GET /api/v1/products` (a page ends early, with a cursor, once
/// its products hold this many; a single product is always shown).
pub const PAGE_VARIANTS: i64 = 10_000;
/// Bytes of stored product lines on one page of `GET /api/v1/products`, likewise.
pub const PAGE_BYTES: i64 = 8 * 1024 * 1024;
/// Variants a read maps on the async thread it arrived on; more are mapped on the
/// blocking pool.
const INLINE_VARIANTS: usize = 256;

/// A variant as the API shows it: money in minor units.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VariantOut {
    /// Stable id (derived from the SKU).
    pub id: String,
    /// SKU.
    pub sku: String,
    /// Option values by option name.
    pub options: Map<String, Value>,
    /// Price in minor units of `currency`.
    pub price: i64,
    /// Price before a sale, minor units.
    pub compare_at_price: Option<i64>,
    /// Stock; `null` when not tracked.
    pub inventory: Option<i64>,
    /// `deny` or `continue` at zero stock.
    pub inventory_policy: String,
    /// `in_stock`, `out_of_stock` or `backorder`.
    pub availability: String,
}

/// A product as the API shows it: the `products.jsonl` fields plus ids and minor units.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductOut {
    /// Opaque id (`prod_...`).
    pub id: String,
    /// URL handle.
    pub handle: String,
    /// Title.
    pub title: String,
    /// `active`, `draft` or `archived`.
    pub status: String,
    /// ISO 4217 currency of every price.
    pub currency: String,
    /// Variants with ids, prices in minor units and stock.
    pub variants: Vec<VariantOut>,
    /// The product's other catalog fields (description, vendor, images, options, ...).
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// A product's row, owned, so that it can be mapped on another thread.
#[derive(Debug)]
struct ProductRow {
    id: String,
    handle: String,
    title: String,
    status: String,
    doc: String,
    created_at: i64,
    updated_at: i64,
}

impl ProductRow {
    fn of(row: &sqlx::any::AnyRow) -> ApiResult<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            handle: row.try_get("handle")?,
            title: row.try_get("title")?,
            status: row.try_get("status")?,
            doc: row.try_get("doc")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

#[derive(Debug)]
struct VariantRow {
    id: String,
    sku: String,
    price: i64,
    compare_at_price: Option<i64>,
    inventory: Option<i64>,
    inventory_policy: String,
}

/// The variants of `product_ids`, grouped by product, each group in position order.
async fn variant_rows(
    db: &AnyPool,
    product_ids: &[String],
) -> ApiResult<HashMap<String, Vec<VariantRow>>> {
    let mut out: HashMap<String, Vec<VariantRow>> = HashMap::new();
    if product_ids.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (1..=product_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT product_id, id, sku, price, compare_at_price, inventory, inventory_policy \
         FROM variants WHERE product_id IN ({}) ORDER BY product_id, position",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in product_ids {
        query = query.bind(id);
    }
    for r in query.fetch_all(db).await? {
        out.entry(r.try_get("product_id")?).or_default().push(VariantRow {
            id: r.try_get("id")?,
            sku: r.try_get("sku")?,
            price: r.try_get("price")?,
            compare_at_price: r.try_get("compare_at_price")?,
            inventory: r.try_get("inventory")?,
            inventory_policy: r.try_get("inventory_policy")?,
        });
    }
    Ok(out)
}

/// Maps one product: its stored line with counted stock, variants in position order with
/// their options found by SKU (one hash lookup each).
fn product_out(row: ProductRow, variants: Vec<VariantRow>, currency: Currency) -> ProductOut {
    let stock: Vec<(String, Option<i64>)> =
        variants.iter().map(|v| (v.sku.clone(), v.inventory)).collect();
    let mut fields = line_with_stock(&row.doc, &stock);
    let raw_variants = match fields.remove("variants") {
        Some(Value::Array(v)) => v,
        _ => Vec::new(),
    };
    for key in ["handle", "title", "status"] {
        fields.remove(key);
    }
    let mut options_by_sku: HashMap<String, Map<String, Value>> =
        HashMap::with_capacity(raw_variants.len());
    for raw in raw_variants {
        let Value::Object(mut raw) = raw else { continue };
        let Some(Value::String(sku)) = raw.remove("sku") else { continue };
        if let Some(Value::Object(options)) = raw.remove("options") {
            options_by_sku.entry(sku).or_insert(options);
        }
    }
    let variants = variants
        .into_iter()
        .map(|v| {
            let availability = match (v.inventory, v.inventory_policy.as_str()) {
                (None, _) => "in_stock",
                (Some(n), _) if n > 0 => "in_stock",
                (Some(_), "continue") => "backorder",
                _ => "out_of_stock",
            };
            VariantOut {
                options: options_by_sku.remove(&v.sku).unwrap_or_default(),
                id: v.id,
                sku: v.sku,
                price: v.price,
                compare_at_price: v.compare_at_price,
                inventory: v.inventory,
                inventory_policy: v.inventory_policy,
                availability: availability.into(),
            }
        })
        .collect();
    ProductOut {
        id: row.id,
        handle: row.handle,
        title: row.title,
        status: row.status,
        currency: currency.code().to_owned(),
        variants,
        fields,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

/// Maps rows with their variants, on the blocking pool when there are many variants.
async fn products_out(db: &AnyPool, rows: Vec<ProductRow>) -> ApiResult<Vec<ProductOut>> {
    let currency = currency(db).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut variants = variant_rows(db, &ids).await?;
    let count: usize = variants.values().map(Vec::len).sum();
    let map = move || {
        rows.into_iter()
            .map(|row| {
                let own = variants.remove(&row.id).unwrap_or_default();
                product_out(row, own, currency)
            })
            .collect()
    };
    super::off_async(count > INLINE_VARIANTS, map).await
}

/// One product by id; `active_only` hides drafts and archived products (publishable keys).
pub async fn product(db: &AnyPool, id: &str, active_only: bool) -> ApiResult<ProductOut> {
    let row = sqlx::query(
        "SELECT id, handle, title, status, doc, created_at, updated_at FROM products \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::not_found("product"))?;
    let row = ProductRow::of(&row)?;
    if active_only && row.status != "active" {
        return Err(ApiError::not_found("product"));
    }
    products_out(db, vec![row]).await?.pop().ok_or_else(|| ApiError::not_found("product"))
}

/// A page of products in creation order after the cursor (a sequence number): at most
/// `limit` products, ending early once they hold `PAGE_VARIANTS` variants or `PAGE_BYTES`
/// of stored lines (never before the first). The next cursor when there are more.
pub async fn products(
    db: &AnyPool,
    after: i64,
    limit: i64,
    active_only: bool,
) -> ApiResult<(Vec<ProductOut>, Option<i64>)> {
    // What each candidate weighs first; only the chosen ones' lines are read.
    let sizes = sqlx::query(
        "SELECT p.id, p.seq, CAST(LENGTH(p.doc) AS BIGINT) AS bytes, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM variants v WHERE v.product_id = p.id) AS n \
         FROM products p WHERE p.seq > $1 AND ($2 = 0 OR p.status = 'active') \
         ORDER BY p.seq LIMIT $3",
    )
    .bind(after)
    .bind(i64::from(active_only))
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let limit = usize::try_from(limit).unwrap_or(0);
    let (mut variants, mut bytes) = (0_i64, 0_i64);
    let mut chosen: Vec<(String, i64)> = Vec::new();
    for row in &sizes {
        let (n, size): (i64, i64) = (row.try_get("n")?, row.try_get("bytes")?);
        let over =
            variants.saturating_add(n) > PAGE_VARIANTS || bytes.saturating_add(size) > PAGE_BYTES;
        if chosen.len() == limit || (!chosen.is_empty() && over) {
            break;
        }
        variants = variants.saturating_add(n);
        bytes = bytes.saturating_add(size);
        chosen.push((row.try_get("id")?, row.try_get("seq")?));
    }
    let next = (sizes.len() > chosen.len()).then(|| chosen.last().map(|(_, seq)| *seq)).flatten();
    if chosen.is_empty() {
        return Ok((Vec::new(), None));
    }
    let placeholders: Vec<String> = (1..=chosen.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, handle, title, status, doc, created_at, updated_at FROM products \
         WHERE id IN ({}) ORDER BY seq",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (id, _) in &chosen {
        query = query.bind(id);
    }
    let rows = query.fetch_all(db).await?;
    let rows = rows.iter().map(ProductRow::of).collect::<ApiResult<Vec<_>>>()?;
    Ok((products_out(db, rows).await?, next))
}
