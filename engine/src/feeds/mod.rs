//! Product feeds for sales channels: Google Merchant Center (RSS 2.0 with the `g:`
//! namespace), Meta (catalog CSV) and TikTok (catalog CSV template, plus the same fields as
//! JSON), from one canonical mapping of product and variant (`item`), and a checker that
//! validates a feed file against its channel's rules (`check`).
//!
//! Generation streams: products are mapped in parallel a chunk at a time and written in
//! catalog order to any `Write`, so memory does not grow with the catalog. Links and image
//! links come from the storefront's own URL functions (`render::variant_url`,
//! `render::image_ctx`), so they are exactly the built site's.

pub mod check;
mod google;
pub mod item;
pub mod site;
mod table;

pub use crate::catalog::FeedChannel as Channel;
pub use item::{Item, Limits, Skip, Sources, availability_name, price_text};

use crate::catalog::Catalog;
use crate::diagnostics::Diagnostics;
use crate::images::{self, ImageCache, ImageMap, SourceIndex};
use crate::output::{self, CachePolicy, Content, FileEntry, Sink};
use rayon::prelude::*;
use std::io::{self, Write};
use std::path::Path;

/// Products mapped in parallel before their items are written: bounds memory.
const CHUNK: usize = 2048;
/// Products per parallel task.
const TASK: usize = 64;
/// Warnings listed in a report; the rest are counted.
const MAX_WARNINGS: usize = 100;

/// A feed file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// Google Merchant Center RSS 2.0 XML.
    GoogleXml,
    /// Meta catalog CSV.
    MetaCsv,
    /// TikTok catalog CSV template (what TikTok ingests from a URL).
    TiktokCsv,
    /// TikTok catalog fields as JSON (the shape of the Catalog API's product records).
    TiktokJson,
}

impl Format {
    /// The channel whose rules the format follows.
    pub fn channel(self) -> Channel {
        match self {
            Self::GoogleXml => Channel::Google,
            Self::MetaCsv => Channel::Meta,
            Self::TiktokCsv | Self::TiktokJson => Channel::Tiktok,
        }
    }

    /// Path of the feed in the built site.
    pub fn site_path(self) -> &'static str {
        match self {
            Self::GoogleXml => "feeds/google.xml",
            Self::MetaCsv => "feeds/meta.csv",
            Self::TiktokCsv => "feeds/tiktok.csv",
            Self::TiktokJson => "feeds/tiktok.json",
        }
    }

    /// The formats the built site carries for a channel.
    pub fn of_channel(channel: Channel) -> &'static [Self] {
        match channel {
            Channel::Google => &[Self::GoogleXml],
            Channel::Meta => &[Self::MetaCsv],
            Channel::Tiktok => &[Self::TiktokCsv, Self::TiktokJson],
        }
    }
}

/// What generating one feed did: the feed generation log entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedReport {
    /// Items written (one per variant).
    pub items: usize,
    /// Active products considered (excluded ones not counted).
    pub products: usize,
    /// Active products left out by `feeds.exclude`.
    pub excluded: usize,
    /// Variants left out, each with a warning.
    pub skipped: usize,
    /// Why variants were left out (`handle` / SKU: reason), at most `MAX_WARNINGS`.
    pub warnings: Vec<String>,
    /// Bytes written.
    pub bytes: u64,
}

impl FeedReport {
    fn merge(&mut self, other: Self) {
        self.items += other.items;
        self.products += other.products;
        self.excluded += other.excluded;
        self.skipped += other.skipped;
        let room = MAX_WARNINGS.saturating_sub(self.warnings.len());
        self.warnings.extend(other.warnings.into_iter().take(room));
    }
}

/// Spells items in one format. The fields all variants of a product share are spelt once
/// per product (`shared`) and copied into each of its items.
trait Encoder: Sync {
    /// Everything before the first item.
    fn header(&self, sources: &Sources<'_>, out: &mut Vec<u8>);
    /// The product-level fields of `item` (the first item of its product), spelt once.
    fn shared(&self, item: &Item<'_>, sources: &Sources<'_>) -> Vec<u8>;
    /// One item: its own fields and the product's `shared` bytes.
    fn item(&self, item: &Item<'_>, shared: &[u8], out: &mut Vec<u8>);
    /// Everything after the last item.
    fn footer(&self, out: &mut Vec<u8>);
    /// Bytes to drop from the start of the very first item (a separator).
    fn first_item_skip(&self) -> usize {
        0
    }
}

fn encoder(format: Format) -> Box<dyn Encoder> {
    match format {
        Format::GoogleXml => Box::new(google::Rss),
        Format::MetaCsv => Box::new(table::Csv(Channel::Meta)),
        Format::TiktokCsv => Box::new(table::Csv(Channel::Tiktok)),
        Format::TiktokJson => Box::new(table::Json),
    }
}

/// Counts bytes on their way to a writer.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}

/// Writes the feed of `format` for every active, not excluded product of the catalog to
/// `out`, item by item in catalog order.
pub fn write<W: Write>(sources: &Sources<'_>, format: Format, out: W) -> io::Result<FeedReport> {
    let encoder = encoder(format);
    let encoder = encoder.as_ref();
    let mut out = Counting { inner: out, bytes: 0 };
    let mut report = FeedReport::default();
    let mut buf = Vec::new();
    encoder.header(sources, &mut buf);
    out.put(&buf)?;
    let mut first = true;
    let mut write_out = |parts: Vec<(Vec<u8>, FeedReport)>| -> io::Result<()> {
        for (bytes, part) in parts {
            let skip = if first && !bytes.is_empty() {
                first = false;
                encoder.first_item_skip()
            } else {
                0
            };
            out.put(&bytes[skip.min(bytes.len())..])?;
            report.merge(part);
        }
        Ok(())
    };
    // Chunk n + 1 is mapped while chunk n is written.
    let mut ready: Option<Vec<(Vec<u8>, FeedReport)>> = None;
    for chunk in sources.catalog.products.chunks(CHUNK) {
        let previous = ready.take();
        let (mapped, written) = std::thread::scope(|scope| {
            let mapping = scope.spawn(|| map_chunk(sources, encoder, format.channel(), chunk));
            let written = previous.map_or(Ok(()), &mut write_out);
            (mapping.join(), written)
        });
        let mapped = mapped.map_err(|_| io::Error::other("feed mapping panicked"))?;
        written?;
        ready = Some(mapped);
    }
    if let Some(last) = ready {
        write_out(last)?;
    }
    buf.clear();
    encoder.footer(&mut buf);
    out.put(&buf)?;
    out.inner.flush()?;
    report.bytes = out.bytes;
    Ok(report)
}

/// Maps the products of one chunk in parallel tasks: each task's encoded items and report.
fn map_chunk(
    sources: &Sources<'_>,
    encoder: &dyn Encoder,
    channel: Channel,
    chunk: &[crate::catalog::Product],
) -> Vec<(Vec<u8>, FeedReport)> {
    let limits = channel.limits();
    let exclude = &sources.catalog.store.feeds.exclude;
    chunk
        .par_chunks(TASK)
        .map(|task| {
            let mut buf = Vec::with_capacity(task.len() * 4096);
            let mut part = FeedReport::default();
            for p in task.iter().filter(|p| p.is_active()) {
                if exclude.contains_key(&p.handle) {
                    part.excluded += 1;
                    continue;
                }
                part.products += 1;
                let shared = sources.shared(p);
                let description = item::fit(&shared.description, limits.description);
                let mut spelt: Option<Vec<u8>> = None;
                for v in &p.variants {
                    match sources.item(channel, &shared, v, &description) {
                        Ok(item) => {
                            let spelt = spelt.get_or_insert_with(|| encoder.shared(&item, sources));
                            encoder.item(&item, spelt, &mut buf);
                            part.items += 1;
                        }
                        Err(skip) => {
                            part.skipped += 1;
                            if part.warnings.len() < MAX_WARNINGS {
                                part.warnings.push(format!("`{}` / `{}`: {skip}", p.handle, v.sku));
                            }
                        }
                    }
                }
            }
            (buf, part)
        })
        .collect()
}

/// A sink that keeps nothing: image processing for feeds outside a build only needs the
/// names the images get, not their files.
struct Discard;

impl Sink for Discard {
    fn put(
        &self,
        rel: &str,
        content: Content<'_>,
        cache: CachePolicy,
    ) -> io::Result<(String, FileEntry)> {
        let entry = match content {
            Content::Bytes(b) => output::entry(rel, b, cache),
            Content::File { hash, size, .. } => output::entry_of(rel, hash, size, cache),
        };
        Ok((rel.to_owned(), entry))
    }
}

/// The images of the built storefront, by source path, without building it: the same
/// processing as a build, sharing its cache in `cache_dir` (images already encoded by a
/// build cost only a look-up). Image errors are returned as diagnostics.
pub fn published_images(catalog: &Catalog, cache_dir: &Path) -> Result<ImageMap, Diagnostics> {
    let mut diags = Diagnostics::default();
    let cache = ImageCache::new(Some(cache_dir.to_owned()));
    let processed =
        images::process(catalog, &[], &cache, &SourceIndex::new(), &Discard, &mut diags);
    if diags.has_errors() { Err(diags) } else { Ok(std::sync::Arc::unwrap_or_clone(processed.map)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::fixtures::{self, FixtureOptions};
    use crate::render::Urls;

    /// A small synthetic catalog with feed settings, loaded, with its images processed.
    fn catalog_with_settings(
        settings: serde_json::Value,
        edit: impl Fn(&mut String),
    ) -> (tempfile::TempDir, Catalog, ImageMap) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let site = tmp.path().join("site");
        fixtures::write(&site, &FixtureOptions { products: 30, seed: 3, images: 2 })
            .expect("fixtures");
        let store_path = site.join("store.json");
        let mut store: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&store_path).expect("store")).expect("json");
        store["feeds"] = settings;
        std::fs::write(&store_path, store.to_string()).expect("write store");
        let products_path = site.join("products.jsonl");
        let mut products = std::fs::read_to_string(&products_path).expect("products");
        edit(&mut products);
        std::fs::write(&products_path, products).expect("write products");
        let catalog = catalog::load(&site).expect("loads").catalog;
        let images = published_images(&catalog, &tmp.path().join("cache")).expect("images");
        (tmp, catalog, images)
    }

    fn feed(catalog: &Catalog, images: &ImageMap, format: Format) -> (String, FeedReport) {
        let urls = Urls::new(&catalog.store.base_url);
        let sources = Sources { catalog, images, urls: &urls };
        let mut out = Vec::new();
        let report = write(&sources, format, &mut out).expect("writes");
        (String::from_utf8(out).expect("utf-8"), report)
    }

    #[test]
    fn every_format_passes_the_checker_and_counts_items() {
        let (_tmp, catalog, images) = catalog_with_settings(
            serde_json::json!({"shipping": [{"country": "IE", "price": "4.95"}, {"country": "DE", "service": "Express", "price": "12"}]}),
            |_| {},
        );
        let variants: usize = catalog.products.iter().map(|p| p.variants.len()).sum();
        for format in [Format::GoogleXml, Format::MetaCsv, Format::TiktokCsv, Format::TiktokJson] {
            let (text, report) = feed(&catalog, &images, format);
            assert_eq!(report.items, variants, "{format:?}");
            assert_eq!(report.bytes, text.len() as u64);
            let (channel, syntax) = check::detect(text.as_bytes()).expect("detects");
            assert_eq!(channel, format.channel());
            let checked = check::check(text.as_bytes(), channel, syntax).expect("reads");
            assert_eq!(checked.items, variants, "{format:?}");
            assert_eq!(checked.errors(), 0, "{format:?}: {:#?}", checked.problems);
            assert!(text.contains("4.95 EUR") && text.contains("Express"), "{format:?} shipping");
        }
    }

    #[test]
    fn exclusions_titles_and_google_categories_apply() {
        let (_tmp, catalog, images) = catalog_with_settings(
            serde_json::json!({"exclude": ["product-000001"], "google_product_category": {"outerwear": "5598"}}),
            |products| {
                *products = products.replacen(
                    "\"handle\":\"product-000002\"",
                    "\"handle\":\"product-000002\",\"feed\":{\"title\":\"Custom <b>feed</b> title\",\"google_product_category\":\"Apparel & Accessories > Clothing\"}",
                    1,
                );
            },
        );
        let (xml, report) = feed(&catalog, &images, Format::GoogleXml);
        assert_eq!(report.excluded, 1);
        assert!(!xml.contains("product-000001/"), "excluded product in the feed");
        assert!(xml.contains("<g:title>Custom feed title"), "title override");
        assert!(xml.contains("Apparel &amp; Accessories &gt; Clothing"), "category override");
        let outerwear = catalog.products.iter().filter(|p| {
            p.feed.google_product_category.is_none()
                && p.handle != "product-000001"
                && p.categories.iter().any(|&c| {
                    let mut at = Some(c);
                    while let Some(i) = at {
                        if catalog.categories[i].handle == "outerwear" {
                            return true;
                        }
                        at = catalog.categories[i].parent;
                    }
                    false
                })
        });
        let mapped: usize = outerwear.map(|p| p.variants.len()).sum();
        assert!(mapped > 0, "the fixture has outerwear");
        assert_eq!(xml.matches("<g:google_product_category>5598<").count(), mapped);
    }

    #[test]
    fn items_without_images_or_price_are_left_out_with_a_warning() {
        let (_tmp, catalog, images) = catalog_with_settings(serde_json::json!({}), |products| {
            let first = products.lines().next().expect("a line").to_owned();
            let mut v: serde_json::Value = serde_json::from_str(&first).expect("json");
            v["images"] = serde_json::json!([]);
            v["variants"][0]["price"] = serde_json::json!("0");
            *products = products.replacen(&first, &v.to_string(), 1);
        });
        let (_, report) = feed(&catalog, &images, Format::MetaCsv);
        let first = &catalog.products[0];
        assert_eq!(report.skipped, first.variants.len());
        assert!(report.warnings[0].contains("has no image"), "{:?}", report.warnings);
    }

    #[test]
    fn backorder_items_carry_their_availability_date() {
        let sku = std::sync::Mutex::new(String::new());
        let (_tmp, catalog, images) = catalog_with_settings(serde_json::json!({}), |products| {
            let line = products
                .lines()
                .find(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("json");
                    v["status"].as_str().unwrap_or("active") == "active"
                        && v["images"].as_array().is_some_and(|i| !i.is_empty())
                        && v["variants"].as_array().is_some_and(|v| v.len() > 1)
                })
                .expect("an active product with images and variants")
                .to_owned();
            let mut v: serde_json::Value = serde_json::from_str(&line).expect("json");
            v["variants"][0]["inventory"] = serde_json::json!(0);
            v["variants"][0]["inventory_policy"] = serde_json::json!("continue");
            v["variants"][0]["availability_date"] = serde_json::json!("2027-03-01T09:00:00+01:00");
            // In stock: a date is not what channels expect, so none is given.
            v["variants"][1]["inventory"] = serde_json::json!(5);
            v["variants"][1]["availability_date"] = serde_json::json!("2027-04-01");
            *sku.lock().expect("lock") = v["variants"][0]["sku"].as_str().expect("sku").into();
            *products = products.replacen(&line, &v.to_string(), 1);
        });
        let sku = sku.into_inner().expect("lock");
        let (xml, _) = feed(&catalog, &images, Format::GoogleXml);
        assert_eq!(xml.matches("<g:availability_date>").count(), 1, "only the backorder item");
        let item =
            xml.split("<item>").find(|i| i.contains(&format!("<g:id>{sku}<"))).expect("item");
        assert!(item.contains("<g:availability>backorder</g:availability>"), "{item}");
        assert!(
            item.contains("<g:availability_date>2027-03-01T09:00+0100</g:availability_date>"),
            "{item}"
        );
        for format in [Format::GoogleXml, Format::MetaCsv, Format::TiktokCsv, Format::TiktokJson] {
            let (text, _) = feed(&catalog, &images, format);
            assert_eq!(text.matches("2027-03-01T09:00+0100").count(), 1, "{format:?}");
            assert!(!text.contains("2027-04-01"), "{format:?}: a date on an item in stock");
            let (channel, syntax) = check::detect(text.as_bytes()).expect("detects");
            let checked = check::check(text.as_bytes(), channel, syntax).expect("reads");
            let about_dates: Vec<_> = checked
                .problems
                .iter()
                .filter(|p| p.field.as_deref() == Some("availability_date"))
                .collect();
            assert!(about_dates.is_empty(), "{format:?}: {about_dates:#?}");
            assert_eq!(checked.errors(), 0, "{format:?}: {:#?}", checked.problems);
        }
    }

    #[test]
    fn the_demo_stores_feeds_have_no_problems() {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo-store");
        let catalog = catalog::load(&site).expect("the demo store loads").catalog;
        let tmp = tempfile::tempdir().expect("tempdir");
        let images = published_images(&catalog, tmp.path()).expect("images");
        for format in [Format::GoogleXml, Format::MetaCsv, Format::TiktokCsv, Format::TiktokJson] {
            let (text, report) = feed(&catalog, &images, format);
            assert!(report.warnings.is_empty(), "{format:?}: {:?}", report.warnings);
            let (channel, syntax) = check::detect(text.as_bytes()).expect("detects");
            let checked = check::check(text.as_bytes(), channel, syntax).expect("reads");
            assert_eq!(checked.problems, Vec::new(), "{format:?}");
            assert!(!text.contains(" ."), "{format:?}: a space before a period");
        }
    }

    #[test]
    fn feeds_are_deterministic() {
        let (_tmp, catalog, images) = catalog_with_settings(serde_json::json!({}), |_| {});
        assert_eq!(
            feed(&catalog, &images, Format::GoogleXml).0,
            feed(&catalog, &images, Format::GoogleXml).0
        );
    }
}
