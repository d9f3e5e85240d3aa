//! End-to-end tests of the built site as a whole through the real `aurelio` binary: the
//! sitemap and robots.txt, a base URL with a path, determinism (two builds from empty
//! caches give the same bytes), the manifest, and failed builds that leave the previous
//! output untouched.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

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
    let products = demo.active().count();
    assert!(
        expected.len() > products,
        "{} indexable pages for {products} products",
        expected.len()
    );
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
    let (mut pages, mut images, mut ld_urls) = (0, 0, 0);
    for (file, _, doc) in site.html_pages() {
        pages += 1;
        let expected = format!("{SHOP_BASE}/{}", Site::path_of(&file));
        assert_eq!(canonical(&doc), expected, "canonical of `{file}`");
        assert_eq!(meta_property(&doc, "og:url"), Some(expected), "og:url of `{file}`");
        if let Some(image) = meta_property(&doc, "og:image") {
            images += 1;
            assert!(
                image.starts_with(&format!("{SHOP_BASE}/images/")),
                "og:image of `{file}`: {image}"
            );
        }
        for ld in json_ld(&doc) {
            let mut strings = Vec::new();
            collect_strings(&ld, &mut strings);
            for s in strings.into_iter().filter(|s| s.starts_with("http://127.0.0.1")) {
                ld_urls += 1;
                assert!(
                    s.starts_with(&format!("{SHOP_BASE}/")),
                    "JSON-LD URL in `{file}` is outside {SHOP_BASE}/: {s}"
                );
            }
        }
    }
    // At least every product page was checked, with its image and its JSON-LD URLs.
    let active: Vec<SourceProduct> =
        read_products(&demo_store()).into_iter().filter(SourceProduct::is_active).collect();
    let products = active.len();
    let with_images = active
        .iter()
        .filter(|p| p.json["images"].as_array().is_some_and(|i| !i.is_empty()))
        .count();
    assert!(pages > products, "{pages} pages checked for {products} products");
    assert!(images >= with_images, "{images} og:image checked, {with_images} products have images");
    assert!(ld_urls >= products, "{ld_urls} JSON-LD URLs checked for {products} products");
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

/// `(images, encoded)` of a build's summary line: `… 55 images (55 encoded, 0 cached) …`.
#[track_caller]
fn image_counts(run: &Run) -> (usize, usize) {
    let summary = run.stdout.lines().find(|l| l.starts_with("built ")).unwrap_or_default();
    let number_before = |suffix: &str| -> usize {
        let at = summary.find(suffix).unwrap_or_else(|| panic!("no `{suffix}` in `{summary}`"));
        let digits = summary[..at].rsplit([' ', '(']).next().unwrap_or_default();
        digits.parse().unwrap_or_else(|e| panic!("`{digits}` before `{suffix}` ({e}): {summary}"))
    };
    (number_before(" images ("), number_before(" encoded,"))
}

#[test]
fn building_the_same_catalog_twice_gives_byte_identical_files() {
    // Each build starts from an empty cache of its own, so each encodes every image itself:
    // the comparison covers the image encoder, not a copy of one cache.
    let a = tempdir();
    let b = tempdir();
    let (first, second) = (a.path().join("site"), b.path().join("other-name"));
    let runs = [
        try_build_in::<&str>(&demo_store(), &first, &a.path().join("cache"), &[]).success(),
        try_build_in::<&str>(&demo_store(), &second, &b.path().join("cache"), &[]).success(),
    ];
    let images = read_products(&demo_store())
        .iter()
        .filter(|p| p.is_active())
        .flat_map(|p| p.json["images"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["src"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .len();
    assert!(images > 0, "the demo store publishes images");
    for run in &runs {
        let (published, encoded) = image_counts(run);
        assert!(published >= images, "{published} images published, the catalog has {images}");
        assert_eq!(encoded, published, "a build from an empty cache encodes every image");
    }
    let first = snapshot(&first);
    let second = snapshot(&second);
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
    let pages = demo.active().count();
    assert!(entries.len() > pages, "{} manifest entries for {pages} products", entries.len());
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
