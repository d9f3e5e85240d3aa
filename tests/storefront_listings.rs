//! End-to-end tests of the storefront's listings through the real `aurelio` binary:
//! collections (manual and by rules, sorted, paginated at 24), categories (tree paths,
//! parents listing their children's products) and the category listings of a synthetic
//! 500-product catalog. Expected members and orders are computed from collections.json,
//! categories.json and products.jsonl, never copied from the output.

mod common;

use common::*;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

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
