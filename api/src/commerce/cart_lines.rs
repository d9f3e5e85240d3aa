//! Writing a cart line: adding a variant (merging with an equal line) or setting a line's
//! quantity, within the shop's limits and the largest amount, checked before anything is
//! written. On SQLite the whole operation runs on the database's writer thread; on
//! PostgreSQL optimistically, then as a transaction holding the cart's row lock.

use super::carts::*;
use super::pricing::too_large;
use super::settings::CheckoutSettings;
use super::totals;
use crate::auth::Tenant;
use crate::db::{Columns, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::sqlite_writer::{self as sqlite, numbered};
use axum::http::StatusCode;
use sqlx::AnyPool;
use std::sync::Arc;

/// A cart as just written: its row and lines, ready to price without reading them again.
pub(super) struct Written {
    pub(super) row: CartRow,
    pub(super) lines: Vec<StoredLine>,
}

/// Adds `quantity` of a variant to a cart (merging with an equal line), or sets the line's
/// quantity (`replace`; 0 removes it), within limits. On SQLite it runs whole on the
/// database's writer thread (`sqlite_writer`), which commits concurrent additions together;
/// on PostgreSQL optimistically (`put_line_optimistic`), and after a conflict as one
/// transaction that holds the cart's row lock (`put_line_locked`).
pub(super) async fn put_line(
    tenant: &Tenant,
    token: &str,
    variant_id: &str,
    quantity: i64,
    replace: bool,
    facts: &Arc<ShopFacts>,
) -> ApiResult<Written> {
    if quantity < 0 || (!replace && quantity == 0) {
        return Err(ApiError::invalid("quantity", "the quantity must be at least 1"));
    }
    if quantity > facts.settings.max_quantity {
        return Err(too_many(facts.settings.max_quantity));
    }
    let backend = tenant.platform.pools.backend();
    if let Some(writes) = backend.writes(&tenant.db) {
        let (token, variant_id, facts) = (token.to_owned(), variant_id.to_owned(), facts.clone());
        return writes
            .writer
            .run(move |conn, memo| {
                let (token, variant_id, settings) = (&*token, &*variant_id, &facts.settings);
                let put = Put { token, variant_id, quantity, replace, settings };
                put_line_sqlite(conn, memo.get(), &put)
            })
            .await;
    }
    let put = Put { token, variant_id, quantity, replace, settings: &facts.settings };
    // One optimistic try: under contention (the 40-line benchmark, 64 writers on 256
    // carts) a second mostly conflicts again, and the locked path queues writers fairly.
    if let Some(written) = put_line_optimistic(&tenant.db, &put).await? {
        return Ok(written);
    }
    put_line_locked(tenant, &put).await
}

/// A line write as asked.
struct Put<'a> {
    token: &'a str,
    variant_id: &'a str,
    quantity: i64,
    replace: bool,
    settings: &'a CheckoutSettings,
}

/// `put_line` in two statements and no transaction: reads the cart, its lines and the
/// variant at once (`CART_LINES_AND_VARIANT`), then writes the line guarded by the cart's
/// version (`guard_sql!`). `None` when the guard found the cart changed meanwhile. Two
/// round trips to the server instead of the five of a transaction.
async fn put_line_optimistic(db: &AnyPool, put: &Put<'_>) -> ApiResult<Option<Written>> {
    let rows =
        sqlx::query(CART_LINES_AND_VARIANT).bind(put.token).bind(put.variant_id).fetch_all(db);
    let rows = rows.await?;
    let row = cart_from(rows.first().ok_or_else(|| ApiError::not_found("cart"))?)?;
    check_open(&row)?;
    let mut lines = Vec::with_capacity(rows.len());
    for r in &rows {
        if r.text("variant_id")?.is_some() {
            lines.push(stored_line(r)?);
        }
    }
    let mut lines = in_order(lines);
    let Some(write) = plan_line(&mut lines, put)? else {
        return Ok(Some(Written { row, lines }));
    };
    let (sql, ints) = write.statement(true);
    let query = sqlx::query(sql).bind(put.token).bind(put.variant_id).bind(row.version);
    let query = ints.iter().fold(query.bind(now_ms()), |q, i| q.bind(*i));
    let written = query.execute(db).await?.rows_affected() == 1;
    Ok(written.then_some(Written { row, lines }))
}

/// `put_line` as one transaction of four statements: touch the cart (which takes its row
/// lock, so concurrent writers of one cart queue), read its lines with the variant, write
/// the line, commit.
async fn put_line_locked(tenant: &Tenant, put: &Put<'_>) -> ApiResult<Written> {
    let mut tx = tenant.platform.pools.backend().begin_write(&tenant.db).await?;
    let Some(row) = touch_open(&mut *tx, put.token).await? else {
        drop(tx);
        check_open(&cart_row(&tenant.db, put.token).await?)?;
        return Err(ApiError::not_found("cart"));
    };
    let mut lines = lines_and_variant(&mut *tx, put.token, put.variant_id).await?;
    if let Some(write) = plan_line(&mut lines, put)? {
        let (sql, ints) = write.statement(false);
        let query = sqlx::query(sql).bind(put.token).bind(put.variant_id);
        ints.iter().fold(query, |q, i| q.bind(*i)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Written { row, lines })
}

/// `put_line` on the SQLite writer thread, in its transaction: touch the cart, read its
/// lines (their variants from the thread's memo), write the line.
fn put_line_sqlite(
    conn: &rusqlite::Connection,
    known: &mut KnownVariants,
    put: &Put<'_>,
) -> ApiResult<Written> {
    let (token, variant_id) = (put.token, put.variant_id);
    let now = now_ms();
    let touched = sqlite::query(conn, TOUCH_OPEN, &*numbered(&[&now, &token]), |r| cart_from(r))?;
    let Some(row) = touched.into_iter().next() else {
        let found = sqlite::query(conn, CART_ROW, &*numbered(&[&token]), |r| cart_from(r))?;
        check_open(found.first().ok_or_else(|| ApiError::not_found("cart"))?)?;
        return Err(ApiError::not_found("cart"));
    };
    let lines = sqlite::query(conn, LINES, &*numbered(&[&token]), |r| {
        let variant = known.get(conn, &r.text_of("variant_id")?)?;
        line_of(r, variant.unwrap_or_default())
    })?;
    let mut lines = in_order(lines);
    if !lines.iter().any(|l| l.variant_id == variant_id)
        && let Some(variant) = known.get(conn, variant_id)?
    {
        let (variant_id, snapshot_price) = (variant_id.to_owned(), variant.price.unwrap_or(0));
        let position = i64::MAX;
        lines.push(StoredLine { variant_id, quantity: 0, snapshot_price, position, variant });
    }
    if let Some(write) = plan_line(&mut lines, put)? {
        let (sql, ints) = write.statement(false);
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&token, &variant_id];
        values.extend(ints.iter().map(|i| i as &dyn rusqlite::ToSql));
        sqlite::execute(conn, sql, &*numbered(&values))?;
    }
    Ok(Written { row, lines })
}

/// The write that adding to (or setting) a line makes.
enum LineWrite {
    Delete,
    Update { quantity: i64, price: i64 },
    Insert { quantity: i64, price: i64, position: i64 },
}

impl LineWrite {
    /// The statement, plain or guarded (`guard_sql!`), and its integers after the token and
    /// variant id (and the guard's).
    fn statement(&self, guarded: bool) -> (&'static str, Vec<i64>) {
        let pick = |plain, guarded_sql| if guarded { guarded_sql } else { plain };
        match *self {
            Self::Delete => (pick(DELETE_LINE, GUARDED_DELETE), vec![]),
            Self::Update { quantity, price } => {
                (pick(UPDATE_LINE, GUARDED_UPDATE), vec![quantity, price])
            }
            Self::Insert { quantity, price, position } => {
                (pick(INSERT_LINE, GUARDED_INSERT), vec![quantity, price, position])
            }
        }
    }
}

/// Decides the write from the cart's lines with the variant (`LINES_AND_VARIANT`) and
/// applies it to `lines`, which then are the cart as it will be stored; or refuses. `None`:
/// nothing to write (setting 0 of a line the cart does not have).
fn plan_line(lines: &mut Vec<StoredLine>, put: &Put<'_>) -> ApiResult<Option<LineWrite>> {
    let (variant_id, settings) = (put.variant_id, put.settings);
    if put.replace && put.quantity == 0 {
        // Also a line whose variant is gone or no longer for sale.
        let in_cart = lines.iter().any(|l| l.variant_id == variant_id && l.quantity > 0);
        lines.retain(|l| l.quantity > 0 && l.variant_id != variant_id);
        return Ok(in_cart.then_some(LineWrite::Delete));
    }
    let found = lines.iter().position(|l| l.variant_id == variant_id);
    let Some(i) = found.filter(|&i| lines[i].variant.status.is_some()) else {
        return Err(ApiError::invalid(
            "variant_id",
            format!("no variant `{variant_id}` in this shop"),
        ));
    };
    let Some(price) = lines[i].variant.price else {
        return Err(ApiError::invalid("variant_id", "this product is not for sale"));
    };
    let current = lines[i].quantity;
    let wanted = if put.replace { Some(put.quantity) } else { current.checked_add(put.quantity) };
    let Some(wanted) = wanted.filter(|w| (1..=settings.max_quantity).contains(w)) else {
        return Err(too_many(settings.max_quantity));
    };
    // The cart's subtotal as it would be, in i128: refused before it is written when it
    // passes the largest amount (a price × quantity no shopper means).
    let subtotal: i128 = lines
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let q = if k == i { wanted } else { l.quantity };
            i128::from(l.variant.price.unwrap_or(0)) * i128::from(q)
        })
        .sum();
    if subtotal > i128::from(totals::MAX_AMOUNT) {
        return Err(too_large(totals::TooLarge));
    }
    if let Some(stock) = lines[i].variant.inventory
        && lines[i].variant.policy == "deny"
        && wanted > stock
    {
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            "out_of_stock",
            format!("only {} left in stock", stock.max(0)),
        )
        .with_field("quantity");
        e.details.push(crate::error::Detail {
            code: "available".into(),
            message: stock.max(0).to_string(),
            field: Some("available".into()),
        });
        return Err(e);
    }
    let write = if current > 0 {
        LineWrite::Update { quantity: wanted, price }
    } else {
        let in_cart = lines.iter().filter(|l| l.quantity > 0);
        if i64::try_from(in_cart.clone().count()).unwrap_or(i64::MAX) >= settings.max_lines {
            return Err(ApiError::invalid(
                "variant_id",
                format!("a cart holds at most {} lines", settings.max_lines),
            ));
        }
        let position = in_cart.map(|l| l.position).max().unwrap_or(0) + 1;
        lines[i].position = position;
        LineWrite::Insert { quantity: wanted, price, position }
    };
    lines[i].quantity = wanted;
    lines[i].snapshot_price = price;
    // A variant looked up but not added (quantity 0) is not a line.
    lines.retain(|l| l.quantity > 0);
    Ok(Some(write))
}
