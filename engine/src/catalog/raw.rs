//! The catalog files exactly as written, before validation (serde types).

use super::{InventoryPolicy, Status};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub name: String,
    pub handle: String,
    pub currency: String,
    pub locale: String,
    pub base_url: String,
    #[serde(default)]
    pub theme: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub logo: Option<String>,
    #[serde(default)]
    pub prices_include_tax: Option<bool>,
    #[serde(default)]
    pub contact_email: Option<String>,
    #[serde(default)]
    pub social: BTreeMap<String, String>,
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub publishable_key: Option<String>,
    #[serde(default)]
    pub feeds: Option<super::feed_settings::RawFeedSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImage {
    pub src: String,
    #[serde(default)]
    pub alt: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOption {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeo {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariant {
    pub sku: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub price: super::amounts::RawAmount,
    #[serde(default)]
    pub compare_at_price: Option<super::amounts::RawAmount>,
    #[serde(default)]
    pub inventory: Option<i64>,
    #[serde(default)]
    pub inventory_policy: InventoryPolicy,
    #[serde(default)]
    pub weight: Option<String>,
    #[serde(default)]
    pub gtin: Option<String>,
    #[serde(default)]
    pub mpn: Option<String>,
    #[serde(default)]
    pub barcode: Option<String>,
    #[serde(default)]
    pub availability_date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProduct {
    pub handle: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub product_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub images: Vec<RawImage>,
    #[serde(default)]
    pub options: Vec<RawOption>,
    pub variants: Vec<RawVariant>,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub seo: Option<RawSeo>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub feed: Option<super::feed_settings::RawProductFeed>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCategory {
    pub handle: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub children: Vec<RawCategory>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum SortOrder {
    Manual,
    Title,
    PriceAscending,
    PriceDescending,
    Newest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Match {
    All,
    Any,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPriceRange {
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawCondition {
    Tag(String),
    Vendor(String),
    ProductType(String),
    Category(String),
    Price(RawPriceRange),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRules {
    #[serde(rename = "match", default = "match_all")]
    pub match_: Match,
    pub conditions: Vec<RawCondition>,
}

fn match_all() -> Match {
    Match::All
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollection {
    pub handle: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub image: Option<RawImage>,
    #[serde(default)]
    pub products: Option<Vec<String>>,
    #[serde(default)]
    pub rules: Option<RawRules>,
    #[serde(default)]
    pub sort: Option<SortOrder>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFrontMatter {
    pub title: String,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub seo_description: Option<String>,
    #[serde(default)]
    pub footer: bool,
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub draft: bool,
}
