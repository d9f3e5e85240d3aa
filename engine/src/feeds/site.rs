//! Feeds in the built site (`feeds/`): the build's hook.
//!
//! Each feed is streamed into a file under the cache directory (never held in memory) and
//! put into the build's sink like any other file, so it is in the manifest and follows
//! the build's commit. A fingerprint of exactly what feeds read decides whether a feed is
//! generated again; an unchanged feed is reused from its cached file.

use super::{Format, Sources, write};
use crate::catalog::Catalog;
use crate::output::{CachePolicy, Content, Manifest, Sink};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bumped whenever the bytes of a feed change for the same input.
const FEED_VERSION: u32 = 3;

/// The formats the site carries, from the store's `feeds.channels`.
pub fn formats(catalog: &Catalog) -> Vec<Format> {
    catalog.store.feeds.channels.iter().flat_map(|c| Format::of_channel(*c)).copied().collect()
}

/// blake3 of everything a feed of the catalog reads: store settings, categories, every
/// product's source record in order, the published names of its images, and the URLs. The
/// same for every format (`fingerprint` adds the format), so it is computed once a build.
pub fn inputs(sources: &Sources<'_>) -> blake3::Hash {
    let c = sources.catalog;
    let mut h = blake3::Hasher::new();
    h.update(format!("feed v{FEED_VERSION}\0").as_bytes());
    h.update(sources.urls.base.as_bytes());
    h.update(b"\0");
    let s = &c.store;
    h.update(
        format!("{:?}\0{:?}\0{}\0{:?}\0", s.name, s.description, s.currency, s.feeds).as_bytes(),
    );
    for cat in &c.categories {
        h.update(format!("{}\0{}\0{:?}\0", cat.handle, cat.title, cat.parent).as_bytes());
    }
    // Gathered into one buffer and hashed at once: the same digest as an update per piece
    // (blake3 hashes the concatenation), without 60,000 small updates at 10,000 products.
    let mut bytes = Vec::with_capacity(c.products.len() * 256);
    for p in &c.products {
        bytes.extend_from_slice(&p.fingerprint);
        for img in &p.images {
            bytes.extend_from_slice(img.src.as_bytes());
            if let Some(info) = sources.images.get(&img.src) {
                for v in &info.variants {
                    bytes.extend_from_slice(v.fallback.as_bytes());
                }
            }
            bytes.push(0);
        }
    }
    h.update(&bytes);
    h.finalize()
}

/// The fingerprint of one format's feed, from the `inputs` of the catalog.
pub fn fingerprint(inputs: &blake3::Hash, format: Format) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(inputs.as_bytes());
    h.update(format!("{format:?}").as_bytes());
    h.finalize()
}

/// Writes bytes to a file while hashing them.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A feed file kept in the cache directory with the fingerprint it was made from.
struct Cached {
    file: PathBuf,
    record: PathBuf,
}

impl Cached {
    /// `(fingerprint, hash, size)` when the file is still the one the record describes.
    fn read(&self) -> Option<(String, String, u64)> {
        let text = std::fs::read_to_string(&self.record).ok()?;
        let mut parts = text.split_whitespace();
        let (fp, hash, size) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
        (std::fs::metadata(&self.file).ok()?.len() == size).then(|| (fp.into(), hash.into(), size))
    }

    /// Streams a fresh feed into a new file (a new inode: the output may hold a hard link
    /// to the old one) and records it.
    fn generate(
        &self,
        sources: &Sources<'_>,
        format: Format,
        fp: &str,
    ) -> io::Result<(String, u64)> {
        if let Some(parent) = self.file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = self.file.with_extension(format!("tmp-{}", std::process::id()));
        let file = std::fs::File::create(&tmp)?;
        let mut out = Hashing {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
        };
        let report = write(sources, format, &mut out)?;
        // Not synced: the record below is checked against the file's size, and a feed lost
        // in a crash is generated again from its fingerprint.
        drop(out.inner.into_inner().map_err(io::IntoInnerError::into_error)?);
        let hash = out.hasher.finalize().to_hex().to_string();
        crate::output::replace(&tmp, &self.file)?;
        crate::output::write_replacing(
            &self.record,
            format!("{fp} {hash} {}\n", report.bytes).as_bytes(),
        )?;
        let log = GenerationLog {
            format: format.site_path().to_owned(),
            generated_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            items: report.items,
            products: report.products,
            excluded: report.excluded,
            skipped: report.skipped,
            warnings: report.warnings.clone(),
            bytes: report.bytes,
            hash: hash.clone(),
        };
        let json = serde_json::to_vec_pretty(&log).map_err(io::Error::other)?;
        crate::output::write_replacing(&self.record.with_extension("log.json"), &json)?;
        Ok((hash, report.bytes))
    }
}

/// What the last generation of a feed did: the feed generation log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GenerationLog {
    /// Path in the site (`feeds/google.xml`).
    pub format: String,
    /// When it was generated (Unix milliseconds).
    pub generated_at_ms: i64,
    /// Items written (one per variant).
    pub items: usize,
    /// Active products considered.
    pub products: usize,
    /// Products left out by `feeds.exclude`.
    pub excluded: usize,
    /// Variants left out, each with a warning.
    pub skipped: usize,
    /// Why variants were left out.
    pub warnings: Vec<String>,
    /// Size in bytes.
    pub bytes: u64,
    /// blake3 of the file.
    pub hash: String,
}

fn feeds_dir(cache_dir: &Path, out: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_owned());
    let key = blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex();
    cache_dir.join("feeds").join(&key[..24])
}

/// The generation log of a feed of the site built into `out` with `cache_dir`, if it was
/// generated.
pub fn generation_log(cache_dir: &Path, out: &Path, format: Format) -> Option<GenerationLog> {
    let name = format.site_path().trim_start_matches("feeds/");
    let path = feeds_dir(cache_dir, out).join(format!("{name}.log.json"));
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The build's feeds: what they are made from and where they are kept between builds.
pub struct SiteFeeds<'a> {
    /// Catalog, published images and URLs of this build.
    pub sources: Sources<'a>,
    /// The build's cache directory; feed files live under `feeds/<key of out>/`.
    pub cache_dir: &'a Path,
    /// The output directory.
    pub out: &'a Path,
}

impl SiteFeeds<'_> {
    /// Generates (or reuses) every feed the store has switched on and puts it into `sink`,
    /// recording it in `manifest`. `previous` is the manifest of the output as it is, if
    /// any (an in-place sink receives only what changed).
    ///
    /// With `defer`, a feed that is out of date but present in `previous` is not generated:
    /// its previous entry (and file) stay, and it is returned, for the caller to bring up
    /// to date later (`Session::finish_feeds`) without holding up the pages.
    pub fn put(
        &self,
        sink: &dyn Sink,
        previous: Option<&Manifest>,
        manifest: &mut Manifest,
        defer: bool,
    ) -> io::Result<Vec<Format>> {
        let catalog = self.sources.catalog;
        let dir = feeds_dir(self.cache_dir, self.out);
        let mut deferred = Vec::new();
        let formats = formats(catalog);
        let inputs = if formats.is_empty() { None } else { Some(inputs(&self.sources)) };
        for (format, inputs) in formats.into_iter().zip(inputs.iter().cycle()) {
            let name = format.site_path().trim_start_matches("feeds/");
            let cached =
                Cached { file: dir.join(name), record: dir.join(format!("{name}.fingerprint")) };
            let rel = format.site_path();
            let fp = fingerprint(inputs, format).to_hex().to_string();
            let known = cached.read().filter(|(known, ..)| *known == fp);
            let live =
                previous.and_then(|m| m.files.get(rel)).filter(|_| !sink.receives_everything());
            let (hash, size) = match (known, live) {
                (Some((_, hash, size)), _) => (hash, size),
                (None, Some(entry)) if defer => {
                    manifest.files.insert(rel.to_owned(), entry.clone());
                    deferred.push(format);
                    continue;
                }
                (None, _) => cached.generate(&self.sources, format, &fp)?,
            };
            let entry = crate::output::entry_of(rel, &hash, size, CachePolicy::Revalidate);
            if live == Some(&entry) {
                manifest.files.insert(rel.to_owned(), entry);
                continue;
            }
            let content = Content::File { path: &cached.file, hash: &hash, size };
            let (rel, entry) = sink.put(rel, content, CachePolicy::Revalidate)?;
            manifest.files.insert(rel, entry);
        }
        Ok(deferred)
    }
}
