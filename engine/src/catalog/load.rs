//! Loads a catalog directory into a `Catalog`, reporting every problem at once.
//!
//! `products.jsonl` is read line by line in chunks parsed in parallel, so the file is never
//! held in memory as a whole. Renders nothing and touches no network; see `render` for that.

use super::categories::load_categories;
use super::collections::{KeyedMembers, RuleInputs, load_collections};
use super::follow_on::{Gaps, salvage_handle};
use super::lines::{Unchanged, line_spans};
use super::pages::load_pages;
use super::product::{Parsed, ProductContext, parse_product};
use super::raw::RawStore;
use super::validate::{check_image_path, did_you_mean, is_handle};
use super::{Catalog, ImageRef, Product, Store, feed_settings, locate};
use crate::diagnostics::Diagnostics;
use crate::money::{AmountError, Currency, Locale};
use crate::text::strip_markup;
use rayon::prelude::*;
use std::collections::HashMap;
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

pub(super) const PRODUCTS: &str = "products.jsonl";
const STORE: &str = "store.json";
pub(super) const CATEGORIES: &str = "categories.json";
pub(super) const COLLECTIONS: &str = "collections.json";

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
    if let Some(empty) = not_a_catalog(dir) {
        diags.error("empty-catalog", "", None, None, empty);
        return Err(CatalogError::Invalid(diags));
    }
    let mut gaps = Gaps::default();
    let store = load_store(dir, &mut diags);
    let currency = store.as_ref().map(|s| s.currency);
    let categories = load_categories(dir, &mut gaps, &mut diags);
    let category_index: HashMap<&str, usize> =
        categories.iter().enumerate().map(|(i, c)| (c.handle.as_str(), i)).collect();
    let prior_collections = cache.collections.take();
    let (products, edited) =
        load_products(dir, currency, &category_index, cache, &mut gaps, &mut diags)?;
    if !gaps.categories_known() {
        // Every category reference of a product is unknown: the file is the error.
        let n = diags.retain(|d| !(d.file == PRODUCTS && d.code == "unknown-category"));
        gaps.skip_many(PRODUCTS, "category", n, "`categories.json` could not be read");
    }
    let rules = RuleInputs { currency, categories: &categories, products: &products };
    let prior = edited.as_deref().zip(prior_collections);
    let (collections, members) = load_collections(dir, &rules, prior, &mut gaps, &mut diags);
    cache.collections = members;
    let pages = load_pages(dir, &mut diags);
    if let Some(store) = &store {
        let references = (categories.as_slice(), products.as_slice());
        feed_settings::check_references(&store.feeds, references, &mut gaps, &mut diags);
    }
    gaps.report(&mut diags);
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
pub(super) fn read_small(
    dir: &Path,
    name: &str,
    required: bool,
    diags: &mut Diagnostics,
) -> Option<String> {
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
            diags.error("missing-file", name, None, None, missing_file_message(&e));
            None
        }
    }
}

/// What to say about a required file that cannot be read.
fn missing_file_message(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "cannot read the file: it does not exist (every catalog has one; see docs/catalog-format.md)"
            .to_owned()
    } else {
        format!("cannot read the file: {e}")
    }
}

/// Why `dir` is not a catalog directory at all (neither `store.json` nor `products.jsonl`),
/// with where to start; `None` when it has either.
fn not_a_catalog(dir: &Path) -> Option<String> {
    let has = |name: &str| dir.join(name).symlink_metadata().is_ok();
    if has(STORE) || has(PRODUCTS) {
        return None;
    }
    Some(
        "the directory has no `store.json` and no `products.jsonl`, so it is not a catalog: \
         docs/catalog-format.md describes the files and their format, and \
         `aurelio fixtures --out DIR --products 20` writes an example catalog to start from"
            .to_owned(),
    )
}

/// Turns a serde error with its path into a diagnostic message naming the field.
pub(super) fn serde_problem(
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

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    diags: &mut Diagnostics,
) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            super::snippet::report_serde_error(diags, file, text, 1, &e);
            None
        }
    }
}

/// Strips markup from a plain-text field, warning when something was removed.
pub(super) fn plain(
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

pub(super) fn amount_message(text: &str, err: &AmountError, currency: Currency) -> String {
    super::amounts::price_problem(text, err, currency).1
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

pub(super) fn handle_message(handle: &str) -> String {
    format!("`{handle}` is not a valid handle (1 to 100 of a-z, 0-9 and `-`, not at either end)")
}

/// Loads `products.jsonl`, reusing what `cache` has from the last load. With the products,
/// the indices of the lines that changed when the edit left every product at its index
/// (every line before and after a valid product, as many lines, no duplicates).
fn load_products(
    dir: &Path,
    currency: Option<Currency>,
    categories: &HashMap<&str, usize>,
    cache: &mut ParseCache,
    gaps: &mut Gaps,
    diags: &mut Diagnostics,
) -> Result<(Vec<Product>, Option<Vec<usize>>), CatalogError> {
    let path = dir.join(PRODUCTS);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            gaps.products_unreadable();
            diags.error("missing-file", PRODUCTS, None, None, missing_file_message(&e));
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
    for (p, &(_, start, end)) in parsed.iter().zip(&spans).filter(|(p, _)| p.product.is_none()) {
        let handle = p.handle.clone().or_else(|| salvage_handle(&file_bytes[start..end]));
        gaps.broken_product(p.line, handle);
    }
    let (products, identities) = register(parsed, prior, gaps, diags);
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
    gaps: &mut Gaps,
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
    let mut products = Vec::with_capacity(parsed.len());
    for (p, keep) in parsed.into_iter().zip(keep) {
        match p.product {
            Some(product) if keep => products.push(product),
            // A clash: the line's product is left out, references to it are not unknown.
            Some(product) => gaps.broken_product(p.line, Some(product.handle)),
            None => {}
        }
    }
    (products, identities)
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
                // Twice in one line: the line's own parse has reported it.
                Some((_, owner_line)) if *owner_line == p.line => continue,
                Some((owner, owner_line)) => format!("`{owner}` (line {owner_line})"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(quick.products.len(), fresh.products.len(), "{what}");
            for (q, f) in quick.products.iter().zip(&fresh.products) {
                assert_eq!(q, f, "{what}: product `{}` of the quick load", q.handle);
            }
            assert_eq!(quick.collections, fresh.collections, "{what}");
            assert_eq!(quick.categories, fresh.categories, "{what}");
            assert_eq!(quick.pages, fresh.pages, "{what}");
            assert_eq!(format!("{:?}", quick.store), format!("{:?}", fresh.store), "{what}");
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
    fn unknown_field_gets_a_suggestion() {
        let m = describe_serde_message(
            "unknown field `prise`, expected one of `sku`, `price`, `options` at line 1 column 5",
        );
        assert_eq!(m, "unknown field `prise`, did you mean `price`?");
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
