//! Product feeds end to end: the feeds of a build and of `aurelio feed` pass the checker
//! (demo store and a 10,000-product catalog), broken feeds are rejected with the right
//! message, and every item's price and availability equal those on its product page.

mod common;

use common::{
    FEED_CACHE_FLAG, aurelio, build, demo_store, json_ld_of_type, repo_path, shared_cache, tempdir,
};
use scraper::Html;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// `aurelio feed check FILE`, which must succeed with no errors; returns its summary line.
#[track_caller]
fn check_passes(file: &Path) -> String {
    let run = aurelio(&["feed".as_ref(), "check".as_ref(), file.as_os_str()]).success();
    let summary = run.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(summary.contains(", 0 errors,"), "{}", run.stdout);
    summary
}

/// The number of items `aurelio feed check` reports in its summary line.
fn items_in(summary: &str) -> usize {
    summary
        .split(", ")
        .find_map(|part| part.strip_suffix(" items"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no item count in `{summary}`"))
}

fn total_variants(site: &Path) -> usize {
    std::fs::read_to_string(site.join("products.jsonl"))
        .expect("products.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .filter(|p| p["status"].as_str().unwrap_or("active") == "active")
        .map(|p| p["variants"].as_array().map_or(0, Vec::len))
        .sum()
}

#[test]
fn built_demo_store_carries_feeds_that_pass_the_checker() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    build(&demo_store(), &out);
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(out.join("aurelio-manifest.json")).expect("manifest"),
    )
    .expect("json");
    let variants = total_variants(&demo_store());
    for (file, content_type) in [
        ("feeds/google.xml", "application/xml; charset=utf-8"),
        ("feeds/meta.csv", "text/csv; charset=utf-8"),
        ("feeds/tiktok.csv", "text/csv; charset=utf-8"),
        ("feeds/tiktok.json", "application/json"),
    ] {
        let entry = &manifest["files"][file];
        assert_eq!(entry["content_type"], content_type, "{file} in the manifest");
        assert_eq!(entry["cache"], "revalidate", "{file}");
        let bytes = std::fs::read(out.join(file)).expect(file);
        assert_eq!(entry["size"], bytes.len(), "{file} size");
        let summary = check_passes(&out.join(file));
        assert_eq!(items_in(&summary), variants, "{file}: one item per variant: {summary}");
    }
}

#[test]
fn feed_command_writes_the_same_feed_as_the_build() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    build(&demo_store(), &out);
    for (channel, file) in
        [("google", "google.xml"), ("meta", "meta.csv"), ("tiktok", "tiktok.csv")]
    {
        let written = tmp.path().join(file);
        aurelio(&[
            "feed".as_ref(),
            channel.as_ref(),
            "--site".as_ref(),
            demo_store().as_os_str(),
            "-o".as_ref(),
            written.as_os_str(),
            FEED_CACHE_FLAG.as_ref(),
            shared_cache().as_os_str(),
        ])
        .success();
        assert_eq!(
            std::fs::read(&written).expect("written"),
            std::fs::read(out.join("feeds").join(file)).expect("built"),
            "`aurelio feed {channel}` and the build disagree"
        );
    }
    // Without -o the feed goes to standard output.
    let site = demo_store();
    let run = aurelio(&[
        "feed".as_ref(),
        "meta".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        FEED_CACHE_FLAG.as_ref(),
        shared_cache().as_os_str(),
    ])
    .success();
    assert_eq!(run.stdout.as_bytes(), std::fs::read(out.join("feeds/meta.csv")).expect("built"));
    assert!(run.stderr.contains("meta feed: "), "{}", run.stderr);
}

#[test]
fn feeds_of_a_ten_thousand_product_catalog_pass_the_checker() {
    let tmp = tempdir();
    let site = tmp.path().join("catalog");
    aurelio(&[
        "fixtures".as_ref(),
        "--products".as_ref(),
        "10000".as_ref(),
        "--images".as_ref(),
        "5".as_ref(),
        "--out".as_ref(),
        site.as_os_str(),
    ])
    .success();
    let variants = total_variants(&site);
    for (channel, file) in [("google", "g.xml"), ("meta", "m.csv"), ("tiktok", "t.csv")] {
        let path = tmp.path().join(file);
        aurelio(&[
            "feed".as_ref(),
            channel.as_ref(),
            "--site".as_ref(),
            site.as_os_str(),
            "-o".as_ref(),
            path.as_os_str(),
        ])
        .success();
        let summary = check_passes(&path);
        assert!(summary.contains(&format!("{channel} feed")), "detected channel: {summary}");
        assert_eq!(items_in(&summary), variants, "{summary}");
    }
}

#[test]
fn broken_feeds_are_rejected_with_their_message() {
    let root = repo_path("fixtures/feeds/broken");
    let mut cases: Vec<_> =
        std::fs::read_dir(&root).expect("broken feeds").map(|e| e.expect("entry").path()).collect();
    cases.sort();
    assert!(cases.len() >= 10, "expected the broken feed cases in {}", root.display());
    for case in cases {
        let expected = std::fs::read_to_string(case.join("expected.txt")).expect("expected.txt");
        let feed = std::fs::read_dir(&case)
            .expect("case")
            .map(|e| e.expect("entry").path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("feed.")))
            .expect("a feed.* file");
        let run = aurelio(&["feed".as_ref(), "check".as_ref(), feed.as_os_str()]).failure();
        assert!(
            run.stdout.contains(expected.trim()),
            "{}: expected `{}` in\n{}",
            case.display(),
            expected.trim(),
            run.stdout
        );
        assert!(run.stderr.contains("does not pass"), "{}", run.stderr);
    }
}

#[test]
fn channel_can_be_forced_and_unknown_content_is_refused() {
    let tmp = tempdir();
    let odd = tmp.path().join("feed.txt");
    std::fs::write(&odd, "name,price\nTee,15.00 USD\n").expect("write");
    let run = aurelio(&["feed".as_ref(), "check".as_ref(), odd.as_os_str()]).failure();
    assert!(run.stderr.contains("pass --channel"), "{}", run.stderr);
    let run = aurelio(&[
        "feed".as_ref(),
        "check".as_ref(),
        odd.as_os_str(),
        "--channel".as_ref(),
        "meta".as_ref(),
    ])
    .failure();
    assert!(run.stdout.contains("the header row has no `id` column"), "{}", run.stdout);
}

/// Availability as schema.org writes it on the product page.
fn schema_availability(feed: &str) -> &'static str {
    match feed {
        "in_stock" => "https://schema.org/InStock",
        "backorder" => "https://schema.org/BackOrder",
        "out_of_stock" => "https://schema.org/OutOfStock",
        other => panic!("unexpected availability `{other}`"),
    }
}

/// Items of a Google feed: field → value, repeated fields joined by a space.
fn google_items(xml: &str) -> Vec<BTreeMap<String, String>> {
    let mut items = Vec::new();
    for chunk in xml.split("<item>").skip(1) {
        let body = chunk.split("</item>").next().expect("closed item");
        let mut fields = BTreeMap::new();
        for part in body.split("<g:").skip(1) {
            let Some((name, rest)) = part.split_once('>') else { continue };
            let Some((value, _)) = rest.split_once("</g:") else { continue };
            if name.contains(' ') || value.contains('<') {
                continue;
            }
            let value = value.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
            fields.entry(name.to_owned()).or_insert(value);
        }
        items.push(fields);
    }
    items
}

#[test]
fn every_feed_item_matches_its_product_page() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    build(&demo_store(), &out);
    let xml = std::fs::read_to_string(out.join("feeds/google.xml")).expect("google.xml");
    let items = google_items(&xml);
    assert_eq!(items.len(), total_variants(&demo_store()));
    let base = "https://northwind.example.com/";
    let mut pages: BTreeMap<String, Html> = BTreeMap::new();
    let mut sales = 0;
    for item in &items {
        let id = &item["id"];
        let link = &item["link"];
        let path = link.strip_prefix(base).expect("link on the store's domain");
        let (page, _) = path.split_once('?').unwrap_or((path, ""));
        let doc = pages.entry(page.to_owned()).or_insert_with(|| {
            let html = std::fs::read_to_string(out.join(page).join("index.html"))
                .unwrap_or_else(|e| panic!("`{link}` has no page in the build: {e}"));
            Html::parse_document(&html)
        });
        let product = json_ld_of_type(doc, "Product").pop().expect("Product JSON-LD");
        let offer = product["offers"]
            .as_array()
            .expect("offers")
            .iter()
            .find(|o| o["sku"] == id.as_str())
            .unwrap_or_else(|| panic!("no offer for `{id}` on `{page}`"));
        // The price the shopper pays: the sale price when there is one.
        let paid = item.get("sale_price").unwrap_or(&item["price"]);
        let (amount, currency) = paid.split_once(' ').expect("amount and currency");
        assert_eq!(offer["price"], amount, "`{id}` price");
        assert_eq!(offer["priceCurrency"], currency, "`{id}` currency");
        assert_eq!(offer["availability"], schema_availability(&item["availability"]), "`{id}`");
        assert_eq!(offer["url"], link.as_str(), "`{id}` link is the offer's URL");
        let images: Vec<&str> =
            product["image"].as_array().expect("images").iter().filter_map(Value::as_str).collect();
        assert_eq!(images.first().copied(), Some(item["image_link"].as_str()), "`{id}` image");
        let image_file = item["image_link"].strip_prefix(base).expect("image on the domain");
        assert!(out.join(image_file).is_file(), "`{image_file}` is a file of the build");
        if let Some(sale) = item.get("sale_price") {
            sales += 1;
            assert_ne!(sale, &item["price"]);
        }
    }
    assert!(sales > 0, "the demo store has variants on sale; none was checked");
}
