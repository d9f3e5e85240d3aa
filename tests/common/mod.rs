//! Shared helpers for the end-to-end storefront tests: run the real `aurelio` binary, read
//! what it wrote, take the HTML apart with `scraper`, and read the catalog files the tests
//! derive their expectations from.

#![allow(dead_code)]

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_aurelio");

/// A path inside the repository (never relative to the current directory).
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The demo catalog.
pub fn demo_store() -> PathBuf {
    repo_path("fixtures/demo-store")
}

/// The catalog full of markup and script injection attempts.
pub fn hostile_store() -> PathBuf {
    repo_path("fixtures/hostile")
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Exit code, if any.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics (naming the command and showing its output) unless it succeeded.
    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.success,
            "`{}` failed with {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.command, self.code, self.stderr, self.stdout
        );
        self
    }

    /// Panics (naming the command and showing its output) unless it failed.
    #[track_caller]
    pub fn failure(self) -> Self {
        assert!(
            !self.success,
            "`{}` succeeded but was expected to fail\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.command, self.stderr, self.stdout
        );
        self
    }
}

/// Runs `aurelio` with `args` and collects what it printed.
pub fn aurelio<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let command = std::iter::once("aurelio".to_owned())
        .chain(args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(BIN)
        .args(args)
        .env_remove("AURELIO_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    Run {
        command,
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `aurelio build --site SITE --out OUT [--base-url URL]`, whatever its outcome.
pub fn try_build(site: &Path, out: &Path, base_url: Option<&str>) -> Run {
    let mut args: Vec<&OsStr> = vec![
        "build".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    if let Some(url) = base_url {
        args.push(OsStr::new("--base-url"));
        args.push(OsStr::new(url));
    }
    aurelio(&args)
}

/// A build that must succeed.
#[track_caller]
pub fn build(site: &Path, out: &Path) -> Run {
    try_build(site, out, None).success()
}

/// A build with `--base-url` that must succeed.
#[track_caller]
pub fn build_with_base_url(site: &Path, out: &Path, base_url: &str) -> Run {
    try_build(site, out, Some(base_url)).success()
}

/// `aurelio fixtures --products N --out DIR --seed S`, which must succeed.
#[track_caller]
pub fn fixtures(products: usize, out: &Path, seed: u64) -> Run {
    let products = products.to_string();
    let seed = seed.to_string();
    aurelio(&[
        "fixtures".as_ref(),
        "--products".as_ref(),
        products.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--seed".as_ref(),
        seed.as_ref(),
    ])
    .success()
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

// ---------------------------------------------------------------------------------------
// Reading a built site
// ---------------------------------------------------------------------------------------

/// A built site on disk.
#[derive(Debug, Clone)]
pub struct Site {
    /// Its root directory.
    pub root: PathBuf,
}

impl Site {
    /// The site in `root`.
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_owned() }
    }

    /// The file of a site path: `products/x/` → `products/x/index.html`, `""` → `index.html`.
    pub fn file_of(path: &str) -> String {
        if path.is_empty() || path.ends_with('/') {
            format!("{path}index.html")
        } else {
            path.to_owned()
        }
    }

    /// The site path of a file: `products/x/index.html` → `products/x/`.
    pub fn path_of(file: &str) -> String {
        file.strip_suffix("index.html").unwrap_or(file).to_owned()
    }

    /// Whether a site path (or file) exists.
    pub fn exists(&self, path: &str) -> bool {
        self.root.join(Self::file_of(path)).is_file()
    }

    /// The text of a file.
    #[track_caller]
    pub fn read(&self, rel: &str) -> String {
        let path = self.root.join(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
    }

    /// The parsed page at a site path (`products/x/`, `404.html`).
    #[track_caller]
    pub fn page(&self, path: &str) -> Html {
        Html::parse_document(&self.read(&Self::file_of(path)))
    }

    /// Every file, relative with `/`, sorted.
    pub fn file_list(&self) -> Vec<String> {
        snapshot(&self.root).into_keys().collect()
    }

    /// Every file with its bytes.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        snapshot(&self.root)
    }

    /// Every `.html` file, relative, sorted.
    pub fn html_files(&self) -> Vec<String> {
        self.file_list().into_iter().filter(|f| f.ends_with(".html")).collect()
    }

    /// Every `.html` file, parsed, with its raw text.
    pub fn html_pages(&self) -> Vec<(String, String, Html)> {
        self.html_files()
            .into_iter()
            .map(|f| {
                let text = self.read(&f);
                let doc = Html::parse_document(&text);
                (f, text, doc)
            })
            .collect()
    }

    /// The one file whose relative path starts with `prefix` and ends with `suffix`
    /// (content-hashed assets such as `assets/search-index.*.json`).
    #[track_caller]
    pub fn find_one(&self, prefix: &str, suffix: &str) -> String {
        let found: Vec<String> = self
            .file_list()
            .into_iter()
            .filter(|f| f.starts_with(prefix) && f.ends_with(suffix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one `{prefix}*{suffix}` in {}, found {found:?}",
            self.root.display()
        );
        found.into_iter().next().unwrap_or_default()
    }

    /// A listing (collection or category) and all its pages: `base`, `base/page/2/`, …
    /// until a page does not exist. Returns (site path, parsed page) pairs.
    #[track_caller]
    pub fn listing_pages(&self, base: &str) -> Vec<(String, Html)> {
        assert!(self.exists(base), "listing `{base}` has no page in {}", self.root.display());
        let mut pages = vec![(base.to_owned(), self.page(base))];
        for n in 2.. {
            let path = format!("{base}page/{n}/");
            if !self.exists(&path) {
                break;
            }
            let doc = self.page(&path);
            pages.push((path, doc));
        }
        pages
    }
}

/// Every file under `dir` with its bytes, keyed by relative path with `/`.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list `{}`: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("inside root");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names of the entries directly inside `dir`, sorted.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list `{}`: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create `{}`: {e}", to.display()));
    for entry in
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot list `{}`: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("cannot copy `{}`: {e}", entry.path().display()));
        }
    }
}

/// Describes how two snapshots differ (empty when identical).
pub fn snapshot_diff(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> String {
    let mut diff = String::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => writeln!(diff, "  removed: {path}").unwrap_or_default(),
            Some(b) if b != bytes => writeln!(diff, "  changed: {path}").unwrap_or_default(),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        writeln!(diff, "  added:   {path}").unwrap_or_default();
    }
    diff
}

// ---------------------------------------------------------------------------------------
// Taking HTML apart
// ---------------------------------------------------------------------------------------

/// A CSS selector (panics on a typo in the test).
#[track_caller]
pub fn sel(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("bad selector `{css}`: {e:?}"))
}

/// The one element matching `css` inside `el`.
#[track_caller]
pub fn one_in<'a>(el: ElementRef<'a>, css: &str) -> ElementRef<'a> {
    let found: Vec<_> = el.select(&sel(css)).collect();
    assert_eq!(found.len(), 1, "expected one `{css}` in {}", el.html());
    found[0]
}

/// All elements matching `css`.
pub fn select<'a>(doc: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    doc.select(&sel(css)).collect()
}

/// The one element matching `css`; panics when there are none or several.
#[track_caller]
pub fn one<'a>(doc: &'a Html, css: &str) -> ElementRef<'a> {
    let found = select(doc, css);
    assert_eq!(found.len(), 1, "expected exactly one `{css}`, found {}", found.len());
    found[0]
}

/// An attribute that must be present.
#[track_caller]
pub fn attr<'a>(el: ElementRef<'a>, name: &str) -> &'a str {
    el.value().attr(name).unwrap_or_else(|| {
        panic!("<{}> has no `{name}` attribute: {}", el.value().name(), el.html())
    })
}

/// The text of an element, whitespace collapsed.
pub fn text(el: ElementRef<'_>) -> String {
    el.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `<link rel="canonical">`.
#[track_caller]
pub fn canonical(doc: &Html) -> String {
    attr(one(doc, r#"link[rel="canonical"]"#), "href").to_owned()
}

/// `<meta property=PROP content>`.
pub fn meta_property(doc: &Html, property: &str) -> Option<String> {
    select(doc, &format!(r#"meta[property="{property}"]"#))
        .first()
        .and_then(|m| m.value().attr("content"))
        .map(str::to_owned)
}

/// The raw text of every `<script type="application/ld+json">`.
pub fn json_ld_sources(doc: &Html) -> Vec<String> {
    select(doc, r#"script[type="application/ld+json"]"#)
        .into_iter()
        .map(|s| s.inner_html())
        .collect()
}

/// Every JSON-LD document of a page; panics (with the text) when one is not JSON.
#[track_caller]
pub fn json_ld(doc: &Html) -> Vec<Value> {
    json_ld_sources(doc)
        .into_iter()
        .map(|s| {
            serde_json::from_str(&s).unwrap_or_else(|e| panic!("JSON-LD does not parse ({e}): {s}"))
        })
        .collect()
}

/// The JSON-LD documents of a page with `@type` `kind`.
#[track_caller]
pub fn json_ld_of_type(doc: &Html, kind: &str) -> Vec<Value> {
    json_ld(doc).into_iter().filter(|v| v["@type"] == kind).collect()
}

/// Attributes that hold URLs.
pub const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "xlink:href",
    "cite",
    "background",
];

/// Every URL in an element's attributes (`srcset` split into its URLs).
pub fn element_urls(el: ElementRef<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for (name, value) in el.value().attrs() {
        if !URL_ATTRIBUTES.contains(&name) {
            continue;
        }
        if name == "srcset" {
            urls.extend(srcset_urls(value));
        } else {
            urls.push(value.to_owned());
        }
    }
    urls
}

/// The URLs of a `srcset` value.
pub fn srcset_urls(srcset: &str) -> Vec<String> {
    srcset.split(',').filter_map(|c| c.split_whitespace().next()).map(str::to_owned).collect()
}

/// Every `href`, `src` (and other URL attribute) value in a page, in document order.
pub fn links(doc: &Html) -> Vec<String> {
    doc.select(&sel("*")).flat_map(element_urls).collect()
}

/// The product URLs of the product cards in a listing's grid, in order.
pub fn card_links(doc: &Html) -> Vec<String> {
    select(doc, "main ul.product-grid > li.product-card > a")
        .into_iter()
        .map(|a| attr(a, "href").to_owned())
        .collect()
}

/// `<loc>` values of a sitemap, unescaped.
pub fn sitemap_locs(xml: &str) -> Vec<String> {
    xml.split("<loc>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</loc>").map(|(loc, _)| loc))
        .map(|loc| {
            loc.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Reading the catalog the expectations come from
// ---------------------------------------------------------------------------------------

/// A JSON file of a catalog.
#[track_caller]
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{}` is not JSON: {e}", path.display()))
}

/// One product line of `products.jsonl`.
#[derive(Debug, Clone)]
pub struct SourceProduct {
    /// 1-based line number.
    pub line: usize,
    /// The raw line.
    pub raw: String,
    /// The parsed object.
    pub json: Value,
}

impl SourceProduct {
    /// Handle.
    pub fn handle(&self) -> &str {
        self.json["handle"].as_str().expect("handle")
    }

    /// Title as written.
    pub fn title(&self) -> &str {
        self.json["title"].as_str().expect("title")
    }

    /// Whether it is published (status absent or `active`).
    pub fn is_active(&self) -> bool {
        self.json.get("status").and_then(Value::as_str).is_none_or(|s| s == "active")
    }

    /// The variants.
    pub fn variants(&self) -> &[Value] {
        self.json["variants"].as_array().map(Vec::as_slice).unwrap_or_default()
    }

    /// Lowest variant price in minor units.
    pub fn min_price(&self) -> i64 {
        self.variants().iter().map(variant_price).min().expect("a product has variants")
    }

    /// Highest variant price in minor units.
    pub fn max_price(&self) -> i64 {
        self.variants().iter().map(variant_price).max().expect("a product has variants")
    }

    /// Tags as written.
    pub fn tags(&self) -> Vec<&str> {
        self.json["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Category handles as written.
    pub fn categories(&self) -> Vec<&str> {
        self.json["categories"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// A plain string field, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }

    /// `seo.title`, if present.
    pub fn seo_title(&self) -> Option<&str> {
        self.json.pointer("/seo/title").and_then(Value::as_str)
    }

    /// `created_at` as Unix seconds, if present.
    pub fn created_unix(&self) -> Option<i64> {
        self.field("created_at").map(rfc3339_to_unix)
    }

    /// Site path of its page.
    pub fn path(&self) -> String {
        format!("products/{}/", self.handle())
    }
}

/// Every product of a catalog directory's `products.jsonl`, with line numbers.
#[track_caller]
pub fn read_products(catalog: &Path) -> Vec<SourceProduct> {
    let path = catalog.join("products.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| SourceProduct {
            line: i + 1,
            raw: l.to_owned(),
            json: serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("products.jsonl line {}: {e}", i + 1)),
        })
        .collect()
}

/// A variant's price in minor units.
#[track_caller]
pub fn variant_price(v: &Value) -> i64 {
    cents(v["price"].as_str().expect("price is a string"))
}

/// A two-decimal price string in minor units (`"14"` → 1400, `"39.9"` → 3990).
#[track_caller]
pub fn cents(decimal: &str) -> i64 {
    let (int, frac) = decimal.split_once('.').unwrap_or((decimal, ""));
    assert!(frac.len() <= 2, "`{decimal}` has more than two decimals");
    let int: i64 = int.parse().unwrap_or_else(|e| panic!("`{decimal}`: {e}"));
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or_else(|e| panic!("`{decimal}`: {e}"));
    int * 100 + frac
}

/// Minor units as a plain two-decimal string (`1400` → `"14.00"`).
pub fn decimal(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Minor units formatted for EUR in `en-IE`: `€1,234.50`.
pub fn format_eur_en_ie(cents: i64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("€{grouped}.{:02}", cents % 100)
}

/// A variant's availability by the catalog rules: untracked or above zero is `in_stock`,
/// zero or below with policy `continue` is `backorder`, otherwise `out_of_stock`.
pub fn expected_availability(v: &Value) -> &'static str {
    match v.get("inventory").and_then(Value::as_i64) {
        None => "in_stock",
        Some(n) if n > 0 => "in_stock",
        Some(_) if v.get("inventory_policy").and_then(Value::as_str) == Some("continue") => {
            "backorder"
        }
        Some(_) => "out_of_stock",
    }
}

/// The schema.org URL for an availability name.
#[track_caller]
pub fn schema_org_availability(name: &str) -> &'static str {
    match name {
        "in_stock" => "https://schema.org/InStock",
        "backorder" => "https://schema.org/BackOrder",
        "out_of_stock" => "https://schema.org/OutOfStock",
        other => panic!("unknown availability `{other}`"),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as Unix seconds.
#[track_caller]
pub fn rfc3339_to_unix(s: &str) -> i64 {
    let num = |a: usize, b: usize| -> i64 {
        s[a..b].parse().unwrap_or_else(|e| panic!("`{s}` is not RFC 3339: {e}"))
    };
    let (year, month, day, hour, minute, second) =
        (num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19));
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let h: i64 = rest[1..3].parse().unwrap_or_else(|e| panic!("`{s}`: {e}"));
            let m: i64 = rest[4..6].parse().unwrap_or_else(|e| panic!("`{s}`: {e}"));
            sign * (h * 3600 + m * 60)
        }
    };
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + hour * 3600 + minute * 60 + second - offset
}

/// A category of `categories.json`, flattened depth-first.
#[derive(Debug, Clone)]
pub struct SourceCategory {
    /// Handle.
    pub handle: String,
    /// Title as written.
    pub title: String,
    /// Index of the parent in the flat list.
    pub parent: Option<usize>,
    /// `parent/child` path below `/categories/`.
    pub path: String,
}

impl SourceCategory {
    /// Site path of its first listing page.
    pub fn site_path(&self) -> String {
        format!("categories/{}/", self.path)
    }
}

/// The category tree of a catalog directory, parents before children.
pub fn read_categories(catalog: &Path) -> Vec<SourceCategory> {
    fn walk(nodes: &[Value], parent: Option<usize>, out: &mut Vec<SourceCategory>) {
        for node in nodes {
            let handle = node["handle"].as_str().expect("category handle").to_owned();
            let path = match parent {
                Some(p) => format!("{}/{handle}", out[p].path),
                None => handle.clone(),
            };
            out.push(SourceCategory {
                title: node["title"].as_str().expect("title").to_owned(),
                handle,
                parent,
                path,
            });
            let index = out.len() - 1;
            walk(
                node["children"].as_array().map(Vec::as_slice).unwrap_or_default(),
                Some(index),
                out,
            );
        }
    }
    let path = catalog.join("categories.json");
    let mut out = Vec::new();
    if path.is_file() {
        walk(read_json(&path).as_array().expect("categories.json is a list"), None, &mut out);
    }
    out
}

/// Indices of `index` and all its descendants.
pub fn category_and_descendants(categories: &[SourceCategory], index: usize) -> Vec<usize> {
    let mut set = vec![index];
    for (i, c) in categories.iter().enumerate() {
        if c.parent.is_some_and(|p| set.contains(&p)) {
            set.push(i);
        }
    }
    set
}

/// Active products listed by a category (its own and its descendants'), sorted by title
/// (case-insensitive) then handle, as product site paths.
pub fn expected_category_members(
    products: &[SourceProduct],
    categories: &[SourceCategory],
    index: usize,
) -> Vec<String> {
    let handles: Vec<&str> = category_and_descendants(categories, index)
        .into_iter()
        .map(|i| categories[i].handle.as_str())
        .collect();
    let mut members: Vec<&SourceProduct> = products
        .iter()
        .filter(|p| p.is_active() && p.categories().iter().any(|c| handles.contains(c)))
        .collect();
    members.sort_by_key(|p| (p.title().to_lowercase(), p.handle().to_owned()));
    members.into_iter().map(|p| format!("/{}", p.path())).collect()
}

/// Number of listing pages for `n` products at 24 per page (at least one).
pub fn pages_for(n: usize) -> usize {
    n.div_ceil(PAGE_SIZE).max(1)
}

/// Products per listing page.
pub const PAGE_SIZE: usize = 24;

// ---------------------------------------------------------------------------------------
// Image files
// ---------------------------------------------------------------------------------------

/// Pixel size of a PNG or JPEG file, read from its header.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() >= 24 {
        let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
        return Some((w, h));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 9 < bytes.len() {
            if bytes[i] != 0xFF {
                i += 1;
                continue;
            }
            let marker = bytes[i + 1];
            if marker == 0xFF {
                i += 1;
                continue;
            }
            if (0xD0..=0xD9).contains(&marker) || marker == 0x01 {
                i += 2;
                continue;
            }
            let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
            let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if is_sof {
                let h = u32::from(u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]));
                let w = u32::from(u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]));
                return Some((w, h));
            }
            i += 2 + len;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Collecting problems
// ---------------------------------------------------------------------------------------

/// Problems found while walking many pages, reported together so that one failing run
/// shows all of them. The same problem found in many places is listed once, with a count
/// and the first place.
#[derive(Debug, Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    /// Records `message` when `ok` is false.
    pub fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.0.push((message(), String::new()));
        }
    }

    /// Records `message`, found in `place` (a file), when `ok` is false.
    pub fn check_in(&mut self, ok: bool, place: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.0.push((message(), place.to_owned()));
        }
    }

    /// Records a problem.
    pub fn push(&mut self, message: String) {
        self.0.push((message, String::new()));
    }

    /// Panics listing every distinct problem (at most 60) when there were any.
    #[track_caller]
    pub fn assert_none(self, what: &str) {
        if self.0.is_empty() {
            return;
        }
        let mut seen: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for (message, place) in &self.0 {
            seen.entry(message.as_str()).or_insert((0, place.as_str())).0 += 1;
        }
        let listed: Vec<String> = seen
            .iter()
            .take(60)
            .map(|(message, (n, place))| {
                let mut line = (*message).to_owned();
                match (*n, place.is_empty()) {
                    (1, true) => {}
                    (1, false) => line.push_str(&format!(" (in `{place}`)")),
                    (n, true) => line.push_str(&format!(" (×{n})")),
                    (n, false) => line.push_str(&format!(" (×{n}, first in `{place}`)")),
                }
                line
            })
            .collect();
        panic!(
            "{what}: {} problem(s), {} distinct:\n  {}",
            self.0.len(),
            seen.len(),
            listed.join("\n  ")
        );
    }
}
