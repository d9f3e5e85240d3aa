//! Source images: checked, oriented, resized into responsive variants (WebP plus a JPEG or
//! PNG fallback) under content-hashed names, and encoded once, ever.
//!
//! Every referenced image is processed in parallel and all bad ones are reported together,
//! each naming the product (or collection, or theme section) that uses it. Encoded variants
//! live in a persistent cache keyed by the source's content hash and the settings, so a
//! rebuild (also after `--clean`) encodes nothing that was encoded before.

use crate::catalog::Catalog;
use crate::diagnostics::Diagnostics;
use crate::output::{CachePolicy, Content, FileEntry, Manifest, Sink};
use image::{DynamicImage, GenericImageView};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod decode;

pub use decode::{
    DECODE_BUDGET, Decoded, Header, MAX_DECODED_BYTES, MAX_PIXELS, decode, decoding_bytes, probe,
};

/// Largest source file accepted, against decompression bombs and mistakes.
pub const MAX_FILE_BYTES: u64 = 40 * 1024 * 1024;
/// Widths of the responsive variants; a source is never upscaled, and its own width is
/// added when it is below the largest.
pub const WIDTHS: [u32; 5] = [320, 640, 960, 1280, 1920];
/// JPEG quality of fallbacks.
pub const JPEG_QUALITY: u8 = 82;
/// WebP quality.
pub const WEBP_QUALITY: f32 = 80.0;
/// Bumped whenever the output of the pipeline changes for the same settings.
const PIPELINE_VERSION: u32 = 1;

/// The fingerprint of the settings, part of every cache key and file name.
pub fn settings_fingerprint() -> String {
    let text = format!("v{PIPELINE_VERSION} w{WIDTHS:?} j{JPEG_QUALITY} p{WEBP_QUALITY}");
    blake3::hash(text.as_bytes()).to_hex()[..8].to_owned()
}

/// One responsive variant of an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Variant {
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Site path of the JPEG or PNG fallback.
    pub fallback: String,
    /// Site path of the WebP.
    pub webp: String,
}

/// A published image: its variants, smallest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Width of the largest variant (the oriented source, capped).
    pub width: u32,
    /// Height of the largest variant.
    pub height: u32,
    /// MIME type of the fallbacks (`image/jpeg` or `image/png`).
    pub fallback_type: String,
    /// Variants, smallest first.
    pub variants: Vec<Variant>,
}

/// Images by their source path in the catalog.
pub type ImageMap = HashMap<String, ImageInfo>;

/// A place that uses an image: file, line and field (naming the owner).
pub type Reference = (String, Option<usize>, String);

/// What a build remembers of a source image: enough to know it is unchanged without
/// reading it, and what it was published as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in ns since the epoch (0 when unknown, then never trusted).
    pub mtime: i128,
    /// blake3 of the content, hex.
    pub hash: String,
    /// `settings_fingerprint` of the pipeline that made the variants.
    pub settings: String,
    /// The published variants.
    pub info: ImageInfo,
}

/// Remembered source images, keyed by path, so unchanged sources are not even read.
pub type SourceIndex = BTreeMap<String, SourceRecord>;

/// One source's result.
struct Placed {
    info: ImageInfo,
    /// Its files, with their manifest entries.
    files: Vec<(String, FileEntry)>,
    record: SourceRecord,
    /// Whether the files were left where they are in the output instead of put.
    kept: bool,
}

type OneResult = Result<Placed, String>;

/// Where encoded variants are kept between builds.
#[derive(Debug, Clone)]
pub struct ImageCache {
    dir: Option<PathBuf>,
}

impl ImageCache {
    /// A cache in `dir` (created on first use); `None` keeps nothing between builds.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir: dir.map(|d| d.join("images")) }
    }
}

/// What processing did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageStats {
    /// Distinct source images published.
    pub images: usize,
    /// Sources decoded and encoded in this build.
    pub encoded: usize,
    /// Sources whose variants came from the cache.
    pub cached: usize,
    /// Variant files produced (fallbacks plus WebP).
    pub files: usize,
}

/// The result of processing: the map for templates, the files for the manifest.
#[derive(Debug, Default)]
pub struct Processed {
    /// Images by source path.
    pub map: Arc<ImageMap>,
    /// Files placed in the output (put into the sink).
    pub files: Vec<(String, FileEntry)>,
    /// Counts.
    pub stats: ImageStats,
    /// Updated source index.
    pub sources: Arc<SourceIndex>,
    /// Files left in place in the output (see `process_in_place`), not put into the sink.
    pub kept: Arc<Vec<(String, FileEntry)>>,
}

impl Processed {
    /// What a later build into the same output may reuse (`Memo`), once this one is live.
    pub fn memo(&self) -> Memo {
        let files = if self.files.is_empty() {
            Arc::clone(&self.kept)
        } else {
            Arc::new(self.kept.iter().chain(&self.files).cloned().collect())
        };
        Memo { map: Arc::clone(&self.map), files, sources: Arc::clone(&self.sources) }
    }
}

/// The result of an image step whose files are live in an output, kept by a long-lived
/// session: a later build into that output whose sources are the same files (same paths,
/// sizes and modification times, as `process_in_place` trusts them) reuses it whole,
/// without looking a source up in the manifest or the cache.
#[derive(Debug, Clone)]
pub struct Memo {
    map: Arc<ImageMap>,
    /// Every file of the images, put or kept then: all of them are in the output now.
    files: Arc<Vec<(String, FileEntry)>>,
    sources: Arc<SourceIndex>,
}

impl Memo {
    /// The memo as this build's result, if `sources` (sorted) are what it was made from.
    fn reuse(&self, root: &Path, sources: &[&str], settings: &str) -> Option<Processed> {
        if sources.len() != self.sources.len()
            || !sources.iter().zip(self.sources.keys()).all(|(a, b)| *a == b)
        {
            return None;
        }
        let records: Vec<&SourceRecord> = self.sources.values().collect();
        let same = sources.par_iter().zip(records).all(|(src, record)| {
            record.settings == settings
                && stat(root, src).is_ok_and(|(size, mtime)| {
                    (size, mtime) == (record.size, record.mtime) && mtime != 0
                })
        });
        same.then(|| Processed {
            map: Arc::clone(&self.map),
            files: Vec::new(),
            stats: ImageStats {
                images: self.map.len(),
                encoded: 0,
                cached: self.map.len(),
                files: self.files.len(),
            },
            sources: Arc::clone(&self.sources),
            kept: Arc::clone(&self.files),
        })
    }
}

/// Size and modification time (ns since the epoch, 0 when unknown) of source `src`.
fn stat(root: &Path, src: &str) -> Result<(u64, i128), String> {
    let meta = std::fs::metadata(root.join(src)).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "the file does not exist".to_owned(),
        _ => format!("cannot read the file: {e}"),
    })?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    Ok((meta.len(), mtime))
}

/// Every source path the published pages use, sorted, once each.
fn used_sources<'a>(catalog: &'a Catalog, extra: &'a [(String, Reference)]) -> Vec<&'a str> {
    let products = catalog.products.iter().filter(|p| p.is_active());
    let mut sources: Vec<&str> = extra
        .iter()
        .map(|(src, _)| src.as_str())
        .chain(catalog.store.logo.iter().map(|l| l.src.as_str()))
        .chain(products.flat_map(|p| p.images.iter().map(|i| i.src.as_str())))
        .chain(catalog.collections.iter().filter_map(|c| c.image.as_ref()).map(|i| i.src.as_str()))
        .collect();
    sources.sort_unstable();
    sources.dedup();
    sources
}

/// Who uses each source path, for messages. `extra` are images used outside the catalog
/// (the theme's sections): (source path, reference).
fn references<'a>(
    catalog: &'a Catalog,
    extra: &'a [(String, Reference)],
) -> BTreeMap<&'a str, Vec<Reference>> {
    let mut refs: BTreeMap<&str, Vec<Reference>> = BTreeMap::new();
    for (src, reference) in extra {
        refs.entry(src.as_str()).or_default().push(reference.clone());
    }
    if let Some(logo) = &catalog.store.logo {
        refs.entry(logo.src.as_str()).or_default().push(("store.json".into(), None, "logo".into()));
    }
    for p in catalog.products.iter().filter(|p| p.is_active()) {
        for (i, img) in p.images.iter().enumerate() {
            refs.entry(img.src.as_str()).or_default().push((
                "products.jsonl".into(),
                Some(p.line),
                format!("images[{i}].src` of product `{}", p.handle),
            ));
        }
    }
    for (i, c) in catalog.collections.iter().enumerate() {
        if let Some(img) = &c.image {
            refs.entry(img.src.as_str()).or_default().push((
                "collections.json".into(),
                None,
                format!("[{i}].image.src` of collection `{}", c.handle),
            ));
        }
    }
    refs
}

/// Processes every image the published pages use and places its variants in `sink`.
pub fn process(
    catalog: &Catalog,
    extra: &[(String, Reference)],
    cache: &ImageCache,
    previous: &SourceIndex,
    sink: &dyn Sink,
    diags: &mut Diagnostics,
) -> Processed {
    process_in_place(catalog, extra, cache, previous, None, sink, diags)
}

/// The output a build updates in place, as the image step sees it.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    /// Its manifest.
    pub manifest: &'a Manifest,
    /// The result of an earlier image step whose files it has.
    pub memo: Option<&'a Memo>,
}

/// Processes like `process`; with `live`, a source whose size and modification time are
/// those `previous` remembers and whose variants the live manifest lists is not even
/// looked up in the cache: its files stay where they are (`Processed::kept`) and nothing
/// is put for it. The live output's memo is reused whole when every source is the same
/// file again.
pub fn process_in_place(
    catalog: &Catalog,
    extra: &[(String, Reference)],
    cache: &ImageCache,
    previous: &SourceIndex,
    live: Option<Live<'_>>,
    sink: &dyn Sink,
    diags: &mut Diagnostics,
) -> Processed {
    let encoded = AtomicUsize::new(0);
    let settings = settings_fingerprint();
    let sources: Vec<&str> = used_sources(catalog, extra);
    let memo = live.and_then(|l| l.memo);
    if let Some(reused) = memo.and_then(|m| m.reuse(&catalog.root, &sources, &settings)) {
        return reused;
    }
    let live = live.map(|l| l.manifest);
    let results: Vec<(&str, OneResult)> = sources
        .into_par_iter()
        .map(|src| {
            let ctx = One {
                root: &catalog.root,
                src,
                cache,
                settings: &settings,
                previous,
                live,
                sink,
                encoded: &encoded,
            };
            (src, ctx.run())
        })
        .collect();
    let mut out = Processed::default();
    let (mut map, mut sources, mut kept) = (ImageMap::new(), SourceIndex::new(), Vec::new());
    // Who uses each source is only worked out when one fails (it is a string per use).
    let mut refs = None;
    for (src, result) in results {
        match result {
            Ok(Placed { info, files, record, kept: left }) => {
                out.stats.files += files.len();
                if left {
                    kept.extend(files);
                } else {
                    out.files.extend(files);
                }
                map.insert(src.to_owned(), info);
                sources.insert(src.to_owned(), record);
            }
            Err(problem) => {
                let refs = refs.get_or_insert_with(|| references(catalog, extra));
                for (file, line, field) in &refs[src] {
                    diags.error(
                        "image",
                        file,
                        *line,
                        Some(field.clone()),
                        format!("`{src}`: {problem}"),
                    );
                }
            }
        }
    }
    (out.map, out.sources, out.kept) = (Arc::new(map), Arc::new(sources), Arc::new(kept));
    out.stats.images = out.map.len();
    out.stats.encoded = encoded.load(Ordering::Relaxed);
    out.stats.cached = out.stats.images.saturating_sub(out.stats.encoded);
    out
}

/// Cached description of one source's variants.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheMeta {
    width: u32,
    height: u32,
    alpha: bool,
    /// (width, height, fallback hash, fallback size, webp hash, webp size)
    variants: Vec<(u32, u32, String, u64, String, u64)>,
}

/// Processing of one source image.
struct One<'a> {
    root: &'a Path,
    src: &'a str,
    cache: &'a ImageCache,
    settings: &'a str,
    previous: &'a SourceIndex,
    live: Option<&'a Manifest>,
    sink: &'a dyn Sink,
    encoded: &'a AtomicUsize,
}

impl One<'_> {
    fn run(&self) -> OneResult {
        let path = self.root.join(self.src);
        let (size, mtime) = stat(self.root, self.src)?;
        if size > MAX_FILE_BYTES {
            return Err(format!("the file is {size} bytes, the limit is {MAX_FILE_BYTES}"));
        }
        let known = self
            .previous
            .get(self.src)
            .filter(|r| r.size == size && r.mtime == mtime && mtime != 0);
        if let (Some(record), Some(live)) = (known, self.live)
            && record.settings == self.settings
            && let Some(files) = live_files(&record.info, live)
        {
            let info = record.info.clone();
            return Ok(Placed { info, files, record: record.clone(), kept: true });
        }
        let mut bytes = None;
        let hash = match known {
            Some(record) => record.hash.clone(),
            _ => {
                let read =
                    std::fs::read(&path).map_err(|e| format!("cannot read the file: {e}"))?;
                let hash = blake3::hash(&read).to_hex().to_string();
                bytes = Some(read);
                hash
            }
        };
        let key = format!("{}-{}", &hash[..32], self.settings);
        let cache_dir = self.cache.dir.as_ref().map(|d| d.join(&key));
        let stem = stem_of(self.src);
        if let Some(dir) = &cache_dir
            && let Some(cached) = read_meta(dir)
        {
            let placed = self.place_cached(dir, &stem, &cached);
            if let Ok((info, files)) = placed {
                let record = self.record(size, mtime, hash, &info);
                return Ok(Placed { info, files, record, kept: false });
            }
        }
        let bytes = match bytes {
            Some(b) => b,
            None => std::fs::read(&path).map_err(|e| format!("cannot read the file: {e}"))?,
        };
        let encoded = encode(&bytes)?;
        self.encoded.fetch_add(1, Ordering::Relaxed);
        let (info, files) = self.place_encoded(&encoded, &stem, cache_dir.as_deref())?;
        let record = self.record(size, mtime, hash, &info);
        Ok(Placed { info, files, record, kept: false })
    }

    fn record(&self, size: u64, mtime: i128, hash: String, info: &ImageInfo) -> SourceRecord {
        SourceRecord { size, mtime, hash, settings: self.settings.to_owned(), info: info.clone() }
    }

    /// Puts freshly encoded variants into the cache (if any) and the output.
    fn place_encoded(
        &self,
        encoded: &Encoded,
        stem: &str,
        cache_dir: Option<&Path>,
    ) -> Result<(ImageInfo, Vec<(String, FileEntry)>), String> {
        let mut meta = CacheMeta {
            width: encoded.width,
            height: encoded.height,
            alpha: encoded.alpha,
            variants: Vec::new(),
        };
        let staged = cache_dir.and_then(|dir| {
            let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).ok().map(|()| tmp)
        });
        for v in &encoded.variants {
            let fh = blake3::hash(&v.fallback).to_hex().to_string();
            let wh = blake3::hash(&v.webp).to_hex().to_string();
            if let Some(tmp) = &staged {
                let _ = std::fs::write(
                    tmp.join(format!("{}.{}", v.width, fallback_ext(encoded.alpha))),
                    &v.fallback,
                );
                let _ = std::fs::write(tmp.join(format!("{}.webp", v.width)), &v.webp);
            }
            meta.variants.push((
                v.width,
                v.height,
                fh,
                v.fallback.len() as u64,
                wh,
                v.webp.len() as u64,
            ));
        }
        if let (Some(tmp), Some(dir)) = (&staged, cache_dir) {
            let written = serde_json::to_vec(&meta)
                .ok()
                .is_some_and(|m| std::fs::write(tmp.join("meta.json"), m).is_ok());
            if !written || std::fs::rename(tmp, dir).is_err() {
                let _ = std::fs::remove_dir_all(tmp);
            }
        }
        let mut files = Vec::new();
        let mut variants = Vec::new();
        for (v, (width, height, fh, _, wh, _)) in encoded.variants.iter().zip(&meta.variants) {
            let fallback = variant_path(stem, *width, fh, fallback_ext(encoded.alpha));
            let webp = variant_path(stem, *width, wh, "webp");
            files.push(self.put(&fallback, Content::Bytes(&v.fallback))?);
            files.push(self.put(&webp, Content::Bytes(&v.webp))?);
            variants.push(Variant { width: *width, height: *height, fallback, webp });
        }
        Ok((info_of(&meta, variants), files))
    }

    /// Links cached variants into the output.
    fn place_cached(
        &self,
        dir: &Path,
        stem: &str,
        meta: &CacheMeta,
    ) -> Result<(ImageInfo, Vec<(String, FileEntry)>), String> {
        let ext = fallback_ext(meta.alpha);
        let mut files = Vec::new();
        let mut variants = Vec::new();
        for (width, height, fh, fsize, wh, wsize) in &meta.variants {
            let fallback = variant_path(stem, *width, fh, ext);
            let webp = variant_path(stem, *width, wh, "webp");
            let fpath = dir.join(format!("{width}.{ext}"));
            let wpath = dir.join(format!("{width}.webp"));
            files
                .push(self.put(&fallback, Content::File { path: &fpath, hash: fh, size: *fsize })?);
            files.push(self.put(&webp, Content::File { path: &wpath, hash: wh, size: *wsize })?);
            variants.push(Variant { width: *width, height: *height, fallback, webp });
        }
        Ok((info_of(meta, variants), files))
    }

    fn put(&self, rel: &str, content: Content<'_>) -> Result<(String, FileEntry), String> {
        self.sink
            .put(rel, content, CachePolicy::Immutable)
            .map_err(|e| format!("cannot write `{rel}`: {e}"))
    }
}

/// The manifest entries of an image's variants when `live` lists every one of them.
fn live_files(info: &ImageInfo, live: &Manifest) -> Option<Vec<(String, FileEntry)>> {
    let mut files = Vec::with_capacity(info.variants.len() * 2);
    for v in &info.variants {
        for path in [&v.fallback, &v.webp] {
            files.push((path.clone(), live.files.get(path)?.clone()));
        }
    }
    Some(files)
}

fn info_of(meta: &CacheMeta, variants: Vec<Variant>) -> ImageInfo {
    let (width, height) =
        variants.last().map_or((meta.width, meta.height), |v| (v.width, v.height));
    let fallback_type = if meta.alpha { "image/png" } else { "image/jpeg" }.to_owned();
    ImageInfo { width, height, fallback_type, variants }
}

fn read_meta(dir: &Path) -> Option<CacheMeta> {
    let meta: CacheMeta =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).ok()?).ok()?;
    let ext = fallback_ext(meta.alpha);
    let complete = meta.variants.iter().all(|(w, ..)| {
        dir.join(format!("{w}.{ext}")).is_file() && dir.join(format!("{w}.webp")).is_file()
    });
    complete.then_some(meta)
}

fn fallback_ext(alpha: bool) -> &'static str {
    if alpha { "png" } else { "jpg" }
}

/// `images/<stem>-<width>.<hash10>.<ext>`.
fn variant_path(stem: &str, width: u32, hash: &str, ext: &str) -> String {
    format!("images/{stem}-{width}.{}.{ext}", &hash[..10])
}

/// A file-name-safe stem of the source path.
fn stem_of(src: &str) -> String {
    let stem = src.rsplit('/').next().and_then(|n| n.rsplit_once('.')).map_or("image", |(s, _)| s);
    let clean: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    if clean.is_empty() { "image".into() } else { clean }
}

struct EncodedVariant {
    width: u32,
    height: u32,
    fallback: Vec<u8>,
    webp: Vec<u8>,
}

struct Encoded {
    width: u32,
    height: u32,
    alpha: bool,
    variants: Vec<EncodedVariant>,
}

/// Decodes (within limits, EXIF orientation applied), resizes and encodes every variant.
/// Re-encoding drops all metadata.
fn encode(bytes: &[u8]) -> Result<Encoded, String> {
    let Decoded { image: img, permit: _permit, .. } = decode(bytes, None)?;
    let alpha = img.color().has_alpha() && has_transparency(&img);
    let (width, height) = img.dimensions();
    let mut widths: Vec<u32> = WIDTHS.iter().copied().filter(|w| *w < width).collect();
    if width <= WIDTHS[WIDTHS.len() - 1] {
        widths.push(width);
    } else {
        widths.push(WIDTHS[WIDTHS.len() - 1]);
    }
    widths.dedup();
    let mut variants = Vec::with_capacity(widths.len());
    // Largest first, each smaller one resized from the previous: fast and sharp enough.
    let mut current = img;
    for &target in widths.iter().rev() {
        if target < current.width() {
            let target_h = (u64::from(height) * u64::from(target) / u64::from(width)).max(1) as u32;
            current =
                current.resize_exact(target, target_h, image::imageops::FilterType::CatmullRom);
        }
        variants.push(encode_variant(&current, alpha)?);
    }
    variants.reverse();
    Ok(Encoded { width, height, alpha, variants })
}

fn has_transparency(img: &DynamicImage) -> bool {
    match img {
        DynamicImage::ImageRgba8(buf) => buf.pixels().any(|p| p.0[3] < 255),
        DynamicImage::ImageLumaA8(buf) => buf.pixels().any(|p| p.0[1] < 255),
        other => other.to_rgba8().pixels().any(|p| p.0[3] < 255),
    }
}

fn encode_variant(img: &DynamicImage, alpha: bool) -> Result<EncodedVariant, String> {
    let (width, height) = img.dimensions();
    let mut fallback = Vec::new();
    let webp = if alpha {
        let rgba = img.to_rgba8();
        image::codecs::png::PngEncoder::new_with_quality(
            &mut fallback,
            image::codecs::png::CompressionType::Best,
            image::codecs::png::FilterType::Adaptive,
        )
        .write_image(&rgba, width, height, image::ExtendedColorType::Rgba8)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
        webp::Encoder::from_rgba(&rgba, width, height).encode(WEBP_QUALITY).to_vec()
    } else {
        let rgb = img.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut fallback, JPEG_QUALITY)
            .encode_image(&rgb)
            .map_err(|e| format!("cannot encode JPEG: {e}"))?;
        webp::Encoder::from_rgb(&rgb, width, height).encode(WEBP_QUALITY).to_vec()
    };
    Ok(EncodedVariant { width, height, fallback, webp })
}

use image::ImageEncoder as _;

/// The bomb generator the end-to-end and API tests use too (valid PNGs, checksums and all).
#[cfg(test)]
#[path = "../../tests/common/png_bomb.rs"]
mod png_bomb;

#[cfg(test)]
mod tests {
    use super::png_bomb::{crc32, png_bomb};
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .expect("encode");
        out
    }

    #[test]
    fn never_upscales_and_keeps_the_aspect_ratio() {
        let encoded = encode(&jpeg(700, 350)).expect("encodes");
        let widths: Vec<u32> = encoded.variants.iter().map(|v| v.width).collect();
        assert_eq!(widths, vec![320, 640, 700]);
        assert_eq!(encoded.variants[0].height, 160);
        assert!(!encoded.alpha);
        for v in &encoded.variants {
            assert_eq!(&v.webp[..4], b"RIFF");
            assert_eq!(&v.fallback[..2], &[0xff, 0xd8]);
        }
    }

    /// A JPEG with an EXIF APP1 segment saying "rotate 90° clockwise" (orientation 6).
    fn rotated_jpeg(width: u32, height: u32) -> Vec<u8> {
        let plain = jpeg(width, height);
        let mut exif = b"Exif\0\0MM\0*\0\0\0\x08\0\x01".to_vec();
        exif.extend_from_slice(&[
            0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00,
        ]);
        exif.extend_from_slice(&[0, 0, 0, 0]);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&u16::try_from(exif.len() + 2).expect("small").to_be_bytes());
        out.extend_from_slice(&exif);
        out.extend_from_slice(&plain[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied_and_metadata_dropped() {
        let encoded = encode(&rotated_jpeg(400, 200)).expect("encodes");
        let largest = encoded.variants.last().expect("variants");
        assert_eq!((largest.width, largest.height), (200, 400), "portrait after rotation");
        assert!(!largest.fallback.windows(4).any(|w| w == b"Exif"), "no EXIF in the output");
    }

    #[test]
    fn large_sources_are_capped_at_the_largest_width() {
        let encoded = encode(&jpeg(2400, 1200)).expect("encodes");
        assert_eq!(encoded.variants.last().map(|v| (v.width, v.height)), Some((1920, 960)));
    }

    #[test]
    fn corrupt_and_foreign_files_are_errors() {
        assert!(encode(b"not an image").is_err());
        let mut truncated = jpeg(64, 64);
        truncated.truncate(truncated.len() / 2);
        assert!(encode(&truncated).is_err());
    }

    #[test]
    fn decompression_bombs_are_refused_before_decoding() {
        // The recipe makes valid PNGs: a small one encodes, so what refuses the big one is
        // the pixel limit, not a broken file.
        let small = encode(&png_bomb(30, 20)).expect("a small PNG of the bomb recipe encodes");
        assert_eq!(small.variants.last().map(|v| (v.width, v.height)), Some((30, 20)));
        // The review's bomb: 7070 × 7070 16-bit RGBA, 400 MB decoded from 2.5 MB.
        let err = encode(&png_bomb(7070, 7070)).err().unwrap_or_default();
        assert!(err.contains("7070×7070") && err.contains("the limit is 40 megapixels"), "{err}");

        // A real 1 × 1 PNG whose header is rewritten to claim 20000 × 20000 pixels (each
        // side within the 30000 side limit, 400 megapixels), with the header's CRC
        // recomputed: without it the decoder refuses a corrupt file and the pixel limit is
        // never reached.
        let img = image::RgbImage::new(1, 1);
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&img, 1, 1, image::ExtendedColorType::Rgb8)
            .expect("encode");
        assert_eq!(&png[12..16], b"IHDR", "IHDR is the first chunk, 13 bytes long");
        png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&[&png[12..29]]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = encode(&png).err().unwrap_or_default();
        assert!(err.contains("20000×20000") && err.contains("the limit is 40 megapixels"), "{err}");
        assert!(!err.contains("corrupt"), "{err}");
    }
}
