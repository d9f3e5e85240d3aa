//! Carts: an unguessable token, lines by variant (equal lines merge), quantity and line
//! limits, and totals computed on the server from catalog prices only, with a breakdown
//! that explains every amount. Adding to a cart makes no outside call.

use super::discounts::{self, Discount, Reason};
use super::settings::{self, CheckoutSettings, is_country};
use super::totals::{self, Effect, Input, Line, Totals};
use crate::auth::{Permission, Tenant};
use crate::catalog::store;
use crate::db::{Columns, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::registry::random_hex;
use crate::server::{Body, Platform};
use crate::sqlite_writer::{self as sqlite, numbered};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::AnyPool;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(create_cart))
        .routes(routes!(get_cart, update_cart))
        .routes(routes!(add_line))
        .routes(routes!(set_line, remove_line))
        .routes(routes!(add_code))
        .routes(routes!(remove_code))
}

/// A cart line as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartLine {
    /// The variant.
    pub variant_id: String,
    /// SKU.
    pub sku: String,
    /// Product handle.
    pub product_handle: String,
    /// Product title.
    pub title: String,
    /// Option values, e.g. `Slate / M`.
    pub variant_title: String,
    /// Units.
    pub quantity: i64,
    /// Current catalog price per unit (minor units).
    pub unit_price: i64,
    /// The unit price when the line was last confirmed, if it differs from the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_unit_price: Option<i64>,
    /// Units in stock, when counted.
    pub available: Option<i64>,
    /// Amounts of this line.
    pub amounts: totals::LineAmounts,
}

/// A discount code in the cart: applied, or why not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeStatus {
    /// The code.
    pub code: String,
    /// Whether it applies.
    pub applied: bool,
    /// Amount it takes off (minor units).
    pub amount: i64,
    /// Why it does not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The reason in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A shipping option for the cart's destination.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShippingOption {
    /// Rate id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Price for this cart (minor units).
    pub amount: i64,
}

/// A cart with its totals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cart {
    /// The cart's secret token: whoever has it can use the cart.
    pub token: String,
    /// `open` or `completed`.
    pub status: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Lines in the order they were added.
    pub lines: Vec<CartLine>,
    /// Email for the order.
    pub email: Option<String>,
    /// Destination country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// Destination region.
    pub region: Option<String>,
    /// Chosen shipping rate.
    pub shipping_rate: Option<String>,
    /// Shipping options for the destination.
    pub shipping_options: Vec<ShippingOption>,
    /// Discount codes and their state.
    pub discount_codes: Vec<CodeStatus>,
    /// The totals: subtotal, discount, shipping, tax, total.
    pub totals: Totals,
    /// Tax rate applied, basis points.
    pub tax_rate_bp: i64,
    /// The order placed from this cart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Plain-language explanation of each amount.
    pub breakdown: Vec<String>,
}

/// `{"cart": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartResponse {
    /// The cart.
    pub cart: Cart,
}

/// Shop-wide facts the totals need.
#[derive(Debug, Clone)]
pub struct ShopFacts {
    /// Currency.
    pub currency: aurelio_engine::money::Currency,
    /// Whether catalog prices include tax.
    pub prices_include_tax: bool,
    /// Checkout settings.
    pub settings: CheckoutSettings,
}

/// The shop's facts, cached for a few seconds (`Platform::facts`; writers of the store
/// and checkout settings clear it).
pub async fn shop_facts(tenant: &Tenant) -> ApiResult<Arc<ShopFacts>> {
    if let Some(hit) = tenant.platform.facts.get(&tenant.shop.id) {
        return Ok(hit);
    }
    let fresh = Arc::new(facts(&tenant.db).await?);
    tenant.platform.facts.insert(tenant.shop.id.clone(), fresh.clone());
    Ok(fresh)
}

/// Reads the facts.
pub async fn facts(db: &AnyPool) -> ApiResult<ShopFacts> {
    let store_json: Value = store::document(db, store::STORE_JSON)
        .await?
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null);
    let currency = store_json
        .get("currency")
        .and_then(Value::as_str)
        .and_then(aurelio_engine::money::Currency::from_code)
        .ok_or_else(|| ApiError::internal(&"store.json has no valid currency"))?;
    Ok(ShopFacts {
        currency,
        prices_include_tax: store_json
            .get("prices_include_tax")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        settings: settings::load(db).await?,
    })
}

/// A line as stored, with its variant as the catalog has it now.
#[derive(Debug, Clone)]
pub struct StoredLine {
    /// Variant id.
    pub variant_id: String,
    /// Quantity.
    pub quantity: i64,
    /// Unit price when added/confirmed.
    pub snapshot_price: i64,
    /// Order of adding.
    pub position: i64,
    /// The variant now (all empty when it is gone).
    pub variant: Arc<Variant>,
}

/// A variant as a cart line shows it, with its product's details.
#[derive(Debug, Default)]
pub struct Variant {
    /// Current price (`None`: the variant or its product is gone or not active).
    pub price: Option<i64>,
    /// SKU.
    pub sku: String,
    /// Stock (None: not counted).
    pub inventory: Option<i64>,
    /// `deny` or `continue`.
    pub policy: String,
    /// Weight in grams.
    pub grams: i64,
    /// Product handle.
    pub handle: String,
    /// Product title.
    pub title: String,
    /// Option values.
    pub label: String,
    /// The product's status (`None`: the variant is gone).
    pub status: Option<String>,
}

/// The cart's row.
#[derive(Debug, Clone)]
pub struct CartRow {
    /// Token.
    pub token: String,
    /// Status.
    pub status: String,
    /// Email.
    pub email: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Chosen rate.
    pub shipping_rate: Option<String>,
    /// Codes entered.
    pub codes: Vec<String>,
    /// Order placed.
    pub order_id: Option<String>,
    /// Counts the cart's changes.
    pub version: i64,
}

macro_rules! cart_columns {
    () => {
        "token, status, email, country, region, shipping_rate, codes, order_id, version"
    };
}

const CART_ROW: &str = concat!("SELECT ", cart_columns!(), " FROM carts WHERE token = $1");

/// Marks an open cart as changed now, which takes its row lock (PostgreSQL; SQLite's write
/// lock is already held) so concurrent edits of one cart queue, and returns it.
const TOUCH_OPEN: &str = concat!(
    "UPDATE carts SET updated_at = $1, version = version + 1 \
    WHERE token = $2 AND status = 'open' RETURNING ",
    cart_columns!()
);

/// What a cart line shows of its variant `v` and product `p` (decoded by `variant`).
macro_rules! variant_columns {
    () => {
        "v.price, v.sku, v.inventory, v.inventory_policy, v.weight_grams, v.label, \
        p.handle, p.title, p.status AS product_status"
    };
}

/// The cart's lines, and the variant `$2` with quantity 0 and the last position when it
/// exists in the shop but not in the cart: what adding to a cart reads, in one statement.
/// Unordered: `in_order` sorts the rows by position (SQLite's sorter for an `ORDER BY`
/// was a third of the statement's time).
macro_rules! lines_and_variant_sql {
    () => {
        concat!(
            "SELECT l.variant_id, l.quantity, l.unit_price AS snapshot, l.position, ",
            variant_columns!(),
            " FROM cart_lines l LEFT JOIN variants v ON v.id = l.variant_id \
            LEFT JOIN products p ON p.id = v.product_id WHERE l.cart_token = $1 \
            UNION ALL \
            SELECT v.id, 0, v.price, 9223372036854775807, ",
            variant_columns!(),
            " FROM variants v JOIN products p ON p.id = v.product_id WHERE v.id = $2 \
            AND NOT EXISTS (SELECT 1 FROM cart_lines c WHERE c.cart_token = $1 AND c.variant_id = $2)"
        )
    };
}
const LINES_AND_VARIANT: &str = lines_and_variant_sql!();

/// The cart on each of its `LINES_AND_VARIANT` rows, or on one row without them: what an
/// optimistic addition reads, in one statement and so from one snapshot.
const CART_LINES_AND_VARIANT: &str = concat!(
    "SELECT ",
    cart_columns!(),
    ", x.* FROM carts LEFT JOIN (",
    lines_and_variant_sql!(),
    ") x ON TRUE WHERE token = $1"
);

/// A cart's lines without their variants (the writer thread knows those: `KnownVariants`).
const LINES: &str = "SELECT variant_id, quantity, unit_price AS snapshot, position \
    FROM cart_lines WHERE cart_token = $1";

/// One variant with its product.
const VARIANT: &str = concat!(
    "SELECT ",
    variant_columns!(),
    " FROM variants v LEFT JOIN products p ON p.id = v.product_id WHERE v.id = $1"
);

// The line writes take the cart token and variant id as `$1` and `$2`, then integers; the
// guarded ones (`guard_sql!`) the cart's version and the time as `$3` and `$4` first.
const DELETE_LINE: &str = "DELETE FROM cart_lines WHERE cart_token = $1 AND variant_id = $2";
const UPDATE_LINE: &str = "UPDATE cart_lines SET quantity = $3, unit_price = $4 \
    WHERE cart_token = $1 AND variant_id = $2";
const INSERT_LINE: &str = "INSERT INTO cart_lines \
    (cart_token, variant_id, quantity, unit_price, position) VALUES ($1, $2, $3, $4, $5)";

/// Counts up the version of cart `$1` and marks it changed at `$4` if it is open and still
/// at version `$3`: the guard of an optimistic line write, which writes only when this
/// returned the cart (PostgreSQL: SQLite has no writing `WITH`, and takes the writer path).
macro_rules! guard_sql {
    () => {
        "WITH c AS (UPDATE carts SET version = version + 1, updated_at = $4 \
        WHERE token = $1 AND status = 'open' AND version = $3 RETURNING token) "
    };
}
const GUARDED_DELETE: &str = concat!(
    guard_sql!(),
    "DELETE FROM cart_lines USING c WHERE cart_token = $1 AND variant_id = $2"
);
const GUARDED_UPDATE: &str = concat!(
    guard_sql!(),
    "UPDATE cart_lines SET quantity = $5, unit_price = $6 FROM c \
    WHERE cart_token = $1 AND variant_id = $2"
);
const GUARDED_INSERT: &str = concat!(
    guard_sql!(),
    "INSERT INTO cart_lines (cart_token, variant_id, quantity, unit_price, position) \
    SELECT token, $2, $5, $6, $7 FROM c"
);

/// Loads a cart row.
pub async fn cart_row<'e, E>(db: E, token: &str) -> ApiResult<CartRow>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query(CART_ROW)
        .bind(token)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("cart"))?;
    cart_from(&r)
}

/// `TOUCH_OPEN`; `None` when no open cart has this token.
async fn touch_open<'e, E>(db: E, token: &str) -> ApiResult<Option<CartRow>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query(TOUCH_OPEN).bind(now_ms()).bind(token).fetch_optional(db).await?;
    r.as_ref().map(cart_from).transpose()
}

fn cart_from(r: &impl Columns) -> ApiResult<CartRow> {
    Ok(CartRow {
        token: r.text_of("token")?,
        status: r.text_of("status")?,
        email: r.text("email")?,
        country: r.text("country")?,
        region: r.text("region")?,
        shipping_rate: r.text("shipping_rate")?,
        codes: serde_json::from_str(&r.text_of("codes")?).unwrap_or_default(),
        order_id: r.text("order_id")?,
        version: r.int_of("version")?,
    })
}

/// The id of the order placed from a cart; 404 when there is none.
pub async fn order_of(db: &AnyPool, token: &str) -> ApiResult<String> {
    let order_id: Option<String> =
        sqlx::query_scalar("SELECT order_id FROM carts WHERE token = $1")
            .bind(token)
            .fetch_optional(db)
            .await?
            .flatten();
    order_id.ok_or_else(|| ApiError::not_found("order"))
}

/// Loads a cart's lines with current catalog data, in the order they were added.
pub async fn stored_lines<'e, E>(db: E, token: &str) -> ApiResult<Vec<StoredLine>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    lines_and_variant(db, token, "").await
}

/// `LINES_AND_VARIANT` through `sqlx`.
async fn lines_and_variant<'e, E>(
    db: E,
    token: &str,
    variant_id: &str,
) -> ApiResult<Vec<StoredLine>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(LINES_AND_VARIANT).bind(token).bind(variant_id).fetch_all(db).await?;
    Ok(in_order(rows.iter().map(stored_line).collect::<ApiResult<_>>()?))
}

/// Lines in the order they were added (they are read unordered).
fn in_order(mut lines: Vec<StoredLine>) -> Vec<StoredLine> {
    lines.sort_unstable_by_key(|l| l.position);
    lines
}

fn stored_line(r: &impl Columns) -> ApiResult<StoredLine> {
    line_of(r, Arc::new(variant(r)?))
}

/// A line's own columns (`LINES`), with its variant.
fn line_of(r: &impl Columns, variant: Arc<Variant>) -> ApiResult<StoredLine> {
    Ok(StoredLine {
        variant_id: r.text_of("variant_id")?,
        quantity: r.int_of("quantity")?,
        snapshot_price: r.int_of("snapshot")?,
        position: r.int_of("position")?,
        variant,
    })
}

/// `variant_columns!`; all empty for a variant that is gone.
fn variant(r: &impl Columns) -> ApiResult<Variant> {
    let status = r.text("product_status")?;
    let active = status.as_deref() == Some("active");
    Ok(Variant {
        price: if active { r.int("price")? } else { None },
        sku: r.text("sku")?.unwrap_or_default(),
        inventory: r.int("inventory")?,
        policy: r.text("inventory_policy")?.unwrap_or_default(),
        grams: r.int("weight_grams")?.unwrap_or(0),
        handle: r.text("handle")?.unwrap_or_default(),
        title: r.text("title")?.unwrap_or_default(),
        label: r.text("label")?.unwrap_or_default(),
        status,
    })
}

/// The variants the writer thread has read, by id (`None`: not in the shop), kept in its
/// `Memo`, which forgets them when anyone else writes: a cart's other lines cost it no
/// catalog reads. The thread itself writes only carts.
#[derive(Default)]
struct KnownVariants(HashMap<String, Option<Arc<Variant>>>);

impl KnownVariants {
    /// At most this many are kept (then all are forgotten).
    const MAX: usize = 10_000;

    fn get(&mut self, conn: &rusqlite::Connection, id: &str) -> ApiResult<Option<Arc<Variant>>> {
        if let Some(known) = self.0.get(id) {
            return Ok(known.clone());
        }
        let found = sqlite::query(conn, VARIANT, &*numbered(&[&id]), |r| variant(r))?;
        let found = found.into_iter().next().map(Arc::new);
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(id.to_owned(), found.clone());
        Ok(found)
    }
}

/// Which collections each product handle is in (for discounts limited to collections),
/// computed by the engine from the shop's last exported catalog.
pub type Members = HashMap<String, HashSet<String>>;

/// Everything needed to price a cart, loaded once.
pub struct Priced {
    /// The cart as shown.
    pub cart: Cart,
    /// Applied discounts (code, discount), in order.
    pub applied: Vec<Discount>,
}

/// `value` within `i64` (saturating at either end).
fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// A quantity past the shop's limit per line (or one that would overflow).
fn too_many(max: i64) -> ApiError {
    ApiError::invalid("quantity", format!("at most {max} of one item per order"))
}

/// A cart whose amounts would pass `totals::MAX_AMOUNT`: the shopper lowers a quantity.
fn too_large(e: totals::TooLarge) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "amount_too_large", e.to_string())
        .with_field("quantity")
}

/// Prices a cart: the one function behind every cart answer and checkout.
pub async fn price(
    platform: &Platform,
    shop_id: &str,
    db: &AnyPool,
    row: &CartRow,
    lines: &[StoredLine],
    facts: &ShopFacts,
) -> ApiResult<Priced> {
    let now = now_ms();
    // In i128 (no step can wrap), capped: only compared with discounts' minimum subtotals.
    let subtotal = clamp_i64(
        lines
            .iter()
            .filter_map(|l| l.variant.price.map(|p| i128::from(p) * i128::from(l.quantity)))
            .sum(),
    );
    // Discounts in the order entered; stacking: all applied codes must be combinable.
    let mut applied: Vec<Discount> = Vec::new();
    let mut statuses: Vec<CodeStatus> = Vec::new();
    let mut members: Option<Arc<Members>> = None;
    for code in &row.codes {
        let found = discounts::find(db, code).await?;
        let reason = match &found {
            None => Some(Reason::UnknownCode),
            Some(d) => {
                let used = discounts::used_by(db, code, row.email.as_deref()).await?;
                if let Err(r) = discounts::availability(d, now, used) {
                    Some(r)
                } else if d.min_subtotal.is_some_and(|m| subtotal < m) {
                    Some(Reason::MinimumNotMet)
                } else if !(applied.is_empty()
                    || d.combinable && applied.iter().all(|a| a.combinable))
                {
                    Some(Reason::NotCombinable)
                } else {
                    if !d.collections.is_empty() && members.is_none() {
                        members = Some(super::collection_members(platform, shop_id).await);
                    }
                    let m = members.clone().unwrap_or_default();
                    let eligible = lines.iter().any(|l| {
                        l.variant.price.is_some()
                            && d.covers(&l.variant.handle, &|c| {
                                m.get(&l.variant.handle).is_some_and(|s| s.contains(c))
                            })
                    });
                    (!eligible && d.effect() != Effect::FreeShipping)
                        .then_some(Reason::NoEligibleProducts)
                }
            }
        };
        match (reason, found) {
            (None, Some(d)) => {
                statuses.push(CodeStatus {
                    code: d.code.clone(),
                    applied: true,
                    amount: 0,
                    reason: None,
                    message: None,
                });
                applied.push(d);
            }
            (reason, _) => statuses.push(CodeStatus {
                code: discounts::normalize_code(code),
                applied: false,
                amount: 0,
                reason,
                message: reason.map(|r| r.message().to_owned()),
            }),
        }
    }
    let m = members.unwrap_or_default();
    let input_lines: Vec<Line> = lines
        .iter()
        .filter(|l| l.variant.price.is_some())
        .map(|l| Line {
            unit_price: l.variant.price.unwrap_or(0),
            quantity: l.quantity,
            eligible: applied
                .iter()
                .map(|d| {
                    d.covers(&l.variant.handle, &|c| {
                        m.get(&l.variant.handle).is_some_and(|s| s.contains(c))
                    })
                })
                .collect(),
        })
        .collect();
    let effects: Vec<Effect> = applied.iter().map(Discount::effect).collect();
    let grams =
        clamp_i64(lines.iter().map(|l| i128::from(l.variant.grams) * i128::from(l.quantity)).sum());
    let country = row.country.clone().unwrap_or_default();
    let zone = facts.settings.zone(&country);
    let tax_rate = if country.is_empty() {
        0
    } else {
        facts.settings.tax_rate(&country, row.region.as_deref())
    };
    // Shipping depends on the subtotal after discounts (free-over thresholds).
    let pre = totals::compute(&Input {
        lines: input_lines.clone(),
        discounts: effects.clone(),
        shipping: 0,
        tax_rate: 0,
        prices_include_tax: true,
    })
    .map_err(too_large)?;
    let after_discounts = pre.subtotal - pre.discount;
    let options: Vec<ShippingOption> = zone
        .map(|z| {
            z.rates
                .iter()
                .map(|r| ShippingOption {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    amount: r.price(after_discounts, grams),
                })
                .collect()
        })
        .unwrap_or_default();
    let chosen = row
        .shipping_rate
        .as_ref()
        .and_then(|id| options.iter().find(|o| &o.id == id))
        .or_else(|| options.first());
    let shipping = if lines.is_empty() { 0 } else { chosen.map_or(0, |o| o.amount) };
    let t = totals::compute(&Input {
        lines: input_lines,
        discounts: effects,
        shipping,
        tax_rate,
        prices_include_tax: facts.prices_include_tax,
    })
    .map_err(too_large)?;
    for (k, s) in statuses.iter_mut().filter(|s| s.applied).enumerate() {
        s.amount = t.discounts.get(k).copied().unwrap_or(0);
    }
    let money =
        |minor: i64| aurelio_engine::money::Money { minor, currency: facts.currency }.decimal();
    let mut shown = Vec::with_capacity(lines.len());
    let mut amounts = t.lines.iter();
    for l in lines {
        let a = if l.variant.price.is_some() {
            amounts.next().cloned().unwrap_or(totals::LineAmounts {
                subtotal: 0,
                discount: 0,
                tax: 0,
                total: 0,
            })
        } else {
            totals::LineAmounts { subtotal: 0, discount: 0, tax: 0, total: 0 }
        };
        shown.push(CartLine {
            variant_id: l.variant_id.clone(),
            sku: l.variant.sku.clone(),
            product_handle: l.variant.handle.clone(),
            title: l.variant.title.clone(),
            variant_title: l.variant.label.clone(),
            quantity: l.quantity,
            unit_price: l.variant.price.unwrap_or(0),
            previous_unit_price: l
                .variant
                .price
                .filter(|p| *p != l.snapshot_price)
                .map(|_| l.snapshot_price),
            available: l.variant.inventory.filter(|_| l.variant.policy == "deny").map(|n| n.max(0)),
            amounts: a,
        });
    }
    let code = facts.currency.code();
    let mut breakdown = vec![format!(
        "subtotal {} {code}: sum of unit price × quantity of each line",
        money(t.subtotal)
    )];
    for s in statuses.iter().filter(|s| s.applied) {
        breakdown.push(format!("discount {}: −{} {code}", s.code, money(s.amount)));
    }
    match chosen {
        Some(o) => breakdown.push(format!(
            "shipping {} {code} ({}{}, {grams} g)",
            money(t.shipping),
            o.name,
            if t.shipping_discount > 0 { ", free with a code" } else { "" }
        )),
        None => breakdown.push("shipping: set a country to see shipping options".into()),
    }
    breakdown.push(if t.tax_included {
        format!(
            "tax {} {code} included in the prices ({} bp, rounded per line)",
            money(t.tax),
            tax_rate
        )
    } else {
        format!("tax {} {code} added ({} bp, rounded per line)", money(t.tax), tax_rate)
    });
    breakdown.push(format!("total {} {code}", money(t.total)));
    Ok(Priced {
        cart: Cart {
            token: row.token.clone(),
            status: row.status.clone(),
            currency: code.to_owned(),
            lines: shown,
            email: row.email.clone(),
            country: row.country.clone(),
            region: row.region.clone(),
            shipping_rate: chosen.map(|o| o.id.clone()),
            shipping_options: options,
            discount_codes: statuses,
            totals: t,
            tax_rate_bp: tax_rate,
            order_id: row.order_id.clone(),
            breakdown,
        },
        applied,
    })
}

async fn show(tenant: &Tenant, token: &str) -> ApiResult<Cart> {
    let row = cart_row(&tenant.db, token).await?;
    let lines = stored_lines(&tenant.db, token).await?;
    shown(tenant, &Written { row, lines }).await
}

/// A cart as answered: priced from its row and lines.
async fn shown(tenant: &Tenant, cart: &Written) -> ApiResult<Cart> {
    let facts = shop_facts(tenant).await?;
    let priced =
        price(&tenant.platform, &tenant.shop.id, &tenant.db, &cart.row, &cart.lines, &facts);
    Ok(priced.await?.cart)
}

/// A line to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// The variant.
    pub variant_id: String,
    /// Units to add (or to set, on `PATCH`), at least 1.
    pub quantity: i64,
}

/// A new cart's optional contents.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCart {
    /// Lines to start with.
    #[serde(default)]
    pub lines: Vec<LineRequest>,
    /// Email.
    pub email: Option<String>,
    /// Destination country.
    pub country: Option<String>,
}

/// Changes to a cart's details.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartUpdate {
    /// Email for the order.
    pub email: Option<String>,
    /// Destination country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// Destination region (state, province); `null` clears it. A new country without a
    /// region clears the old country's region.
    #[serde(default, deserialize_with = "crate::catalog::double_option")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Option<String>>,
    /// Shipping rate id from `shipping_options`; `null` goes back to the first option.
    #[serde(default, deserialize_with = "crate::catalog::double_option")]
    #[schema(value_type = Option<String>)]
    pub shipping_rate: Option<Option<String>>,
}

/// After a one-statement change of an open cart: nothing changed means the cart was
/// checked out meanwhile (409) or does not exist (404).
async fn still_open(tenant: &Tenant, token: &str, changed: u64) -> ApiResult<()> {
    if changed == 0 {
        check_open(&cart_row(&tenant.db, token).await?)?;
        return Err(ApiError::not_found("cart"));
    }
    Ok(())
}

fn check_open(row: &CartRow) -> ApiResult<()> {
    if row.status != "open" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cart_completed",
            "this cart has been checked out",
        ));
    }
    Ok(())
}

/// A plausible email address (one `@`, a dot in the domain, no spaces).
pub fn is_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

/// A cart as just written: its row and lines, ready to price without reading them again.
struct Written {
    row: CartRow,
    lines: Vec<StoredLine>,
}

/// Adds `quantity` of a variant to a cart (merging with an equal line), or sets the line's
/// quantity (`replace`; 0 removes it), within limits. On SQLite it runs whole on the
/// database's writer thread (`sqlite_writer`), which commits concurrent additions together;
/// on PostgreSQL optimistically (`put_line_optimistic`), and after a conflict as one
/// transaction that holds the cart's row lock (`put_line_locked`).
async fn put_line(
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

/// Create a cart (publishable key).
#[utoipa::path(post, path = "/api/v1/carts", tag = "carts", request_body = NewCart,
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 201, body = CartResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn create_cart(
    tenant: Tenant,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<CartResponse>)> {
    tenant.require(Permission::Shop)?;
    let req: NewCart = if body.iter().all(u8::is_ascii_whitespace) {
        NewCart::default()
    } else {
        crate::server::parse_json(&body)?
    };
    if let Some(email) = &req.email
        && !is_email(email)
    {
        return Err(ApiError::invalid("email", "not an email address"));
    }
    let country = req.country.as_deref().map(str::to_ascii_uppercase);
    if country.as_deref().is_some_and(|c| !is_country(c)) {
        return Err(ApiError::invalid("country", "not an ISO 3166-1 alpha-2 code like `IE`"));
    }
    let token = random_hex(16);
    let now = now_ms();
    let backend = tenant.platform.pools.backend();
    let insert = sqlx::query(
        "INSERT INTO carts (token, status, email, country, codes, created_at, updated_at) \
         VALUES ($1, 'open', $2, $3, '[]', $4, $4)",
    )
    .bind(&token)
    .bind(req.email.as_deref().map(str::trim))
    .bind(country)
    .bind(now);
    backend.write(&tenant.db, insert).await?;
    let facts = shop_facts(&tenant).await?;
    let mut written = None;
    for (i, line) in req.lines.iter().enumerate() {
        let added = put_line(&tenant, &token, &line.variant_id, line.quantity, false, &facts);
        match added.await {
            Ok(w) => written = Some(w),
            Err(mut e) => {
                // No half-made cart stays behind: the shopper gets the error and no token.
                let delete = sqlx::query("DELETE FROM carts WHERE token = $1").bind(&token);
                let _ = backend.write(&tenant.db, delete).await;
                e.field = Some(format!("lines[{i}].{}", e.field.clone().unwrap_or_default()));
                return Err(e);
            }
        }
    }
    metrics::counter!("aurelio_carts_created_total").increment(1);
    let cart = match written {
        Some(w) => shown(&tenant, &w).await?,
        None => show(&tenant, &token).await?,
    };
    Ok((StatusCode::CREATED, Json(CartResponse { cart })))
}

/// Read a cart with its totals.
#[utoipa::path(get, path = "/api/v1/carts/{token}", tag = "carts",
    params(("token" = String, Path, description = "cart token")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_cart(tenant: Tenant, Path(token): Path<String>) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    Ok(Json(CartResponse { cart: show(&tenant, &token).await? }))
}

/// Set the cart's email, destination and shipping rate.
#[utoipa::path(patch, path = "/api/v1/carts/{token}", tag = "carts", request_body = CartUpdate,
    params(("token" = String, Path, description = "cart token")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn update_cart(
    tenant: Tenant,
    Path(token): Path<String>,
    Body(req): Body<CartUpdate>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    let row = cart_row(&tenant.db, &token).await?;
    check_open(&row)?;
    if req.email.as_deref().is_some_and(|e| !is_email(e)) {
        return Err(ApiError::invalid("email", "not an email address"));
    }
    let country = req.country.as_deref().map(str::to_ascii_uppercase);
    if country.as_deref().is_some_and(|c| !is_country(c)) {
        return Err(ApiError::invalid("country", "not an ISO 3166-1 alpha-2 code like `IE`"));
    }
    let moved = country.is_some() && country != row.country;
    let region = match req.region {
        Some(given) => given.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
        None if moved => None,
        None => row.region,
    };
    let update = sqlx::query(
        "UPDATE carts SET email = COALESCE($1, email), country = COALESCE($2, country), \
         region = $3, shipping_rate = $4, updated_at = $5, version = version + 1 \
         WHERE token = $6 AND status = 'open'",
    )
    .bind(req.email.as_deref().map(str::trim))
    .bind(country)
    .bind(region)
    .bind(req.shipping_rate.unwrap_or(row.shipping_rate))
    .bind(now_ms())
    .bind(&token);
    let changed = tenant.platform.pools.backend().write(&tenant.db, update).await?;
    still_open(&tenant, &token, changed.rows_affected()).await?;
    Ok(Json(CartResponse { cart: show(&tenant, &token).await? }))
}

/// Add a variant to the cart; an equal line's quantity grows.
#[utoipa::path(post, path = "/api/v1/carts/{token}/lines", tag = "carts", request_body = LineRequest,
    params(("token" = String, Path, description = "cart token")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn add_line(
    tenant: Tenant,
    Path(token): Path<String>,
    Body(line): Body<LineRequest>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    let facts = shop_facts(&tenant).await?;
    let written = put_line(&tenant, &token, &line.variant_id, line.quantity, false, &facts).await?;
    metrics::counter!("aurelio_cart_adds_total").increment(1);
    Ok(Json(CartResponse { cart: shown(&tenant, &written).await? }))
}

/// The new quantity of a line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantityRequest {
    /// Units; 0 removes the line.
    pub quantity: i64,
}

/// Set a line's quantity (0 removes it).
#[utoipa::path(patch, path = "/api/v1/carts/{token}/lines/{variant_id}", tag = "carts",
    request_body = QuantityRequest,
    params(("token" = String, Path, description = "cart token"), ("variant_id" = String, Path, description = "variant")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
async fn set_line(
    tenant: Tenant,
    Path((token, variant_id)): Path<(String, String)>,
    Body(req): Body<QuantityRequest>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    // Both ids are in the path: a cart or variant this shop does not have is 404.
    cart_row(&tenant.db, &token).await?;
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM variants WHERE id = $1")
        .bind(&variant_id)
        .fetch_optional(&tenant.db)
        .await?;
    if known.is_none() {
        return Err(ApiError::not_found("variant"));
    }
    let facts = shop_facts(&tenant).await?;
    let written = put_line(&tenant, &token, &variant_id, req.quantity, true, &facts).await?;
    Ok(Json(CartResponse { cart: shown(&tenant, &written).await? }))
}

/// Remove a line.
#[utoipa::path(delete, path = "/api/v1/carts/{token}/lines/{variant_id}", tag = "carts",
    params(("token" = String, Path, description = "cart token"), ("variant_id" = String, Path, description = "variant")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn remove_line(
    tenant: Tenant,
    Path((token, variant_id)): Path<(String, String)>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    let facts = shop_facts(&tenant).await?;
    let written = put_line(&tenant, &token, &variant_id, 0, true, &facts).await?;
    Ok(Json(CartResponse { cart: shown(&tenant, &written).await? }))
}

/// A code to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The discount code.
    pub code: String,
}

/// Apply a discount code. A code that does not apply is refused with `422`,
/// `error.code` `discount_not_applicable` and the reason in `error.details[0].code`
/// (`unknown_code`, `expired`, `minimum_not_met`, `usage_limit_reached`, ...).
#[utoipa::path(post, path = "/api/v1/carts/{token}/discounts", tag = "carts", request_body = CodeRequest,
    params(("token" = String, Path, description = "cart token")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn add_code(
    tenant: Tenant,
    Path(token): Path<String>,
    Body(req): Body<CodeRequest>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    let mut row = cart_row(&tenant.db, &token).await?;
    check_open(&row)?;
    let code = discounts::normalize_code(&req.code);
    if !row.codes.contains(&code) {
        row.codes.push(code.clone());
    }
    let lines = stored_lines(&tenant.db, &token).await?;
    let facts = shop_facts(&tenant).await?;
    let priced = price(&tenant.platform, &tenant.shop.id, &tenant.db, &row, &lines, &facts).await?;
    let status = priced.cart.discount_codes.iter().find(|s| s.code == code);
    if let Some(CodeStatus { applied: false, reason: Some(reason), .. }) = status {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "discount_not_applicable",
            reason.message(),
        )
        .with_field("code");
        e.details.push(crate::error::Detail {
            code: reason.code(),
            message: reason.message().into(),
            field: Some("code".into()),
        });
        return Err(e);
    }
    save_codes(&tenant, &token, &row.codes).await?;
    Ok(Json(CartResponse { cart: priced.cart }))
}

/// Remove a discount code.
#[utoipa::path(delete, path = "/api/v1/carts/{token}/discounts/{code}", tag = "carts",
    params(("token" = String, Path, description = "cart token"), ("code" = String, Path, description = "the code")),
    security(("publishable_key" = []), ("secret_key" = [])),
    responses((status = 200, body = CartResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn remove_code(
    tenant: Tenant,
    Path((token, code)): Path<(String, String)>,
) -> ApiResult<Json<CartResponse>> {
    tenant.require(Permission::Shop)?;
    let mut row = cart_row(&tenant.db, &token).await?;
    check_open(&row)?;
    let code = discounts::normalize_code(&code);
    row.codes.retain(|c| *c != code);
    save_codes(&tenant, &token, &row.codes).await?;
    Ok(Json(CartResponse { cart: show(&tenant, &token).await? }))
}

/// Stores an open cart's discount codes.
async fn save_codes(tenant: &Tenant, token: &str, codes: &[String]) -> ApiResult<()> {
    let update = sqlx::query(
        "UPDATE carts SET codes = $1, updated_at = $2, version = version + 1 \
         WHERE token = $3 AND status = 'open'",
    )
    .bind(json!(codes).to_string())
    .bind(now_ms())
    .bind(token);
    let changed = tenant.platform.pools.backend().write(&tenant.db, update).await?;
    still_open(tenant, token, changed.rows_affected()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_email("ada@example.com"));
        assert!(!is_email("ada@localhost"));
        assert!(!is_email("ada example.com"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("a@b@c.com"));
    }
}
