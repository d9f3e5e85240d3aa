//! Source images: read once, checked, measured and written under content-hashed names.
//!
//! Every referenced image is checked in parallel and all bad ones are reported together,
//! each naming the product (or collection, or store logo) that uses it.

use crate::catalog::Catalog;
use crate::diagnostics::Diagnostics;
use crate::output::{CachePolicy, FileEntry, Staging, short_hash};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

/// Largest source file accepted, against decompression bombs and mistakes.
pub const MAX_FILE_BYTES: u64 = 40 * 1024 * 1024;
/// Largest pixel count accepted (width × height).
pub const MAX_PIXELS: u64 = 100_000_000;

/// A published image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Site-relative path, e.g. `images/linen-shirt.1a2b3c4d5e.jpg`.
    pub path: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Images by their source path in the catalog.
pub type ImageMap = HashMap<String, ImageInfo>;

/// A place that uses an image: file, line and field (naming the owner).
pub type Reference = (String, Option<usize>, String);
/// A published image and its manifest entry.
type Published = (ImageInfo, (String, FileEntry));

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

/// Reads, checks and writes every image the published pages use.
pub fn process(
    catalog: &Catalog,
    extra: &[(String, Reference)],
    staging: &Staging,
    diags: &mut Diagnostics,
) -> (ImageMap, Vec<(String, FileEntry)>) {
    let refs = references(catalog, extra);
    let results: Vec<(&str, Result<Published, String>)> = refs
        .keys()
        .copied()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|src| (src, publish_one(catalog, staging, src)))
        .collect();
    let mut map = ImageMap::with_capacity(results.len());
    let mut files = Vec::with_capacity(results.len());
    for (src, result) in results {
        match result {
            Ok((info, file)) => {
                map.insert(src.to_owned(), info);
                files.push(file);
            }
            Err(problem) => {
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
    (map, files)
}

fn publish_one(
    catalog: &Catalog,
    staging: &Staging,
    src: &str,
) -> Result<(ImageInfo, (String, FileEntry)), String> {
    let path = catalog.root.join(src);
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "the file does not exist".to_owned(),
        _ => format!("cannot read the file: {e}"),
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("the file is {} bytes, the limit is {MAX_FILE_BYTES}", meta.len()));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read the file: {e}"))?;
    let reader = image::ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the file: {e}"))?;
    let format = reader.format().ok_or("the file is not a JPEG, PNG, WebP or GIF image")?;
    let ext = match format {
        image::ImageFormat::Jpeg => "jpg",
        image::ImageFormat::Png => "png",
        image::ImageFormat::WebP => "webp",
        image::ImageFormat::Gif => "gif",
        _ => return Err("the file is not a JPEG, PNG, WebP or GIF image".into()),
    };
    let (width, height) =
        reader.into_dimensions().map_err(|e| format!("the image is corrupt: {e}"))?;
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "the image is {width}×{height} pixels, the limit is {MAX_PIXELS} pixels"
        ));
    }
    // Decode fully once so a truncated file is caught here, not by a shopper's browser.
    image::load_from_memory_with_format(&bytes, format)
        .map_err(|e| format!("the image is corrupt: {e}"))?;
    let stem = src.rsplit('/').next().and_then(|n| n.rsplit_once('.')).map_or("image", |(s, _)| s);
    let stem: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let rel = format!("images/{stem}.{}.{ext}", short_hash(&bytes));
    let file = staging
        .write(&rel, &bytes, CachePolicy::Immutable)
        .map_err(|e| format!("cannot write `{rel}`: {e}"))?;
    Ok((ImageInfo { path: rel, width, height }, file))
}
