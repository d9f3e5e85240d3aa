//! What pages show of a product other than its own page: its card in grids (with the
//! card's hash, for fingerprints), its listing sort key and its search record. Made once
//! per product and kept by a long-lived process between builds, keyed by the product's
//! fingerprint under a context of everything else a card reads (the store, the URLs, the
//! published images), so an edit converts only the products it touched.

use super::context::{Urls, product_path, summary};
use crate::catalog::{Catalog, Product};
use crate::images::ImageMap;
use rayon::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;

/// One product's card, sort key and search record.
#[derive(Debug)]
pub struct Card {
    /// The card templates see (`Null` for a product that is not published).
    pub summary: Value,
    /// blake3 of the card's JSON, for the fingerprints of the pages that show it.
    pub hash: [u8; 32],
    /// Lower-cased title, the sort key of listings.
    pub title_key: String,
    /// The product's record in the search index (JSON), for published products.
    pub search: Option<String>,
}

impl Card {
    fn new(p: &Product, catalog: &Catalog, images: &ImageMap, urls: &Urls) -> Self {
        let summary = if p.is_active() { summary(p, catalog, images, urls) } else { Value::Null };
        let hash = *blake3::hash(summary.to_string().as_bytes()).as_bytes();
        let search = p.is_active().then(|| {
            json!({
                "t": p.title,
                "u": urls.link(&product_path(p)),
                "p": p.min_price().format(&catalog.store.locale),
                "v": p.vendor,
                "k": p.tags,
                "y": p.product_type,
            })
            .to_string()
        });
        Self { summary, hash, title_key: p.title.to_lowercase(), search }
    }
}

/// The cards of one build, index-aligned with `catalog.products`.
#[derive(Debug, Default)]
pub struct ProductCards {
    cards: Vec<Arc<Card>>,
}

impl ProductCards {
    /// The card of product `i`.
    pub fn get(&self, i: usize) -> &Card {
        &self.cards[i]
    }

    /// How many products there are.
    pub fn len(&self) -> usize {
        self.cards.len()
    }

    /// Whether the catalog has no products.
    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }

    /// The cards in product order.
    pub fn iter(&self) -> impl Iterator<Item = &Card> {
        self.cards.iter().map(|c| &**c)
    }

    /// The JSON the search page loads: one compact record per published product.
    pub fn search_index(&self) -> Vec<u8> {
        let records: Vec<&str> = self.iter().filter_map(|c| c.search.as_deref()).collect();
        let mut out = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(record.as_bytes());
        }
        out.push(b']');
        out
    }
}

/// Cards kept between builds (see the module documentation). `Default` is empty: a
/// one-shot build converts every product.
#[derive(Debug, Default)]
pub struct CardCache {
    /// Hash of the store and URLs the cards were made with.
    context: [u8; 32],
    /// The published images they were made with.
    images: Arc<ImageMap>,
    /// Cards by product fingerprint.
    cards: foldhash::HashMap<[u8; 32], Arc<Card>>,
}

impl CardCache {
    /// The cards of `catalog`'s products: kept ones where the product and the context are
    /// unchanged, new ones (converted in parallel) for the rest. Forgets the cards of
    /// products that are gone.
    pub fn cards(
        &mut self,
        catalog: &Catalog,
        images: &Arc<ImageMap>,
        urls: &Urls,
    ) -> ProductCards {
        let context = *blake3::hash(format!("{:?}\0{urls:?}", catalog.store).as_bytes()).as_bytes();
        // A session's image step hands back the same map while no image changed.
        if context != self.context || !(Arc::ptr_eq(images, &self.images) || images == &self.images)
        {
            self.cards.clear();
            self.context = context;
            self.images = Arc::clone(images);
        }
        let known = &self.cards;
        let cards: Vec<Arc<Card>> = catalog
            .products
            .par_iter()
            .map(|p| match known.get(&p.fingerprint) {
                Some(card) => Arc::clone(card),
                None => Arc::new(Card::new(p, catalog, images, urls)),
            })
            .collect();
        self.cards = catalog
            .products
            .iter()
            .zip(&cards)
            .map(|(p, c)| (p.fingerprint, Arc::clone(c)))
            .collect();
        ProductCards { cards }
    }
}
