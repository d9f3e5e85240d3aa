//! Product feed settings: the `feeds` object of `store.json` and the `feed` object of a
//! product, read and checked like the rest of the catalog.
//!
//! What the settings mean for each channel is `feeds`' business; this file only makes sure
//! they are well formed and name things that exist.

use super::follow_on::Gaps;
use super::validate::{did_you_mean, unknown_category};
use super::{Category, Product, locate};
use crate::diagnostics::Diagnostics;
use crate::money::{Currency, Money};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// A sales channel that gets a product feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeedChannel {
    /// Google Merchant Center (RSS 2.0 with the `g:` namespace).
    Google,
    /// Meta (Facebook and Instagram) catalog CSV.
    Meta,
    /// TikTok catalog (CSV template, plus a JSON rendering of the same fields).
    Tiktok,
}

impl FeedChannel {
    /// Every channel, in a stable order.
    pub const ALL: [Self; 3] = [Self::Google, Self::Meta, Self::Tiktok];

    /// The lowercase name used in `store.json` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Meta => "meta",
            Self::Tiktok => "tiktok",
        }
    }

    /// Parses a lowercase channel name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One shipping rate announced in feeds (Google `g:shipping`, Meta and TikTok `shipping`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingRate {
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: String,
    /// Service name shown by the channel, e.g. `Standard`.
    pub service: String,
    /// Price in the store currency.
    pub price: Money,
}

/// A Google product category given for a category handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleCategory {
    /// A Google taxonomy id (`5598`) or a full path (`Apparel & Accessories > Clothing`).
    pub value: String,
    /// Line in `store.json`, for messages.
    pub line: Option<usize>,
}

/// The `feeds` object of `store.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    /// Channels whose feeds are written (default: all).
    pub channels: BTreeSet<FeedChannel>,
    /// Google product category per category handle; a product takes the mapping of its
    /// first category, or of that category's nearest mapped ancestor.
    pub google_product_category: BTreeMap<String, GoogleCategory>,
    /// Handles of products left out of every feed, with their line in `store.json`.
    pub exclude: BTreeMap<String, Option<usize>>,
    /// Shipping rates announced with every item.
    pub shipping: Vec<ShippingRate>,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            channels: FeedChannel::ALL.into_iter().collect(),
            google_product_category: BTreeMap::new(),
            exclude: BTreeMap::new(),
            shipping: Vec::new(),
        }
    }
}

/// The `feed` object of a product: overrides for the feeds only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFeed {
    /// Title used in feeds instead of the product title (plain text).
    pub title: Option<String>,
    /// Google product category of this product, overriding the category mapping.
    pub google_product_category: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeedSettings {
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    google_product_category: BTreeMap<String, String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    shipping: Vec<RawShippingRate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShippingRate {
    country: String,
    #[serde(default)]
    service: Option<String>,
    price: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProductFeed {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub google_product_category: Option<String>,
}

const STORE: &str = "store.json";

/// Longest Google product category path (the `product_type` limit; ids are short).
const MAX_CATEGORY_LEN: usize = 750;

/// Checks a Google product category value: a taxonomy id, or a path of `>`-separated names.
pub(super) fn check_google_category(value: &str) -> Result<(), String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("the Google product category is empty".into());
    }
    if value.chars().count() > MAX_CATEGORY_LEN {
        return Err(format!("the Google product category is longer than {MAX_CATEGORY_LEN}"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("`{value}` contains control characters"));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) && value.split('>').any(|s| s.trim().is_empty()) {
        return Err(format!(
            "`{value}` is neither a Google taxonomy id (`5598`) nor a path like `Apparel & Accessories > Clothing`"
        ));
    }
    Ok(())
}

/// Converts and checks the `feeds` object of `store.json` (`text` is the file, for lines).
pub(super) fn settings(
    raw: RawFeedSettings,
    currency: Option<Currency>,
    text: &str,
    diags: &mut Diagnostics,
) -> FeedSettings {
    let at = |pointer: &str| locate(text, pointer).map(|(l, _)| l);
    let mut out = FeedSettings::default();
    if let Some(names) = raw.channels {
        out.channels.clear();
        for (i, name) in names.iter().enumerate() {
            match FeedChannel::from_name(name) {
                Some(c) => {
                    out.channels.insert(c);
                }
                None => {
                    let hint = did_you_mean(name, FeedChannel::ALL.map(FeedChannel::name))
                        .map(|s| format!(", did you mean `{s}`?"))
                        .unwrap_or_else(|| ", expected `google`, `meta` or `tiktok`".into());
                    diags.error(
                        "feed-channel",
                        STORE,
                        at(&format!("/feeds/channels/{i}")),
                        Some(format!("feeds.channels[{i}]")),
                        format!("unknown channel `{name}`{hint}"),
                    );
                }
            }
        }
    }
    for (handle, value) in raw.google_product_category {
        let pointer = format!("/feeds/google_product_category/{handle}");
        let line = at(&pointer);
        if let Err(message) = check_google_category(&value) {
            diags.error(
                "feed-category",
                STORE,
                line,
                Some(format!("feeds.google_product_category.{handle}")),
                message,
            );
            continue;
        }
        out.google_product_category
            .insert(handle, GoogleCategory { value: value.trim().to_owned(), line });
    }
    for (i, handle) in raw.exclude.into_iter().enumerate() {
        let line = at(&format!("/feeds/exclude/{i}"));
        out.exclude.insert(handle, line);
    }
    for (i, rate) in raw.shipping.into_iter().enumerate() {
        let field = |name: &str| format!("feeds.shipping[{i}].{name}");
        let line = |name: &str| at(&format!("/feeds/shipping/{i}/{name}"));
        let mut ok = true;
        if rate.country.len() != 2 || !rate.country.bytes().all(|b| b.is_ascii_uppercase()) {
            diags.error(
                "feed-shipping",
                STORE,
                line("country"),
                Some(field("country")),
                format!("`{}` is not an ISO 3166-1 country code such as `IE`", rate.country),
            );
            ok = false;
        }
        let service = rate.service.unwrap_or_else(|| "Standard".into());
        if service.trim().is_empty() || service.contains([':', ',', '\n', '\r']) {
            diags.error(
                "feed-shipping",
                STORE,
                line("service"),
                Some(field("service")),
                format!("`{service}` must be a non-empty name without `:` or `,`"),
            );
            ok = false;
        }
        // Without a valid currency the store already has an error; prices wait for it.
        let Some(currency) = currency else { continue };
        match Money::parse(&rate.price, currency) {
            Ok(price) if ok => out.shipping.push(ShippingRate {
                country: rate.country,
                service: service.trim().to_owned(),
                price,
            }),
            Ok(_) => {}
            Err(e) => diags.error(
                "feed-shipping",
                STORE,
                line("price"),
                Some(field("price")),
                super::amounts::price_problem(&rate.price, &e, currency).1,
            ),
        }
    }
    out
}

/// Checks what the settings name against the loaded catalog: mapped categories must exist
/// (an error, like any unknown handle); excluded products that do not exist only warn, so
/// that deleting a product does not break the build.
pub(super) fn check_references(
    settings: &FeedSettings,
    (categories, products): (&[Category], &[Product]),
    gaps: &mut Gaps,
    diags: &mut Diagnostics,
) {
    for (handle, mapping) in &settings.google_product_category {
        if !categories.iter().any(|c| c.handle == *handle) && !gaps.category_follows(STORE) {
            let known: Vec<&str> =
                categories.iter().map(|c| c.handle.as_str()).take(1000).collect();
            diags.error(
                "unknown-category",
                STORE,
                mapping.line,
                Some(format!("feeds.google_product_category.{handle}")),
                unknown_category(handle, &known, categories.len()),
            );
        }
    }
    if settings.exclude.is_empty() {
        return;
    }
    let handles: BTreeSet<&str> = products.iter().map(|p| p.handle.as_str()).collect();
    for (i, (handle, line)) in settings.exclude.iter().enumerate() {
        if !handles.contains(handle.as_str()) && !gaps.product_follows(STORE, handle) {
            let hint = did_you_mean(handle, handles.iter().copied())
                .map(|s| format!(", did you mean `{s}`?"))
                .unwrap_or_default();
            diags.warning(
                "unknown-product",
                STORE,
                *line,
                Some(format!("feeds.exclude[{i}]")),
                format!("no product `{handle}` to exclude{hint}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_categories_are_ids_or_paths() {
        assert!(check_google_category("5598").is_ok());
        assert!(check_google_category("Apparel & Accessories > Clothing > Outerwear").is_ok());
        assert!(check_google_category("").is_err());
        assert!(check_google_category("Apparel > > Coats").is_err());
        assert!(check_google_category("a\u{1}b").is_err());
    }

    #[test]
    fn unknown_channels_get_a_suggestion() {
        let text = r#"{"feeds": {"channels": ["gogle", "meta"]}}"#;
        let raw = RawFeedSettings {
            channels: Some(vec!["gogle".into(), "meta".into()]),
            google_product_category: BTreeMap::new(),
            exclude: Vec::new(),
            shipping: Vec::new(),
        };
        let mut d = Diagnostics::default();
        let s = settings(raw, Currency::from_code("EUR"), text, &mut d);
        let all = d.to_string();
        assert!(all.contains("unknown channel `gogle`, did you mean `google`?"), "{all}");
        assert_eq!(s.channels.into_iter().collect::<Vec<_>>(), vec![FeedChannel::Meta]);
    }

    #[test]
    fn shipping_prices_are_exact_money() {
        let raw = RawFeedSettings {
            channels: None,
            google_product_category: BTreeMap::new(),
            exclude: Vec::new(),
            shipping: vec![
                RawShippingRate { country: "IE".into(), service: None, price: "4.95".into() },
                RawShippingRate { country: "ie".into(), service: None, price: "4.955".into() },
            ],
        };
        let mut d = Diagnostics::default();
        let s = settings(raw, Currency::from_code("EUR"), "{}", &mut d);
        assert_eq!(s.shipping.len(), 1);
        assert_eq!(s.shipping[0].price.minor, 495);
        assert_eq!(s.shipping[0].service, "Standard");
        assert_eq!(d.error_count(), 2, "{d}");
    }
}
