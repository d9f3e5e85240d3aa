//! End-to-end tests of the storefront generator through its public interface: the real
//! `aurelio` binary builds catalog directories into temporary output directories, and the
//! tests read the HTML, JSON-LD, sitemap and manifest it wrote. Expectations are derived
//! from the catalog files themselves (products.jsonl, collections.json, categories.json),
//! never copied from the output.

mod common;

use common::*;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// The demo store
// ---------------------------------------------------------------------------------------

/// The demo store built into a temporary directory, with its source data.
struct Demo {
    _out: tempfile::TempDir,
    site: Site,
    products: Vec<SourceProduct>,
    store: Value,
    /// `base_url` of store.json, without trailing slash.
    base: String,
}

impl Demo {
    fn active(&self) -> impl Iterator<Item = &SourceProduct> {
        self.products.iter().filter(|p| p.is_active())
    }

    fn inactive(&self) -> impl Iterator<Item = &SourceProduct> {
        self.products.iter().filter(|p| !p.is_active())
    }

    fn absolute(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn store_name(&self) -> &str {
        self.store["name"].as_str().expect("store name")
    }
}

#[track_caller]
fn build_demo() -> Demo {
    let out = tempdir();
    let dir = out.path().join("site");
    build(&demo_store(), &dir);
    let store = read_json(&demo_store().join("store.json"));
    // The price expectations below format EUR for en-IE; make that assumption visible.
    assert_eq!(store["currency"], "EUR", "the demo store is expected to sell in EUR");
    assert_eq!(store["locale"], "en-IE", "the demo store is expected to use en-IE");
    let base = store["base_url"].as_str().expect("base_url").trim_end_matches('/').to_owned();
    Demo { _out: out, site: Site::new(&dir), products: read_products(&demo_store()), store, base }
}

#[test]
fn demo_store_writes_a_page_for_every_active_product_and_no_other() {
    let demo = build_demo();
    let active: BTreeSet<String> = demo.active().map(|p| p.handle().to_owned()).collect();
    assert!(!active.is_empty(), "the demo store has active products");
    for handle in &active {
        assert!(
            demo.site.exists(&format!("products/{handle}/")),
            "no page for active product `{handle}`"
        );
    }
    let written: BTreeSet<String> = demo
        .site
        .file_list()
        .iter()
        .filter_map(|f| f.strip_prefix("products/")?.strip_suffix("/index.html").map(str::to_owned))
        .collect();
    assert_eq!(written, active, "product pages written vs. active products in products.jsonl");
}

#[test]
fn draft_and_archived_products_appear_nowhere() {
    let demo = build_demo();
    let inactive: Vec<&SourceProduct> = demo.inactive().collect();
    let statuses: BTreeSet<&str> = inactive.iter().filter_map(|p| p.field("status")).collect();
    assert!(
        statuses.contains("draft") && statuses.contains("archived"),
        "the demo store should have draft and archived products to test, has {statuses:?}"
    );
    let files = demo.site.files();
    let mut problems = Problems::default();
    for p in &inactive {
        problems.check(!demo.site.root.join(format!("products/{}", p.handle())).exists(), || {
            format!("`{}` ({:?}) has a products/ directory", p.handle(), p.field("status"))
        });
        let url = format!("/products/{}/", p.handle());
        let skus: Vec<&str> = p.variants().iter().filter_map(|v| v["sku"].as_str()).collect();
        for (file, bytes) in &files {
            let is_text = [".html", ".xml", ".json", ".txt"].iter().any(|e| file.ends_with(e));
            if !is_text {
                continue;
            }
            let text = String::from_utf8_lossy(bytes);
            problems.check(!text.contains(&url), || {
                format!("`{file}` mentions inactive product URL `{url}`")
            });
            for sku in &skus {
                problems.check(!text.contains(sku), || {
                    format!("`{file}` mentions SKU `{sku}` of inactive `{}`", p.handle())
                });
            }
        }
    }
    problems.assert_none("inactive products leaked into the site");

    // The search index holds exactly the active products.
    let index_file = demo.site.find_one("assets/search-index.", ".json");
    let index: Value =
        serde_json::from_str(&demo.site.read(&index_file)).expect("search index is JSON");
    let indexed: BTreeSet<String> = index
        .as_array()
        .expect("search index is a list")
        .iter()
        .filter_map(|r| r["u"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = demo.active().map(|p| format!("/{}", p.path())).collect();
    assert_eq!(indexed, expected, "search index URLs vs. active products");
    let inactive_titles: HashSet<&str> = inactive.iter().map(|p| p.title()).collect();
    for record in index.as_array().into_iter().flatten() {
        let title = record["t"].as_str().unwrap_or_default();
        assert!(!inactive_titles.contains(title), "search index has inactive product `{title}`");
    }

    // Nor are they in any listing.
    for (file, _, doc) in demo.site.html_pages() {
        for href in card_links(&doc) {
            assert!(
                expected.contains(&href),
                "`{file}` has a product card for `{href}`, which is not active"
            );
        }
    }
}

#[test]
fn product_pages_show_title_heading_and_lowest_formatted_price() {
    let demo = build_demo();
    for p in demo.active() {
        let doc = demo.site.page(&p.path());
        let handle = p.handle();
        let title = p
            .seo_title()
            .map_or_else(|| format!("{} – {}", p.title(), demo.store_name()), str::to_owned);
        assert_eq!(text(one(&doc, "head > title")), title, "<title> of `{handle}`");
        assert_eq!(text(one(&doc, "main h1")), p.title(), "h1 of `{handle}`");
        let price = one(&doc, ".product-price [data-price-amount]");
        assert_eq!(
            text(price),
            format_eur_en_ie(p.min_price()),
            "price of `{handle}` (its cheapest variant)"
        );
        let shows_from = !select(&doc, ".product-price .price-from").is_empty();
        assert_eq!(
            shows_from,
            p.min_price() != p.max_price(),
            "`From` before the price of `{handle}`"
        );
    }
    // The brief's own example, derived rather than assumed: a product whose variants all
    // cost 119.00 shows `€119.00`.
    let one_price = demo.active().find(|p| p.min_price() == 11_900 && p.max_price() == 11_900);
    if let Some(p) = one_price {
        let doc = demo.site.page(&p.path());
        assert_eq!(text(one(&doc, ".product-price [data-price-amount]")), "€119.00");
    }
}

#[test]
fn product_variants_show_availability_from_inventory_and_policy() {
    let demo = build_demo();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for p in demo.active() {
        let doc = demo.site.page(&p.path());
        let handle = p.handle();
        // The product JSON the storefront script reads: one record per variant.
        let json: Value =
            serde_json::from_str(&one(&doc, "script[data-product-json]").inner_html())
                .unwrap_or_else(|e| panic!("product JSON of `{handle}` does not parse: {e}"));
        let records =
            json.as_array().unwrap_or_else(|| panic!("product JSON of `{handle}` is not a list"));
        assert_eq!(records.len(), p.variants().len(), "product JSON records of `{handle}`");
        for (record, v) in records.iter().zip(p.variants()) {
            let sku = v["sku"].as_str().expect("sku");
            let expected = expected_availability(v);
            *seen.entry(expected).or_default() += 1;
            assert_eq!(record["sku"], sku, "variant order in the product JSON of `{handle}`");
            assert_eq!(
                record["availability"], expected,
                "availability of `{sku}` in the product JSON"
            );
            assert_eq!(
                record["available"],
                expected != "out_of_stock",
                "`{sku}` can be bought unless sold out"
            );
        }
        // The variant picker (a product with one variant needs none).
        let options = select(&doc, "select[data-variant-select] option");
        if p.variants().len() > 1 || !options.is_empty() {
            assert_eq!(options.len(), p.variants().len(), "variant options of `{handle}`");
        }
        for (option, v) in options.iter().zip(p.variants()) {
            let sku = v["sku"].as_str().expect("sku");
            let expected = expected_availability(v);
            assert_eq!(attr(*option, "value"), sku, "variant order of `{handle}`");
            assert_eq!(attr(*option, "data-availability"), expected, "availability of `{sku}`");
            let disabled = option.value().attr("disabled").is_some();
            assert_eq!(
                disabled,
                expected == "out_of_stock",
                "`{sku}` is disabled exactly when sold out"
            );
            let label = text(*option);
            assert_eq!(
                label.contains("(sold out)"),
                expected == "out_of_stock",
                "label of `{sku}`: {label}"
            );
            assert_eq!(
                label.contains("(backorder)"),
                expected == "backorder",
                "label of `{sku}`: {label}"
            );
            assert!(
                label.contains(&format_eur_en_ie(variant_price(v))),
                "label of `{sku}` shows its price: {label}"
            );
        }
        // The product is as available as its most available variant.
        let rank = |a: &str| {
            ["in_stock", "backorder", "out_of_stock"].iter().position(|x| *x == a).unwrap_or(3)
        };
        let product = p
            .variants()
            .iter()
            .map(expected_availability)
            .min_by_key(|a| rank(a))
            .unwrap_or("out_of_stock");
        assert_eq!(
            attr(one(&doc, ".product-availability"), "data-availability"),
            product,
            "`{handle}`"
        );
        let button = one(&doc, "button[data-add-to-cart]");
        assert_eq!(
            button.value().attr("disabled").is_some(),
            product == "out_of_stock",
            "add to cart of `{handle}`"
        );
    }
    for state in ["in_stock", "backorder", "out_of_stock"] {
        assert!(
            seen.contains_key(state),
            "the demo store should have a `{state}` variant to test; saw {seen:?}"
        );
    }
    // Untracked stock (no `inventory`) must have been among the in-stock ones.
    let untracked =
        demo.active().flat_map(|p| p.variants()).filter(|v| v.get("inventory").is_none()).count();
    assert!(untracked > 0, "the demo store should have variants without inventory tracking");
}

#[test]
fn product_pages_have_canonical_url_and_open_graph_tags() {
    let demo = build_demo();
    for p in demo.active() {
        let doc = demo.site.page(&p.path());
        let handle = p.handle();
        let url = demo.absolute(&p.path());
        assert_eq!(canonical(&doc), url, "canonical of `{handle}`");
        assert_eq!(
            meta_property(&doc, "og:url").as_deref(),
            Some(url.as_str()),
            "og:url of `{handle}`"
        );
        assert_eq!(
            meta_property(&doc, "og:type").as_deref(),
            Some("product"),
            "og:type of `{handle}`"
        );
        let title = text(one(&doc, "head > title"));
        assert_eq!(meta_property(&doc, "og:title"), Some(title), "og:title of `{handle}`");
        let has_images = p.json["images"].as_array().is_some_and(|i| !i.is_empty());
        let image = meta_property(&doc, "og:image");
        assert_eq!(image.is_some(), has_images, "og:image of `{handle}`");
        if let Some(image) = image {
            let rel = image.strip_prefix(&format!("{}/", demo.base)).unwrap_or_else(|| {
                panic!("og:image of `{handle}` is not an absolute URL under {}: {image}", demo.base)
            });
            assert!(
                rel.starts_with("images/") && demo.site.exists(rel),
                "og:image of `{handle}` is a published image: {image}"
            );
        }
    }
}

#[test]
fn every_image_declares_its_real_width_height_and_a_srcset() {
    let demo = build_demo();
    let mut problems = Problems::default();
    for (file, _, doc) in demo.site.html_pages() {
        for img in select(&doc, "img") {
            let src = img.value().attr("src").unwrap_or("").to_owned();
            let dim = |name: &str| {
                img.value().attr(name).and_then(|v| v.parse::<u32>().ok()).filter(|n| *n > 0)
            };
            let (width, height) = (dim("width"), dim("height"));
            problems.check(width.is_some(), || format!("<img src={src}> has no valid width"));
            problems.check(height.is_some(), || format!("<img src={src}> has no valid height"));
            let srcset = img.value().attr("srcset").unwrap_or("").trim().to_owned();
            problems.check(!srcset.is_empty(), || format!("<img src={src}> has no srcset"));
            let Some(rel) = src.strip_prefix('/') else {
                problems.push(format!("<img src={src}> in `{file}` is not a root-relative URL"));
                continue;
            };
            match std::fs::read(demo.site.root.join(rel)) {
                Ok(bytes) => {
                    let real = image_size(&bytes);
                    problems.check(real.is_some() && real == width.zip(height), || {
                        format!(
                            "<img src={src}> declares {width:?}×{height:?}, the file is {real:?}"
                        )
                    });
                }
                Err(_) => problems.push(format!("<img src={src}> in `{file}` points at no file")),
            }
            for candidate in srcset.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let mut parts = candidate.split_whitespace();
                let url = parts.next().unwrap_or_default();
                problems.check(demo.site.exists(url.trim_start_matches('/')), || {
                    format!("srcset of {src}: `{url}` points at no file")
                });
                if url == src {
                    let descriptor = parts.next().unwrap_or_default();
                    problems.check(width.is_some_and(|w| descriptor == format!("{w}w")), || {
                        format!(
                            "srcset of {src}: `{candidate}` should describe the width {width:?}"
                        )
                    });
                }
            }
        }
    }
    problems.assert_none("images without correct dimensions or srcset");
}

#[test]
fn product_json_ld_has_one_offer_per_variant_with_price_currency_and_availability() {
    let demo = build_demo();
    let currency = demo.store["currency"].as_str().expect("currency");
    for p in demo.active() {
        let doc = demo.site.page(&p.path());
        let handle = p.handle();
        let products = json_ld_of_type(&doc, "Product");
        assert_eq!(products.len(), 1, "one Product JSON-LD on `{handle}`");
        let ld = &products[0];
        assert_eq!(ld["@context"], "https://schema.org", "`{handle}`");
        assert_eq!(ld["name"], p.title(), "name of `{handle}`");
        assert_eq!(ld["url"], demo.absolute(&p.path()), "url of `{handle}`");
        let offers = ld["offers"]
            .as_array()
            .unwrap_or_else(|| panic!("`{handle}` has no offers list: {ld}"));
        assert_eq!(offers.len(), p.variants().len(), "one offer per variant of `{handle}`");
        for (offer, v) in offers.iter().zip(p.variants()) {
            let sku = v["sku"].as_str().expect("sku");
            assert_eq!(offer["@type"], "Offer", "`{sku}`");
            assert_eq!(offer["sku"], sku, "offer order of `{handle}`");
            // The catalog's decimal string, padded to the currency's two decimals ("14" is 14.00).
            assert_eq!(
                offer["price"],
                decimal(variant_price(v)),
                "price of `{sku}` (catalog: {})",
                v["price"]
            );
            assert_eq!(offer["priceCurrency"], currency, "currency of `{sku}`");
            assert_eq!(
                offer["availability"],
                schema_org_availability(expected_availability(v)),
                "availability of `{sku}`"
            );
        }
        for image in ld["image"].as_array().into_iter().flatten() {
            let image = image.as_str().unwrap_or_default();
            assert!(
                image.starts_with(&format!("{}/images/", demo.base)),
                "JSON-LD image of `{handle}` is absolute: {image}"
            );
        }
    }
}

#[test]
fn product_breadcrumb_json_ld_follows_the_category_path_and_ends_with_the_product() {
    let demo = build_demo();
    let categories = read_categories(&demo_store());
    for p in demo.active() {
        let doc = demo.site.page(&p.path());
        let handle = p.handle();
        let crumbs = json_ld_of_type(&doc, "BreadcrumbList");
        assert_eq!(crumbs.len(), 1, "one BreadcrumbList on `{handle}`");
        let items = crumbs[0]["itemListElement"].as_array().expect("itemListElement");
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item["@type"], "ListItem", "`{handle}`");
            assert_eq!(item["position"], i + 1, "positions of `{handle}` count from 1");
        }
        let last = items.last().expect("a breadcrumb has items");
        assert_eq!(last["name"], p.title(), "last breadcrumb of `{handle}`");
        assert_eq!(last["item"], demo.absolute(&p.path()), "last breadcrumb of `{handle}`");
        assert_eq!(
            items[0]["item"],
            demo.absolute(""),
            "first breadcrumb of `{handle}` is the home page"
        );
        // Between them: the first category and its ancestors, root first.
        let mut chain = Vec::new();
        let mut at =
            p.categories().first().and_then(|h| categories.iter().position(|c| c.handle == *h));
        while let Some(i) = at {
            chain.push(i);
            at = categories[i].parent;
        }
        chain.reverse();
        let middle: Vec<(String, String)> = items[1..items.len() - 1]
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap_or_default().to_owned(),
                    i["item"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = chain
            .iter()
            .map(|&i| (categories[i].title.clone(), demo.absolute(&categories[i].site_path())))
            .collect();
        assert_eq!(middle, expected, "category trail of `{handle}`");
    }
}

#[test]
fn every_json_ld_block_on_every_page_parses() {
    let demo = build_demo();
    let mut blocks = 0;
    for (file, _, doc) in demo.site.html_pages() {
        for source in json_ld_sources(&doc) {
            let value: Value = serde_json::from_str(&source)
                .unwrap_or_else(|e| panic!("JSON-LD in `{file}` does not parse ({e}): {source}"));
            assert_eq!(value["@context"], "https://schema.org", "JSON-LD in `{file}`");
            assert!(value["@type"].is_string(), "JSON-LD in `{file}` has a type");
            blocks += 1;
        }
    }
    assert!(blocks > 0, "the demo store has JSON-LD");
}

// ---------------------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------------------

/// Whether a rule condition of collections.json matches a product (catalog-format.md).
fn condition_matches(condition: &Value, p: &SourceProduct, categories: &[SourceCategory]) -> bool {
    let same =
        |a: &str, b: &Value| b.as_str().is_some_and(|b| a.to_lowercase() == b.to_lowercase());
    if let Some(tag) = condition.get("tag") {
        return p.tags().iter().any(|t| same(t, tag));
    }
    if let Some(vendor) = condition.get("vendor") {
        return p.field("vendor").is_some_and(|v| same(v, vendor));
    }
    if let Some(kind) = condition.get("product_type") {
        return p.field("product_type").is_some_and(|v| same(v, kind));
    }
    if let Some(handle) = condition.get("category").and_then(Value::as_str) {
        let root = categories
            .iter()
            .position(|c| c.handle == handle)
            .expect("rule names a known category");
        let handles: Vec<&str> = category_and_descendants(categories, root)
            .into_iter()
            .map(|i| categories[i].handle.as_str())
            .collect();
        return p.categories().iter().any(|c| handles.contains(c));
    }
    if let Some(range) = condition.get("price") {
        let price = p.min_price();
        let min = range.get("min").and_then(Value::as_str).map(cents);
        let max = range.get("max").and_then(Value::as_str).map(cents);
        return min.is_none_or(|m| price >= m) && max.is_none_or(|m| price <= m);
    }
    panic!("unknown rule condition {condition}");
}

/// The product site paths a collection of collections.json lists, in display order.
fn expected_collection(
    collection: &Value,
    products: &[SourceProduct],
    categories: &[SourceCategory],
) -> Vec<String> {
    let active: Vec<&SourceProduct> = products.iter().filter(|p| p.is_active()).collect();
    let (mut members, default_sort): (Vec<&SourceProduct>, &str) =
        match collection["products"].as_array() {
            Some(list) => {
                let mut seen = HashSet::new();
                let members = list
                    .iter()
                    .filter_map(|h| active.iter().find(|p| Some(p.handle()) == h.as_str()).copied())
                    .filter(|p| seen.insert(p.handle()))
                    .collect();
                (members, "manual")
            }
            None => {
                let rules = &collection["rules"];
                let conditions = rules["conditions"].as_array().expect("rule conditions");
                let any = rules["match"] == "any";
                let members = active
                    .iter()
                    .copied()
                    .filter(|p| {
                        let mut results =
                            conditions.iter().map(|c| condition_matches(c, p, categories));
                        if any { results.any(|m| m) } else { results.all(|m| m) }
                    })
                    .collect();
                (members, "title")
            }
        };
    match collection["sort"].as_str().unwrap_or(default_sort) {
        "manual" => {}
        "title" => members.sort_by_key(|p| (p.title().to_lowercase(), p.handle().to_owned())),
        "price-ascending" => members.sort_by_key(|p| (p.min_price(), p.handle().to_owned())),
        "price-descending" => {
            members.sort_by_key(|p| (Reverse(p.min_price()), p.handle().to_owned()));
        }
        "newest" => members.sort_by_key(|p| (Reverse(p.created_unix()), p.handle().to_owned())),
        other => panic!("unknown sort `{other}`"),
    }
    members.into_iter().map(|p| format!("/{}", p.path())).collect()
}

fn demo_collections() -> Vec<Value> {
    read_json(&demo_store().join("collections.json"))
        .as_array()
        .expect("collections.json is a list")
        .clone()
}

#[track_caller]
fn demo_collection(handle: &str) -> Value {
    demo_collections()
        .into_iter()
        .find(|c| c["handle"] == handle)
        .unwrap_or_else(|| panic!("no collection `{handle}`"))
}

/// The product cards of all pages of a listing, page by page.
fn listing_cards(site: &Site, base: &str) -> Vec<Vec<String>> {
    site.listing_pages(base).iter().map(|(_, doc)| card_links(doc)).collect()
}

#[test]
fn large_collection_shows_24_cards_per_page_and_the_rest_on_the_last() {
    let demo = build_demo();
    let categories = read_categories(&demo_store());
    let expected =
        expected_collection(&demo_collection("all-weather"), &demo.products, &categories);
    assert!(
        expected.len() > PAGE_SIZE,
        "`all-weather` should need several pages, it has {} products",
        expected.len()
    );
    let base = "collections/all-weather/";
    assert!(demo.site.exists("collections/all-weather/page/2/"), "page 2 of `all-weather` exists");
    let pages = listing_cards(&demo.site, base);
    assert_eq!(
        pages.len(),
        pages_for(expected.len()),
        "pages of `all-weather` for {} products",
        expected.len()
    );
    for (n, cards) in pages.iter().enumerate() {
        let want = if n + 1 < pages.len() {
            PAGE_SIZE
        } else {
            expected.len() - PAGE_SIZE * (pages.len() - 1)
        };
        assert_eq!(cards.len(), want, "cards on page {} of `all-weather`", n + 1);
    }
    assert_eq!(pages[0].len(), PAGE_SIZE, "page 1 shows a full page");
    let total: usize = pages.iter().map(Vec::len).sum();
    assert_eq!(total, expected.len(), "cards over all pages = collection size");
    assert_eq!(pages.concat(), expected, "`all-weather` lists its matching products, newest first");
}

#[test]
fn paginated_collection_pages_link_prev_next_and_have_their_own_canonical_url() {
    let demo = build_demo();
    let base = "collections/all-weather/";
    let pages = demo.site.listing_pages(base);
    assert!(pages.len() >= 2, "`all-weather` has several pages");
    let paths: Vec<String> = pages.iter().map(|(p, _)| p.clone()).collect();
    for (i, (path, doc)) in pages.iter().enumerate() {
        assert_eq!(canonical(doc), demo.absolute(path), "canonical of `{path}`");
        assert_eq!(meta_property(doc, "og:url"), Some(demo.absolute(path)), "og:url of `{path}`");
        let head_link = |rel: &str| {
            select(doc, &format!(r#"head link[rel="{rel}"]"#))
                .first()
                .map(|l| attr(*l, "href").to_owned())
        };
        let nav_link = |rel: &str| {
            select(doc, &format!(r#"nav.pagination a[rel="{rel}"]"#))
                .first()
                .map(|l| attr(*l, "href").to_owned())
        };
        let prev = i.checked_sub(1).map(|j| &paths[j]);
        let next = paths.get(i + 1);
        assert_eq!(
            head_link("prev"),
            prev.map(|p| demo.absolute(p)),
            "<link rel=prev> of `{path}`"
        );
        assert_eq!(
            head_link("next"),
            next.map(|p| demo.absolute(p)),
            "<link rel=next> of `{path}`"
        );
        assert_eq!(
            nav_link("prev"),
            prev.map(|p| format!("/{p}")),
            "pagination `Previous` of `{path}`"
        );
        assert_eq!(
            nav_link("next"),
            next.map(|p| format!("/{p}")),
            "pagination `Next` of `{path}`"
        );
    }
    assert_eq!(paths[1], "collections/all-weather/page/2/");
    let after_last = format!("{base}page/{}/", pages.len() + 1);
    assert!(!demo.site.exists(&after_last), "no page after the last: `{after_last}`");
    assert!(
        !demo.site.exists("collections/all-weather/page/1/"),
        "page 1 lives at the collection URL only"
    );
}

#[test]
fn manual_collections_keep_the_order_of_collections_json() {
    let demo = build_demo();
    let manual: Vec<Value> =
        demo_collections().into_iter().filter(|c| c["products"].is_array()).collect();
    assert!(!manual.is_empty(), "the demo store has manual collections");
    for collection in manual {
        let handle = collection["handle"].as_str().expect("handle");
        let sort = collection["sort"].as_str().unwrap_or("manual");
        if sort != "manual" {
            continue;
        }
        let listed: Vec<String> = collection["products"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|h| demo.products.iter().any(|p| p.handle() == *h && p.is_active()))
            .map(|h| format!("/products/{h}/"))
            .collect();
        let shown = listing_cards(&demo.site, &format!("collections/{handle}/")).concat();
        assert_eq!(shown, listed, "`{handle}` shows its products in the order of collections.json");
    }
}

#[test]
fn under_50_lists_only_products_up_to_49_99_in_ascending_price() {
    let demo = build_demo();
    let collection = demo_collection("under-50");
    assert_eq!(collection["sort"], "price-ascending");
    let max = collection["rules"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| c.pointer("/price/max").and_then(Value::as_str))
        .map(cents)
        .expect("under-50 has a price.max condition");
    assert_eq!(max, 4_999, "under-50 is bounded at 49.99");
    let mut expected: Vec<&SourceProduct> =
        demo.active().filter(|p| p.min_price() <= max).collect();
    expected.sort_by_key(|p| (p.min_price(), p.handle().to_owned()));
    assert!(!expected.is_empty(), "the demo store has products under 49.99");

    let pages = demo.site.listing_pages("collections/under-50/");
    let cards: Vec<_> = pages
        .iter()
        .flat_map(|(_, doc)| select(doc, "main ul.product-grid > li.product-card"))
        .collect();
    let hrefs: Vec<String> =
        cards.iter().map(|c| attr(one_in(*c, "a"), "href").to_owned()).collect();
    let want: Vec<String> = expected.iter().map(|p| format!("/{}", p.path())).collect();
    assert_eq!(
        hrefs, want,
        "under-50: every active product with a lowest price ≤ 49.99, cheapest first"
    );
    let shown: Vec<String> = cards.iter().map(|c| text(one_in(*c, ".price-amount"))).collect();
    let want_prices: Vec<String> =
        expected.iter().map(|p| format_eur_en_ie(p.min_price())).collect();
    assert_eq!(shown, want_prices, "under-50 card prices");
}

#[test]
fn every_collection_lists_exactly_its_products_in_its_sort_order() {
    let demo = build_demo();
    let categories = read_categories(&demo_store());
    let collections = demo_collections();
    for collection in &collections {
        let handle = collection["handle"].as_str().expect("handle");
        let expected = expected_collection(collection, &demo.products, &categories);
        let pages = listing_cards(&demo.site, &format!("collections/{handle}/"));
        assert_eq!(pages.len(), pages_for(expected.len()), "pages of `{handle}`");
        assert_eq!(pages.concat(), expected, "products of `{handle}`");
    }
    // The collections index links every collection.
    let index = demo.site.page("collections/");
    let links: BTreeSet<String> =
        select(&index, "main .tile a").into_iter().map(|a| attr(a, "href").to_owned()).collect();
    let want: BTreeSet<String> = collections
        .iter()
        .map(|c| format!("/collections/{}/", c["handle"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(links, want, "collections/ links every collection");
}

// ---------------------------------------------------------------------------------------
// Categories
// ---------------------------------------------------------------------------------------

#[test]
fn every_category_has_a_page_at_its_tree_path() {
    let demo = build_demo();
    let categories = read_categories(&demo_store());
    assert!(categories.iter().any(|c| c.parent.is_some()), "the demo store has nested categories");
    for c in &categories {
        let path = c.site_path();
        assert!(demo.site.exists(&path), "category `{}` has no page at `{path}`", c.handle);
        let doc = demo.site.page(&path);
        assert_eq!(text(one(&doc, "main h1")), c.title, "heading of `{path}`");
        assert_eq!(canonical(&doc), demo.absolute(&path), "canonical of `{path}`");
        // `categories/<parent>/<child>/`: the URL is the handle path from the root.
        match c.parent {
            Some(p) => assert_eq!(
                path,
                format!("{}{}/", categories[p].site_path(), c.handle),
                "URL of `{}`",
                c.handle
            ),
            None => assert_eq!(path, format!("categories/{}/", c.handle), "URL of `{}`", c.handle),
        }
    }
    // Every category page is linked from somewhere: top-level ones from the main navigation.
    let home = demo.site.page("");
    let nav: Vec<String> =
        select(&home, "nav.main-nav a").into_iter().map(|a| attr(a, "href").to_owned()).collect();
    for c in categories.iter().filter(|c| c.parent.is_none()) {
        assert!(
            nav.contains(&format!("/{}", c.site_path())),
            "main navigation links `{}`: {nav:?}",
            c.handle
        );
    }
}

#[test]
fn parent_category_lists_the_products_of_its_children() {
    let demo = build_demo();
    let categories = read_categories(&demo_store());
    let shown = |c: &SourceCategory| -> BTreeSet<String> {
        listing_cards(&demo.site, &c.site_path()).concat().into_iter().collect()
    };
    let mut parents = 0;
    for (i, parent) in categories.iter().enumerate() {
        let children: Vec<&SourceCategory> =
            categories.iter().filter(|c| c.parent == Some(i)).collect();
        if children.is_empty() {
            continue;
        }
        parents += 1;
        let on_parent = shown(parent);
        let mut union = BTreeSet::new();
        for child in &children {
            let on_child = shown(child);
            assert!(
                on_child.is_subset(&on_parent),
                "`{}` misses products of its child `{}`: {:?}",
                parent.handle,
                child.handle,
                on_child.difference(&on_parent).collect::<Vec<_>>()
            );
            union.extend(on_child);
        }
        let own: BTreeSet<String> = demo
            .active()
            .filter(|p| p.categories().contains(&parent.handle.as_str()))
            .map(|p| format!("/{}", p.path()))
            .collect();
        union.extend(own);
        assert_eq!(
            on_parent, union,
            "`{}` lists its own products and its children's, nothing else",
            parent.handle
        );
        // And links its children.
        let doc = demo.site.page(&parent.site_path());
        let links: Vec<String> = select(&doc, "ul.subcategories a")
            .into_iter()
            .map(|a| attr(a, "href").to_owned())
            .collect();
        let want: Vec<String> = children.iter().map(|c| format!("/{}", c.site_path())).collect();
        assert_eq!(links, want, "subcategory links of `{}`", parent.handle);
    }
    assert!(parents > 0, "the demo store has parent categories");
}

#[test]
fn category_pages_list_their_products_sorted_by_title() {
    let demo = build_demo();
    let categories = read_categories(&demo_store());
    for (i, c) in categories.iter().enumerate() {
        let expected = expected_category_members(&demo.products, &categories, i);
        let pages = listing_cards(&demo.site, &c.site_path());
        assert_eq!(pages.len(), pages_for(expected.len()), "pages of category `{}`", c.handle);
        assert_eq!(pages.concat(), expected, "products of category `{}`", c.handle);
    }
}

// ---------------------------------------------------------------------------------------
// Sitemap and robots.txt
// ---------------------------------------------------------------------------------------

/// Absolute URLs of every `index.html` except the cart and search pages.
fn indexable_urls(site: &Site, base: &str) -> BTreeSet<String> {
    site.html_files()
        .into_iter()
        .filter(|f| f == "index.html" || f.ends_with("/index.html"))
        .filter(|f| f != "cart/index.html" && f != "search/index.html")
        .map(|f| format!("{base}/{}", Site::path_of(&f)))
        .collect()
}

#[test]
fn sitemap_lists_every_indexable_page_as_an_absolute_url_and_nothing_else() {
    let demo = build_demo();
    let locs = sitemap_locs(&demo.site.read("sitemap.xml"));
    let unique: BTreeSet<String> = locs.iter().cloned().collect();
    assert_eq!(unique.len(), locs.len(), "the sitemap lists each URL once");
    let expected = indexable_urls(&demo.site, &demo.base);
    let missing: Vec<_> = expected.difference(&unique).collect();
    let extra: Vec<_> = unique.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "sitemap.xml\n  missing: {missing:?}\n  extra: {extra:?}"
    );
    for (path, _) in [("cart/", ()), ("search/", ()), ("404.html", ())] {
        let doc = demo.site.page(path);
        let robots = select(&doc, r#"meta[name="robots"]"#);
        assert!(
            robots.iter().any(|m| attr(*m, "content").contains("noindex")),
            "`{path}` is marked noindex"
        );
    }
}

#[test]
fn robots_txt_points_at_the_sitemap() {
    let demo = build_demo();
    let robots = demo.site.read("robots.txt");
    let sitemap = format!("Sitemap: {}", demo.absolute("sitemap.xml"));
    assert!(robots.lines().any(|l| l.trim() == sitemap), "robots.txt has `{sitemap}`:\n{robots}");
}

// ---------------------------------------------------------------------------------------
// Base URL with a path
// ---------------------------------------------------------------------------------------

const SHOP_BASE: &str = "http://127.0.0.1:9999/shop";

#[test]
fn base_url_with_a_path_puts_every_internal_link_under_it() {
    let out = tempdir();
    build_with_base_url(&demo_store(), out.path(), SHOP_BASE);
    let site = Site::new(out.path());
    let origin = "http://127.0.0.1:9999";
    let store = read_json(&demo_store().join("store.json"));
    let store_base = store["base_url"].as_str().expect("base_url").trim_end_matches('/').to_owned();
    let mut problems = Problems::default();
    let mut checked = 0;
    for (file, raw, doc) in site.html_pages() {
        for url in links(&doc) {
            let url = url.trim();
            if url.starts_with('/') && !url.starts_with("//") {
                checked += 1;
                problems.check_in(url.starts_with("/shop/"), &file, || {
                    format!("root-relative link `{url}` is outside /shop/")
                });
            } else if url.starts_with(origin) {
                problems.check_in(url.starts_with(&format!("{SHOP_BASE}/")), &file, || {
                    format!("absolute link `{url}` is outside {SHOP_BASE}/")
                });
            } else if !(url.starts_with('#')
                || url.starts_with("mailto:")
                || url.starts_with("https://")
                || url.starts_with("http://"))
            {
                problems.check_in(false, &file, || {
                    format!("relative link `{url}` would resolve differently per page")
                });
            }
        }
        // URLs the storefront script reads from data attributes (`data-url`, `data-index`, …).
        for el in select(&doc, "*") {
            for (name, value) in el.value().attrs() {
                if name.starts_with("data-") && value.starts_with('/') {
                    problems.check_in(value.starts_with("/shop/"), &file, || {
                        format!("`{name}=\"{value}\"` is outside /shop/")
                    });
                }
            }
        }
        problems.check(!raw.contains(&store_base), || {
            format!("`{file}` still uses store.json's base URL {store_base}")
        });
        let root = select(&doc, "body")
            .first()
            .and_then(|b| b.value().attr("data-root"))
            .map(str::to_owned);
        problems.check(root.as_deref() == Some("/shop/"), || {
            format!("`{file}`: body data-root is {root:?}")
        });
    }
    assert!(checked > 0, "the pages have internal links");
    let search = site.page("search/");
    let index = attr(one(&search, "[data-search]"), "data-index");
    problems.check(index.starts_with("/shop/assets/"), || {
        format!("search index URL `{index}` is outside /shop/")
    });
    let index_json: Value = serde_json::from_str(&site.read(index.trim_start_matches("/shop/")))
        .expect("search index is JSON");
    for record in index_json.as_array().into_iter().flatten() {
        let u = record["u"].as_str().unwrap_or_default();
        problems.check(u.starts_with("/shop/products/"), || {
            format!("search index URL `{u}` is outside /shop/")
        });
    }
    problems.assert_none("links outside the base URL's path");
}

#[test]
fn base_url_with_a_path_sets_canonical_json_ld_and_sitemap_urls_under_it() {
    let out = tempdir();
    build_with_base_url(&demo_store(), out.path(), SHOP_BASE);
    let site = Site::new(out.path());
    for (file, _, doc) in site.html_pages() {
        let expected = format!("{SHOP_BASE}/{}", Site::path_of(&file));
        assert_eq!(canonical(&doc), expected, "canonical of `{file}`");
        assert_eq!(meta_property(&doc, "og:url"), Some(expected), "og:url of `{file}`");
        if let Some(image) = meta_property(&doc, "og:image") {
            assert!(
                image.starts_with(&format!("{SHOP_BASE}/images/")),
                "og:image of `{file}`: {image}"
            );
        }
        for ld in json_ld(&doc) {
            let mut strings = Vec::new();
            collect_strings(&ld, &mut strings);
            for s in strings.into_iter().filter(|s| s.starts_with("http://127.0.0.1")) {
                assert!(
                    s.starts_with(&format!("{SHOP_BASE}/")),
                    "JSON-LD URL in `{file}` is outside {SHOP_BASE}/: {s}"
                );
            }
        }
    }
    let locs = sitemap_locs(&site.read("sitemap.xml"));
    assert_eq!(
        locs.iter().cloned().collect::<BTreeSet<_>>(),
        indexable_urls(&site, SHOP_BASE),
        "sitemap under {SHOP_BASE}"
    );
    let robots = site.read("robots.txt");
    assert!(robots.contains(&format!("Sitemap: {SHOP_BASE}/sitemap.xml")), "robots.txt:\n{robots}");
    assert!(robots.contains("Disallow: /shop/cart/"), "robots.txt:\n{robots}");
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Determinism and the manifest
// ---------------------------------------------------------------------------------------

#[test]
fn building_the_same_catalog_twice_gives_byte_identical_files() {
    let a = tempdir();
    let b = tempdir();
    build(&demo_store(), &a.path().join("site"));
    build(&demo_store(), &b.path().join("other-name"));
    let first = snapshot(&a.path().join("site"));
    let second = snapshot(&b.path().join("other-name"));
    assert!(first.len() > 50, "the demo store builds many files");
    let diff = snapshot_diff(&first, &second);
    assert!(diff.is_empty(), "two builds of the same catalog differ:\n{diff}");
}

#[test]
fn manifest_lists_every_file_with_size_content_type_and_cache_policy() {
    let demo = build_demo();
    let manifest: Value =
        serde_json::from_str(&demo.site.read("aurelio-manifest.json")).expect("manifest is JSON");
    let entries = manifest["files"].as_object().expect("manifest has `files`");
    let files = demo.site.files();
    let on_disk: BTreeSet<&str> =
        files.keys().map(String::as_str).filter(|f| *f != "aurelio-manifest.json").collect();
    let listed: BTreeSet<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(listed, on_disk, "the manifest lists every file but itself");
    let mut problems = Problems::default();
    for (path, entry) in entries {
        let size = files.get(path).map(|b| b.len() as u64);
        problems.check(entry["size"].as_u64() == size, || {
            format!("`{path}`: size {} but the file has {size:?}", entry["size"])
        });
        let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        let want_type = match ext {
            "html" => "text/html; charset=utf-8",
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "webp" => "image/webp",
            "css" => "text/css",
            "js" => "javascript",
            "json" => "application/json",
            "xml" => "xml",
            "txt" => "text/plain",
            "csv" => "text/csv",
            other => panic!("unexpected file type `.{other}` in the site: {path}"),
        };
        let content_type = entry["content_type"].as_str().unwrap_or_default();
        let ok = if matches!(ext, "html" | "jpg" | "jpeg" | "png" | "webp") {
            content_type == want_type
        } else {
            content_type.contains(want_type)
        };
        problems.check(ok, || {
            format!("`{path}`: content type `{content_type}`, expected `{want_type}`")
        });
        let immutable = path.starts_with("assets/") || path.starts_with("images/");
        let want_cache = if immutable { "immutable" } else { "revalidate" };
        problems.check(entry["cache"] == want_cache, || {
            format!("`{path}`: cache {}, expected `{want_cache}`", entry["cache"])
        });
    }
    problems.assert_none("manifest entries");
}

// ---------------------------------------------------------------------------------------
// Failed builds
// ---------------------------------------------------------------------------------------

/// Builds the demo store into a fresh OUT, then a broken copy of it into the same OUT, and
/// checks that the failed build left OUT byte for byte as it was with nothing beside it.
#[track_caller]
fn failed_build_keeps_previous_output(break_catalog: impl FnOnce(&Path)) -> Run {
    let work = tempdir();
    let out = work.path().join("out");
    build(&demo_store(), &out);
    let before = snapshot(&out);
    let catalogs = tempdir();
    let broken = catalogs.path().join("shop");
    copy_dir(&demo_store(), &broken);
    break_catalog(&broken);
    let run = try_build(&broken, &out, None).failure();
    let diff = snapshot_diff(&before, &snapshot(&out));
    assert!(
        diff.is_empty(),
        "the failed build changed the output:\n{diff}\nstderr:\n{}",
        run.stderr
    );
    assert_eq!(
        dir_entries(work.path()),
        vec!["out".to_owned()],
        "only the output is left beside it (no staging directory)"
    );
    run
}

#[test]
fn failed_build_for_a_bad_price_names_file_line_and_field_and_leaves_output_untouched() {
    let mut line = 0;
    let mut field = String::new();
    let run = failed_build_keeps_previous_output(|dir| {
        let mut products = read_products(dir);
        let victim = products
            .iter_mut()
            .filter(|p| p.is_active())
            .nth(4)
            .expect("the demo store has products");
        let price = victim.variants()[0]["price"].as_str().expect("price").to_owned();
        let needle = format!("\"price\": \"{price}\"");
        assert!(victim.raw.contains(&needle), "line {} has `{needle}`", victim.line);
        line = victim.line;
        field = "variants[0].price".into();
        let text =
            std::fs::read_to_string(dir.join("products.jsonl")).expect("read products.jsonl");
        let broken: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i + 1 == line {
                    l.replacen(&needle, "\"price\": \"19.999\"", 1)
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(dir.join("products.jsonl"), broken.join("\n") + "\n")
            .expect("write products.jsonl");
    });
    let err = &run.stderr;
    let place = format!("`products.jsonl` line {line}");
    assert!(err.contains(&place), "stderr names {place}:\n{err}");
    assert!(err.contains(&format!("`{field}`")), "stderr names `{field}`:\n{err}");
    assert!(err.contains("19.999"), "stderr quotes the bad value:\n{err}");
    let diagnostic = err.lines().find(|l| l.contains(&place)).unwrap_or_default();
    assert!(diagnostic.starts_with("error["), "the problem is an error: {diagnostic}");
}

#[test]
fn failed_build_for_a_missing_image_leaves_output_untouched_and_no_staging_directory() {
    let mut missing = String::new();
    let mut owner = String::new();
    let run = failed_build_keeps_previous_output(|dir| {
        let products = read_products(dir);
        let victim = products
            .iter()
            .filter(|p| p.is_active())
            .find(|p| p.json["images"][0]["src"].is_string())
            .expect("a product with an image");
        missing = victim.json["images"][0]["src"].as_str().unwrap_or_default().to_owned();
        owner = victim.handle().to_owned();
        std::fs::remove_file(dir.join(&missing)).expect("remove the image");
    });
    assert!(
        run.stderr.contains(&missing),
        "stderr names the missing file `{missing}`:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains(&owner), "stderr names the product `{owner}`:\n{}", run.stderr);
}

#[test]
fn failed_build_for_a_template_error_leaves_output_untouched_and_no_staging_directory() {
    // Pages render after images and assets are staged, so this fails late.
    let run = failed_build_keeps_previous_output(|dir| {
        std::fs::create_dir_all(dir.join("templates")).expect("mkdir templates");
        let template = "{% extends \"base.html\" %}{% block content %}{{ page.no_such_field.deeper }}{% endblock content %}";
        std::fs::write(dir.join("templates/page.html"), template).expect("write template");
    });
    assert!(run.stderr.contains("page.html"), "stderr names the template:\n{}", run.stderr);
}

// ---------------------------------------------------------------------------------------
// Hostile content
// ---------------------------------------------------------------------------------------

struct Hostile {
    _out: tempfile::TempDir,
    site: Site,
    run: Run,
}

#[track_caller]
fn build_hostile() -> Hostile {
    let out = tempdir();
    let run = build(&hostile_store(), out.path());
    Hostile { site: Site::new(out.path()), _out: out, run }
}

#[test]
fn hostile_catalog_builds_and_warns_that_markup_was_removed_from_titles() {
    let hostile = build_hostile();
    let stderr = &hostile.run.stderr;
    let warned = |file: &str, field: &str| {
        stderr.lines().any(|l| {
            l.contains("warning[markup-removed]")
                && l.contains(&format!("`{file}`"))
                && l.contains(&format!("`{field}`"))
        })
    };
    let mut problems = Problems::default();
    let dir = hostile_store();
    for p in read_products(&dir) {
        if p.title().contains('<') {
            let place = format!("`products.jsonl` line {}: `title`", p.line);
            problems.check(
                stderr.lines().any(|l| l.contains("markup-removed") && l.contains(&place)),
                || format!("no warning for {place}"),
            );
        }
    }
    fn titled(nodes: &Value, prefix: &str, out: &mut Vec<String>) {
        for (i, node) in nodes.as_array().into_iter().flatten().enumerate() {
            let here = format!("{prefix}[{i}]");
            if node["title"].as_str().is_some_and(|t| t.contains('<')) {
                out.push(format!("{here}.title"));
            }
            titled(&node["children"], &format!("{here}.children"), out);
        }
    }
    for file in ["categories.json", "collections.json"] {
        let mut fields = Vec::new();
        titled(&read_json(&dir.join(file)), "", &mut fields);
        assert!(!fields.is_empty(), "the hostile {file} has titles with markup");
        for field in fields {
            problems.check(warned(file, &field), || {
                format!("no markup-removed warning for `{file}` `{field}`")
            });
        }
    }
    problems.check(warned("pages/evil.md", "title"), || {
        "no markup-removed warning for `pages/evil.md` `title`".into()
    });
    problems.check(warned("store.json", "name"), || {
        "no markup-removed warning for `store.json` `name`".into()
    });
    problems.assert_none(&format!("markup-removed warnings\nstderr:\n{stderr}"));
    // The draft stays unpublished even when a collection names it.
    assert!(
        !hostile.site.exists("products/quiet-draft/"),
        "the hostile draft product is not published"
    );
    assert!(hostile.site.exists("pages/evil/"), "the hostile page is published");
}

#[test]
fn hostile_catalog_pages_contain_only_json_ld_product_json_and_the_storefront_script() {
    let hostile = build_hostile();
    let mut problems = Problems::default();
    let mut product_json = 0;
    for (file, raw, doc) in hostile.site.html_pages() {
        problems.check(!raw.to_ascii_lowercase().contains("<script>alert"), || {
            format!("`{file}` contains `<script>alert`")
        });
        for script in select(&doc, "script") {
            let kind = script.value().attr("type").unwrap_or("");
            let src = script.value().attr("src");
            let body = script.inner_html();
            let ok = match (kind, src) {
                ("application/ld+json", None) => {
                    problems.check(serde_json::from_str::<Value>(&body).is_ok(), || {
                        format!("JSON-LD in `{file}` does not parse: {body}")
                    });
                    true
                }
                ("application/json", None) => {
                    product_json += 1;
                    problems.check(serde_json::from_str::<Value>(&body).is_ok(), || {
                        format!("product JSON in `{file}` does not parse: {body}")
                    });
                    true
                }
                ("", Some(src)) => src.starts_with("/assets/") && body.trim().is_empty(),
                _ => false,
            };
            problems.check(ok, || format!("`{file}` has an unexpected script: {}", script.html()));
        }
    }
    assert!(product_json > 0, "the hostile product pages carry their product JSON");
    problems.assert_none("scripts in the hostile site");
}

/// An element's HTML, cut short for messages.
fn snippet(el: scraper::ElementRef<'_>) -> String {
    let html = el.html();
    match html.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &html[..i]),
        None => html,
    }
}

#[test]
fn hostile_catalog_pages_have_no_event_handlers_javascript_urls_or_embedded_content() {
    let hostile = build_hostile();
    let mut problems = Problems::default();
    let forbidden =
        ["iframe", "frame", "frameset", "svg", "math", "object", "embed", "applet", "base"];
    for (file, _, doc) in hostile.site.html_pages() {
        for el in select(&doc, "*") {
            let name = el.value().name();
            problems.check_in(!forbidden.contains(&name), &file, || {
                format!("a <{name}> element: {}", snippet(el))
            });
            for (attribute, value) in el.value().attrs() {
                let lower = attribute.to_ascii_lowercase();
                problems.check_in(!lower.starts_with("on"), &file, || {
                    format!("event handler `{attribute}` in {}", snippet(el))
                });
                if URL_ATTRIBUTES.contains(&lower.as_str()) {
                    let squashed: String = value
                        .chars()
                        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
                        .collect::<String>()
                        .to_ascii_lowercase();
                    let bad = ["javascript:", "vbscript:", "data:text/html"]
                        .iter()
                        .any(|s| squashed.starts_with(s));
                    problems.check_in(!bad, &file, || {
                        format!("script URL in `{attribute}`: {}", snippet(el))
                    });
                }
            }
            if name == "meta" {
                problems.check_in(el.value().attr("http-equiv").is_none(), &file, || {
                    format!("a <meta http-equiv>: {}", snippet(el))
                });
            }
        }
    }
    problems.assert_none("active content in the hostile site");
}

#[test]
fn hostile_text_survives_as_text_in_json_ld_product_json_and_attributes() {
    let hostile = build_hostile();
    let products = read_products(&hostile_store());
    let mut checked_close = false;
    for p in products.iter().filter(|p| p.is_active()) {
        let doc = hostile.site.page(&p.path());
        let handle = p.handle();
        // JSON-LD offers keep free text that contains `</script>` exactly.
        let ld = json_ld_of_type(&doc, "Product");
        assert_eq!(ld.len(), 1, "one Product JSON-LD on `{handle}`");
        let offers = ld[0]["offers"].as_array().expect("offers");
        for (offer, v) in offers.iter().zip(p.variants()) {
            assert_eq!(offer["sku"], v["sku"], "SKU of `{handle}` round-trips through JSON-LD");
            if let Some(mpn) = v["mpn"].as_str() {
                assert_eq!(offer["mpn"], mpn, "MPN of `{handle}` round-trips through JSON-LD");
                checked_close |= mpn.contains("</script>");
            }
        }
        // The product JSON keeps option values, and the variant picker shows them escaped.
        let json: Value =
            serde_json::from_str(&one(&doc, r#"script[type="application/json"]"#).inner_html())
                .unwrap_or_else(|e| panic!("product JSON of `{handle}` does not parse: {e}"));
        let options = select(&doc, "select[data-variant-select] option");
        for ((record, option), v) in
            json.as_array().expect("product JSON is a list").iter().zip(&options).zip(p.variants())
        {
            let sku = v["sku"].as_str().expect("sku");
            assert_eq!(record["sku"], sku, "product JSON of `{handle}`");
            assert_eq!(
                attr(*option, "value"),
                sku,
                "variant option value of `{handle}` is the exact SKU"
            );
            let values: Vec<&str> = record["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let source: Vec<&str> = v["options"]
                .as_object()
                .into_iter()
                .flat_map(|o| o.values())
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                values, source,
                "option values of `{sku}` round-trip through the product JSON"
            );
        }
        for (i, option) in p.json["options"].as_array().into_iter().flatten().enumerate() {
            let shown: Vec<String> = select(&doc, &format!("select#option-{} option", i + 1))
                .into_iter()
                .map(|o| attr(o, "value").to_owned())
                .collect();
            let source: Vec<String> = option["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            assert_eq!(shown, source, "option values of `{handle}` are shown exactly, as text");
        }
    }
    assert!(checked_close, "the hostile catalog has `</script>` in a field that lands in JSON-LD");
}

// ---------------------------------------------------------------------------------------
// Synthetic catalogs
// ---------------------------------------------------------------------------------------

struct Synthetic {
    _dir: tempfile::TempDir,
    catalog: PathBuf,
    site: Site,
}

#[track_caller]
fn build_synthetic(products: usize, seed: u64) -> Synthetic {
    let dir = tempdir();
    let catalog = dir.path().join("catalog");
    fixtures(products, &catalog, seed);
    let out = dir.path().join("out");
    build(&catalog, &out);
    Synthetic { _dir: dir, catalog, site: Site::new(&out) }
}

#[test]
fn fixtures_with_the_same_seed_write_identical_catalogs() {
    let dir = tempdir();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    fixtures(500, &a, 3);
    fixtures(500, &b, 3);
    fixtures(500, &c, 4);
    let read = |d: &Path| std::fs::read(d.join("products.jsonl")).expect("products.jsonl");
    assert!(read(&a) == read(&b), "the same seed writes the same products.jsonl");
    let diff = snapshot_diff(&snapshot(&a), &snapshot(&b));
    assert!(diff.is_empty(), "the same seed writes the same catalog:\n{diff}");
    assert!(read(&a) != read(&c), "another seed writes another catalog");
    assert_eq!(read_products(&a).len(), 500, "500 products written");
}

#[test]
fn synthetic_catalog_of_500_products_builds_500_product_pages() {
    let synthetic = build_synthetic(500, 3);
    let products = read_products(&synthetic.catalog);
    let active: BTreeSet<String> =
        products.iter().filter(|p| p.is_active()).map(|p| p.handle().to_owned()).collect();
    assert_eq!(active.len(), 500, "the synthetic catalog publishes all its products");
    let written: BTreeSet<String> = synthetic
        .site
        .file_list()
        .iter()
        .filter_map(|f| f.strip_prefix("products/")?.strip_suffix("/index.html").map(str::to_owned))
        .collect();
    assert_eq!(written, active, "one page per product");
    let locs = sitemap_locs(&synthetic.site.read("sitemap.xml"));
    assert_eq!(
        locs.iter().filter(|l| l.contains("/products/")).count(),
        500,
        "the sitemap lists the 500 product pages"
    );
}

#[test]
fn synthetic_category_listings_paginate_at_24() {
    let synthetic = build_synthetic(500, 3);
    let products = read_products(&synthetic.catalog);
    let categories = read_categories(&synthetic.catalog);
    let mut paginated = 0;
    for (i, c) in categories.iter().enumerate() {
        let expected = expected_category_members(&products, &categories, i);
        let pages = listing_cards(&synthetic.site, &c.site_path());
        assert_eq!(
            pages.len(),
            pages_for(expected.len()),
            "pages of `{}` for {} products",
            c.handle,
            expected.len()
        );
        for (n, cards) in pages.iter().enumerate() {
            if n + 1 < pages.len() {
                assert_eq!(cards.len(), PAGE_SIZE, "page {} of `{}` is full", n + 1, c.handle);
            } else {
                assert!(
                    !cards.is_empty() || expected.is_empty(),
                    "last page of `{}` is not empty",
                    c.handle
                );
            }
        }
        assert_eq!(pages.concat(), expected, "products of `{}`", c.handle);
        if pages.len() > 1 {
            paginated += 1;
        }
    }
    assert!(paginated > 0, "some synthetic categories have more than {PAGE_SIZE} products");
}
