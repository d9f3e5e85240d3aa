//! The caps on one product, checked by the one product parser that `aurelio build`, the
//! API's product writes and its imports share: they bound the work and the size of a
//! product (its page, its API answer, its feed items) whatever its source.
//!
//! Counts follow Shopify's, so that any shop exported from there fits.

/// Variants of one product (Shopify allows 2,048).
pub const MAX_VARIANTS: usize = 2048;
/// Options of one product, such as Size, Colour and Material.
pub const MAX_OPTIONS: usize = 3;
/// Values of one option; never more than there can be variants.
pub const MAX_OPTION_VALUES: usize = MAX_VARIANTS;
/// Characters of a product title, vendor, product type, tag, option name or option value.
pub const MAX_TEXT_CHARS: usize = 255;
/// Tags of one product.
pub const MAX_TAGS: usize = 250;
/// Images of one product.
pub const MAX_IMAGES: usize = 250;
/// Categories one product names.
pub const MAX_PRODUCT_CATEGORIES: usize = 250;
/// Conditions of one rule-based collection (Shopify allows 60).
pub const MAX_RULE_CONDITIONS: usize = 60;
/// Characters of a handle (products, categories, collections, pages); see `is_handle`.
pub const MAX_HANDLE_CHARS: usize = 100;
/// Characters of a SKU; see `is_sku`.
pub const MAX_SKU_CHARS: usize = 64;
/// Stock is counted within ± this (a billion units): far past any real count, and far
/// from where a sum of checkouts could leave `i64`.
pub const MAX_INVENTORY: i64 = 1_000_000_000;
/// The heaviest variant, in grams (1,000 t): weights × quantities stay exact.
pub const MAX_GRAMS: u64 = 1_000_000_000;
