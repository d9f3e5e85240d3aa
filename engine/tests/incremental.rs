//! Incremental builds are byte-identical to clean builds: random sequences of catalog edits
//! (add, edit, delete, move between collections, change theme, change a template) are
//! applied one by one, and after each the incremental output is compared with a clean
//! build of the same input.

use aurelio_engine::fixtures::{self, FixtureOptions, Rng};
use aurelio_engine::{BuildOptions, Session, Silent, build, build_in};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone)]
enum Edit {
    /// Change the price of product `n` (modulo the count).
    Price(usize, u32),
    /// Retitle product `n`.
    Title(usize),
    /// Delete product `n`.
    Delete(usize),
    /// Add a product copied from product `n` under a new handle.
    Add(usize),
    /// Toggle product `n` between active and draft.
    Status(usize),
    /// Put product `n` into (or out of) the manual `featured` collection.
    Move(usize),
    /// Switch to another theme preset.
    Theme(usize),
    /// Override a template in the site's `templates/` folder, or remove the override.
    Template(bool),
    /// Change the stock of every variant of product `n`.
    Stock(usize, i64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..1000, 100u32..50_000).prop_map(|(n, p)| Edit::Price(n, p)),
        (0usize..1000).prop_map(Edit::Title),
        (0usize..1000).prop_map(Edit::Delete),
        (0usize..1000).prop_map(Edit::Add),
        (0usize..1000).prop_map(Edit::Status),
        (0usize..1000).prop_map(Edit::Move),
        (0usize..5).prop_map(Edit::Theme),
        any::<bool>().prop_map(Edit::Template),
        (0usize..1000, -2i64..20).prop_map(|(n, s)| Edit::Stock(n, s)),
    ]
}

struct Site<'a> {
    dir: &'a Path,
    products: Vec<Value>,
    theme: Option<String>,
    added: usize,
}

impl Site<'_> {
    fn save(&self) {
        let mut text = String::new();
        for p in &self.products {
            text.push_str(&p.to_string());
            text.push('\n');
        }
        std::fs::write(self.dir.join("products.jsonl"), text).expect("write products");
    }

    fn apply(&mut self, edit: &Edit) {
        let n = self.products.len().max(1);
        match edit {
            Edit::Price(i, cents) => {
                if let Some(p) = self.products.get_mut(i % n) {
                    p["variants"][0]["price"] =
                        Value::String(format!("{}.{:02}", cents / 100, cents % 100));
                    if let Some(v) = p["variants"][0].as_object_mut() {
                        v.remove("compare_at_price");
                    }
                }
            }
            Edit::Title(i) => {
                if let Some(p) = self.products.get_mut(i % n) {
                    let title = format!("{} Mk II", p["title"].as_str().unwrap_or("Product"));
                    p["title"] = Value::String(title);
                }
            }
            Edit::Delete(i) => {
                if self.products.len() > 2 {
                    let handle = self.products.remove(i % n)["handle"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    self.unlist(&handle);
                }
            }
            Edit::Add(i) => {
                if let Some(mut p) = self.products.get(i % n).cloned() {
                    self.added += 1;
                    let added = self.added;
                    p["handle"] = Value::String(format!("added-{added}"));
                    p["title"] = Value::String(format!("Added {added}"));
                    if let Some(variants) = p["variants"].as_array_mut() {
                        for (k, v) in variants.iter_mut().enumerate() {
                            v["sku"] = Value::String(format!("ADD-{added}-{k}"));
                        }
                    }
                    self.products.push(p);
                }
            }
            Edit::Status(i) => {
                if let Some(p) = self.products.get_mut(i % n) {
                    let draft = p.get("status").and_then(Value::as_str) == Some("draft");
                    p["status"] = Value::String(if draft { "active" } else { "draft" }.into());
                }
            }
            Edit::Move(i) => {
                if let Some(handle) =
                    self.products.get(i % n).and_then(|p| p["handle"].as_str()).map(str::to_owned)
                {
                    let path = self.dir.join("collections.json");
                    let mut cols: Value =
                        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
                    if let Some(list) = cols[0]["products"].as_array_mut() {
                        if let Some(pos) =
                            list.iter().position(|h| h == &Value::String(handle.clone()))
                        {
                            list.remove(pos);
                        } else {
                            list.insert(0, Value::String(handle));
                        }
                    }
                    std::fs::write(&path, cols.to_string()).expect("write");
                }
            }
            Edit::Theme(k) => {
                self.theme =
                    Some(["minimal", "bold", "classic", "boutique", "dark"][*k].to_owned());
            }
            Edit::Template(on) => {
                let dir = self.dir.join("templates");
                if *on {
                    std::fs::create_dir_all(&dir).expect("mkdir");
                    let page = "{% extends \"base.html\" %}{% block content %}<h1>Gone</h1><p>Custom 404</p>{% endblock content %}";
                    std::fs::write(dir.join("404.html"), page).expect("write");
                } else {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            Edit::Stock(i, stock) => {
                if let Some(variants) =
                    self.products.get_mut(i % n).and_then(|p| p["variants"].as_array_mut())
                {
                    for v in variants {
                        v["inventory"] = Value::from(*stock);
                    }
                }
            }
        }
        self.save();
    }

    /// Removes a deleted product from the manual collection so the catalog stays valid.
    fn unlist(&self, handle: &str) {
        let path = self.dir.join("collections.json");
        let mut cols: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        if let Some(list) = cols[0]["products"].as_array_mut() {
            list.retain(|h| h.as_str() != Some(handle));
        }
        std::fs::write(&path, cols.to_string()).expect("write");
    }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside").to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

#[track_caller]
fn check_identical(incremental: &Path, clean: &Path, step: usize, edit: &Edit) {
    let a = files(incremental);
    let b = files(clean);
    let only_a: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "step {step} ({edit:?}): only incremental {only_a:?}, only clean {only_b:?}"
    );
    for (k, v) in &a {
        assert!(v == &b[k], "step {step} ({edit:?}): `{k}` differs from a clean build");
    }
}

/// Every file the output's manifest lists has the hash and size it says, and every file in
/// the output is listed (the manifest itself and hidden temporary files aside).
#[track_caller]
fn check_manifest(out: &Path) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("aurelio-manifest.json")).expect("read"))
            .expect("manifest json");
    let listed = manifest["files"].as_object().expect("files");
    let on_disk = files(out);
    for (rel, bytes) in &on_disk {
        if rel == "aurelio-manifest.json" {
            continue;
        }
        let entry = listed.get(rel).unwrap_or_else(|| panic!("`{rel}` is not in the manifest"));
        assert_eq!(entry["hash"], blake3::hash(bytes).to_hex().as_str(), "`{rel}` hash");
        assert_eq!(entry["size"], bytes.len(), "`{rel}` size");
    }
    for rel in listed.keys() {
        assert!(on_disk.contains_key(rel), "the manifest lists `{rel}`, which is missing");
    }
}

fn run(edits: &[Edit], seed: u64, defer: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site");
    fixtures::write(&site, &FixtureOptions { products: 40, seed, images: 3 }).expect("fixtures");
    let text = std::fs::read_to_string(site.join("products.jsonl")).expect("read");
    let products: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let mut state = Site { dir: &site, products, theme: None, added: 0 };
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    let opts = |out: &Path, clean: bool, theme: &Option<String>| BuildOptions {
        site: site.clone(),
        out: out.to_owned(),
        theme: theme.clone(),
        clean,
        cache_dir: Some(cache.clone()),
        ..BuildOptions::default()
    };
    // The incremental side runs in one session, as `aurelio watch` does (parsed products
    // are reused); the clean side starts from nothing every time.
    // With `defer`, feeds that changed follow the pages (`finish_feeds`).
    let mut session = if defer { Session::deferring_feeds() } else { Session::default() };
    build_in(&mut session, &opts(&out, false, &None), &Silent).expect("first build");
    let mut rng = Rng::new(seed);
    for (step, e) in edits.iter().enumerate() {
        state.apply(e);
        let report = build_in(&mut session, &opts(&out, false, &state.theme), &Silent)
            .unwrap_or_else(|err| panic!("step {step} ({e:?}): {err}"));
        let clean = tmp.path().join(format!("clean-{step}-{}", rng.below(1000)));
        build(&opts(&clean, true, &state.theme), &Silent).expect("clean build");
        session.wait_for_cleanup();
        if defer {
            assert!(report.feeds_pending.iter().all(|f| f.starts_with("feeds/")));
            // Before the feeds follow, the output is consistent: every page as a clean
            // build has it, the old feeds exactly as the manifest describes them.
            check_manifest(&out);
            let (pages, clean_pages) = (files(&out), files(&clean));
            for (rel, bytes) in pages.iter().filter(|(rel, _)| {
                !rel.starts_with("feeds/") && rel.as_str() != "aurelio-manifest.json"
            }) {
                assert!(clean_pages.get(rel) == Some(bytes), "step {step} ({e:?}): `{rel}`");
            }
            let finished = session.finish_feeds().expect("feeds follow");
            assert_eq!(
                finished.map(|f| f.written.len()).unwrap_or(0),
                report.feeds_pending.len(),
                "every pending feed is written"
            );
            session.wait_for_cleanup();
        } else {
            assert!(report.feeds_pending.is_empty(), "only a deferring session defers");
        }
        check_identical(&out, &clean, step, e);
        check_manifest(&out);
        assert!(report.rendered <= report.pages);
        std::fs::remove_dir_all(&clean).expect("cleanup");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, max_shrink_iters: 30, ..ProptestConfig::default() })]

    #[test]
    fn incremental_output_equals_a_clean_build(edits in prop::collection::vec(edit(), 1..7), seed in 0u64..1000, defer in any::<bool>()) {
        run(&edits, seed, defer);
    }
}

#[test]
fn a_price_change_rerenders_only_the_pages_that_show_the_product() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site");
    fixtures::write(&site, &FixtureOptions { products: 200, seed: 5, images: 0 })
        .expect("fixtures");
    let opts = BuildOptions {
        site: site.clone(),
        out: tmp.path().join("out"),
        cache_dir: Some(tmp.path().join("cache")),
        ..BuildOptions::default()
    };
    let first = build(&opts, &Silent).expect("first");
    assert_eq!(first.rendered, first.pages);
    let noop = build(&opts, &Silent).expect("no-op");
    assert_eq!(
        (noop.rendered, noop.written, noop.removed),
        (0, 0, 0),
        "a no-op build writes nothing"
    );

    let text = std::fs::read_to_string(site.join("products.jsonl")).expect("read");
    let mut lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    lines[7]["variants"][0]["price"] = Value::String("1.23".into());
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(site.join("products.jsonl"), body).expect("write");
    let changed = build(&opts, &Silent).expect("edit");
    assert!(!changed.staged, "a one-product change is applied in place");
    assert!(changed.rendered >= 2, "the product page and at least one listing: {changed:?}");
    assert!(changed.rendered < 40, "only pages that show the product: {}", changed.rendered);
    let page = std::fs::read_to_string(tmp.path().join("out/products/product-000007/index.html"))
        .expect("page");
    assert!(page.contains("€1.23"), "the product page shows the new price");

    lines.remove(7);
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(site.join("products.jsonl"), body).expect("write");
    let collections = std::fs::read_to_string(site.join("collections.json")).expect("read");
    std::fs::write(site.join("collections.json"), collections.replace("\"product-000007\",", ""))
        .expect("write");
    let deleted = build(&opts, &Silent).expect("delete");
    assert_eq!(deleted.removed, 1);
    assert!(
        !tmp.path().join("out/products/product-000007").exists(),
        "the page and its folder are gone"
    );
    let sitemap = std::fs::read_to_string(tmp.path().join("out/sitemap.xml")).expect("sitemap");
    assert!(!sitemap.contains("product-000007"), "the sitemap no longer lists it");
}

#[test]
fn images_are_encoded_once_even_after_a_clean_build() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site");
    fixtures::write(&site, &FixtureOptions { products: 12, seed: 9, images: 3 }).expect("fixtures");
    let opts = |out: &str, clean: bool| BuildOptions {
        site: site.clone(),
        out: tmp.path().join(out),
        clean,
        cache_dir: Some(tmp.path().join("cache")),
        ..BuildOptions::default()
    };
    let cold = build(&opts("out", false), &Silent).expect("cold");
    assert_eq!((cold.images.images, cold.images.encoded), (3, 3));
    let clean = build(&opts("out", true), &Silent).expect("clean");
    assert_eq!(
        (clean.images.encoded, clean.images.cached),
        (0, 3),
        "--clean reuses the image cache"
    );
    let elsewhere = build(&opts("other", true), &Silent).expect("other output");
    assert_eq!(elsewhere.images.encoded, 0);
    let page = std::fs::read_to_string(tmp.path().join("other/products/product-000000/index.html"))
        .expect("page");
    assert!(page.contains("type=\"image/webp\""), "WebP sources are offered");
    assert!(page.contains("640w") && page.contains("800w"), "responsive widths up to the source's");
    assert!(!page.contains("960w"), "never upscaled past the 800px source");
}

/// A long-lived session and one-shot builds take turns on one output, and a source image
/// is replaced: whatever the session kept (parsed products, cards, templates, the last
/// state and manifest, images left in place) must not outlive what it was made from.
#[test]
fn a_session_never_reuses_what_changed_behind_its_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site");
    fixtures::write(&site, &FixtureOptions { products: 30, seed: 11, images: 3 })
        .expect("fixtures");
    let text = std::fs::read_to_string(site.join("products.jsonl")).expect("read");
    let products: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let mut state = Site { dir: &site, products, theme: None, added: 0 };
    let cache = tmp.path().join("cache");
    let opts = |out: &Path, clean: bool| BuildOptions {
        site: site.clone(),
        out: out.to_owned(),
        clean,
        cache_dir: Some(cache.clone()),
        ..BuildOptions::default()
    };
    let out = tmp.path().join("out");
    let mut session = Session::default();
    build_in(&mut session, &opts(&out, false), &Silent).expect("first build");
    let check = |step: usize, edit: &Edit| {
        let clean = tmp.path().join(format!("clean-{step}"));
        build(&opts(&clean, true), &Silent).expect("clean build");
        check_identical(&out, &clean, step, edit);
        std::fs::remove_dir_all(&clean).expect("cleanup");
    };

    // Another process builds the same output between two builds of the session.
    let edit = Edit::Price(3, 1234);
    state.apply(&edit);
    build(&opts(&out, false), &Silent).expect("one-shot build");
    session.wait_for_cleanup();
    check(0, &edit);
    let edit = Edit::Title(3);
    state.apply(&edit);
    build_in(&mut session, &opts(&out, false), &Silent).expect("session build");
    session.wait_for_cleanup();
    check(1, &edit);

    // A source image gets new content: new variants, new names in every page showing it.
    let source = site.join("images/img-00001.jpg");
    let img = image::RgbImage::from_fn(500, 300, |x, y| {
        image::Rgb([(x % 200) as u8, 40, (y % 250) as u8])
    });
    img.save_with_format(&source, image::ImageFormat::Jpeg).expect("replace the image");
    let edit = Edit::Stock(0, 3);
    state.apply(&edit);
    let report = build_in(&mut session, &opts(&out, false), &Silent).expect("session build");
    assert_eq!(report.images.encoded, 1, "the replaced image is encoded again");
    session.wait_for_cleanup();
    check(2, &edit);
    let noop = build_in(&mut session, &opts(&out, false), &Silent).expect("no-op");
    assert_eq!((noop.rendered, noop.written), (0, 0), "nothing changed since");
}

#[test]
fn a_deferring_session_brings_pages_up_to_date_first_and_feeds_after() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site");
    fixtures::write(&site, &FixtureOptions { products: 30, seed: 7, images: 2 }).expect("fixtures");
    let text = std::fs::read_to_string(site.join("products.jsonl")).expect("read");
    let products: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let mut state = Site { dir: &site, products, theme: None, added: 0 };
    let opts = |out: &Path, clean: bool| BuildOptions {
        site: site.clone(),
        out: out.to_owned(),
        clean,
        cache_dir: Some(tmp.path().join("cache")),
        ..BuildOptions::default()
    };
    let out = tmp.path().join("out");
    let mut session = Session::deferring_feeds();
    let first = build_in(&mut session, &opts(&out, false), &Silent).expect("first build");
    assert!(first.feeds_pending.is_empty(), "a first build writes its feeds");
    let google_before = std::fs::read(out.join("feeds/google.xml")).expect("google feed");

    state.apply(&Edit::Price(4, 4321));
    let report = build_in(&mut session, &opts(&out, false), &Silent).expect("price change");
    assert_eq!(
        report.feeds_pending,
        ["feeds/google.xml", "feeds/meta.csv", "feeds/tiktok.csv", "feeds/tiktok.json"]
    );
    let handle = state.products[4]["handle"].as_str().expect("handle").to_owned();
    let page = std::fs::read_to_string(out.join(format!("products/{handle}/index.html")))
        .expect("product page");
    assert!(page.contains("43.21"), "the page has the new price before the feeds follow");
    assert_eq!(std::fs::read(out.join("feeds/google.xml")).expect("feed"), google_before);
    session.wait_for_cleanup();
    check_manifest(&out);

    let done = session.finish_feeds().expect("feeds").expect("feeds were pending");
    assert_eq!(done.written.len(), 4);
    assert!(session.finish_feeds().expect("nothing left").is_none());
    let google = std::fs::read_to_string(out.join("feeds/google.xml")).expect("feed");
    assert!(google.contains("43.21 "), "the feed has the new price");
    session.wait_for_cleanup();
    let clean = tmp.path().join("clean");
    build(&opts(&clean, true), &Silent).expect("clean build");
    check_identical(&out, &clean, 1, &Edit::Price(4, 4321));
    check_manifest(&out);

    // A build before the feeds followed takes them over: nothing is lost.
    state.apply(&Edit::Price(5, 999));
    let pending = build_in(&mut session, &opts(&out, false), &Silent).expect("change");
    assert_eq!(pending.feeds_pending.len(), 4);
    state.apply(&Edit::Title(6));
    let again = build_in(&mut session, &opts(&out, false), &Silent).expect("another change");
    assert_eq!(again.feeds_pending.len(), 4, "still pending, now with both changes");
    session.finish_feeds().expect("feeds").expect("pending");
    session.wait_for_cleanup();
    std::fs::remove_dir_all(&clean).expect("cleanup");
    build(&opts(&clean, true), &Silent).expect("clean build");
    check_identical(&out, &clean, 2, &Edit::Title(6));
}
