//! Template data: what each page's Tera context holds, converted once per build.
//!
//! Product summaries (cards in grids) are converted once and shared by every listing page
//! that shows them, so a listing page costs only the 24 items it shows.

use crate::catalog::{Catalog, Category, Product};
use crate::images::ImageMap;
use crate::money::Money;
use crate::text::{excerpt, markdown_to_text};
use serde::Serialize;
use serde_json::Value;

/// URLs of the site, aware of a path prefix in the base URL (`https://x.test/shop`).
#[derive(Debug, Clone)]
pub struct Urls {
    /// Base URL without trailing slash.
    pub base: String,
    /// Path prefix without trailing slash (`""` or `/shop`).
    pub root: String,
}

impl Urls {
    /// From the store's base URL.
    pub fn new(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/').to_owned();
        let after_scheme = base.split_once("://").map_or("", |(_, r)| r);
        let root = after_scheme.find('/').map_or(String::new(), |i| after_scheme[i..].to_owned());
        Self { base, root }
    }

    /// Root-relative link for a site path (`products/x/` → `/shop/products/x/`).
    pub fn link(&self, path: &str) -> String {
        [self.root.as_str(), "/", path].concat()
    }

    /// Absolute URL for a site path.
    pub fn absolute(&self, path: &str) -> String {
        let origin_len = self.base.len() - self.root.len();
        [&self.base[..origin_len], self.root.as_str(), "/", path].concat()
    }
}

/// Site path of a product page.
pub fn product_path(p: &Product) -> String {
    format!("products/{}/", p.handle)
}

/// Absolute URL of a product page with one variant chosen (`?variant=SKU`), the form the
/// storefront script reads and writes; the SKU is percent-encoded as the script's
/// `encodeURIComponent` would, so any SKU survives the round trip.
pub fn variant_url(product_url: &str, sku: &str) -> String {
    let mut out = String::with_capacity(product_url.len() + 9 + sku.len());
    out.push_str(product_url);
    out.push_str("?variant=");
    for b in sku.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Site path of page `n` (1-based) of a listing rooted at `base` (`collections/x/`).
pub fn listing_path(base: &str, n: usize) -> String {
    if n <= 1 { base.to_owned() } else { format!("{base}page/{n}/") }
}

/// Site path of a category.
pub fn category_path(c: &Category) -> String {
    format!("categories/{}/", c.path)
}

/// An image as templates see it: responsive variants in WebP with a JPEG/PNG fallback.
#[derive(Debug, Clone, Serialize)]
pub struct ImageCtx {
    /// Root-relative URL of a mid-sized fallback, for `src`.
    pub url: String,
    /// Absolute URL of the largest fallback (Open Graph, JSON-LD, feeds).
    pub absolute_url: String,
    /// `srcset` of the fallbacks.
    pub srcset: String,
    /// `srcset` of the WebP variants.
    pub webp_srcset: String,
    /// MIME type of the fallbacks.
    pub fallback_type: String,
    /// Pixel width of the `src` variant (its aspect ratio is every variant's).
    pub width: u32,
    /// Pixel height of the `src` variant.
    pub height: u32,
    /// Alternative text.
    pub alt: String,
}

/// The width `src` points at: the largest variant up to this.
const SRC_WIDTH: u32 = 960;

/// Absolute URL of the largest fallback of a published image (what Open Graph, JSON-LD and
/// feeds show), without building the rest of its context.
pub fn image_url(images: &ImageMap, urls: &Urls, src: &str) -> Option<String> {
    images.get(src)?.variants.last().map(|largest| urls.absolute(&largest.fallback))
}

/// Converts a catalog image reference, if it was published.
pub fn image_ctx(images: &ImageMap, urls: &Urls, src: &str, alt: &str) -> Option<ImageCtx> {
    let info = images.get(src)?;
    info.variants.last()?;
    let mid =
        info.variants.iter().rev().find(|v| v.width <= SRC_WIDTH).unwrap_or(&info.variants[0]);
    let set = |pick: fn(&crate::images::Variant) -> &str| {
        info.variants
            .iter()
            .map(|v| format!("{} {}w", urls.link(pick(v)), v.width))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(ImageCtx {
        url: urls.link(&mid.fallback),
        absolute_url: image_url(images, urls, src).unwrap_or_default(),
        srcset: set(|v| &v.fallback),
        webp_srcset: set(|v| &v.webp),
        fallback_type: info.fallback_type.clone(),
        width: mid.width,
        height: mid.height,
        alt: alt.to_owned(),
    })
}

/// A price as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct PriceCtx {
    /// Minor units.
    pub amount: i64,
    /// Plain decimal (`19.99`), for data attributes and JSON-LD.
    pub decimal: String,
    /// Formatted for the store locale (`€19.99`).
    pub formatted: String,
}

/// Formats one amount for templates.
pub fn price_ctx(m: Money, catalog: &Catalog) -> PriceCtx {
    PriceCtx { amount: m.minor, decimal: m.decimal(), formatted: m.format(&catalog.store.locale) }
}

/// A product card in a grid.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Handle.
    pub handle: String,
    /// Title.
    pub title: String,
    /// Root-relative URL.
    pub url: String,
    /// Vendor.
    pub vendor: Option<String>,
    /// Lowest price.
    pub price: PriceCtx,
    /// Whether the variants have different prices (show "from").
    pub price_varies: bool,
    /// Compare-at price of the cheapest variant on sale, if any.
    pub compare_at_price: Option<PriceCtx>,
    /// `in_stock`, `backorder` or `out_of_stock`.
    pub availability: &'static str,
    /// Main image.
    pub image: Option<ImageCtx>,
}

/// The card of a published product.
pub fn summary(p: &Product, catalog: &Catalog, images: &ImageMap, urls: &Urls) -> Value {
    let min = p.min_price();
    let sale = p
        .variants
        .iter()
        .filter(|v| v.price == min)
        .find_map(|v| v.compare_at_price)
        .map(|c| price_ctx(c, catalog));
    let summary = Summary {
        handle: p.handle.clone(),
        title: p.title.clone(),
        url: urls.link(&product_path(p)),
        vendor: p.vendor.clone(),
        price: price_ctx(min, catalog),
        price_varies: p.max_price() != min,
        compare_at_price: sale,
        availability: p.availability().as_str(),
        image: p.images.first().and_then(|i| image_ctx(images, urls, &i.src, &i.alt)),
    };
    serde_json::to_value(summary).unwrap_or(Value::Null)
}

/// One link in navigation or breadcrumbs.
#[derive(Debug, Clone, Hash, Serialize)]
pub struct Link {
    /// Text.
    pub title: String,
    /// Root-relative URL.
    pub url: String,
}

/// Page metadata every template's `<head>` uses.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// `<title>`.
    pub title: String,
    /// Meta description (plain text, ≤ 160 characters).
    pub description: String,
    /// Canonical absolute URL.
    pub canonical: String,
    /// Open Graph type.
    pub og_type: &'static str,
    /// Open Graph image (absolute URL).
    pub og_image: Option<String>,
    /// JSON-LD documents, already escaped for a `<script>` element.
    pub json_ld: Vec<String>,
    /// `noindex` pages (cart, search, 404).
    pub noindex: bool,
    /// Previous page of a paginated listing.
    pub prev: Option<String>,
    /// Next page of a paginated listing.
    pub next: Option<String>,
}

/// A meta description from Markdown or plain text.
pub fn description(markdown: &str) -> String {
    excerpt(&markdown_to_text(markdown), 160)
}

/// Serializes JSON-LD for embedding in `<script type="application/ld+json">`: `<`, `>`
/// and `&` become `\u` escapes, so no string inside can close the element.
pub fn json_ld(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The `BreadcrumbList` JSON-LD of a trail.
pub fn breadcrumb_ld(trail: &[Link], urls: &Urls) -> Value {
    let origin_len = urls.base.len() - urls.root.len();
    let origin = &urls.base[..origin_len];
    let items: Vec<Value> = trail
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::json!({
                "@type": "ListItem",
                "position": i + 1,
                "name": l.title,
                "item": format!("{origin}{}", l.url),
            })
        })
        .collect();
    serde_json::json!({"@context": "https://schema.org", "@type": "BreadcrumbList", "itemListElement": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_path_prefix() {
        let u = Urls::new("https://x.test/shop/");
        assert_eq!(u.link("products/a/"), "/shop/products/a/");
        assert_eq!(u.absolute("products/a/"), "https://x.test/shop/products/a/");
        let u = Urls::new("https://x.test");
        assert_eq!(u.link(""), "/");
        assert_eq!(u.absolute("a/"), "https://x.test/a/");
    }

    #[test]
    fn json_ld_cannot_close_its_script_element() {
        let v = serde_json::json!({"name": "</script><script>alert(1)</script> & co"});
        let s = json_ld(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'), "{s}");
        let back: Value = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back, v);
    }

    #[test]
    fn variant_urls_encode_the_sku() {
        assert_eq!(
            variant_url("https://x.test/products/a/", "LS-S_1.2"),
            "https://x.test/products/a/?variant=LS-S_1.2"
        );
        assert_eq!(
            variant_url("https://x.test/p/", "A&B#1/é"),
            "https://x.test/p/?variant=A%26B%231%2F%C3%A9"
        );
    }

    #[test]
    fn listing_pages_are_numbered_from_two() {
        assert_eq!(listing_path("collections/a/", 1), "collections/a/");
        assert_eq!(listing_path("collections/a/", 3), "collections/a/page/3/");
    }
}
