//! Reading the catalog files the tests derive their expectations from: products with
//! their line numbers, prices in minor units, availability, the category tree, and the
//! members a category lists.

use serde_json::Value;
use std::path::Path;

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
