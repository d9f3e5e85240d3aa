//! Money as integer minor units plus an ISO 4217 currency, parsed exactly from decimal
//! strings and formatted for a locale.
//!
//! No floating point anywhere: `"19.99"` becomes `1999` cents by string arithmetic.

use std::fmt;

/// An ISO 4217 currency code with its number of minor-unit decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// Currencies with a minor-unit exponent other than 2 (ISO 4217 list one).
const EXPONENTS: &[(&str, u8)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

/// Active ISO 4217 codes with two decimals.
const TWO_DECIMALS: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB \
    BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP \
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS \
    KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR \
    MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD \
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED \
    VES WST XCD XCG YER ZAR ZMW ZWG";

impl Currency {
    /// Looks up an ISO 4217 code (upper case); `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        let exponent =
            EXPONENTS.iter().find(|(c, _)| *c == code).map(|(_, e)| *e).or_else(|| {
                TWO_DECIMALS.split_ascii_whitespace().any(|c| c == code).then_some(2)
            })?;
        Some(Self { code: bytes, exponent })
    }

    /// The three-letter code, e.g. `EUR`.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Number of decimals of the minor unit (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a decimal string is not a valid amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    /// Not of the form `digits[.digits]`.
    Syntax,
    /// More decimals than the currency allows.
    TooManyDecimals {
        /// Decimals given.
        given: usize,
    },
    /// Does not fit in 64 bits of minor units.
    TooLarge,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax => f.write_str("is not a decimal amount like `19.99`"),
            Self::TooManyDecimals { given } => write!(f, "has {given} decimals"),
            Self::TooLarge => f.write_str("is too large"),
        }
    }
}

/// The largest amount parsed, in minor units: 2^53 − 1, so amounts stay exact in every
/// JSON reader (JavaScript numbers) and a price × quantity sum is checked, never wrapped.
pub const MAX_MINOR: i64 = (1 << 53) - 1;

/// An amount of money in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Amount in minor units (cents for EUR).
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Parses a non-negative decimal string (`"39.95"`, `"1500"`, `"0.5"`) exactly.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, AmountError> {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits(int)
            || !digits(frac)
            || (text.contains('.') && frac.is_empty())
        {
            return Err(AmountError::Syntax);
        }
        let exp = usize::from(currency.exponent);
        if frac.len() > exp {
            return Err(AmountError::TooManyDecimals { given: frac.len() });
        }
        let mut minor: i64 = 0;
        for b in int.bytes().chain(frac.bytes()).chain(std::iter::repeat_n(b'0', exp - frac.len()))
        {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or(AmountError::TooLarge)?;
        }
        if minor > MAX_MINOR {
            return Err(AmountError::TooLarge);
        }
        Ok(Self { minor, currency })
    }

    /// The plain decimal form with all the currency's decimals: `1999` EUR → `19.99`.
    pub fn decimal(&self) -> String {
        let exp = u32::from(self.currency.exponent);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exp);
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = exp as usize)
    }

    /// Formats for display in a locale, e.g. `€1,234.50` (en-IE) or `1.234,50 €` (de-DE).
    pub fn format(&self, locale: &Locale) -> String {
        let decimal = self.decimal();
        let (int, frac) = decimal.trim_start_matches('-').split_once('.').unwrap_or((&decimal, ""));
        let int = int.trim_start_matches('-');
        let mut grouped = String::with_capacity(int.len() + int.len() / 3 * 3);
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push_str(locale.group);
            }
            grouped.push(ch);
        }
        let number =
            if frac.is_empty() { grouped } else { format!("{grouped}{}{frac}", locale.decimal) };
        let sign = if self.minor < 0 { "-" } else { "" };
        let symbol = locale.symbol(self.currency);
        match locale.placement {
            Placement::Before => format!("{sign}{symbol}{number}"),
            Placement::BeforeSpaced => format!("{sign}{symbol}\u{a0}{number}"),
            Placement::After => format!("{sign}{number}\u{a0}{symbol}"),
        }
    }
}

/// Where the currency symbol goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Before,
    BeforeSpaced,
    After,
}

/// Number formatting rules of a BCP 47 locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale {
    tag: String,
    region: String,
    decimal: &'static str,
    group: &'static str,
    placement: Placement,
}

/// Per-language rules: (language, decimal, group, placement).
const LANGUAGES: &[(&str, &str, &str, Placement)] = &[
    ("en", ".", ",", Placement::Before),
    ("de", ",", ".", Placement::After),
    ("fr", ",", "\u{202f}", Placement::After),
    ("es", ",", ".", Placement::After),
    ("it", ",", ".", Placement::After),
    ("pt", ",", ".", Placement::BeforeSpaced),
    ("nl", ",", ".", Placement::BeforeSpaced),
    ("sv", ",", "\u{a0}", Placement::After),
    ("da", ",", ".", Placement::After),
    ("nb", ",", "\u{a0}", Placement::After),
    ("fi", ",", "\u{a0}", Placement::After),
    ("pl", ",", "\u{a0}", Placement::After),
    ("cs", ",", "\u{a0}", Placement::After),
    ("ja", ".", ",", Placement::Before),
    ("zh", ".", ",", Placement::Before),
    ("ko", ".", ",", Placement::Before),
];

/// Region overrides of the language rules.
const REGIONS: &[(&str, &str, &str, Placement)] = &[
    ("de-CH", ".", "’", Placement::BeforeSpaced),
    ("de-AT", ",", "\u{a0}", Placement::BeforeSpaced),
    ("fr-CH", ",", "\u{202f}", Placement::After),
    ("pt-PT", ",", "\u{a0}", Placement::After),
    ("es-MX", ".", ",", Placement::Before),
    ("es-US", ".", ",", Placement::Before),
];

impl Locale {
    /// Parses a BCP 47 tag such as `en-US`; `None` when it is not of that shape.
    pub fn parse(tag: &str) -> Option<Self> {
        let mut parts = tag.split(['-', '_']);
        let lang = parts.next()?.to_ascii_lowercase();
        if !(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let region =
            parts.find(|p| p.len() == 2 || p.len() == 3).unwrap_or("").to_ascii_uppercase();
        let tag = if region.is_empty() { lang.clone() } else { format!("{lang}-{region}") };
        let (_, decimal, group, placement) = REGIONS
            .iter()
            .find(|(t, ..)| *t == tag)
            .or_else(|| LANGUAGES.iter().find(|(l, ..)| *l == lang))
            .copied()
            .unwrap_or(LANGUAGES[0]);
        Some(Self { tag, region, decimal, group, placement })
    }

    /// The normalized tag, e.g. `en-US`, for `<html lang>`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    fn symbol(&self, currency: Currency) -> &'static str {
        let home = |regions: &[&str]| regions.contains(&self.region.as_str());
        match currency.code() {
            "EUR" => "€",
            "GBP" => "£",
            "USD" if home(&["US", ""]) => "$",
            "USD" => "US$",
            "CAD" if home(&["CA"]) => "$",
            "CAD" => "CA$",
            "AUD" if home(&["AU"]) => "$",
            "AUD" => "A$",
            "NZD" if home(&["NZ"]) => "$",
            "NZD" => "NZ$",
            "JPY" if home(&["JP"]) => "￥",
            "JPY" => "¥",
            "CNY" => "CN¥",
            "INR" => "₹",
            "KRW" => "₩",
            "ILS" => "₪",
            "BRL" => "R$",
            "MXN" if home(&["MX"]) => "$",
            "MXN" => "MX$",
            "SEK" if home(&["SE"]) => "kr",
            "NOK" if home(&["NO"]) => "kr",
            "DKK" if home(&["DK"]) => "kr.",
            "PLN" if home(&["PL"]) => "zł",
            "CHF" => "CHF",
            other => CODES.iter().find(|c| **c == other).copied().unwrap_or("¤"),
        }
    }
}

/// Codes shown as themselves when no symbol fits (static strings for `symbol`).
const CODES: &[&str] = &[
    "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "ISK", "TRY", "ZAR", "SGD", "HKD",
    "TWD", "THB", "MYR", "IDR", "PHP", "AED", "SAR", "KWD", "BHD", "OMR", "JOD", "TND", "CLP",
    "COP", "PEN", "ARS", "UAH", "EGP", "NGN", "KES", "VND", "PKR", "BDT", "LKR", "QAR", "MAD",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::from_code("EUR").expect("EUR is a currency")
    }

    #[track_caller]
    fn check(amount: &str, code: &str, locale: &str, expected: &str) {
        let currency = Currency::from_code(code).expect("known currency");
        let money = Money::parse(amount, currency).expect("valid amount");
        let locale = Locale::parse(locale).expect("valid locale");
        assert_eq!(money.format(&locale), expected);
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(Money::parse("39.95", eur()).map(|m| m.minor), Ok(3995));
        assert_eq!(Money::parse("39.9", eur()).map(|m| m.minor), Ok(3990));
        assert_eq!(Money::parse("0", eur()).map(|m| m.minor), Ok(0));
        assert_eq!(Money::parse("0.1", eur()).map(|m| m.minor), Ok(10));
        let jpy = Currency::from_code("JPY").expect("JPY");
        assert_eq!(Money::parse("1500", jpy).map(|m| m.minor), Ok(1500));
        let kwd = Currency::from_code("KWD").expect("KWD");
        assert_eq!(Money::parse("1.005", kwd).map(|m| m.minor), Ok(1005));
    }

    #[test]
    fn rejects_price_with_three_decimals() {
        assert_eq!(Money::parse("19.999", eur()), Err(AmountError::TooManyDecimals { given: 3 }));
        let jpy = Currency::from_code("JPY").expect("JPY");
        assert_eq!(Money::parse("15.00", jpy), Err(AmountError::TooManyDecimals { given: 2 }));
    }

    #[test]
    fn rejects_malformed_amounts() {
        for bad in ["", ".5", "5.", "-1", "+1", "1e3", "1,00", "€5", " 5", "1.2.3", "NaN"] {
            assert_eq!(Money::parse(bad, eur()), Err(AmountError::Syntax), "{bad:?}");
        }
        assert_eq!(Money::parse("99999999999999999999", eur()), Err(AmountError::TooLarge));
    }

    #[test]
    fn knows_iso_codes_only() {
        let usd = Currency::from_code("USD").expect("USD is an ISO code");
        assert_eq!((usd.code(), usd.exponent()), ("USD", 2));
        let yen = Currency::from_code("JPY").expect("JPY is an ISO code");
        assert_eq!((yen.code(), yen.exponent()), ("JPY", 0));
        assert!(Currency::from_code("usd").is_none());
        assert!(Currency::from_code("EURO").is_none());
        assert!(Currency::from_code("XYZ").is_none());
    }

    #[test]
    fn formats_for_locales() {
        check("1234.5", "USD", "en-US", "$1,234.50");
        check("1234.5", "EUR", "en-IE", "€1,234.50");
        check("1234.5", "EUR", "de-DE", "1.234,50\u{a0}€");
        check("1234.5", "EUR", "fr-FR", "1\u{202f}234,50\u{a0}€");
        check("1234.5", "EUR", "nl-NL", "€\u{a0}1.234,50");
        check("1235", "JPY", "ja-JP", "￥1,235");
        check("9", "USD", "en-GB", "US$9.00");
        check("1000000", "GBP", "en-GB", "£1,000,000.00");
        check("0.5", "SEK", "sv-SE", "0,50\u{a0}kr");
    }

    #[test]
    fn decimal_form_keeps_all_decimals() {
        let m = Money::parse("15", eur()).expect("valid");
        assert_eq!(m.decimal(), "15.00");
    }
}
