//! The catalog model: a shop's settings, products, categories, collections and pages,
//! validated and resolved (handles turned into indices, prices into `Money`).
//!
//! `load` builds it from a catalog directory; nothing here renders or touches the network.

mod amounts;
mod categories;
mod collections;
mod feed_settings;
mod follow_on;
mod json_pos;
pub mod limits;
mod lines;
mod load;
mod pages;
mod product;
mod raw;
pub(crate) mod snippet;
mod validate;

pub use feed_settings::{FeedChannel, FeedSettings, GoogleCategory, ProductFeed, ShippingRate};
pub use json_pos::{line_col, locate, locate_offset, position_in_string};
pub(crate) use load::describe_serde_message;
pub use load::{CatalogError, Loaded, ParseCache, check_base_url, load, load_cached};
pub use product::{LineRules, parse_product_line};
pub use validate::{check_image_path, did_you_mean, gtin_is_valid, is_handle};

use crate::money::{Currency, Locale, Money};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A fully loaded, validated shop.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The catalog directory it came from.
    pub root: PathBuf,
    /// Store settings.
    pub store: Store,
    /// Every product, in file order, whatever its status.
    pub products: Vec<Product>,
    /// Categories flattened depth-first; parents come before their children.
    pub categories: Vec<Category>,
    /// Collections with their members resolved and sorted.
    pub collections: Vec<Collection>,
    /// Markdown pages, sorted by handle.
    pub pages: Vec<Page>,
}

/// Store settings from `store.json`.
#[derive(Debug, Clone)]
pub struct Store {
    /// Shop name, plain text.
    pub name: String,
    /// Shop handle.
    pub handle: String,
    /// Currency of every price.
    pub currency: Currency,
    /// Locale for `<html lang>` and number formatting.
    pub locale: Locale,
    /// Absolute base URL without trailing slash.
    pub base_url: String,
    /// Theme preset name.
    pub theme: String,
    /// Plain-text description.
    pub description: Option<String>,
    /// Logo image.
    pub logo: Option<ImageRef>,
    /// Whether prices include tax.
    pub prices_include_tax: bool,
    /// Contact address for the footer.
    pub contact_email: Option<String>,
    /// Social network name to URL, sorted.
    pub social: BTreeMap<String, String>,
    /// Base URL of the API for the storefront script (empty: same origin).
    pub api_url: String,
    /// Publishable key for the storefront script.
    pub publishable_key: Option<String>,
    /// Product feed settings (`feeds` in `store.json`).
    pub feeds: FeedSettings,
}

/// Publication status of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Published.
    #[default]
    Active,
    /// Not yet published.
    Draft,
    /// No longer published.
    Archived,
}

/// An image referenced from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Path relative to the catalog directory.
    pub src: String,
    /// Alternative text, plain.
    pub alt: String,
}

/// A product option such as Size with its values in display order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductOption {
    /// Option name.
    pub name: String,
    /// Allowed values.
    pub values: Vec<String>,
}

/// Whether a variant can be sold when its stock runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryPolicy {
    /// Sold out at zero.
    #[default]
    Deny,
    /// Sold on backorder.
    Continue,
}

/// Availability of a variant or product, the one canonical enum every channel maps from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Availability {
    /// Can be bought now.
    InStock,
    /// Can be ordered, ships later.
    Backorder,
    /// Cannot be bought.
    OutOfStock,
}

impl Availability {
    /// The schema.org URL for JSON-LD offers.
    pub fn schema_org(self) -> &'static str {
        match self {
            Self::InStock => "https://schema.org/InStock",
            Self::Backorder => "https://schema.org/BackOrder",
            Self::OutOfStock => "https://schema.org/OutOfStock",
        }
    }

    /// Snake-case name used in templates and data attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InStock => "in_stock",
            Self::Backorder => "backorder",
            Self::OutOfStock => "out_of_stock",
        }
    }
}

/// A sellable variant of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Stock-keeping unit, unique in the catalog.
    pub sku: String,
    /// Option values in the order of the product's options.
    pub options: Vec<String>,
    /// Price.
    pub price: Money,
    /// Price before the sale, greater than `price`.
    pub compare_at_price: Option<Money>,
    /// Stock level; `None` when not tracked.
    pub inventory: Option<i64>,
    /// What happens at zero stock.
    pub inventory_policy: InventoryPolicy,
    /// Weight in grams.
    pub weight_grams: Option<u64>,
    /// GTIN with a valid check digit.
    pub gtin: Option<String>,
    /// Manufacturer part number.
    pub mpn: Option<String>,
    /// Barcode as printed.
    pub barcode: Option<String>,
    /// When a variant on backorder ships again: an ISO 8601 date (`2027-03-01`) or an
    /// RFC 3339 date-time, as written in `products.jsonl`.
    pub availability_date: Option<String>,
}

/// The stable public id of the variant with this SKU (`var_` and 20 hex digits), the same
/// in built pages, feeds and the API, so a cart line survives every rebuild.
pub fn variant_id(sku: &str) -> String {
    let hash = blake3::hash(format!("variant:{sku}").as_bytes());
    let hex = hash.to_hex();
    format!("var_{}", &hex[..20])
}

impl Variant {
    /// The variant's public id; see `variant_id`.
    pub fn id(&self) -> String {
        variant_id(&self.sku)
    }

    /// Availability from stock level and policy.
    pub fn availability(&self) -> Availability {
        match (self.inventory, self.inventory_policy) {
            (None, _) => Availability::InStock,
            (Some(n), _) if n > 0 => Availability::InStock,
            (Some(_), InventoryPolicy::Continue) => Availability::Backorder,
            (Some(_), InventoryPolicy::Deny) => Availability::OutOfStock,
        }
    }
}

/// A product with its variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// URL handle.
    pub handle: String,
    /// Plain-text title.
    pub title: String,
    /// Markdown source of the description.
    pub description: String,
    /// Vendor or brand.
    pub vendor: Option<String>,
    /// Product type.
    pub product_type: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Indices into `Catalog::categories`.
    pub categories: Vec<usize>,
    /// Images, main first.
    pub images: Vec<ImageRef>,
    /// Options (at most three).
    pub options: Vec<ProductOption>,
    /// At least one variant.
    pub variants: Vec<Variant>,
    /// Publication status.
    pub status: Status,
    /// SEO title override.
    pub seo_title: Option<String>,
    /// SEO description override.
    pub seo_description: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: Option<String>,
    /// `created_at` as seconds since the Unix epoch, for sorting.
    pub created_unix: Option<i64>,
    /// Overrides for product feeds (`feed` in `products.jsonl`).
    pub feed: ProductFeed,
    /// Line in `products.jsonl`.
    pub line: usize,
    /// blake3 of the product's source record: changes whenever any of its data does.
    pub fingerprint: [u8; 32],
}

impl Product {
    /// The lowest variant price.
    pub fn min_price(&self) -> Money {
        self.variants
            .iter()
            .map(|v| v.price)
            .min_by_key(|m| m.minor)
            .unwrap_or(self.variants[0].price)
    }

    /// The highest variant price.
    pub fn max_price(&self) -> Money {
        self.variants
            .iter()
            .map(|v| v.price)
            .max_by_key(|m| m.minor)
            .unwrap_or(self.variants[0].price)
    }

    /// In stock if any variant is, else backorder if any is, else out of stock.
    pub fn availability(&self) -> Availability {
        self.variants.iter().map(Variant::availability).min().unwrap_or(Availability::OutOfStock)
    }

    /// Whether the product is published.
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// A category in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// Handle, unique in the tree.
    pub handle: String,
    /// Title.
    pub title: String,
    /// Markdown description.
    pub description: String,
    /// Index of the parent.
    pub parent: Option<usize>,
    /// URL path below `/categories/`, e.g. `apparel/shirts`.
    pub path: String,
}

/// A collection with its resolved members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Handle.
    pub handle: String,
    /// Title.
    pub title: String,
    /// Markdown description.
    pub description: String,
    /// Optional image.
    pub image: Option<ImageRef>,
    /// Indices of active products, in display order.
    pub products: Vec<usize>,
}

/// A Markdown page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Handle.
    pub handle: String,
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Meta description.
    pub seo_description: Option<String>,
    /// Linked from the footer.
    pub footer: bool,
    /// Footer order.
    pub order: i64,
    /// Source file relative to the catalog directory.
    pub file: String,
}
