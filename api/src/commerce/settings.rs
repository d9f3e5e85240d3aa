//! Checkout settings of a shop (`checkout.json` in its documents): shipping zones with
//! their rates, tax rates by country and region, and cart limits.

use super::totals::MAX_AMOUNT;
use crate::auth::{Permission, Tenant};
use crate::catalog::store;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::platform::Platform;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The document's path.
pub const CHECKOUT_JSON: &str = "checkout.json";

/// Routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

/// Checkout settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CheckoutSettings {
    /// Shipping zones; a destination uses the first zone listing its country.
    #[serde(default)]
    pub shipping_zones: Vec<Zone>,
    /// Tax rates; the most specific match (country and region, then country) wins.
    #[serde(default)]
    pub tax_rates: Vec<TaxRate>,
    /// Most units of one variant in a cart.
    #[serde(default = "default_max_quantity")]
    pub max_quantity: i64,
    /// Most lines in a cart.
    #[serde(default = "default_max_lines")]
    pub max_lines: i64,
    /// Payment providers shoppers may use (`manual`, `stripe`).
    #[serde(default = "default_providers")]
    pub payment_providers: Vec<String>,
}

fn default_max_quantity() -> i64 {
    99
}
fn default_max_lines() -> i64 {
    100
}
fn default_providers() -> Vec<String> {
    vec!["manual".into()]
}

impl Default for CheckoutSettings {
    fn default() -> Self {
        Self {
            shipping_zones: Vec::new(),
            tax_rates: Vec::new(),
            max_quantity: default_max_quantity(),
            max_lines: default_max_lines(),
            payment_providers: default_providers(),
        }
    }
}

/// A shipping zone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Name shown to merchants.
    pub name: String,
    /// ISO 3166-1 alpha-2 country codes.
    pub countries: Vec<String>,
    /// Rates shoppers choose from.
    pub rates: Vec<Rate>,
}

/// A shipping rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Stable id, e.g. `standard`.
    pub id: String,
    /// Name shown to shoppers.
    pub name: String,
    /// Price in minor units (for `weight`: used past the last tier).
    pub amount: i64,
    /// Free when the subtotal after discounts reaches this (minor units).
    #[serde(default)]
    pub free_over: Option<i64>,
    /// Weight tiers: the first whose `max_grams` holds the cart's weight sets the price.
    #[serde(default)]
    pub weight_tiers: Vec<WeightTier>,
}

/// One step of a weight-based rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WeightTier {
    /// Up to this weight in grams (inclusive).
    pub max_grams: i64,
    /// Price in minor units.
    pub amount: i64,
}

impl Rate {
    /// The price of this rate for a cart.
    pub fn price(&self, subtotal_after_discounts: i64, grams: i64) -> i64 {
        if self.free_over.is_some_and(|t| subtotal_after_discounts >= t) {
            return 0;
        }
        self.weight_tiers.iter().find(|t| grams <= t.max_grams).map_or(self.amount, |t| t.amount)
    }
}

/// A tax rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaxRate {
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Region (state, province) code; absent for the whole country.
    #[serde(default)]
    pub region: Option<String>,
    /// Rate in basis points (21 % = 2100).
    pub rate_bp: i64,
}

impl CheckoutSettings {
    /// The zone of a country.
    pub fn zone(&self, country: &str) -> Option<&Zone> {
        self.shipping_zones
            .iter()
            .find(|z| z.countries.iter().any(|c| c.eq_ignore_ascii_case(country)))
    }

    /// The tax rate of a destination (0 when none is set).
    pub fn tax_rate(&self, country: &str, region: Option<&str>) -> i64 {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let regional = region.and_then(|r| {
            self.tax_rates.iter().find(|t| {
                same(&t.country, country) && t.region.as_deref().is_some_and(|x| same(x, r))
            })
        });
        regional
            .or_else(|| {
                self.tax_rates.iter().find(|t| same(&t.country, country) && t.region.is_none())
            })
            .map_or(0, |t| t.rate_bp)
    }

    /// Every problem, with the field.
    pub fn check(&self) -> ApiResult<()> {
        for (z, zone) in self.shipping_zones.iter().enumerate() {
            for (c, country) in zone.countries.iter().enumerate() {
                if !is_country(country) {
                    return Err(ApiError::invalid(
                        format!("shipping_zones[{z}].countries[{c}]"),
                        format!("`{country}` is not an ISO 3166-1 alpha-2 code like `IE`"),
                    ));
                }
            }
            for (r, rate) in zone.rates.iter().enumerate() {
                let at = |f: &str| format!("shipping_zones[{z}].rates[{r}].{f}");
                let amount_ok = |a: i64| (0..=MAX_AMOUNT).contains(&a);
                if !amount_ok(rate.amount)
                    || rate.free_over.is_some_and(|a| !amount_ok(a))
                    || rate.weight_tiers.iter().any(|t| !amount_ok(t.amount) || t.max_grams < 0)
                {
                    return Err(ApiError::invalid(
                        at("amount"),
                        format!("amounts are 0 to {MAX_AMOUNT} minor units"),
                    ));
                }
                if rate.weight_tiers.windows(2).any(|w| w[0].max_grams >= w[1].max_grams) {
                    return Err(ApiError::invalid(at("weight_tiers"), "tiers go up by max_grams"));
                }
                if rate.id.is_empty() {
                    return Err(ApiError::invalid(at("id"), "a rate needs an id"));
                }
            }
        }
        for (i, t) in self.tax_rates.iter().enumerate() {
            if !is_country(&t.country) {
                return Err(ApiError::invalid(
                    format!("tax_rates[{i}].country"),
                    "not an ISO 3166-1 alpha-2 code",
                ));
            }
            if !(0..=10_000).contains(&t.rate_bp) {
                return Err(ApiError::invalid(
                    format!("tax_rates[{i}].rate_bp"),
                    "a rate is 0 to 10000 basis points",
                ));
            }
        }
        if !(1..=10_000).contains(&self.max_quantity) {
            return Err(ApiError::invalid("max_quantity", "between 1 and 10000"));
        }
        if !(1..=1_000).contains(&self.max_lines) {
            return Err(ApiError::invalid("max_lines", "between 1 and 1000"));
        }
        for (i, p) in self.payment_providers.iter().enumerate() {
            if !["manual", "stripe"].contains(&p.as_str()) {
                return Err(ApiError::invalid(
                    format!("payment_providers[{i}]"),
                    "`manual` or `stripe`",
                ));
            }
        }
        Ok(())
    }
}

/// An ISO 3166-1 alpha-2 code in form (two ASCII letters).
pub fn is_country(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Reads a shop's checkout settings (defaults when none are stored).
pub async fn load(db: &sqlx::AnyPool) -> ApiResult<CheckoutSettings> {
    match store::document(db, CHECKOUT_JSON).await? {
        Some(body) => serde_json::from_str(&body).map_err(|e| ApiError::internal(&e)),
        None => Ok(CheckoutSettings::default()),
    }
}

/// The shop's checkout settings.
#[utoipa::path(get, path = "/api/v1/settings/checkout", tag = "checkout", security(("secret_key" = [])),
    responses((status = 200, body = CheckoutSettings)))]
async fn get_settings(tenant: Tenant) -> ApiResult<Json<CheckoutSettings>> {
    tenant.require(Permission::Read)?;
    Ok(Json(load(&tenant.db).await?))
}

/// Replace the checkout settings: shipping zones and rates, tax rates, cart limits.
#[utoipa::path(put, path = "/api/v1/settings/checkout", tag = "checkout", security(("secret_key" = [])),
    request_body = CheckoutSettings,
    responses((status = 200, body = CheckoutSettings), (status = 422, body = crate::error::ErrorBody)))]
async fn put_settings(
    tenant: Tenant,
    Body(settings): Body<CheckoutSettings>,
) -> ApiResult<Json<CheckoutSettings>> {
    tenant.require(Permission::Settings)?;
    settings.check()?;
    let body = serde_json::to_string_pretty(&settings).map_err(|e| ApiError::internal(&e))?;
    store::put_document(&tenant.db, CHECKOUT_JSON, &body).await?;
    tenant.platform.forget(&tenant.shop.id);
    tenant.audit("settings.checkout", serde_json::json!({})).await;
    Ok(Json(settings))
}
