//! End-to-end tests of the storefront generator through its public interface, the product
//! pages: the real `aurelio` binary builds the demo catalog into a temporary directory, and
//! the tests read the HTML, JSON-LD and product JSON it wrote. Expectations are derived
//! from the catalog files themselves (products.jsonl, categories.json), never copied from
//! the output. Listings are in `storefront_listings.rs`, the site as a whole (sitemap, base
//! URL, determinism, failed builds) in `storefront_site.rs`, hostile content in
//! `storefront_hostile.rs`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

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
    let p = demo
        .active()
        .find(|p| p.min_price() == 11_900 && p.max_price() == 11_900)
        .expect("the demo store has an active product whose variants all cost 119.00");
    let doc = demo.site.page(&p.path());
    assert_eq!(text(one(&doc, ".product-price [data-price-amount]")), "€119.00");
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
    let mut checked = 0;
    // Every product page with images shows at least one <img>: the least that must be
    // checked, so that a site rendering no images cannot pass.
    let with_images = demo
        .active()
        .filter(|p| p.json["images"].as_array().is_some_and(|i| !i.is_empty()))
        .count();
    assert!(with_images > 0, "the demo store has products with images");
    for (file, _, doc) in demo.site.html_pages() {
        for img in select(&doc, "img") {
            checked += 1;
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
    assert!(
        checked >= with_images,
        "{checked} <img> checked over the site, fewer than the {with_images} products with images"
    );
    problems.assert_none("images without correct dimensions or srcset");
}

#[test]
fn product_json_ld_has_one_offer_per_variant_with_price_currency_and_availability() {
    let demo = build_demo();
    let currency = demo.store["currency"].as_str().expect("currency");
    let mut images_checked = 0;
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
        let sources = p.json["images"].as_array().map_or(0, Vec::len);
        let images: Vec<&str> =
            ld["image"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        assert_eq!(
            images.is_empty(),
            sources == 0,
            "JSON-LD of `{handle}` lists images exactly when products.jsonl gives some: {ld}"
        );
        for image in &images {
            let rel = image.strip_prefix(&format!("{}/", demo.base)).unwrap_or_default();
            assert!(
                rel.starts_with("images/") && demo.site.exists(rel),
                "JSON-LD image of `{handle}` is an absolute URL of a published image: {image}"
            );
            images_checked += 1;
        }
    }
    assert!(images_checked > 0, "no JSON-LD image was checked");
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
