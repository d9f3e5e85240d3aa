//! Synthetic catalogs of any size, deterministic per seed, for tests and benchmarks.
//!
//! Writes the same catalog directory format that `catalog::load` reads, streaming the
//! products so that a million-product catalog needs no more memory than a small one.

use crate::catalog::gtin_is_valid;
use rayon::prelude::*;
use serde_json::json;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct FixtureOptions {
    /// Number of products.
    pub products: usize,
    /// Seed; the same seed gives the same bytes.
    pub seed: u64,
    /// Number of distinct source images (products share them round-robin); 0 for none.
    pub images: usize,
}

/// Top-level categories and children per top-level category (10 × 4 + 10 = 50 categories).
const TOP_CATEGORIES: &[&str] = &[
    "Outerwear",
    "Knitwear",
    "Shirts",
    "Trousers",
    "Footwear",
    "Bags",
    "Hats",
    "Home",
    "Kitchen",
    "Garden",
];
const SUB_CATEGORIES: &[&str] = &["Classic", "Essentials", "Limited", "Outlet"];
const ADJECTIVES: &[&str] = &[
    "Alpine", "Coastal", "Waxed", "Quilted", "Merino", "Linen", "Canvas", "Rugged", "Heritage",
    "Storm", "Harbour", "Forest", "Granite", "Harvest", "Arctic", "Meadow", "Drift", "Summit",
    "Tidal", "Ember",
];
const NOUNS: &[&str] = &[
    "Jacket",
    "Parka",
    "Sweater",
    "Cardigan",
    "Shirt",
    "Overshirt",
    "Chinos",
    "Boots",
    "Tote",
    "Backpack",
    "Beanie",
    "Scarf",
    "Blanket",
    "Mug",
    "Apron",
    "Planter",
    "Gloves",
    "Socks",
    "Vest",
    "Cap",
];
const VENDORS: &[&str] = &[
    "Northwind",
    "Fjellsko",
    "Harbour & Co",
    "Greyfell",
    "Oak & Iron",
    "Saltmarsh",
    "Brightwater",
    "Kestrel",
];
const COLOURS: &[&str] = &["Navy", "Olive", "Sand", "Charcoal", "Rust", "Ecru"];
const SIZES: &[&str] = &["XS", "S", "M", "L", "XL"];
const TAGS: &[&str] =
    &["waterproof", "organic", "recycled", "bestseller", "gift", "summer", "winter", "new"];

/// A small, fast, deterministic generator (SplitMix64); not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Writes a synthetic catalog directory into `dir` (created if missing).
pub fn write(dir: &Path, opts: &FixtureOptions) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("pages"))?;
    let store = json!({
        "name": "Synthetic Supply Co.",
        "handle": "synthetic",
        "currency": "EUR",
        "locale": "en-IE",
        "base_url": "https://synthetic.example.test",
        "theme": "minimal",
        "description": "A generated shop for tests and benchmarks.",
    });
    std::fs::write(dir.join("store.json"), serde_json::to_vec_pretty(&store)?)?;
    let categories: Vec<_> = TOP_CATEGORIES
        .iter()
        .map(|top| {
            let slug = top.to_lowercase();
            let children: Vec<_> = SUB_CATEGORIES
                .iter()
                .map(|sub| json!({"handle": format!("{slug}-{}", sub.to_lowercase()), "title": format!("{sub} {top}")}))
                .collect();
            json!({"handle": slug, "title": top, "description": format!("Everything in **{top}**."), "children": children})
        })
        .collect();
    std::fs::write(dir.join("categories.json"), serde_json::to_vec_pretty(&categories)?)?;
    let manual: Vec<String> = (0..opts.products.min(30)).map(handle).collect();
    let collections = json!([
        {"handle": "featured", "title": "Featured", "products": manual},
        {"handle": "waterproof", "title": "Waterproof", "rules": {"match": "all", "conditions": [{"tag": "waterproof"}]}},
        {"handle": "under-40", "title": "Under €40", "sort": "price-ascending",
         "rules": {"match": "all", "conditions": [{"price": {"max": "39.99"}}]}},
        {"handle": "bestsellers", "title": "Bestsellers", "sort": "newest",
         "rules": {"match": "any", "conditions": [{"tag": "bestseller"}, {"vendor": "Kestrel"}]}},
    ]);
    std::fs::write(dir.join("collections.json"), serde_json::to_vec_pretty(&collections)?)?;
    for (name, title) in [("about", "About us"), ("shipping", "Shipping"), ("returns", "Returns")] {
        let body = format!(
            "+++\ntitle = \"{title}\"\nfooter = true\n+++\n\n# {title}\n\nGenerated page for tests. **Bold**, a [link](https://example.test/).\n"
        );
        std::fs::write(dir.join("pages").join(format!("{name}.md")), body)?;
    }
    write_products(dir, opts)?;
    if opts.images > 0 {
        write_images(dir, opts)?;
    }
    Ok(())
}

/// The handle of product `i`.
pub fn handle(i: usize) -> String {
    format!("product-{i:06}")
}

fn write_products(dir: &Path, opts: &FixtureOptions) -> io::Result<()> {
    let mut out =
        BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("products.jsonl"))?);
    let mut rng = Rng::new(opts.seed);
    for i in 0..opts.products {
        let adjective = *rng.pick(ADJECTIVES);
        let noun = *rng.pick(NOUNS);
        let top = rng.below(TOP_CATEGORIES.len());
        let sub = rng.below(SUB_CATEGORIES.len());
        let category = format!(
            "{}-{}",
            TOP_CATEGORIES[top].to_lowercase(),
            SUB_CATEGORIES[sub].to_lowercase()
        );
        let base_cents = 900 + rng.below(30_000) as u64;
        let base_cents = base_cents - base_cents % 5;
        let sizes = 1 + rng.below(SIZES.len());
        let colours = 1 + rng.below(3);
        let on_sale = rng.below(5) == 0;
        let mut variants = Vec::with_capacity(sizes * colours);
        for (s, size) in SIZES[..sizes].iter().enumerate() {
            for (c, colour) in COLOURS[..colours].iter().enumerate() {
                let price = base_cents + (s as u64) * 200;
                let mut v = json!({
                    "sku": format!("SYN-{i:06}-{s}{c}"),
                    "options": {"Size": size, "Colour": colour},
                    "price": cents(price),
                    "inventory": rng.below(40) as i64 - 4,
                    "weight": format!("{} g", 100 + rng.below(1900)),
                    "gtin": gtin13(i, s * 10 + c),
                    "mpn": format!("MPN-{i}-{s}{c}"),
                });
                if on_sale {
                    v["compare_at_price"] = json!(cents(price + price / 4));
                }
                variants.push(v);
            }
        }
        let tags: Vec<&str> = (0..1 + rng.below(3))
            .map(|_| *rng.pick(TAGS))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut product = json!({
            "handle": handle(i),
            "title": format!("{adjective} {noun} {i}"),
            "description": format!(
                "The **{adjective} {noun}** is made to last.\n\nCare: wash cold, dry flat. Item {i} of the synthetic catalog.\n\n- Durable\n- Repairable\n- Guaranteed for {} years",
                1 + i % 5
            ),
            "vendor": *rng.pick(VENDORS),
            "product_type": noun,
            "tags": tags,
            "categories": [category],
            "options": [{"name": "Size", "values": &SIZES[..sizes]}, {"name": "Colour", "values": &COLOURS[..colours]}],
            "variants": variants,
            "created_at": format!("2026-{:02}-{:02}T{:02}:00:00Z", 1 + i % 12, 1 + i % 28, i % 24),
        });
        if opts.images > 0 {
            let k = i % opts.images;
            product["images"] = json!([{"src": format!("images/img-{k:05}.jpg"), "alt": format!("{adjective} {noun}")}]);
        }
        serde_json::to_writer(&mut out, &product)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn cents(c: u64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// A valid GTIN-13 derived from the product and variant number (prefix 20–29: in-store).
fn gtin13(product: usize, variant: usize) -> String {
    let body = format!("2{:07}{:04}", product % 10_000_000, variant % 10_000);
    (0..10).map(|d| format!("{body}{d}")).find(|g| gtin_is_valid(g)).unwrap_or_default()
}

fn write_images(dir: &Path, opts: &FixtureOptions) -> io::Result<()> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    (0..opts.images).into_par_iter().try_for_each(|k| {
        let mut rng = Rng::new(opts.seed.wrapping_add(k as u64));
        let (r, g, b) =
            (rng.below(200) as u8 + 30, rng.below(200) as u8 + 30, rng.below(200) as u8 + 30);
        let (w, h) = (800u32, 800u32);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let shade = ((x + y) * 60 / (w + h)) as u8;
            let stripe = if (x / 40 + y / 40) % 2 == 0 { 12 } else { 0 };
            image::Rgb([
                r.saturating_add(shade + stripe),
                g.saturating_add(shade),
                b.saturating_sub(shade / 2),
            ])
        });
        let file = std::fs::File::create(images.join(format!("img-{k:05}.jpg")))?;
        let mut encoder =
            image::codecs::jpeg::JpegEncoder::new_with_quality(BufWriter::new(file), 82);
        encoder.encode_image(&img).map_err(io::Error::other)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_gtins_are_valid() {
        for (p, v) in [(0, 0), (123_456, 42), (9_999_999, 9_999)] {
            assert!(gtin_is_valid(&gtin13(p, v)), "{p} {v}");
        }
    }

    #[test]
    fn same_seed_same_bytes_and_the_catalog_loads() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let opts = FixtureOptions { products: 60, seed: 7, images: 2 };
        write(a.path(), &opts).expect("write a");
        write(b.path(), &opts).expect("write b");
        let read = |d: &Path| std::fs::read(d.join("products.jsonl")).expect("read");
        assert_eq!(read(a.path()), read(b.path()));
        let loaded = crate::catalog::load(a.path()).expect("the synthetic catalog is valid");
        assert_eq!(loaded.catalog.products.len(), 60);
        assert_eq!(loaded.catalog.categories.len(), 50);
        let other = tempfile::tempdir().expect("tempdir");
        write(other.path(), &FixtureOptions { seed: 8, ..opts }).expect("write");
        assert_ne!(read(a.path()), read(other.path()), "another seed gives another catalog");
    }
}
