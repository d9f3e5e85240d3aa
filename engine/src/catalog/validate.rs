//! Field-level checks shared by the loader: handles, SKUs, GTINs, weights, image paths, dates.

use super::limits::{MAX_HANDLE_CHARS, MAX_SKU_CHARS};
use std::collections::HashMap;

/// A handle is 1–100 of `a-z0-9-`, not starting or ending with `-`.
pub fn is_handle(s: &str) -> bool {
    (1..=MAX_HANDLE_CHARS).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A SKU is 1–64 printable characters without whitespace.
pub(super) fn is_sku(s: &str) -> bool {
    (1..=MAX_SKU_CHARS).contains(&s.chars().count())
        && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// GS1 check: 8, 12, 13 or 14 digits whose last digit is the mod-10 check digit.
pub fn gtin_is_valid(s: &str) -> bool {
    if ![8, 12, 13, 14].contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
    let (body, check) = digits.split_at(digits.len() - 1);
    let sum: u32 =
        body.iter().rev().enumerate().map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d }).sum();
    (10 - sum % 10) % 10 == check[0]
}

/// Parses `"250 g"`, `"1.2 kg"`, `"8 oz"`, `"2 lb"` into whole grams, rounding half up.
pub(super) fn parse_weight(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = (s[..split].trim(), s[split..].trim());
    // grams per unit as a fraction numerator / 10^9
    let per_unit_nano: u128 = match unit {
        "g" => 1_000_000_000,
        "kg" => 1_000_000_000_000,
        "oz" => 28_349_523_125,
        "lb" => 453_592_370_000,
        _ => return Err(format!("`{s}` needs a unit: g, kg, oz or lb")),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty()
        || frac.len() > 6
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(format!("`{s}` is not a weight like `250 g` or `1.2 kg`"));
    }
    let scaled: u128 =
        format!("{int}{frac:0<6}").parse().map_err(|_| format!("`{s}` is too large"))?;
    // scaled is value * 10^6; grams = scaled * per_unit_nano / 10^15
    let denom = 1_000_000_000_000_000u128;
    let grams = (scaled * per_unit_nano + denom / 2) / denom;
    u64::try_from(grams).map_err(|_| format!("`{s}` is too large"))
}

/// An image path must be relative, stay inside the directory and name a known format.
pub fn check_image_path(src: &str) -> Result<(), String> {
    if src.is_empty() {
        return Err("image path is empty".into());
    }
    if src.starts_with('/') || src.contains('\\') || src.contains("://") {
        return Err(format!("`{src}` must be a path relative to the catalog directory"));
    }
    if src.split('/').any(|part| part == ".." || part.is_empty()) {
        return Err(format!("`{src}` must not contain `..` or empty segments"));
    }
    let ext = src.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if !["jpg", "jpeg", "png", "webp", "gif"].contains(&ext.as_str()) {
        return Err(format!("`{src}` is not a JPEG, PNG, WebP or GIF file"));
    }
    Ok(())
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into seconds since the Unix epoch (UTC),
/// so that times with different offsets compare correctly. `None` when malformed.
pub(super) fn rfc3339_to_unix(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let two = |r: std::ops::Range<usize>| -> Option<i64> {
                let part = rest.get(r)?;
                part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
            };
            let (h, m) = (two(1..3)?, two(4..6)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Suggests the closest of `candidates` to a misspelt `word`, if one is close.
///
/// The distance is at least the difference in length, so a candidate whose length is too
/// far off is never compared: a long `word` costs nothing against short candidates.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let chars = word.chars().count();
    candidates
        .into_iter()
        .filter_map(|c| {
            let allowed = (c.len() / 3).max(2);
            (chars.abs_diff(c.chars().count()) <= allowed).then(|| (edit_distance(word, c), c))
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Category handles shown in a message about an unknown one.
const SHOWN_CATEGORIES: usize = 10;

/// The message for an unknown category `handle`: a suggestion among `known` (handles in
/// file order; empty when there are too many to compare) and the first few of them, of
/// `total` categories in all.
pub(super) fn unknown_category(handle: &str, known: &[&str], total: usize) -> String {
    let hint = did_you_mean(handle, known.iter().copied())
        .map(|s| format!(", did you mean `{s}`?"))
        .unwrap_or_default();
    if total == 0 {
        return format!("unknown category `{handle}`: `categories.json` defines no categories");
    }
    if known.is_empty() {
        return format!("unknown category `{handle}` ({total} categories in `categories.json`)");
    }
    let mut list = known.iter().take(SHOWN_CATEGORIES).copied().collect::<Vec<_>>().join(", ");
    if total > SHOWN_CATEGORIES.min(known.len()) {
        list.push_str(&format!(" and {} more", total - SHOWN_CATEGORIES.min(known.len())));
    }
    format!("unknown category `{handle}`{hint} (categories in `categories.json`: {list})")
}

/// The handles of a handle → index map in index (file) order.
pub(super) fn in_file_order<'a>(index: &HashMap<&'a str, usize>) -> Vec<&'a str> {
    let mut all: Vec<(&str, usize)> = index.iter().map(|(h, i)| (*h, *i)).collect();
    all.sort_unstable_by_key(|(_, i)| *i);
    all.into_iter().map(|(h, _)| h).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_handles() {
        for good in ["a", "linen-shirt", "x1", "2026-sale"] {
            assert!(is_handle(good), "{good}");
        }
        for bad in ["", "-a", "a-", "Linen", "a b", "a_b", "é", &"a".repeat(101)] {
            assert!(!is_handle(bad), "{bad}");
        }
    }

    #[test]
    fn verifies_gtin_check_digits() {
        assert!(gtin_is_valid("4006381333931"));
        assert!(gtin_is_valid("036000291452"));
        assert!(gtin_is_valid("96385074"));
        assert!(gtin_is_valid("00012345678905"));
        assert!(!gtin_is_valid("4006381333932"));
        assert!(!gtin_is_valid("400638133393"));
        assert!(!gtin_is_valid("40063813339a1"));
    }

    #[test]
    fn parses_weights_into_grams() {
        assert_eq!(parse_weight("250 g"), Ok(250));
        assert_eq!(parse_weight("1.2 kg"), Ok(1200));
        assert_eq!(parse_weight("8 oz"), Ok(227));
        assert_eq!(parse_weight("2 lb"), Ok(907));
        assert_eq!(parse_weight("0.5g"), Ok(1));
        assert!(parse_weight("250").is_err());
        assert!(parse_weight("-1 kg").is_err());
        assert!(parse_weight("1,2 kg").is_err());
    }

    #[test]
    fn checks_image_paths() {
        assert!(check_image_path("images/a.jpg").is_ok());
        assert!(check_image_path("../secret.png").is_err());
        assert!(check_image_path("/etc/passwd.png").is_err());
        assert!(check_image_path("images/a.txt").is_err());
        assert!(check_image_path("https://x.test/a.jpg").is_err());
    }

    #[test]
    fn parses_rfc3339_into_instants() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_to_unix("2026-03-01T10:00:00Z"), Some(1_772_359_200));
        assert_eq!(rfc3339_to_unix("2026-03-01T11:00:00.123+01:00"), Some(1_772_359_200));
        assert_eq!(rfc3339_to_unix("2026-02-29T10:00:00Z"), None);
        assert_eq!(rfc3339_to_unix("2026-13-01T10:00:00Z"), None);
        assert_eq!(rfc3339_to_unix("2026-03-01"), None);
        assert_eq!(rfc3339_to_unix("2026-03-01T10:00:00"), None);
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("prise", ["price", "sku", "options"]), Some("price"));
        assert_eq!(did_you_mean("zzz", ["price", "sku"]), None);
        let many: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            unknown_category("c1x", &many, 12),
            "unknown category `c1x`, did you mean `c1`? (categories in `categories.json`: \
             c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 2 more)"
        );
        assert_eq!(
            unknown_category("x", &[], 0),
            "unknown category `x`: `categories.json` defines no categories"
        );
        let long = "p".repeat(1_000_000);
        let started = std::time::Instant::now();
        assert_eq!(did_you_mean(&long, ["price"; 10_000]), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "no comparison made");
    }
}
