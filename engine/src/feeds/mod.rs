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

/// Spells items in one format.
trait Encoder: Sync {
    /// Everything before the first item.
    fn header(&self, sources: &Sources<'_>, out: &mut Vec<u8>);
    /// One item.
    fn item(&self, item: &Item<'_>, sources: &Sources<'_>, out: &mut Vec<u8>);
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
    let channel = format.channel();
    let limits = channel.limits();
    let exclude = &sources.catalog.store.feeds.exclude;
    let mut out = Counting { inner: out, bytes: 0 };
    let mut report = FeedReport::default();
    let mut buf = Vec::new();
    encoder.header(sources, &mut buf);
    out.put(&buf)?;
    let mut first = true;
    for chunk in sources.catalog.products.chunks(CHUNK) {
        let parts: Vec<(Vec<u8>, FeedReport)> = chunk
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
                    for v in &p.variants {
                        match sources.item(channel, &shared, v, &description) {
                            Ok(item) => {
                                encoder.item(&item, sources, &mut buf);
                                part.items += 1;
                            }
                            Err(skip) => {
                                part.skipped += 1;
                                if part.warnings.len() < MAX_WARNINGS {
                                    part.warnings
                                        .push(format!("`{}` / `{}`: {skip}", p.handle, v.sku));
                                }
                            }
                        }
                    }
                }
                (buf, part)
            })
            .collect();
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
    }
    buf.clear();
    encoder.footer(&mut buf);
    out.put(&buf)?;
    out.inner.flush()?;
    report.bytes = out.bytes;
    Ok(report)
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
    if diags.has_errors() { Err(diags) } else { Ok(processed.map) }
}
