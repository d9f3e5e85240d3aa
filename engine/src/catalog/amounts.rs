//! Prices as written in the catalog files, and what to say when one is not a plain decimal
//! amount: each usual mistake (a decimal comma, a currency symbol, thousands separators, a
//! JSON number) gets its own code and a message with the amount to write instead.

use crate::diagnostics::Diagnostics;
use crate::money::{AmountError, Currency, Money};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// A price field as found in the JSON: a string (the format) or a number (a mistake,
/// reported with the string to write; its value is never used, so no float is involved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RawAmount {
    /// `"19.95"`.
    Text(String),
    /// `19.95`: the number as JSON readers would show it, for the message only.
    Number(String),
}

impl<'de> Deserialize<'de> for RawAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = RawAmount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price as a string such as \"19.95\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAmount, E> {
                Ok(RawAmount::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawAmount, E> {
                Ok(RawAmount::Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawAmount, E> {
                Ok(RawAmount::Number(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawAmount, E> {
                Ok(RawAmount::Number(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawAmount, E> {
                Ok(RawAmount::Number(v.to_string()))
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

/// Parses a price field for the diagnostics of `file`: `None` (and a diagnostic) when it is
/// not an amount; without `check_precision` (no valid store currency yet) only the syntax
/// is checked and nothing is returned.
pub(super) fn parse_price(
    raw: &RawAmount,
    currency: Currency,
    check_precision: bool,
    place: (&str, Option<usize>, &str),
    d: &mut Diagnostics,
) -> Option<Money> {
    let (file, at, field) = place;
    let text = match raw {
        RawAmount::Text(text) => text,
        RawAmount::Number(number) => {
            let message = format!(
                "`{number}` is a JSON number; prices are strings in the store currency, \
                 write `\"{number}\"` (in quotes)"
            );
            d.error("price-type", file, at, Some(field.to_owned()), message);
            return None;
        }
    };
    match Money::parse(text, currency) {
        Ok(m) if check_precision => Some(m),
        Ok(_) => None,
        Err(AmountError::TooManyDecimals { .. }) if !check_precision => None,
        Err(e) => {
            let (code, message) = price_problem(text, &e, currency);
            d.error(code, file, at, Some(field.to_owned()), message);
            None
        }
    }
}

/// The code and message for an amount `text` that `Money::parse` refused with `err`.
pub(super) fn price_problem(
    text: &str,
    err: &AmountError,
    currency: Currency,
) -> (&'static str, String) {
    match err {
        AmountError::TooManyDecimals { given } => (
            "price-precision",
            format!("`{text}` has {given} decimals, {currency} allows {}", currency.exponent()),
        ),
        AmountError::TooLarge => ("price-too-large", format!("`{text}` is too large")),
        AmountError::Syntax => match diagnose(text) {
            Some((Mistake::CurrencySymbol, fixed)) => (
                "price-currency-symbol",
                format!(
                    "`{text}` has a currency symbol or code; prices are plain amounts in the \
                     store currency ({currency}): write `{fixed}`"
                ),
            ),
            Some((Mistake::DecimalComma, fixed)) => (
                "price-decimal-comma",
                format!("`{text}` has a decimal comma; write a decimal point: `{fixed}`"),
            ),
            Some((Mistake::ThousandsSeparator, fixed)) => (
                "price-thousands-separator",
                format!("`{text}` has a thousands separator; write the amount without: `{fixed}`"),
            ),
            Some((Mistake::Spaces, fixed)) => {
                ("price-format", format!("`{text}` has spaces around it: write `{fixed}`"))
            }
            Some((Mistake::Negative, _)) => (
                "price-format",
                format!("`{text}` is negative; prices are zero or more, like `19.99`"),
            ),
            None => ("price-format", format!("`{text}` is not a decimal amount like `19.99`")),
        },
    }
}

/// A usual way of writing an amount that the format does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mistake {
    CurrencySymbol,
    DecimalComma,
    ThousandsSeparator,
    Spaces,
    Negative,
}

/// Separators people put between digits: comma, point, apostrophes, (narrow) spaces.
fn is_separator(c: char) -> bool {
    matches!(c, ',' | '.' | '\'' | '’' | ' ' | '\u{a0}' | '\u{202f}' | '_')
}

/// Recognises a usual mistake in `text` (which `Money::parse` refused as syntax) and the
/// plain amount it most likely means.
fn diagnose(text: &str) -> Option<(Mistake, String)> {
    // Bounded: a price is short; a long text is no amount with a typo.
    if text.len() > 64 {
        return None;
    }
    let trimmed = text.trim();
    // A currency symbol or code before or after the number (`€19.95`, `19,95 EUR`, `US$5`).
    let start = trimmed.find(|c: char| c.is_ascii_digit())?;
    let end = trimmed.rfind(|c: char| c.is_ascii_digit())? + 1;
    let (prefix, core, suffix) = (&trimmed[..start], &trimmed[start..end], &trimmed[end..]);
    let mut negative = false;
    let mut symbol = false;
    for (i, part) in [prefix, suffix].into_iter().enumerate() {
        let mut part = part.trim();
        if i == 0 && (part.ends_with('-') || part.starts_with('-')) {
            negative = true;
            part = part.trim_matches('-').trim();
        }
        if i == 1 {
            // `19,95 €` and `19.` both end in something; a lone separator is no symbol.
            part = part.trim_start_matches(is_separator).trim();
        }
        if part.is_empty() {
            continue;
        }
        if !part.chars().all(|c| c.is_alphabetic() || is_currency_sign(c) || c == ' ') {
            return None;
        }
        symbol = true;
    }
    let (fixed, kind) = normalise(core)?;
    let mistake = if symbol {
        Mistake::CurrencySymbol
    } else if negative {
        Mistake::Negative
    } else if let Some(kind) = kind {
        kind
    } else if trimmed.len() != text.len() {
        Mistake::Spaces
    } else {
        return None;
    };
    Some((mistake, fixed))
}

/// Digits with separators (`1.299,00`, `1,299.00`, `19,95`, `1'299`) as a plain amount,
/// with which mistake the separators were (`None`: there were none).
fn normalise(core: &str) -> Option<(String, Option<Mistake>)> {
    if !core.chars().all(|c| c.is_ascii_digit() || is_separator(c)) {
        return None;
    }
    let groups: Vec<&str> = core.split(is_separator).collect();
    let separators: Vec<char> = core.chars().filter(|c| is_separator(*c)).collect();
    if groups.iter().any(|g| g.is_empty()) {
        return None;
    }
    let Some(&last) = separators.last() else { return Some((core.to_owned(), None)) };
    // The last separator is the decimal one when it is a comma or point used once and
    // either other separators come before it or it is not followed by a group of three.
    let last_group = groups[groups.len() - 1];
    let once = separators.iter().filter(|c| **c == last).count() == 1;
    let decimal = matches!(last, ',' | '.')
        && once
        && (separators.len() > 1 || last_group.len() != 3 || groups[0] == "0");
    let (int_groups, frac) =
        if decimal { (&groups[..groups.len() - 1], Some(last_group)) } else { (&groups[..], None) };
    // Thousands groups: the first of one to three digits, the others of two (Indian
    // grouping) or three, the last of three.
    if int_groups.len() > 1 {
        let (first, rest) = int_groups.split_first()?;
        let ok = first.len() <= 3
            && rest.iter().all(|g| g.len() == 2 || g.len() == 3)
            && rest.last().is_some_and(|g| g.len() == 3);
        if !ok {
            return None;
        }
    }
    let mut fixed = int_groups.concat();
    if let Some(frac) = frac {
        fixed.push('.');
        fixed.push_str(frac);
    }
    let mistake = if decimal && last == ',' {
        Some(Mistake::DecimalComma)
    } else if int_groups.len() > 1 {
        Some(Mistake::ThousandsSeparator)
    } else {
        None
    };
    Some((fixed, mistake))
}

/// Currency signs (Unicode category Sc) that price tags use.
fn is_currency_sign(c: char) -> bool {
    matches!(
        c,
        '$' | '¢'
            | '£'
            | '¤'
            | '¥'
            | '֏'
            | '؋'
            | '৳'
            | '฿'
            | '៛'
            | '₡'
            | '₦'
            | '₩'
            | '₪'
            | '₫'
            | '€'
            | '₭'
            | '₮'
            | '₱'
            | '₲'
            | '₴'
            | '₵'
            | '₸'
            | '₹'
            | '₺'
            | '₼'
            | '₽'
            | '₾'
            | '₿'
            | '﷼'
            | '＄'
            | '￠'
            | '￡'
            | '￥'
            | '￦'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::from_code("EUR").expect("EUR")
    }

    #[track_caller]
    fn says(text: &str, code: &str, fragment: &str) {
        let err = Money::parse(text, eur()).expect_err("refused");
        let (c, message) = price_problem(text, &err, eur());
        assert_eq!(c, code, "{text}: {message}");
        assert!(message.contains(fragment), "{text}: {message}");
    }

    #[test]
    fn each_usual_mistake_has_its_code_and_fix() {
        says("19,95", "price-decimal-comma", "write a decimal point: `19.95`");
        says("1.299,00", "price-decimal-comma", "`1299.00`");
        says("1 299,5", "price-decimal-comma", "`1299.5`");
        says("€19.95", "price-currency-symbol", "store currency (EUR): write `19.95`");
        says("19,95 €", "price-currency-symbol", "write `19.95`");
        says("EUR 19.95", "price-currency-symbol", "write `19.95`");
        says("US$5", "price-currency-symbol", "write `5`");
        says("1,299.00", "price-thousands-separator", "write the amount without: `1299.00`");
        says("1,299", "price-thousands-separator", "`1299`");
        says("1'299.00", "price-thousands-separator", "`1299.00`");
        says("1,23,456.00", "price-thousands-separator", "`123456.00`");
        says(" 19.95", "price-format", "spaces around it: write `19.95`");
        says("-5", "price-format", "negative");
        says("19.999", "price-precision", "has 3 decimals, EUR allows 2");
        says("99999999999999999999", "price-too-large", "too large");
        for bad in ["abc", "1e3", "19.95.00", "1,2,3", ".5", "5.", "NaN", "1 2 3 4", "€"] {
            says(bad, "price-format", "is not a decimal amount like `19.99`");
        }
    }

    #[test]
    fn json_numbers_are_refused_with_the_string_to_write() {
        let mut d = Diagnostics::default();
        let raw: RawAmount = serde_json::from_str("19.95").expect("a number");
        assert_eq!(raw, RawAmount::Number("19.95".into()));
        let place = ("products.jsonl", Some(1), "variants[0].price");
        assert_eq!(parse_price(&raw, eur(), true, place, &mut d), None);
        let shown = d.to_string();
        assert!(shown.contains("error[price-type]"), "{shown}");
        assert!(shown.contains("write `\"19.95\"` (in quotes)"), "{shown}");
        let raw: RawAmount = serde_json::from_str("\"19.95\"").expect("a string");
        assert_eq!(parse_price(&raw, eur(), true, place, &mut d).map(|m| m.minor), Some(1995));
        let err = serde_json::from_str::<RawAmount>("true").expect_err("no price");
        assert!(err.to_string().contains("a price as a string such as \"19.95\""), "{err}");
    }
}
