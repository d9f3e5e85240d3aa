//! The value formats feed fields are checked against: prices, URLs, ISO 8601 date-times
//! and intervals, weights, shipping rates, and text that looks like HTML.

use crate::money::{Currency, Money};

pub(super) fn looks_like_html(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(2).any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/'))
}

/// `15.00 USD`: an amount, one space, an ISO 4217 code; decimals as the currency has them.
pub(super) fn parse_price(text: &str) -> Result<Money, String> {
    let bad = || format!("`{text}` is not a price like `15.00 USD`");
    let (amount, code) = text.split_once(' ').ok_or_else(bad)?;
    let currency = Currency::from_code(code)
        .ok_or_else(|| format!("`{code}` in `{text}` is not an ISO 4217 currency code"))?;
    Money::parse(amount, currency).map_err(|e| match e {
        crate::money::AmountError::TooManyDecimals { given } => {
            format!("`{text}` has {given} decimals, {code} allows {}", currency.exponent())
        }
        _ => bad(),
    })
}

/// An absolute `http(s)` URL with a host and no whitespace.
pub(super) fn check_url(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_whitespace) {
        return Err(format!("`{text}` contains whitespace"));
    }
    match url::Url::parse(text) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Ok(()),
        _ => Err(format!("`{text}` is not an absolute http(s) URL")),
    }
}

/// `YYYY-MM-DDTHH:MM[:SS][Z|±HH[:]MM]` (Meta's template also writes single-digit hours).
pub(super) fn is_datetime(text: &str) -> bool {
    let Some((date, time)) = text.split_once('T') else { return false };
    let d: Vec<&str> = date.split('-').collect();
    let date_ok = d.len() == 3
        && d[0].len() == 4
        && d[1].len() == 2
        && d[2].len() == 2
        && d.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let c: Vec<&str> = clock.split(':').collect();
    let clock_ok = (2..=3).contains(&c.len())
        && c.iter().all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()));
    let zone_digits: String = zone.chars().skip(1).filter(|c| *c != ':').collect();
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || (zone_digits.len() == 4 && zone_digits.bytes().all(|b| b.is_ascii_digit()));
    date_ok && clock_ok && zone_ok
}

pub(super) fn is_interval(text: &str) -> bool {
    text.split_once('/').is_some_and(|(a, b)| is_datetime(a) && is_datetime(b))
}

pub(super) fn is_weight(text: &str) -> bool {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    !number.is_empty()
        && number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && ["g", "kg", "oz", "lb"].contains(&unit)
}

/// `COUNTRY:REGION:SERVICE:PRICE` (the text form of `shipping`; region and service may be
/// empty).
pub(super) fn check_shipping(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 4 {
        return Err(format!(
            "`{text}` is not `COUNTRY:REGION:SERVICE:PRICE` like `US:CA:Standard:4.95 USD`"
        ));
    }
    let country = parts[0];
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("`{country}` in `{text}` is not an ISO 3166-1 country code"));
    }
    parse_price(parts[3]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_intervals_and_weights() {
        assert!(is_interval("2026-12-01T00:00-0800/2026-12-31T23:59-0800"));
        assert!(is_interval("2026-02-24T11:07+01:00/2026-02-29T23:07+01:00"));
        assert!(!is_interval("2026-12-01/2026-12-31"));
        assert!(is_weight("480 g") && is_weight("2.5 lb"));
        assert!(!is_weight("heavy") && !is_weight("0 g"));
    }
}
