//! Pricing a cart: catalog prices, discount codes checked for this cart, shipping options
//! of the destination's zone and its tax rate, turned into totals (`totals::compute`) and
//! the lines and breakdown the shopper sees. The one function behind every cart answer
//! and checkout.

use super::carts::{
    Cart, CartLine, CartRow, CodeStatus, Members, ShippingOption, ShopFacts, StoredLine,
};
use super::discounts::{self, Discount, Reason};
use super::totals::{self, Effect, Input, Line};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use axum::http::StatusCode;
use sqlx::AnyPool;
use std::sync::Arc;

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

/// A cart whose amounts would pass `totals::MAX_AMOUNT`: the shopper lowers a quantity.
pub(super) fn too_large(e: totals::TooLarge) -> ApiError {
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
        None if facts.settings.shipping_zones.is_empty() => {
            breakdown.push("shipping: free (the shop charges no shipping)".into());
        }
        None if country.is_empty() => {
            breakdown.push("shipping: set a country to see shipping options".into());
        }
        None => breakdown.push(format!("shipping: no shipping option for {country}")),
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
