//! Loads a catalog directory into a `Catalog`, reporting every problem at once.
//!
//! `products.jsonl` is read line by line in chunks parsed in parallel, so the file is never
//! held in memory as a whole. Renders nothing and touches no network; see `render` for that.

use super::raw::{
    Match, RawCategory, RawCollection, RawCondition, RawFrontMatter, RawImage, RawProduct,
    RawStore, SortOrder,
};
use super::validate::{
    check_image_path, did_you_mean, is_handle, is_sku, parse_weight, rfc3339_to_unix,
};
use super::{
    Catalog, Category, Collection, ImageRef, Page, Product, ProductFeed, ProductOption, Store,
    Variant, feed_settings, gtin_is_valid, locate,
};
use crate::diagnostics::Diagnostics;
use crate::money::{AmountError, Currency, Locale, Money};
use crate::text::strip_markup;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A loaded catalog plus the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The catalog.
    pub catalog: Catalog,
    /// Warnings (never errors).
    pub warnings: Diagnostics,
}

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The directory or a file in it could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The catalog has errors; all of them, with warnings, are inside.
    #[error("the catalog has {} error(s)", .0.error_count())]
    Invalid(Diagnostics),
}

const PRODUCTS: &str = "products.jsonl";
const STORE: &str = "store.json";
const CATEGORIES: &str = "categories.json";
const COLLECTIONS: &str = "collections.json";
/// Stock is counted within ± this (a billion units): far past any real count, and far
/// from where a sum of checkouts could leave `i64`.
pub const MAX_INVENTORY: i64 = 1_000_000_000;
/// The heaviest variant, in grams (1,000 t): weights × quantities stay exact.
const MAX_GRAMS: u64 = 1_000_000_000;

/// Products parsed by earlier loads, reused while their line and everything a product
/// parse reads (the currency, the category handles) are unchanged. A long-lived process
/// (`aurelio watch`) keeps one, so an edit re-parses only the lines that changed.
///
/// A load moves the products it reuses out of the cache and into the catalog (nothing is
/// cloned); the build hands them back with `restore` when it is done with the catalog.
#[derive(Debug, Default)]
pub struct ParseCache {
    context: [u8; 32],
    products: foldhash::HashMap<[u8; 32], Product>,
    /// The last load's `products.jsonl` and each of its lines' span and blake3: a change edits a few lines, so the lines in the common prefix and
    /// suffix of the old and new file are known without being hashed or even compared one
    /// by one (exact: the bytes are compared, in one pass).
    file: Vec<u8>,
    line_hashes: Vec<(usize, usize, [u8; 32])>,
    /// Fingerprints of the last load's products that had no diagnostic: only those are
    /// kept (a line with warnings is parsed again, so that they are reported again).
    clean: foldhash::HashSet<[u8; 32]>,
    /// Each line's identity (`identity`: its handle and SKUs), in line order, when every
    /// line of the last load was a valid product and no handle or SKU was used twice: an
    /// edit that keeps the identities needs no duplicate check.
    identities: Option<Vec<[u8; 32]>>,
    /// The last load's rule-based collections (members by handle), keyed by everything
    /// but the products that they depend on (`collections_key`).
    collections: Option<KeyedMembers>,
}

impl ParseCache {
    /// Takes back the products of the catalog the last `load_cached` returned, unchanged.
    pub(crate) fn restore(&mut self, products: Vec<Product>) {
        // Reserved up front: growing the map would move every product again per doubling.
        self.products.reserve(products.len());
        for product in products {
            if self.clean.contains(&product.fingerprint) {
                self.products.insert(product.fingerprint, product);
            }
        }
    }
}

/// Loads and validates the catalog directory `dir`.
pub fn load(dir: &Path) -> Result<Loaded, CatalogError> {
    load_cached(dir, &mut ParseCache::default())
}

/// Loads like `load`, reusing and then refreshing `cache`.
pub fn load_cached(dir: &Path, cache: &mut ParseCache) -> Result<Loaded, CatalogError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CatalogError::Io { path, source }
    };
    if !std::fs::metadata(dir).map_err(io(dir))?.is_dir() {
        return Err(CatalogError::Io {
            path: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut diags = Diagnostics::default();
    let store = load_store(dir, &mut diags);
    let currency = store.as_ref().map(|s| s.currency);
    let categories = load_categories(dir, &mut diags);
    let category_index: HashMap<&str, usize> =
        categories.iter().enumerate().map(|(i, c)| (c.handle.as_str(), i)).collect();
    let prior_collections = cache.collections.take();
    let (products, edited) = load_products(dir, currency, &category_index, cache, &mut diags)?;
    let rules = RuleInputs { currency, categories: &categories, products: &products };
    let (collections, members) =
        load_collections(dir, &rules, edited.as_deref().zip(prior_collections), &mut diags);
    cache.collections = members;
    let pages = load_pages(dir, &mut diags);
    if let Some(store) = &store {
        feed_settings::check_references(&store.feeds, &categories, &products, &mut diags);
    }
    if diags.has_errors() {
        cache.restore(products);
        return Err(CatalogError::Invalid(diags));
    }
    match store {
        Some(store) => Ok(Loaded {
            catalog: Catalog {
                root: dir.to_owned(),
                store,
                products,
                categories,
                collections,
                pages,
            },
            warnings: diags,
        }),
        None => Err(CatalogError::Invalid(diags)),
    }
}

/// Reads a whole small file, reporting a missing or unreadable one as a diagnostic.
fn read_small(dir: &Path, name: &str, required: bool, diags: &mut Diagnostics) -> Option<String> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                let (line, _) = super::json_pos::line_col(
                    &String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
                    usize::MAX,
                );
                diags.error("encoding", name, Some(line), None, "the file is not valid UTF-8");
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
        Err(e) => {
            diags.error("missing-file", name, None, None, format!("cannot read the file: {e}"));
            None
        }
    }
}

/// Turns a serde error with its path into a diagnostic message naming the field.
fn serde_problem(
    err: &serde_path_to_error::Error<serde_json::Error>,
) -> (Option<usize>, Option<String>, String) {
    let inner = err.inner();
    let line = (inner.line() > 0).then(|| inner.line());
    let path = err.path().to_string();
    // serde_path_to_error shows `.` for the root and `?` where a syntax error left no path.
    let mut field = (path != "." && path != "?").then_some(path);
    let message = describe_serde_message(&inner.to_string());
    // A missing member is named by the path of the object it is missing from, plus its own.
    if let Some(name) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        field = Some(field.map_or_else(|| name.to_owned(), |object| format!("{object}.{name}")));
    }
    (line, field, message)
}

/// Rewrites serde's message: drops the position suffix, adds "did you mean".
pub(crate) fn describe_serde_message(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((name, expected)) = rest.split_once('`') else { return message.to_owned() };
    let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match did_you_mean(name, allowed.iter().copied()) {
        Some(s) => format!("unknown field `{name}`, did you mean `{s}`?"),
        None if allowed.is_empty() => format!("unknown field `{name}`"),
        None => format!("unknown field `{name}`, expected one of `{}`", allowed.join("`, `")),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    diags: &mut Diagnostics,
) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            let (line, field, message) = serde_problem(&e);
            diags.error("syntax", file, line, field, message);
            None
        }
    }
}

/// Strips markup from a plain-text field, warning when something was removed.
fn plain(
    text: String,
    file: &str,
    line: Option<usize>,
    field: &str,
    diags: &mut Diagnostics,
) -> String {
    match strip_markup(&text) {
        Some(clean) => {
            diags.warning(
                "markup-removed",
                file,
                line,
                Some(field.to_owned()),
                "HTML markup removed from plain text",
            );
            clean
        }
        None => text,
    }
}

fn amount_message(text: &str, err: &AmountError, currency: Currency) -> String {
    match err {
        AmountError::TooManyDecimals { given } => {
            format!("`{text}` has {given} decimals, {currency} allows {}", currency.exponent())
        }
        other => format!("`{text}` {other}"),
    }
}

fn load_store(dir: &Path, diags: &mut Diagnostics) -> Option<Store> {
    let text = read_small(dir, STORE, true, diags)?;
    let raw: RawStore = parse_json(&text, STORE, diags)?;
    let at = |pointer: &str| locate(&text, pointer).map(|(l, _)| l);
    let errors_before = diags.error_count();
    let currency = Currency::from_code(&raw.currency);
    if currency.is_none() {
        diags.error(
            "currency",
            STORE,
            at("/currency"),
            Some("currency".into()),
            format!("`{}` is not an ISO 4217 currency code such as `EUR` or `USD`", raw.currency),
        );
    }
    let locale = Locale::parse(&raw.locale);
    if locale.is_none() {
        diags.error(
            "locale",
            STORE,
            at("/locale"),
            Some("locale".into()),
            format!("`{}` is not a BCP 47 locale such as `en-US`", raw.locale),
        );
    }
    if !is_handle(&raw.handle) {
        diags.error(
            "handle",
            STORE,
            at("/handle"),
            Some("handle".into()),
            handle_message(&raw.handle),
        );
    }
    let base_url = raw.base_url.trim_end_matches('/').to_owned();
    if let Err(message) = check_base_url(&base_url) {
        diags.error("base-url", STORE, at("/base_url"), Some("base_url".into()), message);
    }
    let logo = raw.logo.and_then(|src| match check_image_path(&src) {
        Ok(()) => Some(ImageRef { src, alt: raw.name.clone() }),
        Err(message) => {
            diags.error("image-path", STORE, at("/logo"), Some("logo".into()), message);
            None
        }
    });
    for (network, url) in &raw.social {
        if check_base_url(url).is_err() {
            diags.error(
                "social-url",
                STORE,
                at(&format!("/social/{network}")),
                Some(format!("social.{network}")),
                format!("`{url}` is not an absolute http(s) URL"),
            );
        }
    }
    if let Some(email) = &raw.contact_email
        && (email.contains(|c: char| c.is_whitespace() || "<>\"'".contains(c))
            || !email.contains('@'))
    {
        diags.error(
            "email",
            STORE,
            at("/contact_email"),
            Some("contact_email".into()),
            format!("`{email}` is not an email address"),
        );
    }
    let name = plain(raw.name, STORE, at("/name"), "name", diags);
    let feeds =
        raw.feeds.map(|f| feed_settings::settings(f, currency, &text, diags)).unwrap_or_default();
    if diags.error_count() > errors_before {
        return None;
    }
    Some(Store {
        name,
        handle: raw.handle,
        currency: currency?,
        locale: locale?,
        base_url,
        theme: raw.theme.unwrap_or_else(|| "minimal".into()),
        description: raw.description,
        logo,
        prices_include_tax: raw.prices_include_tax.unwrap_or(true),
        contact_email: raw.contact_email,
        social: raw.social,
        api_url: raw.api_url.unwrap_or_default().trim_end_matches('/').to_owned(),
        publishable_key: raw.publishable_key,
        feeds,
    })
}

/// A base URL must be absolute `http(s)` with a host and no query or fragment.
pub fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(['?', '#', ' ']) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{url}` is not an absolute http(s) URL such as `https://shop.example.com`"
        )),
    }
}

fn handle_message(handle: &str) -> String {
    format!("`{handle}` is not a valid handle (1 to 100 of a-z, 0-9 and `-`, not at either end)")
}

fn load_categories(dir: &Path, diags: &mut Diagnostics) -> Vec<Category> {
    let Some(text) = read_small(dir, CATEGORIES, false, diags) else { return Vec::new() };
    let Some(raw): Option<Vec<RawCategory>> = parse_json(&text, CATEGORIES, diags) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    fn walk(
        nodes: Vec<RawCategory>,
        parent: Option<usize>,
        pointer: &str,
        text: &str,
        out: &mut Vec<Category>,
        seen: &mut HashMap<String, String>,
        diags: &mut Diagnostics,
    ) {
        for (i, node) in nodes.into_iter().enumerate() {
            let here = format!("{pointer}/{i}");
            let line = locate(text, &format!("{here}/handle")).map(|(l, _)| l);
            let field = format!("{}.handle", pointer_to_path(&here));
            if !is_handle(&node.handle) {
                diags.error("handle", CATEGORIES, line, Some(field), handle_message(&node.handle));
                continue;
            }
            if let Some(first) = seen.get(&node.handle) {
                diags.error(
                    "duplicate-handle",
                    CATEGORIES,
                    line,
                    Some(field),
                    format!("category `{}` is already defined at `{first}`", node.handle),
                );
                continue;
            }
            seen.insert(node.handle.clone(), pointer_to_path(&here));
            let path = match parent {
                Some(p) => format!("{}/{}", out[p].path, node.handle),
                None => node.handle.clone(),
            };
            let title = plain(
                node.title,
                CATEGORIES,
                line,
                &format!("{}.title", pointer_to_path(&here)),
                diags,
            );
            out.push(Category {
                handle: node.handle,
                title,
                description: node.description,
                parent,
                path,
            });
            let index = out.len() - 1;
            walk(node.children, Some(index), &format!("{here}/children"), text, out, seen, diags);
        }
    }
    walk(raw, None, "", &text, &mut out, &mut seen, diags);
    out
}

/// `/0/children/1` → `[0].children[1]`, the field style used in messages.
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        if token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(token);
        }
    }
    out
}

/// What a product parse needs from the rest of the catalog (read-only, shared by threads).
struct ProductContext<'a> {
    currency: Currency,
    check_precision: bool,
    categories: &'a HashMap<&'a str, usize>,
}

/// Loads `products.jsonl`, reusing what `cache` has from the last load. With the products,
/// the indices of the lines that changed when the edit left every product at its index
/// (every line before and after a valid product, as many lines, no duplicates).
fn load_products(
    dir: &Path,
    currency: Option<Currency>,
    categories: &HashMap<&str, usize>,
    cache: &mut ParseCache,
    diags: &mut Diagnostics,
) -> Result<(Vec<Product>, Option<Vec<usize>>), CatalogError> {
    let path = dir.join(PRODUCTS);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            diags.error("missing-file", PRODUCTS, None, None, format!("cannot read the file: {e}"));
            return Ok((Vec::new(), None));
        }
    };
    // Without a valid store currency, prices are still checked for syntax.
    let ctx = ProductContext {
        currency: currency
            .or_else(|| Currency::from_code("CLF"))
            .expect("CLF is in the currency table"),
        check_precision: currency.is_some(),
        categories,
    };
    let mut context = blake3::Hasher::new();
    context.update(currency.map(|c| c.code().to_owned()).unwrap_or_default().as_bytes());
    let mut names: Vec<(&&str, &usize)> = categories.iter().collect();
    names.sort();
    for (name, index) in names {
        context.update(format!("{name}={index};").as_bytes());
    }
    let context = *context.finalize().as_bytes();
    let (mut previous, old_file, old_hashes, old_identities) = if cache.context == context {
        (
            std::mem::take(&mut cache.products),
            std::mem::take(&mut cache.file),
            std::mem::take(&mut cache.line_hashes),
            cache.identities.take(),
        )
    } else {
        (foldhash::HashMap::default(), Vec::new(), Vec::new(), None)
    };
    let io = |source| CatalogError::Io { path: path.clone(), source };
    // Sized from the file's length: growing the buffer copied 14 MB several times.
    let size = file.metadata().map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));
    let mut file_bytes = Vec::with_capacity(size.saturating_add(1));
    file.read_to_end(&mut file_bytes).map_err(io)?;
    let spans = line_spans(&file_bytes, previous.len());
    let known = Unchanged::new(&old_file, &old_hashes, &file_bytes);
    let matched: Vec<Option<(usize, [u8; 32])>> =
        spans.par_iter().map(|&(_, start, end)| known.find(start, end)).collect();
    // Every product keeps its index when there are as many lines and each known line
    // was at the same index.
    let positional = old_hashes.len() == spans.len()
        && matched.iter().enumerate().all(|(k, m)| m.is_none_or(|(at, _)| at == k));
    let changed: Vec<usize> = (0..spans.len()).filter(|&k| matched[k].is_none()).collect();
    let hashes: Vec<[u8; 32]> = spans
        .par_iter()
        .zip(matched)
        .map(|(&(_, start, end), m)| {
            m.map_or_else(|| *blake3::hash(&file_bytes[start..end]).as_bytes(), |(_, h)| h)
        })
        .collect();
    drop(old_hashes);
    drop(old_file);
    // Lines known from an earlier load are moved out of the cache; the rest parsed.
    let reused: Vec<Option<Product>> = hashes.iter().map(|hash| previous.remove(hash)).collect();
    let parsed: Vec<Parsed> = spans
        .par_iter()
        .zip(reused)
        .map(|(&(line, start, end), known)| match known {
            Some(product) => Parsed {
                product: Some(Product { line, ..product }),
                line,
                handle: None,
                skus: Vec::new(),
                diags: Diagnostics::default(),
            },
            None => parse_product(line, &file_bytes[start..end], &ctx),
        })
        .collect();
    let line_hashes =
        spans.iter().zip(&hashes).map(|(&(_, start, end), h)| (start, end, *h)).collect();
    let clean = parsed.iter().filter(|p| p.diags.is_empty()).filter_map(|p| p.product.as_ref());
    let clean = clean.map(|p| p.fingerprint).collect();
    // Product indices are line indices when every line of both loads is a valid product.
    let positional = positional && old_identities.is_some();
    let prior = old_identities.filter(|_| positional).map(|ids| (ids, changed.as_slice()));
    let (products, identities) = register(parsed, prior, diags);
    let edited = (positional && identities.is_some()).then_some(changed);
    *cache = ParseCache {
        context,
        products: foldhash::HashMap::default(),
        file: file_bytes,
        line_hashes,
        clean,
        identities,
        collections: None,
    };
    Ok((products, edited))
}

/// Parses and checks one `products.jsonl` line on its own, with the rules `load` applies to
/// every line: what the API does with a product sent as JSON. Checks that need the other
/// lines (duplicate handles and SKUs) are the caller's; `categories` are the handles that
/// exist. Diagnostics name the field (`variants[0].price`).
pub fn parse_product_line(
    text: &str,
    currency: Currency,
    categories: &[&str],
) -> Result<Product, Diagnostics> {
    let categories: HashMap<&str, usize> =
        categories.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let ctx = ProductContext { currency, check_precision: true, categories: &categories };
    let parsed = parse_product(1, text.as_bytes(), &ctx);
    match parsed.product {
        Some(product) if !parsed.diags.has_errors() => Ok(product),
        _ => Err(parsed.diags),
    }
}

/// A parsed line: the product if it is valid, and its identity (handle, SKUs) even when
/// it is not, so that duplicates are found across broken lines too.
struct Parsed {
    product: Option<Product>,
    line: usize,
    handle: Option<String>,
    skus: Vec<String>,
    diags: Diagnostics,
}

/// Checks each parsed line's handle and SKUs against earlier lines and keeps the valid
/// products. The identity of a valid line is its product's; a broken line's is what its
/// parse found.
/// How many leading positions of `len` are equal, given `same(i, n)`: whether the `n`
/// positions from `i` are. Compares blocks (one `memcmp` each), then narrows down.
fn common_len(len: usize, same: impl Fn(usize, usize) -> bool) -> usize {
    let mut at = 0;
    let mut step = 4096;
    while step > 0 {
        while at + step <= len && same(at, step) {
            at += step;
        }
        step /= 2;
    }
    at
}

/// Which lines of a new `products.jsonl` the last load had, with their hashes: a line
/// inside the common prefix of the two files has the same span in both, one inside the
/// common suffix the same distance from the end.
struct Unchanged<'a> {
    /// The old file's lines: start, end (after the `\n`), blake3.
    old_lines: &'a [(usize, usize, [u8; 32])],
    prefix: usize,
    /// Where the common suffix starts in the new file.
    suffix_from: usize,
    /// Old offset minus new offset, within the suffix.
    shift: isize,
}

impl<'a> Unchanged<'a> {
    fn new(old: &[u8], old_lines: &'a [(usize, usize, [u8; 32])], new: &[u8]) -> Self {
        let prefix = common_len(old.len().min(new.len()), |i, n| old[i..i + n] == new[i..i + n]);
        // The suffix may not overlap the prefix in either file.
        let room = old.len().min(new.len()) - prefix;
        let (o, w) = (old.len(), new.len());
        let suffix = common_len(room, |i, n| old[o - i - n..o - i] == new[w - i - n..w - i]);
        Self {
            old_lines,
            prefix,
            suffix_from: new.len() - suffix,
            shift: old.len().cast_signed() - new.len().cast_signed(),
        }
    }

    /// The index among the old file's lines and the hash of the new file's line
    /// `start..end`, when the old file had a line with the same bytes at the matching span.
    fn find(&self, start: usize, end: usize) -> Option<(usize, [u8; 32])> {
        let (old_start, old_end) = if end <= self.prefix {
            (start, end)
        } else if start >= self.suffix_from {
            (start.checked_add_signed(self.shift)?, end.checked_add_signed(self.shift)?)
        } else {
            return None;
        };
        let at = self.old_lines.binary_search_by_key(&old_start, |(s, ..)| *s).ok()?;
        let (_, end, hash) = self.old_lines[at];
        (end == old_end).then_some((at, hash))
    }
}

/// The non-blank lines of `bytes` as (number from 1, start, end with the `\n`); blank
/// lines are skipped but counted, and a last line without `\n` counts too.
fn line_spans(bytes: &[u8], expected: usize) -> Vec<(usize, usize, usize)> {
    let mut spans = Vec::with_capacity(expected);
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).map(|i| i + 1);
    let last = (!bytes.is_empty() && !bytes.ends_with(b"\n")).then_some(bytes.len());
    for (k, end) in ends.chain(last).enumerate() {
        if bytes[start..end].iter().any(|b| !b.is_ascii_whitespace()) {
            spans.push((k + 1, start, end));
        }
        start = end;
    }
    spans
}

/// A product's identity for the duplicate checks: the blake3 of its handle and SKUs.
fn identity(product: &Product) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for name in std::iter::once(&product.handle).chain(product.variants.iter().map(|v| &v.sku)) {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// Checks handles and SKUs (`check_duplicates`) and keeps the valid products; also returns
/// the lines' identities when every line is a valid product without duplicates. With
/// `prior`, the identities of the last load's lines and the lines that changed since
/// (every other line at its index, unchanged): when the changed lines carry the same
/// identities between them, the last load's verdict (no duplicates) still holds.
fn register(
    mut parsed: Vec<Parsed>,
    prior: Option<(Vec<[u8; 32]>, &[usize])>,
    diags: &mut Diagnostics,
) -> (Vec<Product>, Option<Vec<[u8; 32]>>) {
    for p in &mut parsed {
        diags.extend(std::mem::take(&mut p.diags));
    }
    let all_valid = parsed.iter().all(|p| p.product.is_some());
    let identity_of = |p: &Parsed| p.product.as_ref().map_or([0; 32], identity);
    if let Some((mut identities, changed)) = prior
        && all_valid
    {
        let mut before: Vec<[u8; 32]> = changed.iter().map(|&k| identities[k]).collect();
        let mut after: Vec<[u8; 32]> = changed.iter().map(|&k| identity_of(&parsed[k])).collect();
        for (&k, id) in changed.iter().zip(&after) {
            identities[k] = *id;
        }
        before.sort_unstable();
        after.sort_unstable();
        if before == after {
            let products = parsed.into_iter().filter_map(|p| p.product).collect();
            return (products, Some(identities));
        }
    }
    let keep = check_duplicates(&parsed, diags);
    let identities = (all_valid && keep.iter().all(|k| *k))
        .then(|| parsed.par_iter().map(identity_of).collect());
    let products =
        parsed.into_iter().zip(keep).filter(|(_, keep)| *keep).filter_map(|(p, _)| p.product);
    (products.collect(), identities)
}

/// Reports handles and SKUs used by more than one line (or variant); returns which lines
/// are valid products without a clash.
fn check_duplicates(parsed: &[Parsed], diags: &mut Diagnostics) -> Vec<bool> {
    let mut keep = vec![false; parsed.len()];
    let hasher = foldhash::fast::RandomState::default;
    let mut handles: foldhash::HashMap<&str, usize> =
        foldhash::HashMap::with_capacity_and_hasher(parsed.len(), hasher());
    let mut skus: foldhash::HashMap<&str, (&str, usize)> =
        foldhash::HashMap::with_capacity_and_hasher(parsed.len() * 8, hasher());
    let mut own_skus: Vec<&str> = Vec::new();
    for (k, p) in parsed.iter().enumerate() {
        own_skus.clear();
        let handle = match &p.product {
            Some(product) => {
                own_skus.extend(product.variants.iter().map(|v| v.sku.as_str()));
                Some(product.handle.as_str())
            }
            None => {
                own_skus.extend(p.skus.iter().map(String::as_str));
                p.handle.as_deref()
            }
        };
        let at = Some(p.line);
        let mut clash = false;
        if let Some(handle) = handle {
            if let Some(first) = handles.get(handle) {
                diags.error(
                    "duplicate-handle",
                    PRODUCTS,
                    at,
                    Some("handle".into()),
                    format!("`{handle}` is already used by the product on line {first}"),
                );
                clash = true;
            } else {
                handles.insert(handle, p.line);
            }
        }
        let owner_name = handle.unwrap_or_default();
        for (i, sku) in own_skus.iter().enumerate() {
            let owner = match skus.get(sku) {
                Some((owner, owner_line)) => format!("`{owner}` (line {owner_line})"),
                None if own_skus[..i].contains(sku) => "another variant of this product".to_owned(),
                None => {
                    skus.insert(sku, (owner_name, p.line));
                    continue;
                }
            };
            diags.error(
                "duplicate-sku",
                PRODUCTS,
                at,
                Some(format!("variants[{i}].sku")),
                format!("`{sku}` is already used by {owner}"),
            );
            clash = true;
        }
        keep[k] = p.product.is_some() && !clash;
    }
    keep
}

fn parse_product(line: usize, bytes: &[u8], ctx: &ProductContext<'_>) -> Parsed {
    let mut d = Diagnostics::default();
    let at = Some(line);
    let Ok(text) = std::str::from_utf8(bytes) else {
        d.error("encoding", PRODUCTS, at, None, "the line is not valid UTF-8");
        return Parsed { product: None, line, handle: None, skus: Vec::new(), diags: d };
    };
    // The fast path parses directly; only a broken line is parsed again to find the field.
    let raw: RawProduct = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(_) => {
            let de = &mut serde_json::Deserializer::from_str(text);
            let message = match serde_path_to_error::deserialize::<_, RawProduct>(de) {
                Ok(_) => (None, "the line could not be parsed".to_owned()),
                Err(e) => {
                    let (_, field, message) = serde_problem(&e);
                    (field, message)
                }
            };
            d.error("syntax", PRODUCTS, at, message.0, message.1);
            return Parsed { product: None, line, handle: None, skus: Vec::new(), diags: d };
        }
    };
    let errors_before = d.error_count();
    let handle = raw.handle.clone();
    let skus: Vec<String> = raw.variants.iter().map(|v| v.sku.clone()).collect();
    let err = |d: &mut Diagnostics, code, field: String, message: String| {
        d.error(code, PRODUCTS, at, Some(field), message);
    };
    if !is_handle(&raw.handle) {
        err(&mut d, "handle", "handle".into(), handle_message(&raw.handle));
    }
    let title = plain(raw.title, PRODUCTS, at, "title", &mut d);
    if title.trim().is_empty() {
        err(&mut d, "required", "title".into(), "the title is empty".into());
    }
    let vendor = raw
        .vendor
        .map(|v| plain(v, PRODUCTS, at, "vendor", &mut d))
        .filter(|v| !v.trim().is_empty());
    let product_type = raw
        .product_type
        .map(|v| plain(v, PRODUCTS, at, "product_type", &mut d))
        .filter(|v| !v.trim().is_empty());
    let tags: Vec<String> = raw
        .tags
        .into_iter()
        .enumerate()
        .map(|(i, t)| plain(t, PRODUCTS, at, &format!("tags[{i}]"), &mut d))
        .filter(|t| !t.trim().is_empty())
        .collect();
    let mut categories = Vec::with_capacity(raw.categories.len());
    for (i, handle) in raw.categories.iter().enumerate() {
        match ctx.categories.get(handle.as_str()) {
            Some(index) => categories.push(*index),
            None => {
                let hint = did_you_mean(handle, ctx.categories.keys().copied())
                    .map(|s| format!(", did you mean `{s}`?"))
                    .unwrap_or_default();
                err(
                    &mut d,
                    "unknown-category",
                    format!("categories[{i}]"),
                    format!("unknown category `{handle}`{hint}"),
                );
            }
        }
    }
    let images = raw
        .images
        .into_iter()
        .enumerate()
        .filter_map(|(i, RawImage { src, alt })| match check_image_path(&src) {
            Ok(()) => Some(ImageRef {
                src,
                alt: plain(alt, PRODUCTS, at, &format!("images[{i}].alt"), &mut d),
            }),
            Err(message) => {
                d.error("image-path", PRODUCTS, at, Some(format!("images[{i}].src")), message);
                None
            }
        })
        .collect();
    let options = check_options(raw.options, at, &mut d);
    let mut variants = Vec::with_capacity(raw.variants.len());
    let mut combinations: HashMap<Vec<String>, usize> = HashMap::new();
    if raw.variants.is_empty() {
        err(&mut d, "required", "variants".into(), "a product needs at least one variant".into());
    }
    if options.is_empty() && raw.variants.len() > 1 {
        err(
            &mut d,
            "options",
            "options".into(),
            format!(
                "{} variants need options (such as Size) to tell them apart",
                raw.variants.len()
            ),
        );
    }
    for (i, rv) in raw.variants.into_iter().enumerate() {
        let field = |name: &str| format!("variants[{i}].{name}");
        if !is_sku(&rv.sku) {
            err(
                &mut d,
                "sku",
                field("sku"),
                format!("`{}` is not a valid SKU (1 to 64 characters, no spaces)", rv.sku),
            );
        }
        let mut values = Vec::with_capacity(options.len());
        for key in rv.options.keys() {
            if !options.iter().any(|o| o.name == *key) {
                let hint = did_you_mean(key, options.iter().map(|o| o.name.as_str()))
                    .map(|s| format!(", did you mean `{s}`?"))
                    .unwrap_or_default();
                err(
                    &mut d,
                    "options",
                    field(&format!("options.{key}")),
                    format!("the product has no option `{key}`{hint}"),
                );
            }
        }
        for option in &options {
            match rv.options.get(&option.name) {
                Some(value) if option.values.contains(value) => values.push(value.clone()),
                Some(value) => err(
                    &mut d,
                    "options",
                    field(&format!("options.{}", option.name)),
                    format!(
                        "`{value}` is not one of the values of `{}`: {}",
                        option.name,
                        option.values.join(", ")
                    ),
                ),
                None => err(
                    &mut d,
                    "options",
                    field("options"),
                    format!("no value for option `{}`", option.name),
                ),
            }
        }
        if values.len() == options.len()
            && !options.is_empty()
            && let Some(first) = combinations.insert(values.clone(), i)
        {
            err(
                &mut d,
                "duplicate-variant",
                field("options"),
                format!("`{}` is the same combination as variants[{first}]", values.join(" / ")),
            );
        }
        let price = parse_price(&rv.price, &field("price"), ctx, at, &mut d);
        let compare_at_price = rv
            .compare_at_price
            .as_deref()
            .and_then(|p| parse_price(p, &field("compare_at_price"), ctx, at, &mut d));
        if let (Some(p), Some(c)) = (price, compare_at_price)
            && c.minor <= p.minor
        {
            err(
                &mut d,
                "compare-at-price",
                field("compare_at_price"),
                format!("`{}` must be greater than the price `{}`", c.decimal(), p.decimal()),
            );
        }
        let weight_grams = rv.weight.as_deref().and_then(|w| match parse_weight(w) {
            Ok(g) => Some(g),
            Err(message) => {
                d.error("weight", PRODUCTS, at, Some(field("weight")), message);
                None
            }
        });
        if let Some(gtin) = &rv.gtin
            && !gtin_is_valid(gtin)
        {
            err(
                &mut d,
                "gtin",
                field("gtin"),
                format!("`{gtin}` is not a GTIN-8, 12, 13 or 14 with a valid check digit"),
            );
        }
        if rv.inventory.is_some_and(|n| !(-MAX_INVENTORY..=MAX_INVENTORY).contains(&n)) {
            err(
                &mut d,
                "inventory",
                field("inventory"),
                format!("stock is counted from -{MAX_INVENTORY} to {MAX_INVENTORY}"),
            );
        }
        let weight_grams = weight_grams.filter(|g| {
            let ok = *g <= MAX_GRAMS;
            if !ok {
                d.error("weight", PRODUCTS, at, Some(field("weight")), "at most 1,000 t");
            }
            ok
        });
        if let Some(price) = price {
            variants.push(Variant {
                sku: rv.sku,
                options: values,
                price,
                compare_at_price,
                inventory: rv.inventory,
                inventory_policy: rv.inventory_policy,
                weight_grams,
                gtin: rv.gtin,
                mpn: rv.mpn.filter(|m| !m.trim().is_empty()),
                barcode: rv.barcode.filter(|b| !b.trim().is_empty()),
            });
        }
    }
    let created_unix = raw.created_at.as_deref().and_then(rfc3339_to_unix);
    if let Some(created) = &raw.created_at
        && created_unix.is_none()
    {
        err(
            &mut d,
            "date",
            "created_at".into(),
            format!("`{created}` is not an RFC 3339 date-time like `2026-03-01T10:00:00Z`"),
        );
    }
    let (seo_title, seo_description) = match raw.seo {
        Some(seo) => (
            seo.title.map(|t| plain(t, PRODUCTS, at, "seo.title", &mut d)),
            seo.description.map(|t| plain(t, PRODUCTS, at, "seo.description", &mut d)),
        ),
        None => (None, None),
    };
    let feed = match raw.feed {
        Some(f) => {
            let title = f.title.map(|t| plain(t, PRODUCTS, at, "feed.title", &mut d));
            if title.as_ref().is_some_and(|t| t.trim().is_empty()) {
                err(&mut d, "required", "feed.title".into(), "the feed title is empty".into());
            }
            if let Some(Err(message)) =
                f.google_product_category.as_deref().map(feed_settings::check_google_category)
            {
                err(&mut d, "feed-category", "feed.google_product_category".into(), message);
            }
            ProductFeed {
                title: title.map(|t| t.trim().to_owned()),
                google_product_category: f.google_product_category.map(|c| c.trim().to_owned()),
            }
        }
        None => ProductFeed::default(),
    };
    if d.error_count() > errors_before {
        return Parsed { product: None, line, handle: Some(handle), skus, diags: d };
    }
    let product = Product {
        handle: raw.handle,
        title,
        description: raw.description,
        vendor,
        product_type,
        tags,
        categories,
        images,
        options,
        variants,
        status: raw.status,
        seo_title,
        seo_description,
        created_at: raw.created_at,
        created_unix,
        feed,
        line,
        fingerprint: *blake3::hash(bytes).as_bytes(),
    };
    Parsed { product: Some(product), line, handle: Some(handle), skus, diags: d }
}

fn check_options(
    raw: Vec<super::raw::RawOption>,
    at: Option<usize>,
    d: &mut Diagnostics,
) -> Vec<ProductOption> {
    if raw.len() > 3 {
        d.error(
            "options",
            PRODUCTS,
            at,
            Some("options".into()),
            format!("{} options given, at most 3 are allowed", raw.len()),
        );
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, option) in raw.into_iter().enumerate() {
        let field = format!("options[{i}]");
        let name = option.name.trim().to_owned();
        if name.is_empty() || !names.insert(name.clone()) {
            d.error(
                "options",
                PRODUCTS,
                at,
                Some(format!("{field}.name")),
                format!("option name `{name}` is empty or repeated"),
            );
            continue;
        }
        let mut seen = HashSet::new();
        for (j, value) in option.values.iter().enumerate() {
            if value.trim().is_empty() || !seen.insert(value) {
                d.error(
                    "options",
                    PRODUCTS,
                    at,
                    Some(format!("{field}.values[{j}]")),
                    format!("value `{value}` is empty or repeated"),
                );
            }
        }
        if option.values.is_empty() {
            d.error(
                "options",
                PRODUCTS,
                at,
                Some(format!("{field}.values")),
                "an option needs at least one value",
            );
        }
        out.push(ProductOption { name, values: option.values });
    }
    out
}

fn parse_price(
    text: &str,
    field: &str,
    ctx: &ProductContext<'_>,
    at: Option<usize>,
    d: &mut Diagnostics,
) -> Option<Money> {
    match Money::parse(text, ctx.currency) {
        Ok(m) if ctx.check_precision => Some(m),
        Ok(_) => None,
        Err(AmountError::TooManyDecimals { .. }) if !ctx.check_precision => None,
        Err(e) => {
            d.error(
                "price-precision",
                PRODUCTS,
                at,
                Some(field.to_owned()),
                amount_message(text, &e, ctx.currency),
            );
            None
        }
    }
}

/// What collections are made from besides `collections.json`.
struct RuleInputs<'a> {
    currency: Option<Currency>,
    categories: &'a [Category],
    products: &'a [Product],
}

/// Members of rule-based collections by handle, as a load made them.
type RuleMembers = HashMap<String, Vec<usize>>;

/// Rule-based members with the `collections_key` of what they were made from.
type KeyedMembers = ([u8; 32], RuleMembers);

/// What rule-based collections depend on besides the products: the file, the currency
/// (price bounds) and the category tree.
fn collections_key(text: &str, inputs: &RuleInputs<'_>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    if let Some(currency) = inputs.currency {
        h.update(currency.code().as_bytes());
    }
    for c in inputs.categories {
        h.update(&(c.handle.len() as u64).to_le_bytes());
        h.update(c.handle.as_bytes());
        h.update(&c.parent.map_or(u64::MAX, |p| p as u64).to_le_bytes());
    }
    h.update(text.as_bytes());
    *h.finalize().as_bytes()
}

/// Loads `collections.json`. With `prior`, the products changed since the last load
/// (every other one unchanged at its index) and that load's rule-based members: a rule
/// collection then re-checks only the changed products. Also returns this load's members,
/// for the next.
fn load_collections(
    dir: &Path,
    inputs: &RuleInputs<'_>,
    prior: Option<(&[usize], KeyedMembers)>,
    diags: &mut Diagnostics,
) -> (Vec<Collection>, Option<KeyedMembers>) {
    let (currency, categories, products) = (inputs.currency, inputs.categories, inputs.products);
    let Some(text) = read_small(dir, COLLECTIONS, false, diags) else { return (Vec::new(), None) };
    let Some(raw): Option<Vec<RawCollection>> = parse_json(&text, COLLECTIONS, diags) else {
        return (Vec::new(), None);
    };
    let key = collections_key(&text, inputs);
    let mut reuse = prior.filter(|(_, (k, _))| *k == key).map(|(changed, (_, old))| (changed, old));
    let mut made = RuleMembers::new();
    // Only manual lists look products up by handle.
    let mut by_handle: Option<HashMap<&str, usize>> = None;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, rc) in raw.into_iter().enumerate() {
        let line_of = |pointer: &str| locate(&text, &format!("/{i}{pointer}")).map(|(l, _)| l);
        let field = |name: &str| Some(format!("[{i}].{name}"));
        let line = line_of("");
        let errors_before = diags.error_count();
        if !is_handle(&rc.handle) {
            diags.error(
                "handle",
                COLLECTIONS,
                line_of("/handle"),
                field("handle"),
                handle_message(&rc.handle),
            );
        } else if let Some(first) = seen.insert(rc.handle.clone(), i) {
            diags.error(
                "duplicate-handle",
                COLLECTIONS,
                line_of("/handle"),
                field("handle"),
                format!("collection `{}` is already defined at `[{first}]`", rc.handle),
            );
        }
        let image = rc.image.and_then(|RawImage { src, alt }| match check_image_path(&src) {
            Ok(()) => Some(ImageRef { src, alt }),
            Err(message) => {
                diags.error(
                    "image-path",
                    COLLECTIONS,
                    line_of("/image/src"),
                    field("image.src"),
                    message,
                );
                None
            }
        });
        let members = match (rc.products, rc.rules) {
            (Some(list), None) => {
                let by_handle = by_handle.get_or_insert_with(|| {
                    products.iter().enumerate().map(|(i, p)| (p.handle.as_str(), i)).collect()
                });
                let mut members = Vec::with_capacity(list.len());
                for (j, handle) in list.iter().enumerate() {
                    match by_handle.get(handle.as_str()) {
                        Some(&p) if products[p].is_active() => members.push(p),
                        Some(_) => {}
                        None => diags.error(
                            "unknown-product",
                            COLLECTIONS,
                            line_of(&format!("/products/{j}")),
                            field(&format!("products[{j}]")),
                            format!("unknown product `{handle}`"),
                        ),
                    }
                }
                let mut seen_members = HashSet::new();
                members.retain(|p| seen_members.insert(*p));
                sort_members(&mut members, rc.sort.unwrap_or(SortOrder::Manual), products);
                members
            }
            (None, Some(rules)) => {
                let Some(rule) = compile_rules(
                    &rules.conditions,
                    currency,
                    categories,
                    &mut |j, name, message| {
                        diags.error(
                            "rule",
                            COLLECTIONS,
                            line_of(&format!("/rules/conditions/{j}")),
                            field(&format!("rules.conditions[{j}].{name}")),
                            message,
                        );
                    },
                ) else {
                    continue;
                };
                let sort = rc.sort.unwrap_or(SortOrder::Title);
                let member = |p: &Product| p.is_active() && rule.matches(p, rules.match_);
                let old = reuse.as_mut().and_then(|(changed, old)| {
                    old.remove(&rc.handle).map(|members| (*changed, members))
                });
                let members = match old {
                    Some((changed, old)) => update_members(old, changed, member, sort, products),
                    None => {
                        let mut members: Vec<usize> =
                            (0..products.len()).filter(|&i| member(&products[i])).collect();
                        sort_members(&mut members, sort, products);
                        members
                    }
                };
                made.insert(rc.handle.clone(), members.clone());
                members
            }
            _ => {
                diags.error(
                    "collection-kind",
                    COLLECTIONS,
                    line,
                    Some(format!("[{i}]")),
                    "a collection needs either `products` (a manual list) or `rules`, not both or neither",
                );
                continue;
            }
        };
        if diags.error_count() > errors_before {
            made.remove(&rc.handle);
            continue;
        }
        let title = plain(rc.title, COLLECTIONS, line_of("/title"), &format!("[{i}].title"), diags);
        out.push(Collection {
            handle: rc.handle,
            title,
            description: rc.description,
            image,
            products: members,
        });
    }
    (out, Some((key, made)))
}

/// What a sorted list of members is ordered by. Each key ends in something unique to the
/// product (its handle, or its index for a rule-based list in catalog order), so the order
/// is total and one product's place can be found in a list sorted earlier.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum MemberKey<'a> {
    Index(usize),
    Title(String, &'a str),
    Price(i64, &'a str),
    PriceDescending(std::cmp::Reverse<i64>, &'a str),
    Newest(std::cmp::Reverse<Option<i64>>, &'a str),
}

fn member_key(sort: SortOrder, i: usize, products: &[Product]) -> MemberKey<'_> {
    let p = &products[i];
    let handle = p.handle.as_str();
    match sort {
        SortOrder::Manual => MemberKey::Index(i),
        SortOrder::Title => MemberKey::Title(p.title.to_lowercase(), handle),
        SortOrder::PriceAscending => MemberKey::Price(p.min_price().minor, handle),
        SortOrder::PriceDescending => {
            MemberKey::PriceDescending(std::cmp::Reverse(p.min_price().minor), handle)
        }
        SortOrder::Newest => MemberKey::Newest(std::cmp::Reverse(p.created_unix), handle),
    }
}

/// Sorts members; a manual sort keeps the order they are in.
fn sort_members(members: &mut [usize], sort: SortOrder, products: &[Product]) {
    if sort != SortOrder::Manual {
        // Keys (a lowercased title, the lowest price over the variants) made once each.
        members.sort_by_cached_key(|&i| member_key(sort, i, products));
    }
}

/// A rule-based collection's sorted members `old` brought up to date for the products at
/// `changed` (ascending; every other product unchanged at its index): those leave the
/// list and go back in at their place if `member` still holds.
fn update_members(
    mut members: Vec<usize>,
    changed: &[usize],
    member: impl Fn(&Product) -> bool,
    sort: SortOrder,
    products: &[Product],
) -> Vec<usize> {
    members.retain(|m| changed.binary_search(m).is_err());
    for &c in changed.iter().filter(|&&c| member(&products[c])) {
        let key = member_key(sort, c, products);
        let at = members.partition_point(|&m| member_key(sort, m, products) < key);
        members.insert(at, c);
    }
    members
}

/// A compiled collection rule: conditions with text lowered and prices parsed.
struct Rule {
    conditions: Vec<Condition>,
}

enum Condition {
    Tag(String),
    Vendor(String),
    ProductType(String),
    /// The category and all its descendants.
    Category(HashSet<usize>),
    Price(Option<i64>, Option<i64>),
}

fn compile_rules(
    raw: &[RawCondition],
    currency: Option<Currency>,
    categories: &[Category],
    report: &mut dyn FnMut(usize, &str, String),
) -> Option<Rule> {
    let mut conditions = Vec::with_capacity(raw.len());
    let mut ok = true;
    if raw.is_empty() {
        report(0, "", "a rule-based collection needs at least one condition".into());
        return None;
    }
    for (j, c) in raw.iter().enumerate() {
        conditions.push(match c {
            RawCondition::Tag(t) => Condition::Tag(t.to_lowercase()),
            RawCondition::Vendor(v) => Condition::Vendor(v.to_lowercase()),
            RawCondition::ProductType(t) => Condition::ProductType(t.to_lowercase()),
            RawCondition::Category(handle) => {
                let Some(root) = categories.iter().position(|c| c.handle == *handle) else {
                    report(j, "category", format!("unknown category `{handle}`"));
                    ok = false;
                    continue;
                };
                let mut set = HashSet::from([root]);
                for (i, c) in categories.iter().enumerate() {
                    // parents come before children, so one pass finds all descendants
                    if c.parent.is_some_and(|p| set.contains(&p)) {
                        set.insert(i);
                    }
                }
                Condition::Category(set)
            }
            RawCondition::Price(range) => {
                let currency = currency?;
                let mut bound = |name: &str, text: &Option<String>| match text
                    .as_deref()
                    .map(|t| (t, Money::parse(t, currency)))
                {
                    None => None,
                    Some((_, Ok(m))) => Some(m.minor),
                    Some((t, Err(e))) => {
                        report(j, &format!("price.{name}"), amount_message(t, &e, currency));
                        ok = false;
                        None
                    }
                };
                Condition::Price(bound("min", &range.min), bound("max", &range.max))
            }
        });
    }
    ok.then_some(Rule { conditions })
}

/// Whether `a.to_lowercase() == lower` (`lower` is lowercase already), without allocating
/// for ASCII text, which is what tags, vendors and types nearly always are.
fn lower_eq(a: &str, lower: &str) -> bool {
    if a.is_ascii() { a.eq_ignore_ascii_case(lower) } else { a.to_lowercase() == lower }
}

impl Rule {
    fn matches(&self, p: &Product, how: Match) -> bool {
        let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| lower_eq(a, b));
        let test = |c: &Condition| match c {
            Condition::Tag(t) => p.tags.iter().any(|x| lower_eq(x, t)),
            Condition::Vendor(v) => eq(&p.vendor, v),
            Condition::ProductType(t) => eq(&p.product_type, t),
            Condition::Category(set) => p.categories.iter().any(|c| set.contains(c)),
            Condition::Price(min, max) => {
                let price = p.min_price().minor;
                min.is_none_or(|m| price >= m) && max.is_none_or(|m| price <= m)
            }
        };
        match how {
            Match::All => self.conditions.iter().all(test),
            Match::Any => self.conditions.iter().any(test),
        }
    }
}

fn load_pages(dir: &Path, diags: &mut Diagnostics) -> Vec<Page> {
    let pages_dir = dir.join("pages");
    let Ok(entries) = std::fs::read_dir(&pages_dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let mut pages: Vec<Page> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for path in files {
        let name =
            format!("pages/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let Some(text) = read_small(dir, &name, true, diags) else { continue };
        let Some(page) = parse_page(&path, &name, &text, diags) else { continue };
        if let Some(first) = seen.get(&page.handle) {
            diags.error(
                "duplicate-handle",
                &name,
                Some(2),
                Some("handle".into()),
                format!("`{}` is already used by `{first}`", page.handle),
            );
            continue;
        }
        seen.insert(page.handle.clone(), name.clone());
        if !page.draft {
            pages.push(page.page);
        }
    }
    pages.sort_by(|a, b| a.handle.cmp(&b.handle));
    pages
}

struct ParsedPage {
    handle: String,
    draft: bool,
    page: Page,
}

fn parse_page(path: &Path, name: &str, text: &str, diags: &mut Diagnostics) -> Option<ParsedPage> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("+++\n").or_else(|| text.strip_prefix("+++\r\n")) else {
        diags.error(
            "front-matter",
            name,
            Some(1),
            None,
            "a page starts with TOML front matter between `+++` lines",
        );
        return None;
    };
    let Some(end) = rest.find("\n+++") else {
        diags.error(
            "front-matter",
            name,
            Some(1),
            None,
            "the front matter has no closing `+++` line",
        );
        return None;
    };
    let (front, body) = (&rest[..=end], &rest[end + 4..]);
    let body = body.trim_start_matches(['\r', '\n']);
    let meta: RawFrontMatter = match toml::from_str(front) {
        Ok(m) => m,
        Err(e) => {
            let line = e.span().map(|s| super::json_pos::line_col(front, s.start).0 + 1);
            let message = e.message().to_owned();
            let message = describe_serde_message(&message);
            diags.error("front-matter", name, line, None, message);
            return None;
        }
    };
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let handle = meta.handle.unwrap_or(stem);
    if !is_handle(&handle) {
        diags.error("handle", name, Some(2), Some("handle".into()), handle_message(&handle));
        return None;
    }
    let title = plain(meta.title, name, Some(2), "title", diags);
    Some(ParsedPage {
        handle: handle.clone(),
        draft: meta.draft,
        page: Page {
            handle,
            title,
            body: body.to_owned(),
            seo_description: meta.seo_description,
            footer: meta.footer,
            order: meta.order,
            file: name.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines of a file as `load_products` records them: start, end, blake3.
    fn lines_of(file: &[u8]) -> Vec<(usize, usize, [u8; 32])> {
        let mut out = Vec::new();
        let mut start = 0;
        for line in file.split_inclusive(|b| *b == b'\n') {
            out.push((start, start + line.len(), *blake3::hash(line).as_bytes()));
            start += line.len();
        }
        out
    }

    /// How many of `new`'s lines are known, checking that every hash given is right.
    fn known(old: &[u8], new: &[u8]) -> usize {
        let old_lines = lines_of(old);
        let unchanged = Unchanged::new(old, &old_lines, new);
        let mut count = 0;
        for (start, end, hash) in lines_of(new) {
            if let Some((_, h)) = unchanged.find(start, end) {
                assert_eq!(
                    h,
                    hash,
                    "wrong hash for {:?}",
                    String::from_utf8_lossy(&new[start..end])
                );
                count += 1;
            }
        }
        count
    }

    /// Rewrites line `n` (from 0) of `products.jsonl` with `edit`.
    fn edit_line(dir: &Path, n: usize, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join(PRODUCTS);
        let text = std::fs::read_to_string(&path).expect("products.jsonl is readable");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut value: serde_json::Value =
            serde_json::from_str(&lines[n]).expect("the line is JSON");
        edit(&mut value);
        lines[n] = value.to_string();
        std::fs::write(&path, lines.join("\n") + "\n").expect("products.jsonl is writable");
    }

    fn codes(result: Result<Loaded, CatalogError>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(CatalogError::Invalid(d)) => d.iter().map(|d| d.code.to_string()).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Edits that keep every product at its index take the session's quick paths (no
    /// duplicate check when identities are kept, rule collections updated in place): the
    /// result is what a fresh load gives, and duplicates made by an edit are still found.
    #[test]
    fn quick_reloads_equal_fresh_loads() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opts = crate::fixtures::FixtureOptions { products: 60, seed: 7, images: 0 };
        crate::fixtures::write(dir.path(), &opts).expect("fixtures are written");
        let mut cache = ParseCache::default();
        let check = |cache: &mut ParseCache, what: &str| {
            let quick = load_cached(dir.path(), cache).expect("the quick load succeeds").catalog;
            let fresh = load(dir.path()).expect("the fresh load succeeds").catalog;
            assert_eq!(quick.collections, fresh.collections, "{what}");
            assert_eq!(quick.products.len(), fresh.products.len(), "{what}");
            quick.products
        };
        check(&mut cache, "first load");
        let price = |cents: &str| {
            let cents = cents.to_owned();
            move |v: &mut serde_json::Value| {
                for variant in v["variants"].as_array_mut().expect("variants are a list") {
                    variant["price"] = cents.clone().into();
                }
            }
        };
        edit_line(dir.path(), 3, price("1.99"));
        check(&mut cache, "into `under-40`, first by price");
        edit_line(dir.path(), 3, price("399.00"));
        edit_line(dir.path(), 10, price("2.50"));
        check(&mut cache, "two lines: one out, one in");
        edit_line(dir.path(), 10, |v| v["title"] = "aaa first by title".into());
        check(&mut cache, "title");
        edit_line(dir.path(), 12, |v| v["status"] = "draft".into());
        check(&mut cache, "draft");
        edit_line(dir.path(), 12, |v| v["tags"] = serde_json::json!(["waterproof"]));
        edit_line(dir.path(), 12, |v| v["status"] = "active".into());
        let products = check(&mut cache, "tagged");
        assert!(products[12].tags.contains(&"waterproof".to_owned()));

        // An edit that gives a line another's SKU, then another's handle.
        let other_sku = products[20].variants[0].sku.clone();
        edit_line(dir.path(), 4, |v| v["variants"][0]["sku"] = other_sku.into());
        let quick = codes(load_cached(dir.path(), &mut cache));
        assert!(quick.contains(&"duplicate-sku".to_owned()), "{quick:?}");
        assert_eq!(quick, codes(load(dir.path())));
        edit_line(dir.path(), 4, |v| v["variants"][0]["sku"] = "SKU-NEW-4".into());
        check(&mut cache, "sku mended");
        let (own_handle, other_handle) = (products[5].handle.clone(), products[30].handle.clone());
        edit_line(dir.path(), 5, |v| v["handle"] = other_handle.into());
        let quick = codes(load_cached(dir.path(), &mut cache));
        assert!(quick.contains(&"duplicate-handle".to_owned()), "{quick:?}");
        assert_eq!(quick, codes(load(dir.path())));
        edit_line(dir.path(), 5, |v| v["handle"] = own_handle.into());
        check(&mut cache, "handle mended");

        // Two lines swapping places keep the identities between them.
        let text = std::fs::read_to_string(dir.path().join(PRODUCTS)).expect("readable");
        let mut lines: Vec<&str> = text.lines().collect();
        lines.swap(1, 2);
        std::fs::write(dir.path().join(PRODUCTS), lines.join("\n") + "\n").expect("writable");
        let products = check(&mut cache, "swapped");
        assert_eq!(products[1].handle, crate::fixtures::handle(2));
    }

    #[test]
    fn lines_are_numbered_with_blank_ones_counted() {
        assert_eq!(line_spans(b"", 0), vec![]);
        assert_eq!(line_spans(b"a\n", 0), vec![(1, 0, 2)]);
        assert_eq!(line_spans(b"a\n\n  \nb", 0), vec![(1, 0, 2), (4, 6, 7)], "no final newline");
        assert_eq!(line_spans(b"\na\r\n \t\n", 0), vec![(2, 1, 4)]);
    }

    #[test]
    fn unchanged_lines_are_found_around_an_edit() {
        let old = b"a1\nb22\nc333\nd4\n";
        assert_eq!(known(old, old), 4);
        assert_eq!(known(old, b"a1\nb23\nc333\nd4\n"), 3, "one line edited");
        assert_eq!(known(old, b"a1\nb22\nX\nc333\nd4\n"), 4, "one line inserted");
        assert_eq!(known(old, b"a1\nc333\nd4\n"), 3, "one line deleted");
        assert_eq!(known(old, b"a1\nb22\nc333\nd4"), 3, "last newline dropped");
        assert_eq!(known(old, b"a1\nb22\nc3"), 2, "cut in a line");
        assert_eq!(known(b"", old), 0);
        assert_eq!(known(old, b""), 0);
    }

    proptest! {
        /// Whatever the edit (bytes cut out of the old file and others put in their
        /// place), a line is never given another line's hash.
        #[test]
        fn unchanged_never_gives_a_wrong_hash(
            old in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b'\n']), 0..60),
            at in 0usize..60,
            cut in 0usize..10,
            put in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b'\n']), 0..10),
        ) {
            let at = at.min(old.len());
            let cut = cut.min(old.len() - at);
            let mut new = old[..at].to_vec();
            new.extend(&put);
            new.extend(&old[at + cut..]);
            known(&old, &new);
        }
    }

    #[test]
    fn converts_pointers_to_paths() {
        assert_eq!(pointer_to_path("/0/children/1"), "[0].children[1]");
    }

    #[test]
    fn unknown_field_gets_a_suggestion() {
        let m = describe_serde_message(
            "unknown field `prise`, expected one of `sku`, `price`, `options` at line 1 column 5",
        );
        assert_eq!(m, "unknown field `prise`, did you mean `price`?");
    }

    #[test]
    fn missing_fields_are_named() {
        let field = |line: &str| {
            let d = parse_product_line(line, Currency::from_code("EUR").expect("EUR"), &[])
                .expect_err("invalid");
            d.iter().find_map(|d| d.field.clone())
        };
        assert_eq!(field(r#"{"handle": "a", "variants": []}"#).as_deref(), Some("title"));
        let line = r#"{"handle": "a", "title": "A", "variants": [{"price": "1.00"}]}"#;
        assert_eq!(field(line).as_deref(), Some("variants[0].sku"));
    }

    #[test]
    fn base_urls_must_be_absolute() {
        assert!(check_base_url("https://shop.example.com").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080/shop").is_ok());
        assert!(check_base_url("shop.example.com").is_err());
        assert!(check_base_url("javascript:alert(1)").is_err());
        assert!(check_base_url("https://").is_err());
    }
}
