//! Cart totals: pure arithmetic in integer minor units, with one documented rounding rule.
//!
//! **The rule.** Every amount is computed per line in minor units and rounded once, half
//! away from zero, at the line: a percentage discount on a line, a line's tax. An
//! order-level amount (a fixed discount, a percentage of the eligible subtotal) is first
//! computed on the total and then split over the eligible lines in proportion to their
//! amounts by the largest-remainder method, so the parts always add up to the whole.
//! Tax is computed per line on the discounted line amount (and on shipping), at the rate of
//! the destination: extracted from the amount when prices include tax
//! (`amount × rate / (1 + rate)`), added on top otherwise. So, always:
//!
//! `total = subtotal − discount + shipping + tax_added`, where `tax_added` is the tax when
//! prices exclude it and 0 when they include it (the tax is then part of the amounts).

use serde::Serialize;

/// Basis points: 1 % = 100 bp. Rates and percentages are integers too.
pub type BasisPoints = i64;

/// Divides rounding half away from zero.
pub fn div_round(n: i128, d: i128) -> i128 {
    assert!(d > 0, "division by a non-positive number");
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d { q + n.signum() } else { q }
}

/// `amount × bp / 10 000`, rounded half away from zero.
pub fn percent_of(amount: i64, bp: BasisPoints) -> i64 {
    i64::try_from(div_round(i128::from(amount) * i128::from(bp), 10_000)).unwrap_or(i64::MAX)
}

/// Splits `whole` over `weights` in proportion (largest remainder): the parts add up to
/// `whole` exactly, and no part exceeds its weight when `whole` ≤ the sum of weights.
pub fn allocate(whole: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum <= 0 || weights.is_empty() {
        return vec![0; weights.len()];
    }
    let whole_i = i128::from(whole);
    let mut parts: Vec<i128> = weights.iter().map(|w| whole_i * i128::from(*w) / sum).collect();
    let mut rest = whole_i - parts.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; ties to the earlier line, so the result is deterministic.
    order.sort_by_key(|&i| (std::cmp::Reverse((whole_i * i128::from(weights[i])) % sum), i));
    for &i in order.iter().cycle() {
        if rest == 0 {
            break;
        }
        parts[i] += rest.signum();
        rest -= rest.signum();
    }
    parts.into_iter().map(|p| i64::try_from(p).unwrap_or(i64::MAX)).collect()
}

/// A cart line as totals see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Unit price from the catalog, minor units.
    pub unit_price: i64,
    /// Quantity, at least 1.
    pub quantity: i64,
    /// Which applied discounts this line is eligible for (parallel to `Input::discounts`).
    pub eligible: Vec<bool>,
}

/// What a discount does, once it is known to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A percentage off the eligible lines.
    Percentage(BasisPoints),
    /// A fixed amount off the eligible lines (capped at their amount).
    Fixed(i64),
    /// Shipping is free.
    FreeShipping,
}

/// Everything totals depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The lines.
    pub lines: Vec<Line>,
    /// Discounts that apply, in the order they are applied.
    pub discounts: Vec<Effect>,
    /// Shipping before discounts, minor units.
    pub shipping: i64,
    /// Tax rate of the destination.
    pub tax_rate: BasisPoints,
    /// Whether catalog prices include tax.
    pub prices_include_tax: bool,
}

/// One line's amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineAmounts {
    /// `unit_price × quantity`.
    pub subtotal: i64,
    /// Discounts on this line.
    pub discount: i64,
    /// Tax on this line (included or added).
    pub tax: i64,
    /// `subtotal − discount` (+ tax when prices exclude it).
    pub total: i64,
}

/// The totals and how each amount came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    /// Sum of line subtotals.
    pub subtotal: i64,
    /// Sum of discounts on lines.
    pub discount: i64,
    /// Shipping after a free-shipping discount.
    pub shipping: i64,
    /// Shipping taken off by a free-shipping discount.
    pub shipping_discount: i64,
    /// All tax (in the amounts when prices include it).
    pub tax: i64,
    /// Whether `tax` is included in the amounts (not added).
    pub tax_included: bool,
    /// What the shopper pays.
    pub total: i64,
    /// Per line, in cart order.
    pub lines: Vec<LineAmounts>,
    /// Per applied discount (in order): the amount it took off.
    pub discounts: Vec<i64>,
}

/// Tax on an amount at `rate`: extracted when the amount includes it, added otherwise.
pub fn tax_on(amount: i64, rate: BasisPoints, included: bool) -> i64 {
    let amount = i128::from(amount);
    let rate = i128::from(rate);
    let t = if included {
        div_round(amount * rate, 10_000 + rate)
    } else {
        div_round(amount * rate, 10_000)
    };
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The largest amount (minor units) any line, discount, tax or total may reach:
/// 2^53 − 1, so every amount is also exact in JSON clients that read numbers as doubles.
/// Beyond it a cart is refused (`TooLarge`) rather than wrapped or rounded.
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;

/// An amount of a cart would pass `MAX_AMOUNT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cart's amounts exceed the largest amount allowed ({MAX_AMOUNT} minor units)")]
pub struct TooLarge;

/// `value` as an amount, if it is within `0..=MAX_AMOUNT`.
fn amount(value: i128) -> Result<i64, TooLarge> {
    i64::try_from(value).ok().filter(|v| (0..=MAX_AMOUNT).contains(v)).ok_or(TooLarge)
}

/// Computes the totals. Every amount is computed in `i128` from `i64` inputs (so no step
/// can overflow) and must come out within `0..=MAX_AMOUNT`; negative inputs (a price, a
/// quantity, shipping) are refused the same way.
pub fn compute(input: &Input) -> Result<Totals, TooLarge> {
    if input.shipping < 0 || input.lines.iter().any(|l| l.unit_price < 0 || l.quantity < 0) {
        return Err(TooLarge);
    }
    let subtotals: Vec<i64> = input
        .lines
        .iter()
        .map(|l| amount(i128::from(l.unit_price) * i128::from(l.quantity)))
        .collect::<Result<_, _>>()?;
    let sum = |values: &mut dyn Iterator<Item = i64>| amount(values.map(i128::from).sum());
    let subtotal = sum(&mut subtotals.iter().copied())?;
    let mut remaining = subtotals.clone();
    let mut per_discount = Vec::with_capacity(input.discounts.len());
    let mut free_shipping = false;
    for (d, effect) in input.discounts.iter().enumerate() {
        let eligible: Vec<usize> = (0..input.lines.len())
            .filter(|&i| input.lines[i].eligible.get(d).copied().unwrap_or(false))
            .collect();
        let base = sum(&mut eligible.iter().map(|&i| remaining[i]))?;
        let amount = match effect {
            Effect::Percentage(bp) => percent_of(base, (*bp).clamp(0, 10_000)),
            Effect::Fixed(v) => (*v).clamp(0, base),
            Effect::FreeShipping => {
                free_shipping = true;
                per_discount.push(0);
                continue;
            }
        };
        let weights: Vec<i64> = eligible.iter().map(|&i| remaining[i]).collect();
        for (k, part) in allocate(amount, &weights).into_iter().enumerate() {
            remaining[eligible[k]] -= part;
        }
        per_discount.push(amount);
    }
    let shipping_discount = if free_shipping { input.shipping } else { 0 };
    if free_shipping
        && let Some(slot) = input.discounts.iter().position(|e| *e == Effect::FreeShipping)
    {
        per_discount[slot] = shipping_discount;
    }
    let shipping = amount(i128::from(input.shipping) - i128::from(shipping_discount))?;
    let included = input.prices_include_tax;
    let mut lines = Vec::with_capacity(input.lines.len());
    let mut tax: i128 = 0;
    for (i, sub) in subtotals.iter().enumerate() {
        let net = remaining[i];
        let t = tax_on(net, input.tax_rate, included);
        tax += i128::from(t);
        lines.push(LineAmounts {
            subtotal: *sub,
            discount: sub - net,
            tax: t,
            total: amount(i128::from(net) + if included { 0 } else { i128::from(t) })?,
        });
    }
    tax += i128::from(tax_on(shipping, input.tax_rate, included));
    let tax = amount(tax)?;
    let discount = sum(&mut lines.iter().map(|l| l.discount))?;
    let total = amount(
        i128::from(subtotal) - i128::from(discount)
            + i128::from(shipping)
            + if included { 0 } else { i128::from(tax) },
    )?;
    Ok(Totals {
        subtotal,
        discount,
        shipping,
        shipping_discount,
        tax,
        tax_included: included,
        total,
        lines,
        discounts: per_discount,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(price: i64, qty: i64, eligible: bool) -> Line {
        Line { unit_price: price, quantity: qty, eligible: vec![eligible] }
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(percent_of(1999, 1500), 300); // 299.85
        assert_eq!(percent_of(1, 5000), 1); // 0.5
    }

    #[test]
    fn allocation_adds_up() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(0, &[5, 5]), vec![0, 0]);
        assert_eq!(allocate(10, &[0, 0]), vec![0, 0]);
        assert_eq!(allocate(7, &[1, 2, 4]).iter().sum::<i64>(), 7);
    }

    #[test]
    fn inclusive_tax_is_extracted() {
        // €121.00 including 21 % VAT holds €21.00 of tax.
        let t = compute(&Input {
            lines: vec![line(12100, 1, false)],
            discounts: vec![],
            shipping: 0,
            tax_rate: 2100,
            prices_include_tax: true,
        })
        .unwrap();
        assert_eq!(t.tax, 2100);
        assert_eq!(t.total, 12100);
    }

    #[test]
    fn exclusive_tax_is_added_and_discounts_only_hit_eligible_lines() {
        let t = compute(&Input {
            lines: vec![line(1000, 2, true), line(500, 1, false)],
            discounts: vec![Effect::Percentage(1000)],
            shipping: 495,
            tax_rate: 800,
            prices_include_tax: false,
        })
        .unwrap();
        assert_eq!(t.subtotal, 2500);
        assert_eq!(t.discount, 200);
        assert_eq!(t.lines[1].discount, 0);
        // tax: (1800 + 500) × 8 % = 184, shipping 495 × 8 % = 39.6 → 40
        assert_eq!(t.tax, 144 + 40 + 40);
        assert_eq!(t.total, 2500 - 200 + 495 + t.tax);
    }

    #[test]
    fn free_shipping_and_fixed_amounts_are_capped() {
        let t = compute(&Input {
            lines: vec![line(300, 1, true)],
            discounts: vec![Effect::Fixed(1000), Effect::FreeShipping],
            shipping: 500,
            tax_rate: 0,
            prices_include_tax: true,
        })
        .unwrap();
        assert_eq!(t.discount, 300);
        assert_eq!(t.shipping, 0);
        assert_eq!(t.discounts, vec![300, 500]);
        assert_eq!(t.total, 0);
    }

    fn arb_input() -> impl Strategy<Value = Input> {
        let effect = prop_oneof![
            (0i64..=10_000).prop_map(Effect::Percentage),
            (0i64..50_000).prop_map(Effect::Fixed),
            Just(Effect::FreeShipping),
        ];
        (
            prop::collection::vec(effect, 0..3),
            prop::collection::vec((0i64..100_000, 1i64..20), 1..8),
            0i64..5_000,
            prop_oneof![Just(0i64), 0i64..3_000],
            any::<bool>(),
            prop::collection::vec(any::<bool>(), 24),
        )
            .prop_map(|(discounts, lines, shipping, tax_rate, incl, bits)| {
                let n = discounts.len();
                let lines = lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, (p, q))| Line {
                        unit_price: p,
                        quantity: q,
                        eligible: (0..n).map(|d| bits[(i * 3 + d) % bits.len()]).collect(),
                    })
                    .collect();
                Input { lines, discounts, shipping, tax_rate, prices_include_tax: incl }
            })
    }

    /// Any `i64`, often a small or boundary one.
    fn hostile_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            -10i64..1_000_000,
            Just(i64::MAX),
            Just(i64::MIN),
            Just(MAX_AMOUNT)
        ]
    }

    proptest! {
        /// line totals + shipping + tax − discounts = amount charged, always; nothing negative.
        #[test]
        fn totals_always_add_up(input in arb_input()) {
            let t = compute(&input).unwrap();
            let line_sum: i64 = t.lines.iter().map(|l| l.subtotal).sum();
            prop_assert_eq!(line_sum, t.subtotal);
            let added = if t.tax_included { 0 } else { t.tax };
            prop_assert_eq!(t.total, t.subtotal - t.discount + t.shipping + added);
            let line_totals: i64 = t.lines.iter().map(|l| l.total).sum();
            let shipping_tax = if t.tax_included { 0 } else { tax_on(t.shipping, input.tax_rate, false) };
            prop_assert_eq!(t.total, line_totals + t.shipping + shipping_tax);
            prop_assert_eq!(t.discount + t.shipping_discount, t.discounts.iter().sum::<i64>());
            for l in &t.lines {
                prop_assert!(l.discount >= 0 && l.discount <= l.subtotal);
                prop_assert!(l.tax >= 0);
            }
            prop_assert!(t.total >= 0);
            prop_assert!(t.shipping >= 0 && t.shipping <= input.shipping);
        }

        /// Any prices and quantities, however large or negative: the totals either add up
        /// within `0..=MAX_AMOUNT` or are refused, never wrapped.
        #[test]
        fn hostile_amounts_are_refused_not_wrapped(
            lines in prop::collection::vec((hostile_i64(), hostile_i64()), 1..6),
            shipping in hostile_i64(),
            tax_rate in 0i64..10_000,
            incl in any::<bool>(),
        ) {
            let input = Input {
                lines: lines.iter().map(|&(p, q)| line(p, q, true)).collect(),
                discounts: vec![Effect::Percentage(1000)],
                shipping,
                tax_rate,
                prices_include_tax: incl,
            };
            // i128 holds one product of two i64s; a sum of several may not.
            let exact = lines
                .iter()
                .try_fold(0i128, |acc, &(p, q)| acc.checked_add(i128::from(p) * i128::from(q)))
                .unwrap_or(i128::MAX);
            match compute(&input) {
                Ok(t) => {
                    prop_assert_eq!(i128::from(t.subtotal), exact);
                    prop_assert!((0..=MAX_AMOUNT).contains(&t.total));
                    prop_assert!(lines.iter().all(|&(p, q)| p >= 0 && q >= 0) && shipping >= 0);
                }
                Err(TooLarge) => prop_assert!(
                    exact > i128::from(MAX_AMOUNT) / 4
                        || !(0..=MAX_AMOUNT / 8).contains(&shipping)
                        || lines.iter().any(|&(p, q)| p < 0 || q < 0
                            || i128::from(p) * i128::from(q) > i128::from(MAX_AMOUNT))
                ),
            }
        }

        /// Allocation never loses or invents a minor unit.
        #[test]
        fn allocation_is_exact(weights in prop::collection::vec(0i64..1_000_000, 1..10), frac in 0i64..=100) {
            let sum: i64 = weights.iter().sum();
            let whole = sum * frac / 100;
            let parts = allocate(whole, &weights);
            if sum > 0 {
                prop_assert_eq!(parts.iter().sum::<i64>(), whole);
                for (p, w) in parts.iter().zip(&weights) {
                    prop_assert!(*p >= 0 && p <= w);
                }
            }
        }
    }
}
