//! A shop's catalog in its database, and its export as a catalog directory.
//!
//! Products are validated by the engine's own line parser (`parse_product_line`), so the
//! API accepts exactly what `aurelio build` accepts and names the same fields; the small
//! files are validated by loading the exported directory with the engine. Parsing and
//! mapping of product lines runs on the blocking pool (`off_async`), never on an async
//! worker thread; lookups by SKU are hashed, so the work is linear in the variants.

use crate::db::{Backend, Columns, now_ms};
use crate::error::{ApiError, ApiResult, is_unique_violation};
use aurelio_engine::catalog::{self, Product};
use aurelio_engine::money::{Currency, Money};
use serde_json::{Map, Value, json};
use sqlx::{AnyPool, Row};
use std::collections::{HashMap, HashSet};
use std::path::Path;

pub use super::read::{ProductOut, VariantOut, product, products};

/// Paths of the catalog's small files, as stored in `documents`.
pub const STORE_JSON: &str = "store.json";
/// The category tree.
pub const CATEGORIES_JSON: &str = "categories.json";
/// Manual and rule-based collections.
pub const COLLECTIONS_JSON: &str = "collections.json";
/// The shop's own theme.
pub const THEME_JSON: &str = "theme.json";

/// Reads a document (`store.json`, ...).
pub async fn document(db: &AnyPool, path: &str) -> ApiResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT body FROM documents WHERE path = $1")
        .bind(path)
        .fetch_optional(db)
        .await?)
}

/// Writes or replaces a document.
pub async fn put_document<'e, E>(db: E, path: &str, body: &str) -> ApiResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO documents (path, body, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (path) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(path)
    .bind(body)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a document; whether it existed.
pub async fn delete_document(db: &AnyPool, path: &str) -> ApiResult<bool> {
    let done = sqlx::query("DELETE FROM documents WHERE path = $1").bind(path).execute(db).await?;
    Ok(done.rows_affected() > 0)
}

/// Documents under a folder (`pages/`), by path.
pub async fn documents_under(db: &AnyPool, prefix: &str) -> ApiResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT path, body FROM documents WHERE path LIKE $1 ORDER BY path")
        .bind(format!("{prefix}%"))
        .fetch_all(db)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("path")?, r.try_get("body")?))).collect()
}

/// The shop's currency, from `store.json`.
pub async fn currency(db: &AnyPool) -> ApiResult<Currency> {
    let store = document(db, STORE_JSON).await?.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&store)
        .ok()
        .and_then(|v| v.get("currency").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    Currency::from_code(&code)
        .ok_or_else(|| ApiError::internal(&format!("store.json has no valid currency: `{code}`")))
}

/// Every category handle of the tree in `categories.json`.
pub async fn category_handles(db: &AnyPool) -> ApiResult<Vec<String>> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        if let Some(items) = v.as_array() {
            for item in items {
                if let Some(h) = item.get("handle").and_then(Value::as_str) {
                    out.push(h.to_owned());
                }
                if let Some(children) = item.get("children") {
                    walk(children, out);
                }
            }
        }
    }
    let body = document(db, CATEGORIES_JSON).await?.unwrap_or_else(|| "[]".into());
    let mut out = Vec::new();
    walk(&serde_json::from_str(&body).unwrap_or(Value::Null), &mut out);
    Ok(out)
}

/// Turns an API product body into a `products.jsonl` line: drops output-only members
/// (`id`, `currency`, `updated_at`, variant `id`/`availability`) and writes integer prices
/// (minor units, as the API shows them) as the decimal strings of the catalog format.
pub fn normalize(body: Value, currency: Currency) -> ApiResult<Map<String, Value>> {
    let Value::Object(mut doc) = body else {
        return Err(ApiError::invalid("", "the product must be a JSON object"));
    };
    for key in ["id", "currency", "updated_at"] {
        doc.remove(key);
    }
    if let Some(Value::Object(fields)) = doc.remove("fields") {
        for (k, v) in fields {
            doc.entry(k).or_insert(v);
        }
    }
    if let Some(Value::Array(variants)) = doc.get_mut("variants") {
        for (i, v) in variants.iter_mut().enumerate() {
            let Some(v) = v.as_object_mut() else { continue };
            v.remove("id");
            v.remove("availability");
            for key in ["price", "compare_at_price"] {
                if let Some(Value::Number(n)) = v.get(key) {
                    let minor = n.as_i64().filter(|m| *m >= 0).ok_or_else(|| {
                        ApiError::invalid(
                            format!("variants[{i}].{key}"),
                            "an integer price is in minor units and must be 0 or more",
                        )
                    })?;
                    v.insert(key.into(), Value::String(Money { minor, currency }.decimal()));
                }
            }
        }
    }
    Ok(doc)
}

/// Validates a product body (`normalize`d on the way) with the engine, on the blocking
/// pool; the parsed product and its `products.jsonl` line on success.
pub async fn validate(db: &AnyPool, body: Value) -> ApiResult<(Product, String)> {
    let currency = currency(db).await?;
    let categories = category_handles(db).await?;
    super::off_async(true, move || {
        let doc = normalize(body, currency)?;
        check_line(&doc, &catalog::LineRules::new(currency, categories.iter().map(String::as_str)))
    })
    .await?
}

/// Checks a `products.jsonl` line with the engine (CPU only: call it off the async
/// threads); the parsed product and the line.
pub fn check_line(
    doc: &Map<String, Value>,
    rules: &catalog::LineRules<'_>,
) -> ApiResult<(Product, String)> {
    let line = serde_json::to_string(doc).map_err(|e| ApiError::internal(&e))?;
    match rules.parse(&line) {
        Ok(product) => Ok((product, line)),
        Err(d) => Err(ApiError::from_diagnostics(&d)),
    }
}

/// Finds which handle or SKU of `product` another product already uses.
async fn clash(
    tx: &mut sqlx::AnyConnection,
    product: &Product,
    own_id: Option<&str>,
) -> ApiResult<()> {
    let own = own_id.unwrap_or("");
    let other: Option<String> =
        sqlx::query_scalar("SELECT id FROM products WHERE handle = $1 AND id <> $2")
            .bind(&product.handle)
            .bind(own)
            .fetch_optional(&mut *tx)
            .await?;
    if other.is_some() {
        return Err(ApiError::conflict(
            "handle",
            format!("the handle `{}` is already used by another product", product.handle),
        ));
    }
    for (i, v) in product.variants.iter().enumerate() {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT p.handle FROM variants v JOIN products p ON p.id = v.product_id \
             WHERE v.sku = $1 AND v.product_id <> $2",
        )
        .bind(&v.sku)
        .bind(own)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(owner) = owner {
            return Err(ApiError::conflict(
                format!("variants[{i}].sku"),
                format!("the SKU `{}` is already used by the product `{owner}`", v.sku),
            ));
        }
    }
    Ok(())
}

/// Next value of a per-shop counter (product sequence, order numbers), atomically.
pub async fn next_counter(tx: &mut sqlx::AnyConnection, name: &str) -> ApiResult<i64> {
    sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
        .bind(name)
        .fetch_one(&mut *tx)
        .await?)
}

/// Writes a product's variants: updates the ones that stay (their ids come from SKUs),
/// adds new ones and removes the rest. Stock is taken from the product only when
/// `set_stock`: otherwise the counted stock (which checkouts change) is left alone. With
/// `only`, just the variant of that SKU is written (the others are known unchanged).
async fn write_variants(
    tx: &mut sqlx::AnyConnection,
    product_id: &str,
    product: &Product,
    set_stock: bool,
    only: Option<&str>,
) -> ApiResult<()> {
    let ids: Vec<String> = product.variants.iter().map(catalog::Variant::id).collect();
    let existing: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT id FROM variants WHERE product_id = $1")
            .bind(product_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let keep: HashSet<&str> = ids.iter().map(String::as_str).collect();
    for gone in existing.iter().filter(|id| !keep.contains(id.as_str())) {
        sqlx::query("DELETE FROM variants WHERE id = $1").bind(gone).execute(&mut *tx).await?;
    }
    for (i, v) in product.variants.iter().enumerate() {
        if only.is_some_and(|sku| sku != v.sku) {
            continue;
        }
        let position = i64::try_from(i).unwrap_or(i64::MAX);
        let weight = v.weight_grams.and_then(|g| i64::try_from(g).ok());
        let query = if set_stock || !existing.contains(&ids[i]) {
            sqlx::query(
                "INSERT INTO variants (id, product_id, position, sku, price, compare_at_price, \
                 inventory_policy, weight_grams, label, inventory) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET position = excluded.position, sku = excluded.sku, \
                 price = excluded.price, compare_at_price = excluded.compare_at_price, \
                 inventory_policy = excluded.inventory_policy, \
                 weight_grams = excluded.weight_grams, label = excluded.label, \
                 inventory = excluded.inventory",
            )
        } else {
            sqlx::query(
                "UPDATE variants SET position = $3, sku = $4, price = $5, compare_at_price = $6, \
                 inventory_policy = $7, weight_grams = $8, label = $9 \
                 WHERE id = $1 AND product_id = $2",
            )
        };
        let mut query = query
            .bind(&ids[i])
            .bind(product_id)
            .bind(position)
            .bind(&v.sku)
            .bind(v.price.minor)
            .bind(v.compare_at_price.map(|m| m.minor))
            .bind(policy_name(v.inventory_policy))
            .bind(weight)
            .bind(v.options.join(" / "));
        if set_stock || !existing.contains(&ids[i]) {
            query = query.bind(v.inventory);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

fn policy_name(p: catalog::InventoryPolicy) -> &'static str {
    match p {
        catalog::InventoryPolicy::Deny => "deny",
        catalog::InventoryPolicy::Continue => "continue",
    }
}

fn status_name(s: catalog::Status) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Creates a product from a validated line; its id.
pub async fn insert_product(
    backend: &Backend,
    db: &AnyPool,
    id: Option<String>,
    product: &Product,
    line: &str,
) -> ApiResult<String> {
    let id = id.unwrap_or_else(|| crate::registry::new_id("prod"));
    let mut tx = backend.begin_write(db).await?;
    insert_in(&mut tx, &id, product, line).await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates many validated products in one transaction (provisioning, import): all or none.
pub async fn insert_products(
    backend: &Backend,
    db: &AnyPool,
    products: &[(Product, String)],
) -> ApiResult<()> {
    let mut tx = backend.begin_write(db).await?;
    for (product, line) in products {
        insert_in(&mut tx, &crate::registry::new_id("prod"), product, line).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_in(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    product: &Product,
    line: &str,
) -> ApiResult<()> {
    clash(tx, product, None).await?;
    let seq = next_counter(tx, "product").await?;
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO products (id, seq, handle, status, title, doc, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(seq)
    .bind(&product.handle)
    .bind(status_name(product.status))
    .bind(&product.title)
    .bind(line)
    .bind(now)
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        return Err(if is_unique_violation(&e) {
            ApiError::conflict("handle", "the handle or id is already used")
        } else {
            e.into()
        });
    }
    write_variants(tx, id, product, true, None).await
}

/// Replaces a product; false when there is none with that id.
pub async fn replace_product(
    backend: &Backend,
    db: &AnyPool,
    id: &str,
    product: &Product,
    line: &str,
) -> ApiResult<bool> {
    let mut tx = backend.begin_write(db).await?;
    clash(&mut tx, product, Some(id)).await?;
    let done = sqlx::query(
        "UPDATE products SET handle = $1, status = $2, title = $3, doc = $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(&product.handle)
    .bind(status_name(product.status))
    .bind(&product.title)
    .bind(line)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    write_variants(&mut tx, id, product, true, None).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes a product and its variants; whether it existed.
pub async fn delete_product(backend: &Backend, db: &AnyPool, id: &str) -> ApiResult<bool> {
    let mut tx = backend.begin_write(db).await?;
    sqlx::query("DELETE FROM variants WHERE product_id = $1").bind(id).execute(&mut *tx).await?;
    let done = sqlx::query("DELETE FROM products WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// The stored line of a product, with stock from the variants table (the one place stock
/// is counted) written into it: one hash lookup per variant.
pub(super) fn line_with_stock(doc: &str, stock: &[(String, Option<i64>)]) -> Map<String, Value> {
    let mut doc: Map<String, Value> = serde_json::from_str(doc).unwrap_or_default();
    let mut by_sku: HashMap<&str, Option<i64>> = HashMap::with_capacity(stock.len());
    for (sku, inventory) in stock {
        by_sku.entry(sku.as_str()).or_insert(*inventory);
    }
    if let Some(Value::Array(variants)) = doc.get_mut("variants") {
        for v in variants.iter_mut().filter_map(Value::as_object_mut) {
            let sku = v.get("sku").and_then(Value::as_str).unwrap_or_default();
            if let Some(inventory) = by_sku.get(sku) {
                match inventory {
                    Some(n) => v.insert("inventory".into(), json!(n)),
                    None => v.remove("inventory"),
                };
            }
        }
    }
    doc
}

/// A change to one variant of a stored line, by SKU.
struct VariantChange {
    sku: String,
    price: Option<i64>,
    compare_at_price: Option<Option<i64>>,
    inventory: Option<Option<i64>>,
}

impl VariantChange {
    /// The line with the change made to the variant of `sku`.
    fn apply(&self, mut doc: Map<String, Value>, currency: Currency) -> Map<String, Value> {
        let Some(Value::Array(variants)) = doc.get_mut("variants") else { return doc };
        for v in variants.iter_mut().filter_map(Value::as_object_mut) {
            if v.get("sku").and_then(Value::as_str) != Some(self.sku.as_str()) {
                continue;
            }
            if let Some(p) = self.price {
                v.insert("price".into(), json!(Money { minor: p, currency }.decimal()));
            }
            match self.compare_at_price {
                Some(Some(p)) => {
                    let decimal = Money { minor: p, currency }.decimal();
                    v.insert("compare_at_price".into(), json!(decimal));
                }
                Some(None) => {
                    v.remove("compare_at_price");
                }
                None => {}
            }
            match self.inventory {
                Some(Some(n)) => {
                    v.insert("inventory".into(), json!(n));
                }
                Some(None) => {
                    v.remove("inventory");
                }
                None => {}
            }
        }
        doc
    }
}

/// Sets a variant's price and/or stock (the fast path of a price or stock change): the
/// column and the product's stored line change together.
pub async fn patch_variant(
    backend: &Backend,
    db: &AnyPool,
    variant: &str,
    price: Option<i64>,
    compare_at_price: Option<Option<i64>>,
    inventory: Option<Option<i64>>,
) -> ApiResult<String> {
    let currency = currency(db).await?;
    let categories = category_handles(db).await?;
    let mut tx = backend.begin_write(db).await?;
    let row = sqlx::query("SELECT product_id, sku FROM variants WHERE id = $1")
        .bind(variant)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::not_found("variant"))?;
    let product_id: String = row.try_get("product_id")?;
    let sku: String = row.try_get("sku")?;
    let doc: String = sqlx::query_scalar("SELECT doc FROM products WHERE id = $1")
        .bind(&product_id)
        .fetch_one(&mut *tx)
        .await?;
    // The stored line's stock may be stale: checkouts count stock in the variants table.
    let stock_rows = sqlx::query("SELECT sku, inventory FROM variants WHERE product_id = $1")
        .bind(&product_id)
        .fetch_all(&mut *tx)
        .await?;
    let stock: Vec<(String, Option<i64>)> = stock_rows
        .iter()
        .map(|r| Ok((r.try_get("sku")?, r.try_get("inventory")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let patch = VariantChange { sku, price, compare_at_price, inventory };
    let (product, line, sku) = super::off_async(true, move || {
        let doc = patch.apply(line_with_stock(&doc, &stock), currency);
        // The edited line goes through the same checks as a new one (compare_at > price).
        let rules = catalog::LineRules::new(currency, categories.iter().map(String::as_str));
        check_line(&doc, &rules).map(|(product, line)| (product, line, patch.sku))
    })
    .await??;
    sqlx::query("UPDATE products SET doc = $1, updated_at = $2 WHERE id = $3")
        .bind(&line)
        .bind(now_ms())
        .bind(&product_id)
        .execute(&mut *tx)
        .await?;
    write_variants(&mut tx, &product_id, &product, inventory.is_some(), Some(&sku)).await?;
    tx.commit().await?;
    Ok(product_id)
}

/// Writes the shop as a catalog directory, exactly the format `aurelio build` reads.
/// Files whose bytes did not change are left alone. Images come from `media` (a
/// directory holding the shop's uploaded sources under `images/`).
pub async fn export(backend: &Backend, db: &AnyPool, dir: &Path) -> ApiResult<ExportStats> {
    export_with(backend, db, dir, &mut ExportMemo::default()).await
}

/// The `products.jsonl` lines of the last export, by product id, each with the blake3 of
/// what it was made from (the stored document and the variants' stock): a product whose
/// document and stock did not change is not parsed and written out again.
#[derive(Debug, Default)]
pub struct ExportMemo {
    lines: HashMap<String, (blake3::Hash, Vec<u8>)>,
}

/// `export`, reusing the lines of the last export that are still right (`ExportMemo`).
pub async fn export_with(
    backend: &Backend,
    db: &AnyPool,
    dir: &Path,
    memo: &mut ExportMemo,
) -> ApiResult<ExportStats> {
    // Small files: every document, pages included.
    let docs = documents_under(db, "").await?;
    // Products in creation order, with stock from the variants table: one row a product,
    // read on SQLite without `sqlx`'s hand-off of every row.
    let read = |conn: &rusqlite::Connection| {
        crate::sqlite_writer::query(conn, PRODUCTS_WITH_STOCK, (), |r| product_row(r))
    };
    let rows = match backend.read_sqlite(db, read).await {
        Some(rows) => rows?,
        None => {
            let rows = sqlx::query(PRODUCTS_WITH_STOCK).fetch_all(db).await?;
            rows.iter().map(product_row).collect::<ApiResult<_>>()?
        }
    };
    // Mapping every line and writing the files is CPU and disk work: off the async threads.
    let dir = dir.to_owned();
    let mut taken = std::mem::take(memo);
    let (stats, taken) = super::off_async(true, move || {
        let stats = write_export(&dir, &docs, rows, &mut taken);
        (stats, taken)
    })
    .await?;
    *memo = taken;
    stats
}

/// Writes the documents and `products.jsonl` of an export into `dir` (blocking).
fn write_export(
    dir: &Path,
    docs: &[(String, String)],
    rows: Vec<(String, String, String)>,
    memo: &mut ExportMemo,
) -> ApiResult<ExportStats> {
    let io = |e: std::io::Error| ApiError::internal(&format!("export to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut stats = ExportStats::default();
    let paths: HashSet<&str> = docs.iter().map(|(p, _)| p.as_str()).collect();
    // Stale pages removed.
    let pages_dir = dir.join("pages");
    if pages_dir.is_dir() {
        for entry in std::fs::read_dir(&pages_dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = format!("pages/{}", entry.file_name().to_string_lossy());
            if !paths.contains(name.as_str()) {
                std::fs::remove_file(entry.path()).map_err(io)?;
            }
        }
    }
    for (path, body) in docs {
        if path.contains("..") || path.starts_with('/') {
            continue;
        }
        stats.files += usize::from(write_if_changed(&dir.join(path), body.as_bytes()).map_err(io)?);
    }
    for name in [CATEGORIES_JSON, COLLECTIONS_JSON] {
        if !paths.contains(name) {
            write_if_changed(&dir.join(name), b"[]\n").map_err(io)?;
        }
    }
    if !paths.contains(THEME_JSON) {
        let _ = std::fs::remove_file(dir.join(THEME_JSON));
    }
    let mut lines = Vec::with_capacity(rows.len() * 512);
    let mut made = HashMap::with_capacity(rows.len());
    stats.products = rows.len();
    for (id, doc, stock) in rows {
        let from = blake3::Hasher::new().update(doc.as_bytes()).update(stock.as_bytes()).finalize();
        let line = match memo.lines.remove(&id) {
            Some((hash, line)) if hash == from => line,
            _ => {
                let stock = parse_stock(&stock)
                    .ok_or_else(|| ApiError::internal(&format!("stock of {id}: {stock:?}")))?;
                let mut line = serde_json::to_vec(&line_with_stock(&doc, &stock))
                    .map_err(|e| ApiError::internal(&e))?;
                line.push(b'\n');
                line
            }
        };
        lines.extend_from_slice(&line);
        made.insert(id, (from, line));
    }
    memo.lines = made;
    stats.files += usize::from(write_if_changed(&dir.join("products.jsonl"), &lines).map_err(io)?);
    Ok(stats)
}

/// Each product with its variants' stock as `<characters in the SKU>:<SKU><inventory or
/// ->;`, in position order (`parse_stock`).
const PRODUCTS_WITH_STOCK: &str = "SELECT p.id, p.doc, (SELECT string_agg(\
    length(v.sku) || ':' || v.sku || COALESCE(CAST(v.inventory AS TEXT), '-') || ';', '' \
    ORDER BY v.position) FROM variants v WHERE v.product_id = p.id) AS stock \
    FROM products p ORDER BY p.seq";

/// A row of `PRODUCTS_WITH_STOCK`: id, document, stock (`parse_stock`).
fn product_row(r: &impl Columns) -> ApiResult<(String, String, String)> {
    Ok((r.text_of("id")?, r.text_of("doc")?, r.text("stock")?.unwrap_or_default()))
}

/// The (SKU, inventory) pairs of `PRODUCTS_WITH_STOCK`'s `stock`; `None` if malformed.
fn parse_stock(mut s: &str) -> Option<Vec<(String, Option<i64>)>> {
    let mut stock = Vec::new();
    while !s.is_empty() {
        let (count, rest) = s.split_once(':')?;
        let count: usize = count.parse().ok()?;
        let end = rest.char_indices().nth(count).map_or(rest.len(), |(i, _)| i);
        let (sku, rest) = rest.split_at(end);
        let (inventory, rest) = rest.split_once(';')?;
        let inventory = if inventory == "-" { None } else { Some(inventory.parse().ok()?) };
        stock.push((sku.to_owned(), inventory));
        s = rest;
    }
    Some(stock)
}

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExportStats {
    /// Products exported.
    pub products: usize,
    /// Files written because they changed.
    pub files: usize,
}

/// Writes `bytes` unless the file already holds them; whether it wrote.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    aurelio_engine::output::write_replacing(path, bytes)?;
    Ok(true)
}

/// The id of the shop's first variant, if any (for examples).
pub async fn first_variant(db: &AnyPool) -> ApiResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT v.id FROM variants v JOIN products p ON p.id = v.product_id \
         ORDER BY p.seq, v.position LIMIT 1",
    )
    .fetch_optional(db)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SKUs may hold the separators and any characters; stock may be negative or absent.
    #[test]
    fn stock_strings_parse_back() {
        let stock = "3:A;B7;6:ü:-;Ω1-;0:-2;";
        assert_eq!(
            parse_stock(stock),
            Some(vec![("A;B".into(), Some(7)), ("ü:-;Ω1".into(), None), (String::new(), Some(-2))])
        );
        assert_eq!(parse_stock(""), Some(vec![]));
        assert_eq!(parse_stock("9:short;"), None);
        assert_eq!(parse_stock("1:A7"), None);
    }
}
