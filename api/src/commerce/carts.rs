//! Carts: an unguessable token, lines by variant (equal lines merge), quantity and line
//! limits, and totals computed on the server from catalog prices only, with a breakdown
//! that explains every amount. Adding to a cart makes no outside call.

use super::cart_lines::{Written, put_line};
use super::discounts::Reason;
pub use super::pricing::{Priced, price};
use super::settings::{self, CheckoutSettings, is_country};
use super::totals::{self, Totals};
use crate::auth::{Permission, Tenant};
use crate::catalog::store;
use crate::db::{Columns, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use crate::registry::random_hex;
use crate::sqlite_writer::{self as sqlite, numbered};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
        .merge(super::cart_codes::router())
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

/// The shop's facts, cached for a few seconds (`super::Caches`; writers of the store
/// and checkout settings clear it through `Platform::forget`).
pub async fn shop_facts(tenant: &Tenant) -> ApiResult<Arc<ShopFacts>> {
    let caches = tenant.platform.state.get::<super::Caches>();
    if let Some(hit) = caches.facts.get(&tenant.shop.id) {
        return Ok(hit);
    }
    let fresh = Arc::new(facts(&tenant.db).await?);
    caches.facts.insert(tenant.shop.id.clone(), fresh.clone());
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
            // As the engine and docs/catalog-format.md read a store without the key.
            .unwrap_or(true),
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

pub(super) const CART_ROW: &str =
    concat!("SELECT ", cart_columns!(), " FROM carts WHERE token = $1");

/// Marks an open cart as changed now, which takes its row lock (PostgreSQL; SQLite's write
/// lock is already held) so concurrent edits of one cart queue, and returns it.
pub(super) const TOUCH_OPEN: &str = concat!(
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
pub(super) const CART_LINES_AND_VARIANT: &str = concat!(
    "SELECT ",
    cart_columns!(),
    ", x.* FROM carts LEFT JOIN (",
    lines_and_variant_sql!(),
    ") x ON TRUE WHERE token = $1"
);

/// A cart's lines without their variants (the writer thread knows those: `KnownVariants`).
pub(super) const LINES: &str = "SELECT variant_id, quantity, unit_price AS snapshot, position \
    FROM cart_lines WHERE cart_token = $1";

/// One variant with its product.
const VARIANT: &str = concat!(
    "SELECT ",
    variant_columns!(),
    " FROM variants v LEFT JOIN products p ON p.id = v.product_id WHERE v.id = $1"
);

// The line writes take the cart token and variant id as `$1` and `$2`, then integers; the
// guarded ones (`guard_sql!`) the cart's version and the time as `$3` and `$4` first.
pub(super) const DELETE_LINE: &str =
    "DELETE FROM cart_lines WHERE cart_token = $1 AND variant_id = $2";
pub(super) const UPDATE_LINE: &str = "UPDATE cart_lines SET quantity = $3, unit_price = $4 \
    WHERE cart_token = $1 AND variant_id = $2";
pub(super) const INSERT_LINE: &str = "INSERT INTO cart_lines \
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
pub(super) const GUARDED_DELETE: &str = concat!(
    guard_sql!(),
    "DELETE FROM cart_lines USING c WHERE cart_token = $1 AND variant_id = $2"
);
pub(super) const GUARDED_UPDATE: &str = concat!(
    guard_sql!(),
    "UPDATE cart_lines SET quantity = $5, unit_price = $6 FROM c \
    WHERE cart_token = $1 AND variant_id = $2"
);
pub(super) const GUARDED_INSERT: &str = concat!(
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
pub(super) async fn touch_open<'e, E>(db: E, token: &str) -> ApiResult<Option<CartRow>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query(TOUCH_OPEN).bind(now_ms()).bind(token).fetch_optional(db).await?;
    r.as_ref().map(cart_from).transpose()
}

pub(super) fn cart_from(r: &impl Columns) -> ApiResult<CartRow> {
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
pub(super) async fn lines_and_variant<'e, E>(
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
pub(super) fn in_order(mut lines: Vec<StoredLine>) -> Vec<StoredLine> {
    lines.sort_unstable_by_key(|l| l.position);
    lines
}

pub(super) fn stored_line(r: &impl Columns) -> ApiResult<StoredLine> {
    line_of(r, Arc::new(variant(r)?))
}

/// A line's own columns (`LINES`), with its variant.
pub(super) fn line_of(r: &impl Columns, variant: Arc<Variant>) -> ApiResult<StoredLine> {
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
pub(super) struct KnownVariants(HashMap<String, Option<Arc<Variant>>>);

impl KnownVariants {
    /// At most this many are kept (then all are forgotten).
    const MAX: usize = 10_000;

    pub(super) fn get(
        &mut self,
        conn: &rusqlite::Connection,
        id: &str,
    ) -> ApiResult<Option<Arc<Variant>>> {
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

/// A quantity past the shop's limit per line (or one that would overflow).
pub(super) fn too_many(max: i64) -> ApiError {
    ApiError::invalid("quantity", format!("at most {max} of one item per order"))
}

pub(super) async fn show(tenant: &Tenant, token: &str) -> ApiResult<Cart> {
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
pub(super) async fn still_open(tenant: &Tenant, token: &str, changed: u64) -> ApiResult<()> {
    if changed == 0 {
        check_open(&cart_row(&tenant.db, token).await?)?;
        return Err(ApiError::not_found("cart"));
    }
    Ok(())
}

pub(super) fn check_open(row: &CartRow) -> ApiResult<()> {
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
        crate::extract::parse_json(&body)?
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
    super::holds::schedule_cleanup(&tenant.platform, &tenant.shop.id).await;
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
