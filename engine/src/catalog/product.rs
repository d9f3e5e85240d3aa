//! One line of `products.jsonl` parsed and checked on its own: fields, options, variants,
//! prices, and the caps of `limits` (checked before any per-variant work, so one line
//! costs time linear in its size). Duplicates across lines are `load`'s.

use super::limits::{
    MAX_GRAMS, MAX_IMAGES, MAX_INVENTORY, MAX_OPTION_VALUES, MAX_OPTIONS, MAX_PRODUCT_CATEGORIES,
    MAX_SKU_CHARS, MAX_TAGS, MAX_TEXT_CHARS, MAX_VARIANTS,
};
use super::load::{PRODUCTS, handle_message, plain};
use super::raw::{RawImage, RawProduct, RawVariant};
use super::snippet::report_serde_error;
use super::validate::{
    check_image_path, did_you_mean, in_file_order, is_handle, is_sku, parse_weight,
    rfc3339_to_unix, unknown_category,
};
use super::{ImageRef, Product, ProductFeed, ProductOption, Variant, feed_settings, gtin_is_valid};
use crate::diagnostics::Diagnostics;
use crate::money::{Currency, Money};
use std::collections::HashMap;

/// Categories beyond which an unknown category gets no "did you mean" (each suggestion
/// compares the handle with every category).
const MAX_HINT_CANDIDATES: usize = 1000;

/// What a product parse needs from the rest of the catalog (read-only, shared by threads).
pub(super) struct ProductContext<'a> {
    pub currency: Currency,
    pub check_precision: bool,
    pub categories: &'a HashMap<&'a str, usize>,
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
    LineRules::new(currency, categories.iter().copied()).parse(text)
}

/// What `parse_product_line` checks a line against, made once for many lines (an import).
#[derive(Debug)]
pub struct LineRules<'a> {
    currency: Currency,
    categories: HashMap<&'a str, usize>,
}

impl<'a> LineRules<'a> {
    /// The rules for a shop of `currency` whose categories are `categories`.
    pub fn new(currency: Currency, categories: impl IntoIterator<Item = &'a str>) -> Self {
        let categories = categories.into_iter().enumerate().map(|(i, c)| (c, i)).collect();
        Self { currency, categories }
    }

    /// Parses and checks one line, as `parse_product_line`.
    pub fn parse(&self, text: &str) -> Result<Product, Diagnostics> {
        let ctx = ProductContext {
            currency: self.currency,
            check_precision: true,
            categories: &self.categories,
        };
        let parsed = parse_product(1, text.as_bytes(), &ctx);
        match parsed.product {
            Some(product) if !parsed.diags.has_errors() => Ok(product),
            _ => Err(parsed.diags),
        }
    }
}

/// A parsed line: the product if it is valid, and its identity (handle, SKUs) even when
/// it is not, so that duplicates are found across broken lines too.
pub(super) struct Parsed {
    pub product: Option<Product>,
    pub line: usize,
    pub handle: Option<String>,
    pub skus: Vec<String>,
    pub diags: Diagnostics,
}

pub(super) fn parse_product(line: usize, bytes: &[u8], ctx: &ProductContext<'_>) -> Parsed {
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
            match serde_path_to_error::deserialize::<_, RawProduct>(de) {
                Ok(_) => d.error("syntax", PRODUCTS, at, None, "the line could not be parsed"),
                Err(e) => report_serde_error(&mut d, PRODUCTS, text, line, &e),
            }
            return Parsed { product: None, line, handle: None, skus: Vec::new(), diags: d };
        }
    };
    let errors_before = d.error_count();
    let handle = raw.handle.clone();
    let skus: Vec<String> = raw.variants.iter().map(|v| v.sku.clone()).collect();
    let err = |d: &mut Diagnostics, code, field: String, message: String| {
        d.error(code, PRODUCTS, at, Some(field), message);
    };
    // Counts first: a product over a cap is reported without any per-variant work.
    let within_caps = check_counts(&raw, at, &mut d);
    if !is_handle(&raw.handle) {
        err(&mut d, "handle", "handle".into(), handle_message(&raw.handle));
    }
    let title = plain(raw.title, PRODUCTS, at, "title", &mut d);
    if title.trim().is_empty() {
        err(&mut d, "required", "title".into(), "the title is empty".into());
    }
    check_length(&title, at, || "title".into(), &mut d);
    let short_text = |text: String, field: &str, d: &mut Diagnostics| {
        let text = plain(text, PRODUCTS, at, field, d);
        check_length(&text, at, || field.to_owned(), d);
        text
    };
    let vendor =
        raw.vendor.map(|v| short_text(v, "vendor", &mut d)).filter(|v| !v.trim().is_empty());
    let product_type = raw
        .product_type
        .map(|v| short_text(v, "product_type", &mut d))
        .filter(|v| !v.trim().is_empty());
    let tags: Vec<String> = raw
        .tags
        .into_iter()
        .enumerate()
        .map(|(i, t)| short_text(t, &format!("tags[{i}]"), &mut d))
        .filter(|t| !t.trim().is_empty())
        .collect();
    let mut categories = Vec::with_capacity(raw.categories.len());
    // A suggestion compares strings pairwise: one a line, and only among a few candidates.
    let mut hint_left = ctx.categories.len() <= MAX_HINT_CANDIDATES;
    for (i, handle) in raw.categories.iter().enumerate() {
        match ctx.categories.get(handle.as_str()) {
            Some(index) => categories.push(*index),
            None => {
                let known = if std::mem::take(&mut hint_left) {
                    in_file_order(ctx.categories)
                } else {
                    Vec::new()
                };
                let message = unknown_category(handle, &known, ctx.categories.len());
                err(&mut d, "unknown-category", format!("categories[{i}]"), message);
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
    let variants = if within_caps {
        parse_variants(raw.variants, &options, ctx, at, &mut d)
    } else {
        Vec::new()
    };
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

/// Checks each variant against the product's options; the variants with a valid price.
/// Options and their values are looked up in hash sets, so the work is linear in the
/// number of variants (and `check_counts` has capped it).
fn parse_variants(
    raw: Vec<RawVariant>,
    options: &[ProductOption],
    ctx: &ProductContext<'_>,
    at: Option<usize>,
    d: &mut Diagnostics,
) -> Vec<Variant> {
    let err = |d: &mut Diagnostics, code, field: String, message: String| {
        d.error(code, PRODUCTS, at, Some(field), message);
    };
    let value_sets: Vec<foldhash::HashSet<&str>> =
        options.iter().map(|o| o.values.iter().map(String::as_str).collect()).collect();
    let mut own_skus: foldhash::HashMap<String, usize> = foldhash::HashMap::default();
    let mut combinations: foldhash::HashMap<Vec<String>, usize> = foldhash::HashMap::default();
    let mut variants = Vec::with_capacity(raw.len());
    for (i, rv) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("variants[{i}].{name}");
        if !is_sku(&rv.sku) {
            err(
                d,
                "sku",
                field("sku"),
                format!(
                    "`{}` is not a valid SKU (1 to {MAX_SKU_CHARS} characters, no spaces)",
                    rv.sku
                ),
            );
        } else if let Some(first) = own_skus.get(&rv.sku) {
            err(
                d,
                "duplicate-sku",
                field("sku"),
                format!(
                    "`{}` is already used by another variant of this product: variants[{first}]",
                    rv.sku
                ),
            );
        } else {
            own_skus.insert(rv.sku.clone(), i);
        }
        let mut values = Vec::with_capacity(options.len());
        for key in rv.options.keys() {
            if !options.iter().any(|o| o.name == *key) {
                let hint = did_you_mean(key, options.iter().map(|o| o.name.as_str()))
                    .map(|s| format!(", did you mean `{s}`?"))
                    .unwrap_or_default();
                err(
                    d,
                    "options",
                    field(&format!("options.{key}")),
                    format!("the product has no option `{key}`{hint}"),
                );
            }
        }
        for (option, known) in options.iter().zip(&value_sets) {
            match rv.options.get(&option.name) {
                Some(value) if known.contains(value.as_str()) => values.push(value.clone()),
                Some(value) => err(
                    d,
                    "options",
                    field(&format!("options.{}", option.name)),
                    format!(
                        "`{value}` is not one of the values of `{}`: {}",
                        option.name,
                        some_values(&option.values)
                    ),
                ),
                None => err(
                    d,
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
                d,
                "duplicate-variant",
                field("options"),
                format!("`{}` is the same combination as variants[{first}]", values.join(" / ")),
            );
        }
        let price = parse_price(&rv.price, &field("price"), ctx, at, d);
        let compare_at_price = rv
            .compare_at_price
            .as_ref()
            .and_then(|p| parse_price(p, &field("compare_at_price"), ctx, at, d));
        if let (Some(p), Some(c)) = (price, compare_at_price)
            && c.minor <= p.minor
        {
            err(
                d,
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
                d,
                "gtin",
                field("gtin"),
                format!("`{gtin}` is not a GTIN-8, 12, 13 or 14 with a valid check digit"),
            );
        }
        if rv.inventory.is_some_and(|n| !(-MAX_INVENTORY..=MAX_INVENTORY).contains(&n)) {
            err(
                d,
                "inventory",
                field("inventory"),
                format!("stock is counted from -{MAX_INVENTORY} to {MAX_INVENTORY}"),
            );
        }
        if let Some(date) = &rv.availability_date
            && !is_availability_date(date)
        {
            err(
                d,
                "availability-date",
                field("availability_date"),
                format!(
                    "`{date}` is not an ISO 8601 date like `2027-03-01` or a date-time like `2027-03-01T09:00:00+01:00`"
                ),
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
                availability_date: rv.availability_date.filter(|a| is_availability_date(a)),
            });
        }
    }
    variants
}

/// `YYYY-MM-DD` (a real calendar day) or an RFC 3339 date-time.
fn is_availability_date(text: &str) -> bool {
    let date_only = text.len() == 10 && rfc3339_to_unix(&format!("{text}T00:00:00Z")).is_some();
    date_only || rfc3339_to_unix(text).is_some()
}

/// An option's values for a message: the first few, then how many more.
fn some_values(values: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = values.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if values.len() > SHOWN {
        text.push_str(&format!(" and {} more", values.len() - SHOWN));
    }
    text
}

/// Reports every list of the product longer than its cap (`limits`); whether all are
/// within them, so that the variants are worth checking one by one.
fn check_counts(raw: &RawProduct, at: Option<usize>, d: &mut Diagnostics) -> bool {
    let mut ok = true;
    let mut cap = |field: String, what: &str, given: usize, max: usize| {
        if given > max {
            d.error(
                "too-many",
                PRODUCTS,
                at,
                Some(field),
                format!("{given} {what} given, a product has at most {max}"),
            );
            ok = false;
        }
    };
    cap("variants".into(), "variants", raw.variants.len(), MAX_VARIANTS);
    cap("options".into(), "options", raw.options.len(), MAX_OPTIONS);
    for (i, option) in raw.options.iter().enumerate().take(MAX_OPTIONS) {
        let field = format!("options[{i}].values");
        cap(field, "values of an option", option.values.len(), MAX_OPTION_VALUES);
    }
    cap("tags".into(), "tags", raw.tags.len(), MAX_TAGS);
    cap("images".into(), "images", raw.images.len(), MAX_IMAGES);
    cap("categories".into(), "categories", raw.categories.len(), MAX_PRODUCT_CATEGORIES);
    ok
}

/// Reports a short text (title, vendor, tag, option name or value) over `MAX_TEXT_CHARS`.
fn check_length(
    text: &str,
    at: Option<usize>,
    field: impl FnOnce() -> String,
    d: &mut Diagnostics,
) {
    // A string of at most that many bytes has at most that many characters.
    if text.len() <= MAX_TEXT_CHARS {
        return;
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        d.error(
            "too-long",
            PRODUCTS,
            at,
            Some(field()),
            format!("{chars} characters given, at most {MAX_TEXT_CHARS} are allowed"),
        );
    }
}

/// Checks option names and values (`check_counts` reports too many); only the first
/// `MAX_OPTIONS` are kept.
fn check_options(
    raw: Vec<super::raw::RawOption>,
    at: Option<usize>,
    d: &mut Diagnostics,
) -> Vec<ProductOption> {
    let mut names = foldhash::HashSet::default();
    let mut out = Vec::with_capacity(raw.len().min(MAX_OPTIONS));
    for (i, option) in raw.into_iter().enumerate().take(MAX_OPTIONS) {
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
        check_length(&name, at, || format!("{field}.name"), d);
        let mut seen = foldhash::HashSet::default();
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
            check_length(value, at, || format!("{field}.values[{j}]"), d);
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
    raw: &super::amounts::RawAmount,
    field: &str,
    ctx: &ProductContext<'_>,
    at: Option<usize>,
    d: &mut Diagnostics,
) -> Option<Money> {
    super::amounts::parse_price(raw, ctx.currency, ctx.check_precision, (PRODUCTS, at, field), d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eur() -> Currency {
        Currency::from_code("EUR").expect("EUR")
    }

    /// The errors of a line as (code, field).
    fn problems(line: &str) -> Vec<(String, Option<String>)> {
        match parse_product_line(line, eur(), &["shirts"]) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| (d.code.to_string(), d.field.clone())).collect(),
        }
    }

    /// A product with `n` variants over one option of `n` values.
    fn with_variants(n: usize) -> serde_json::Value {
        let values: Vec<String> = (0..n).map(|i| format!("V{i}")).collect();
        let variants: Vec<serde_json::Value> = (0..n)
            .map(|i| json!({"sku": format!("SKU-{i}"), "options": {"Size": format!("V{i}")}, "price": "1.00"}))
            .collect();
        json!({"handle": "big", "title": "Big", "options": [{"name": "Size", "values": values}], "variants": variants})
    }

    #[test]
    fn missing_fields_are_named() {
        let field = |line: &str| {
            let d = parse_product_line(line, eur(), &[]).expect_err("invalid");
            d.iter().find_map(|d| d.field.clone())
        };
        assert_eq!(field(r#"{"handle": "a", "variants": []}"#).as_deref(), Some("title"));
        let line = r#"{"handle": "a", "title": "A", "variants": [{"price": "1.00"}]}"#;
        assert_eq!(field(line).as_deref(), Some("variants[0].sku"));
    }

    #[test]
    fn variants_are_capped() {
        let product =
            parse_product_line(&with_variants(MAX_VARIANTS).to_string(), eur(), &[]).expect("ok");
        assert_eq!(product.variants.len(), MAX_VARIANTS);
        let mut over = with_variants(MAX_VARIANTS + 1);
        over["options"][0]["values"].as_array_mut().expect("values").pop();
        assert_eq!(
            problems(&over.to_string()),
            vec![("too-many".to_owned(), Some("variants".to_owned()))],
            "the first problem, and the only one"
        );
    }

    /// 80,000 variants of one option with as many values: refused at once, without the
    /// per-variant checks (that were quadratic in the values).
    #[test]
    fn a_huge_product_is_refused_quickly() {
        let line = with_variants(80_000).to_string();
        let started = std::time::Instant::now();
        let found = problems(&line);
        assert!(found.contains(&("too-many".to_owned(), Some("variants".to_owned()))), "{found:?}");
        assert!(found.contains(&("too-many".to_owned(), Some("options[0].values".to_owned()))));
        assert!(found.len() < 5, "{found:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }

    #[test]
    fn counts_and_lengths_are_capped() {
        let base =
            json!({"handle": "a", "title": "A", "variants": [{"sku": "A", "price": "1.00"}]});
        let with = |key: &str, value: serde_json::Value| {
            let mut v = base.clone();
            v[key] = value;
            problems(&v.to_string())
        };
        let one = |code: &str, field: &str| vec![(code.to_owned(), Some(field.to_owned()))];
        assert_eq!(with("title", json!("t".repeat(256))), one("too-long", "title"));
        assert!(with("title", json!("é".repeat(255))).is_empty(), "characters, not bytes");
        assert_eq!(with("vendor", json!("v".repeat(300))), one("too-long", "vendor"));
        assert_eq!(with("tags", json!(["ok", "t".repeat(256)])), one("too-long", "tags[1]"));
        assert_eq!(with("tags", json!(vec!["t"; MAX_TAGS + 1])), one("too-many", "tags"));
        assert_eq!(
            with("categories", json!(vec!["shirts"; MAX_PRODUCT_CATEGORIES + 1])),
            one("too-many", "categories")
        );
        let options = json!([{"name": "A", "values": ["1"]}, {"name": "B", "values": ["1"]},
            {"name": "C", "values": ["1"]}, {"name": "D", "values": ["1"]}]);
        assert!(with("options", options).contains(&("too-many".into(), Some("options".into()))));
        let long_value = json!([{"name": "Size", "values": ["x".repeat(256)]}]);
        assert!(
            with("options", long_value)
                .contains(&("too-long".into(), Some("options[0].values[0]".into())))
        );
    }

    #[test]
    fn a_sku_twice_in_one_product_is_refused() {
        let line = json!({"handle": "a", "title": "A",
            "options": [{"name": "Size", "values": ["S", "M"]}],
            "variants": [{"sku": "A", "options": {"Size": "S"}, "price": "1.00"},
                         {"sku": "A", "options": {"Size": "M"}, "price": "1.00"}]});
        assert_eq!(
            problems(&line.to_string()),
            vec![("duplicate-sku".to_owned(), Some("variants[1].sku".to_owned()))]
        );
    }

    #[test]
    fn a_wrong_value_message_lists_a_few_values() {
        let mut line = with_variants(300);
        line["variants"][0]["options"]["Size"] = json!("nope");
        let d = parse_product_line(&line.to_string(), eur(), &[]).expect_err("invalid");
        let message = &d.iter().next().expect("a problem").message;
        assert!(
            message.ends_with("V0, V1, V2, V3, V4, V5, V6, V7, V8, V9 and 290 more"),
            "{message}"
        );
    }

    #[test]
    fn availability_dates_are_iso_8601_dates_or_date_times() {
        let line = |date: &str| {
            json!({"handle": "a", "title": "A", "variants": [
                {"sku": "A-1", "price": "1.00", "availability_date": date}
            ]})
            .to_string()
        };
        for good in
            ["2027-03-01", "2028-02-29", "2027-03-01T09:00:00+01:00", "2027-03-01T09:00:00Z"]
        {
            let p = parse_product_line(&line(good), eur(), &[]).expect(good);
            assert_eq!(p.variants[0].availability_date.as_deref(), Some(good));
        }
        for bad in ["2027-02-29", "2027-13-01", "01/03/2027", "2027-03-01T09:00", "soon", ""] {
            assert_eq!(
                problems(&line(bad)),
                vec![(
                    "availability-date".to_owned(),
                    Some("variants[0].availability_date".into())
                )],
                "{bad}"
            );
        }
    }
}
