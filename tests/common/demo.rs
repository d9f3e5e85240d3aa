//! The demo store built into a temporary directory, with the catalog it was built from, and
//! the product cards of a listing: what most storefront tests start from.

use super::*;
use serde_json::Value;

/// The demo store built into a temporary directory, with its source data.
pub struct Demo {
    /// Keeps the output directory alive.
    pub _out: tempfile::TempDir,
    /// The built site.
    pub site: Site,
    /// Every product of products.jsonl.
    pub products: Vec<SourceProduct>,
    /// store.json.
    pub store: Value,
    /// `base_url` of store.json, without trailing slash.
    pub base: String,
}

impl Demo {
    /// The published products.
    pub fn active(&self) -> impl Iterator<Item = &SourceProduct> {
        self.products.iter().filter(|p| p.is_active())
    }

    /// The drafts and archived products.
    pub fn inactive(&self) -> impl Iterator<Item = &SourceProduct> {
        self.products.iter().filter(|p| !p.is_active())
    }

    /// The absolute URL of a site path.
    pub fn absolute(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// The store's name.
    pub fn store_name(&self) -> &str {
        self.store["name"].as_str().expect("store name")
    }
}

/// Builds the demo store (with the shared cache) into a fresh temporary directory.
#[track_caller]
pub fn build_demo() -> Demo {
    let out = tempdir();
    let dir = out.path().join("site");
    build(&demo_store(), &dir);
    let store = read_json(&demo_store().join("store.json"));
    // The storefront tests' price expectations format EUR for en-IE; make that assumption visible.
    assert_eq!(store["currency"], "EUR", "the demo store is expected to sell in EUR");
    assert_eq!(store["locale"], "en-IE", "the demo store is expected to use en-IE");
    let base = store["base_url"].as_str().expect("base_url").trim_end_matches('/').to_owned();
    Demo { _out: out, site: Site::new(&dir), products: read_products(&demo_store()), store, base }
}

/// The product cards of all pages of a listing, page by page.
pub fn listing_cards(site: &Site, base: &str) -> Vec<Vec<String>> {
    site.listing_pages(base).iter().map(|(_, doc)| card_links(doc)).collect()
}
