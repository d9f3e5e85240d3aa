//! Discount codes: percentage, fixed amount or free shipping; minimum subtotal; a time
//! window; a total usage limit and once per customer; limited to products or collections;
//! explicit stacking. When a code does not apply, the cart says why with a stable reason.
//!
//! Usage is counted at checkout in the order's transaction with one conditional update
//! (`usage_count < usage_limit`), never read-then-write, so limits hold under concurrency.

use super::totals::MAX_AMOUNT;
use super::totals::{BasisPoints, Effect};
use crate::auth::{Permission, Tenant};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(list_discounts, create_discount))
        .routes(routes!(get_discount, delete_discount))
}

/// What a discount does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `value` basis points off (1500 = 15 %).
    Percentage,
    /// `value` minor units off.
    FixedAmount,
    /// Shipping is free.
    FreeShipping,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Percentage => "percentage",
            Self::FixedAmount => "fixed_amount",
            Self::FreeShipping => "free_shipping",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "percentage" => Self::Percentage,
            "fixed_amount" => Self::FixedAmount,
            _ => Self::FreeShipping,
        }
    }
}

/// A discount code.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    /// The code shoppers type; matched case-insensitively, stored upper-case.
    pub code: String,
    /// What it does.
    pub kind: Kind,
    /// Basis points (percentage) or minor units (fixed amount); 0 for free shipping.
    #[serde(default)]
    pub value: i64,
    /// Applies only from this subtotal on (minor units).
    #[serde(default)]
    pub min_subtotal: Option<i64>,
    /// Valid from (RFC 3339).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// Valid until (RFC 3339).
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Total uses at most.
    #[serde(default)]
    pub usage_limit: Option<i64>,
    /// Uses so far (read-only).
    #[serde(default)]
    pub usage_count: i64,
    /// One use per customer (by email, normalized).
    #[serde(default)]
    pub once_per_customer: bool,
    /// Limited to these product handles (empty: all).
    #[serde(default)]
    pub products: Vec<String>,
    /// Limited to products of these collections (empty: all).
    #[serde(default)]
    pub collections: Vec<String>,
    /// Whether it combines with other codes. Two codes apply together only when both
    /// combine; otherwise the later one is refused with `not_combinable`.
    #[serde(default)]
    pub combinable: bool,
}

/// Why a code does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No such code.
    UnknownCode,
    /// Not started yet.
    NotStarted,
    /// Past its end.
    Expired,
    /// The subtotal is below the minimum.
    MinimumNotMet,
    /// Used up.
    UsageLimitReached,
    /// This customer used it already.
    AlreadyUsedByCustomer,
    /// No product in the cart qualifies.
    NoEligibleProducts,
    /// Another code in the cart does not combine with it.
    NotCombinable,
}

impl Reason {
    /// The stable code, as serialized (`usage_limit_reached`).
    pub fn code(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// A sentence for shoppers.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownCode => "this code does not exist",
            Self::NotStarted => "this code is not valid yet",
            Self::Expired => "this code has expired",
            Self::MinimumNotMet => "the cart is below the minimum amount for this code",
            Self::UsageLimitReached => "this code has been used up",
            Self::AlreadyUsedByCustomer => "this code was already used with this email address",
            Self::NoEligibleProducts => "no product in the cart qualifies for this code",
            Self::NotCombinable => "this code cannot be combined with the other code in the cart",
        }
    }
}

/// Normalizes a code for storage and lookup.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// The key of a customer for once-per-customer limits: the email, trimmed and lowercased.
pub fn customer_key(email: &str) -> String {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else { return email };
    // Subaddresses (`user+tag@`, also `user-tag@` is too common a name to strip) reach the
    // same mailbox at nearly every provider; Gmail also ignores dots and has two names.
    let local = local.split('+').next().unwrap_or(local);
    let domain = domain.trim_end_matches('.');
    match domain {
        "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
        _ => format!("{local}@{domain}"),
    }
}

fn time_ms(field: &str, value: Option<&String>) -> ApiResult<Option<i64>> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| ApiError::invalid(field, format!("`{v}` is not an RFC 3339 time")))
        })
        .transpose()
}

impl Discount {
    /// The effect on totals.
    pub fn effect(&self) -> Effect {
        match self.kind {
            Kind::Percentage => Effect::Percentage(self.value as BasisPoints),
            Kind::FixedAmount => Effect::Fixed(self.value),
            Kind::FreeShipping => Effect::FreeShipping,
        }
    }

    /// Whether a product qualifies (by handle and the collections it is in).
    pub fn covers(&self, handle: &str, in_collection: &dyn Fn(&str) -> bool) -> bool {
        let by_product = self.products.is_empty() || self.products.iter().any(|p| p == handle);
        let by_collection =
            self.collections.is_empty() || self.collections.iter().any(|c| in_collection(c));
        if self.products.is_empty() || self.collections.is_empty() {
            by_product && by_collection
        } else {
            by_product || by_collection
        }
    }

    fn check(&mut self) -> ApiResult<()> {
        self.code = normalize_code(&self.code);
        if self.code.is_empty()
            || self.code.len() > 64
            || !self.code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ApiError::invalid("code", "a code is 1 to 64 letters, digits, `-` or `_`"));
        }
        match self.kind {
            Kind::Percentage if !(1..=10_000).contains(&self.value) => {
                return Err(ApiError::invalid("value", "a percentage is 1 to 10000 basis points"));
            }
            Kind::FixedAmount if !(1..=MAX_AMOUNT).contains(&self.value) => {
                return Err(ApiError::invalid(
                    "value",
                    format!("a fixed amount is 1 to {MAX_AMOUNT} minor units"),
                ));
            }
            _ => {}
        }
        if self.min_subtotal.is_some_and(|m| !(0..=MAX_AMOUNT).contains(&m)) {
            return Err(ApiError::invalid("min_subtotal", format!("0 to {MAX_AMOUNT}")));
        }
        if self.usage_limit.is_some_and(|m| m < 1) {
            return Err(ApiError::invalid("usage_limit", "at least 1"));
        }
        let (s, e) = (
            time_ms("starts_at", self.starts_at.as_ref())?,
            time_ms("ends_at", self.ends_at.as_ref())?,
        );
        if let (Some(s), Some(e)) = (s, e)
            && e <= s
        {
            return Err(ApiError::invalid("ends_at", "the end is before the start"));
        }
        Ok(())
    }
}

/// Whether the time window, usage limit and customer limit allow the code now.
pub fn availability(d: &Discount, now: i64, used_by_customer: bool) -> Result<(), Reason> {
    let at = |t: &Option<String>| {
        t.as_ref()
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.timestamp_millis())
    };
    if at(&d.starts_at).is_some_and(|s| now < s) {
        return Err(Reason::NotStarted);
    }
    if at(&d.ends_at).is_some_and(|e| now >= e) {
        return Err(Reason::Expired);
    }
    if d.usage_limit.is_some_and(|l| d.usage_count >= l) {
        return Err(Reason::UsageLimitReached);
    }
    if d.once_per_customer && used_by_customer {
        return Err(Reason::AlreadyUsedByCustomer);
    }
    Ok(())
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Discount, sqlx::Error> {
    let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
    Ok(Discount {
        code: r.try_get("code")?,
        kind: Kind::parse(&r.try_get::<String, _>("kind")?),
        value: r.try_get("value")?,
        min_subtotal: r.try_get("min_subtotal")?,
        starts_at: r.try_get::<Option<i64>, _>("starts_at")?.map(rfc3339),
        ends_at: r.try_get::<Option<i64>, _>("ends_at")?.map(rfc3339),
        usage_limit: r.try_get("usage_limit")?,
        usage_count: r.try_get("usage_count")?,
        once_per_customer: r.try_get::<i64, _>("once_per_customer")? != 0,
        products: list(r.try_get("products")?),
        collections: list(r.try_get("collections")?),
        combinable: r.try_get::<i64, _>("combinable")? != 0,
    })
}

const COLUMNS: &str = "code, kind, value, min_subtotal, starts_at, ends_at, usage_limit, usage_count, \
     once_per_customer, products, collections, combinable";

/// A discount by code.
pub async fn find<'e, E>(db: E, code: &str) -> ApiResult<Option<Discount>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM discounts WHERE code = $1 AND active = 1");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(normalize_code(code))
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?)
}

/// Whether this customer has used the code.
pub async fn used_by<'e, E>(db: E, code: &str, email: Option<&str>) -> ApiResult<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let Some(email) = email else { return Ok(false) };
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM discount_redemptions WHERE code = $1 AND customer = $2",
    )
    .bind(normalize_code(code))
    .bind(customer_key(email))
    .fetch_one(db)
    .await?;
    Ok(n > 0)
}

/// Discounts of the shop.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscountList {
    /// Newest first.
    pub discounts: Vec<Discount>,
}

/// List discount codes.
#[utoipa::path(get, path = "/api/v1/discounts", tag = "checkout", security(("secret_key" = [])),
    responses((status = 200, body = DiscountList)))]
async fn list_discounts(tenant: Tenant) -> ApiResult<Json<DiscountList>> {
    tenant.require(Permission::Read)?;
    Ok(Json(DiscountList { discounts: active(&tenant.db).await? }))
}

/// The active discount codes, newest first.
pub async fn active(db: &sqlx::AnyPool) -> ApiResult<Vec<Discount>> {
    let sql =
        format!("SELECT {COLUMNS} FROM discounts WHERE active = 1 ORDER BY created_at DESC, code");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(db).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

impl Discount {
    /// What the code does, in words for people (`10 % off`, `free shipping from 50.00`).
    pub fn describe(&self, currency: aurelio_engine::money::Currency) -> String {
        let money = |minor| aurelio_engine::money::Money { minor, currency }.decimal();
        let what = match self.kind {
            Kind::Percentage => {
                let (whole, part) = (self.value / 100, self.value % 100);
                if part == 0 {
                    format!("{whole} % off")
                } else {
                    format!("{whole}.{}", format!("{part:02}").trim_end_matches('0')) + " % off"
                }
            }
            Kind::FixedAmount => format!("{} {} off", money(self.value), currency.code()),
            Kind::FreeShipping => "free shipping".to_owned(),
        };
        match self.min_subtotal {
            Some(m) => format!("{what} from {} {}", money(m), currency.code()),
            None => what,
        }
    }
}

/// Checks and stores a new discount code (409 when the code exists).
pub async fn insert(db: &sqlx::AnyPool, d: &mut Discount) -> ApiResult<()> {
    d.check()?;
    d.usage_count = 0;
    let inserted = sqlx::query(
        "INSERT INTO discounts (code, kind, value, min_subtotal, starts_at, ends_at, usage_limit, \
         usage_count, once_per_customer, products, collections, combinable, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11, 1, $12)",
    )
    .bind(&d.code)
    .bind(d.kind.as_str())
    .bind(d.value)
    .bind(d.min_subtotal)
    .bind(time_ms("starts_at", d.starts_at.as_ref())?)
    .bind(time_ms("ends_at", d.ends_at.as_ref())?)
    .bind(d.usage_limit)
    .bind(i64::from(d.once_per_customer))
    .bind(serde_json::to_string(&d.products).unwrap_or_default())
    .bind(serde_json::to_string(&d.collections).unwrap_or_default())
    .bind(i64::from(d.combinable))
    .bind(now_ms())
    .execute(db)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if crate::error::is_unique_violation(&e) => {
            Err(ApiError::conflict("code", format!("the code `{}` exists", d.code)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Create a discount code.
#[utoipa::path(post, path = "/api/v1/discounts", tag = "checkout", security(("secret_key" = [])),
    request_body = Discount,
    responses((status = 201, body = Discount), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_discount(
    tenant: Tenant,
    Body(mut d): Body<Discount>,
) -> ApiResult<(StatusCode, Json<Discount>)> {
    tenant.require(Permission::Settings)?;
    insert(&tenant.db, &mut d).await?;
    tenant.audit("discount.create", serde_json::json!({ "code": d.code })).await;
    let stored = find(&tenant.db, &d.code).await?.ok_or_else(|| ApiError::not_found("discount"))?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// One discount code.
#[utoipa::path(get, path = "/api/v1/discounts/{code}", tag = "checkout",
    params(("code" = String, Path, description = "the code")), security(("secret_key" = [])),
    responses((status = 200, body = Discount), (status = 404, body = crate::error::ErrorBody)))]
async fn get_discount(tenant: Tenant, Path(code): Path<String>) -> ApiResult<Json<Discount>> {
    tenant.require(Permission::Read)?;
    find(&tenant.db, &code).await?.map(Json).ok_or_else(|| ApiError::not_found("discount"))
}

/// Deactivate a discount code (redemptions stay on record).
#[utoipa::path(delete, path = "/api/v1/discounts/{code}", tag = "checkout",
    params(("code" = String, Path, description = "the code")), security(("secret_key" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_discount(tenant: Tenant, Path(code): Path<String>) -> ApiResult<StatusCode> {
    tenant.require(Permission::Settings)?;
    let done = sqlx::query("UPDATE discounts SET active = 0 WHERE code = $1 AND active = 1")
        .bind(normalize_code(&code))
        .execute(&tenant.db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("discount"));
    }
    tenant.audit("discount.delete", serde_json::json!({ "code": code })).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Discount {
        Discount {
            code: "SAVE".into(),
            kind: Kind::Percentage,
            value: 1000,
            min_subtotal: None,
            starts_at: Some("2026-01-01T00:00:00Z".into()),
            ends_at: Some("2026-02-01T00:00:00Z".into()),
            usage_limit: Some(2),
            usage_count: 0,
            once_per_customer: true,
            products: vec![],
            collections: vec![],
            combinable: false,
        }
    }

    #[test]
    fn one_mailbox_is_one_customer() {
        let key = customer_key("Ada@Example.com");
        for alias in ["ada+1@example.com", " ADA+promo@example.com ", "ada@example.com."] {
            assert_eq!(customer_key(alias), key, "{alias}");
        }
        assert_eq!(customer_key("a.da+x@googlemail.com"), customer_key("ada@gmail.com"));
        assert_ne!(customer_key("a.da@example.com"), key, "dots matter outside Gmail");
        assert_ne!(customer_key("ada@example.org"), key);
    }

    #[test]
    fn availability_gives_reasons() {
        let jan15 = chrono::DateTime::parse_from_rfc3339("2026-01-15T00:00:00Z")
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        let dec = chrono::DateTime::parse_from_rfc3339("2025-12-15T00:00:00Z")
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        let mar = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        assert_eq!(availability(&d(), jan15, false), Ok(()));
        assert_eq!(availability(&d(), dec, false), Err(Reason::NotStarted));
        assert_eq!(availability(&d(), mar, false), Err(Reason::Expired));
        assert_eq!(availability(&d(), jan15, true), Err(Reason::AlreadyUsedByCustomer));
        let used_up = Discount { usage_count: 2, ..d() };
        assert_eq!(availability(&used_up, jan15, false), Err(Reason::UsageLimitReached));
    }

    #[test]
    fn scope_by_product_and_collection() {
        let mut x = d();
        assert!(x.covers("any", &|_| false));
        x.products = vec!["tee".into()];
        assert!(x.covers("tee", &|_| false));
        assert!(!x.covers("mug", &|_| false));
        x.collections = vec!["sale".into()];
        assert!(x.covers("mug", &|c| c == "sale"));
        x.products.clear();
        assert!(!x.covers("tee", &|_| false));
    }
}
