//! End-to-end tests of themes in builds through the real `aurelio` binary: `build --theme`
//! (one minified, hashed stylesheet with the palette; component settings; home sections),
//! partial themes and contrast warnings, `theme export` / `theme import`, and where a build
//! gets its theme. Expectations are derived from the theme files and the demo catalog:
//! colours from the presets' palettes, products from `collections.json` and
//! `products.jsonl`, never copied from the output.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

// ---------------------------------------------------------------------------------------
// The compiled stylesheet
// ---------------------------------------------------------------------------------------

#[test]
fn each_preset_builds_one_minified_hashed_stylesheet_with_its_palette_and_prefixes() {
    let tmp = tempdir();
    let mut names_by_preset = BTreeMap::new();
    for preset in preset_names() {
        let out = tmp.path().join(&preset);
        build_theme(&demo_store(), &out, os(preset.as_str()));
        let site = Site::new(&out);
        let (rel, css) = stylesheet(&site);
        let lines = css.lines().count();
        assert!(lines < 5, "{preset}: `{rel}` is not minified ({lines} lines)");
        assert!(!css.contains("\n  "), "{preset}: `{rel}` has indented blocks");
        assert_palette_in_css(&css, &effective_preset(&preset), &preset);
        // At the documented targets (Safari 15, iOS 15) properties such as
        // text-size-adjust and user-select still need their -webkit- form.
        assert!(css.contains("-webkit-"), "{preset}: `{rel}` has no -webkit- prefix");
        names_by_preset.insert(preset, rel);
    }
    let distinct: BTreeSet<&String> = names_by_preset.values().collect();
    assert_eq!(
        distinct.len(),
        names_by_preset.len(),
        "every preset should get its own hashed stylesheet name: {names_by_preset:?}"
    );
}

#[test]
fn custom_css_is_nested_compiled_and_prefixed() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    build_theme(&demo_store(), &out, os(&fixture("custom-css.json")));
    let (_, css) = stylesheet(&Site::new(&out));
    assert!(css.contains(".product-card .product-card-title{"), "nesting is lowered:\n{css}");
    assert!(!css.contains("&"), "no nesting selector survives");
    assert!(css.contains("-webkit-user-select:none"), "user-select gets its -webkit- form");
}

// ---------------------------------------------------------------------------------------
// Component settings
// ---------------------------------------------------------------------------------------

/// (product cards, cards showing a vendor) over every page of a site, and problems with
/// vendor names that do not match products.jsonl.
fn vendor_counts(
    site: &Site,
    vendors: &BTreeMap<String, String>,
    problems: &mut Problems,
) -> (usize, usize) {
    let (mut cards, mut with_vendor) = (0, 0);
    for (file, _, doc) in site.html_pages() {
        for card in select(&doc, "li.product-card") {
            cards += 1;
            let shown: Vec<String> = card.select(&sel(".product-card-vendor")).map(text).collect();
            if shown.is_empty() {
                continue;
            }
            with_vendor += 1;
            let href = card
                .select(&sel("a"))
                .next()
                .and_then(|a| a.value().attr("href"))
                .unwrap_or_default();
            let handle = href.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
            problems.check_in(vendors.get(handle) == shown.first(), &file, || {
                format!(
                    "card `{href}` shows vendor {shown:?}, products.jsonl has {:?}",
                    vendors.get(handle)
                )
            });
        }
    }
    (cards, with_vendor)
}

#[test]
fn product_card_vendor_follows_the_presets_show_vendor_setting() {
    let vendors: BTreeMap<String, String> = read_products(&demo_store())
        .into_iter()
        .filter_map(|p| Some((p.handle().to_owned(), p.field("vendor")?.to_owned())))
        .collect();
    let show = |preset: &str| {
        effective_preset(preset)
            .pointer("/components/productCard/showVendor")
            .and_then(Value::as_bool)
            .expect("showVendor is set")
    };
    assert!(show("minimal") && !show("boutique"), "minimal shows vendors, boutique does not");
    let tmp = tempdir();
    let mut problems = Problems::default();
    for preset in ["minimal", "boutique"] {
        let out = tmp.path().join(preset);
        build_theme(&demo_store(), &out, os(preset));
        let (cards, with_vendor) = vendor_counts(&Site::new(&out), &vendors, &mut problems);
        assert!(cards > 0, "{preset}: the site has product cards");
        if show(preset) {
            // Every demo product has a vendor, so every card shows one.
            assert_eq!(with_vendor, cards, "{preset}: every card shows its vendor");
        } else {
            assert_eq!(with_vendor, 0, "{preset}: no card has a .product-card-vendor");
        }
    }
    problems.assert_none("vendors on product cards");
}

#[test]
fn header_search_form_disappears_when_show_search_is_false() {
    let theme = read_json(&fixture("no-search.json"));
    assert_eq!(theme.pointer("/components/header/showSearch"), Some(&Value::Bool(false)));
    let tmp = tempdir();
    let with = tmp.path().join("with");
    let without = tmp.path().join("without");
    build_theme(&demo_store(), &with, os("minimal"));
    build_theme(&demo_store(), &without, os(&fixture("no-search.json")));
    let (with_pages, without_pages) =
        (Site::new(&with).html_pages(), Site::new(&without).html_pages());
    let products = read_products(&demo_store()).iter().filter(|p| p.is_active()).count();
    assert!(with_pages.len() > products, "minimal: {} pages", with_pages.len());
    assert_eq!(without_pages.len(), with_pages.len(), "no-search builds the same pages");
    for (file, _, doc) in with_pages {
        assert_eq!(
            select(&doc, "form.header-search").len(),
            1,
            "minimal: `{file}` has the search form"
        );
    }
    for (file, _, doc) in without_pages {
        assert!(
            select(&doc, "form.header-search").is_empty(),
            "no-search: `{file}` has a search form"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Home sections
// ---------------------------------------------------------------------------------------

/// The class the home template gives each section type.
fn section_class(kind: &str) -> &'static str {
    match kind {
        "hero" => "hero",
        "richText" => "rich-text-section",
        "featuredCollection" => "featured",
        "collectionList" | "categoryList" => "category-tiles",
        "imageWithText" => "image-with-text",
        "newsletter" => "newsletter",
        other => panic!("unknown section type `{other}`"),
    }
}

#[test]
fn home_sections_render_in_order_with_their_content() {
    let theme = read_json(&fixture("sections.json"));
    let sections = theme["home"]["sections"].as_array().expect("sections").clone();
    let kinds: Vec<&str> = sections.iter().map(|s| s["type"].as_str().expect("type")).collect();
    assert_eq!(kinds, ["hero", "richText", "featuredCollection", "collectionList"]);
    let settings = |i: usize| &sections[i]["settings"];

    // A copy of the demo store whose gift guide also lists an inactive product second, so
    // the featured products must skip it.
    let (_tmp, store) = demo_copy();
    let products = read_products(&store);
    let inactive = products.iter().find(|p| !p.is_active()).expect("the demo store has a draft");
    let mut collections = read_json(&store.join("collections.json"));
    let featured_handle = settings(2)["collection"].as_str().expect("collection");
    let gift = collections
        .as_array_mut()
        .expect("a list")
        .iter_mut()
        .find(|c| c["handle"] == featured_handle)
        .expect("the featured collection exists");
    gift["products"]
        .as_array_mut()
        .expect("a manual collection")
        .insert(1, Value::String(inactive.handle().to_owned()));
    let gift = gift.clone();
    std::fs::write(
        store.join("collections.json"),
        serde_json::to_string_pretty(&collections).expect("JSON"),
    )
    .expect("write collections.json");

    let out = _tmp.path().join("site");
    build_theme(&store, &out, os(&fixture("sections.json")));
    let site = Site::new(&out);
    let doc = site.page("");
    let html = site.read("index.html");

    let rendered = select(&doc, "main > section");
    let classes: Vec<String> = rendered
        .iter()
        .map(|s| {
            s.value()
                .attr("class")
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: Vec<&str> = kinds.iter().map(|k| section_class(k)).collect();
    assert_eq!(classes, expected, "the home page shows the sections in theme order");

    // Hero: the custom heading, and the id.
    let hero = rendered[0];
    assert_eq!(text(one_in(hero, "h1")), settings(0)["heading"].as_str().expect("heading"));
    assert_eq!(hero.value().attr("id"), sections[0]["id"].as_str());

    // Rich text: Markdown rendered, the script removed.
    let rich = rendered[1];
    assert_eq!(text(one_in(rich, "h2")), settings(1)["heading"].as_str().expect("heading"));
    let markdown = settings(1)["text"].as_str().expect("text");
    assert!(markdown.contains("<script>"), "the fixture tries to inject a script");
    let strong = markdown.split("**").nth(1).expect("bold text in the fixture");
    assert_eq!(text(one_in(rich, "strong")), strong, "Markdown is rendered");
    assert!(!rich.inner_html().contains("<script"), "the script survived: {}", rich.inner_html());
    for script in select(&doc, "script") {
        assert!(
            !script.inner_html().contains("theme-xss"),
            "a script from the theme runs: {}",
            script.html()
        );
    }
    assert!(!html.contains("<script>alert"), "the raw page contains the injected script");

    // Featured collection: the first `limit` active products in collections.json order.
    let limit = settings(2)["limit"].as_u64().expect("limit") as usize;
    let active: BTreeSet<&str> =
        products.iter().filter(|p| p.is_active()).map(|p| p.handle()).collect();
    let wanted: Vec<String> = gift["products"]
        .as_array()
        .expect("products")
        .iter()
        .filter_map(Value::as_str)
        .filter(|h| active.contains(h))
        .take(limit)
        .map(|h| format!("products/{h}/"))
        .collect();
    assert_eq!(wanted.len(), limit, "the gift guide has enough active products for the test");
    let featured = rendered[2];
    let cards: Vec<String> = featured
        .select(&sel("ul.product-grid > li.product-card > a"))
        .map(|a| attr(a, "href").trim_start_matches('/').to_owned())
        .collect();
    assert_eq!(cards, wanted, "featured products of `{featured_handle}`");
    assert!(
        !cards.iter().any(|c| c.contains(inactive.handle())),
        "the inactive product is not featured"
    );
    let heading = gift["title"].as_str().expect("title");
    assert_eq!(
        text(one_in(featured, "h2")),
        heading,
        "an empty heading shows the collection title"
    );

    // Collection list: the named collections, in the theme's order.
    let list = rendered[3];
    assert_eq!(text(one_in(list, "h2")), settings(3)["heading"].as_str().expect("heading"));
    let titles: BTreeMap<String, String> = collections
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            (
                c["handle"].as_str().expect("handle").to_owned(),
                c["title"].as_str().expect("title").to_owned(),
            )
        })
        .collect();
    let handles: Vec<&str> = settings(3)["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(handles.len(), 2);
    let tiles: Vec<(String, String)> = list
        .select(&sel("li.tile > a"))
        .map(|a| {
            let title = a.select(&sel(".tile-title")).next().map(text).unwrap_or_default();
            (attr(a, "href").trim_start_matches('/').to_owned(), title)
        })
        .collect();
    let expected_tiles: Vec<(String, String)> =
        handles.iter().map(|h| (format!("collections/{h}/"), titles[*h].clone())).collect();
    assert_eq!(tiles, expected_tiles, "collection tiles in the theme's order");
}

#[test]
fn unknown_collection_in_a_section_fails_the_build_and_keeps_the_previous_output() {
    let name = "sections-unknown-collection.json";
    let theme = read_json(&fixture(name));
    let index = theme["home"]["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .position(|s| s["settings"]["collection"] == "gift-guid")
        .expect("the fixture names `gift-guid`");
    let tmp = tempdir();
    let out = tmp.path().join("site");
    build(&demo_store(), &out);
    let before = snapshot(&out);
    let run = try_build_theme(&demo_store(), &out, Some(os(&fixture(name)))).failure();
    let pointer = format!("`/home/sections/{index}/settings/collection`");
    let line = diagnostic_lines(&run.stderr)
        .into_iter()
        .find(|l| l.contains(&pointer))
        .unwrap_or_else(|| panic!("no diagnostic names {pointer}:\n{}", run.stderr));
    assert!(line.starts_with("error["), "{line}");
    assert!(line.contains(&format!("`{name}`")), "the message names the theme file: {line}");
    assert!(line.contains("did you mean `gift-guide`"), "{line}");
    let after = snapshot(&out);
    assert!(
        before == after,
        "the failed build changed the output:\n{}",
        snapshot_diff(&before, &after)
    );
    assert_eq!(dir_entries(tmp.path()), ["site"], "no staging directory is left behind");
}

// ---------------------------------------------------------------------------------------
// Partial themes and contrast
// ---------------------------------------------------------------------------------------

#[test]
fn partial_theme_extending_dark_keeps_darks_palette_and_applies_its_override() {
    let file = fixture("partial-dark.json");
    let raw = read_json(&file);
    assert_eq!(raw["extends"], "dark");
    assert!(raw.get("settings").is_none(), "the fixture overrides no tokens");
    assert_eq!(raw.pointer("/components/header/sticky"), Some(&Value::Bool(false)));
    let tmp = tempdir();
    let out = tmp.path().join("site");
    build_theme(&demo_store(), &out, os(&file));
    let (_, css) = stylesheet(&Site::new(&out));
    let dark = effective_preset("dark");
    let background = custom_property(&css, "--color-background").expect("--color-background");
    assert_eq!(
        canonical_colour(&background),
        canonical_colour(&palette_colour(&dark, "background"))
    );
    assert_palette_in_css(&css, &effective(&raw, Some("minimal")), "partial-dark");
    assert!(css.contains(".site-header{position:static}"), "a non-sticky header is static");
}

#[test]
fn low_contrast_theme_builds_with_a_wcag_warning() {
    let file = fixture("low-contrast.json");
    let raw = read_json(&file);
    let (text_colour, background) =
        (palette_colour(&raw, "text"), palette_colour(&raw, "background"));
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let run = build_theme(&demo_store(), &out, os(&file));
    let warning = diagnostic_lines(&run.stderr)
        .into_iter()
        .find(|l| l.starts_with("warning[contrast]"))
        .unwrap_or_else(|| panic!("no contrast warning:\n{}", run.stderr));
    assert!(warning.contains("WCAG"), "{warning}");
    assert!(warning.contains(&text_colour) && warning.contains(&background), "{warning}");
    assert!(Site::new(&out).exists(""), "the site was built");
    let run = validate(&file).success();
    assert!(run.stderr.contains("warning[contrast]"), "validate shows the warning too");
}

// ---------------------------------------------------------------------------------------
// Export and import
// ---------------------------------------------------------------------------------------

#[track_caller]
fn export(site: &Path, to: &Path) -> Run {
    aurelio(&[os("theme"), os("export"), os("--site"), os(site), os("-o"), os(to)]).success()
}

fn import(file: &Path, site: &Path) -> Run {
    aurelio(&[os("theme"), os("import"), os(file), os("--site"), os(site)])
}

#[test]
fn export_import_export_round_trips_byte_for_byte() {
    let (tmp, store) = demo_copy();
    let (e1, e2) = (tmp.path().join("e1.json"), tmp.path().join("e2.json"));
    export(&store, &e1);
    import(&e1, &store).success();
    assert_eq!(
        std::fs::read(store.join("theme.json")).expect("imported"),
        std::fs::read(&e1).expect("e1")
    );
    export(&store, &e2);
    let (b1, b2) = (std::fs::read(&e1).expect("e1"), std::fs::read(&e2).expect("e2"));
    assert!(b1 == b2, "the second export differs from the first");
    let exported: Value = serde_json::from_slice(&b1).expect("the export is JSON");
    assert!(exported.get("extends").is_none(), "the export has no `extends`");
    assert!(exported.get("$schema").is_none(), "the export has no `$schema`");
    let store_theme =
        read_json(&store.join("store.json"))["theme"].as_str().unwrap_or("minimal").to_owned();
    assert_eq!(exported, effective_preset(&store_theme), "the export is the store's merged preset");
}

#[test]
fn export_of_a_store_using_bold_is_the_merged_bold_preset() {
    let (tmp, store) = demo_copy();
    set_store_theme(&store, "bold");
    let file = tmp.path().join("export.json");
    export(&store, &file);
    let exported = read_json(&file);
    assert_eq!(exported["metadata"]["name"], "Bold");
    assert_eq!(exported, effective_preset("bold"), "bold laid over minimal");
    // Keys in alphabetical order at every depth.
    fn sorted(v: &Value) -> bool {
        match v {
            Value::Object(m) => {
                m.keys().zip(m.keys().skip(1)).all(|(a, b)| a < b) && m.values().all(sorted)
            }
            Value::Array(a) => a.iter().all(sorted),
            _ => true,
        }
    }
    let text = read_text(&file);
    let order: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .map(|l| l.split('"').next().unwrap_or(""))
        .collect();
    let mut alphabetical = order.clone();
    alphabetical.sort_unstable();
    assert_eq!(order, alphabetical, "top-level keys are written in alphabetical order");
    assert!(sorted(&exported));
}

#[test]
fn invalid_import_changes_nothing_whether_or_not_a_theme_existed() {
    let (_tmp, store) = demo_copy();
    let bad = fixture("four-problems.json");
    let theme_json = store.join("theme.json");

    // No theme.json before: still none after.
    let before = snapshot(&store);
    let run = import(&bad, &store).failure();
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("`/settings/color/palette/1/color`"),
        "the problems are printed:\n{}",
        run.stderr
    );
    assert_eq!(diagnostic_lines(&run.stderr).len(), 4, "all four problems:\n{}", run.stderr);
    assert!(!theme_json.exists(), "a failed import created theme.json");
    let after = snapshot(&store);
    assert!(
        before == after,
        "a failed import changed the catalog:\n{}",
        snapshot_diff(&before, &after)
    );

    // A theme.json before: byte-identical after.
    std::fs::copy(fixture("harbour.json"), &theme_json).expect("copy a theme in");
    let before = snapshot(&store);
    import(&bad, &store).failure();
    import(&fixture("syntax.json"), &store).failure();
    import(&fixture("unknown-extends.json"), &store).failure();
    let after = snapshot(&store);
    assert!(
        before == after,
        "a failed import changed the catalog:\n{}",
        snapshot_diff(&before, &after)
    );
}

#[test]
fn imported_theme_is_used_by_the_next_build() {
    let (tmp, store) = demo_copy();
    let file = fixture("harbour.json");
    import(&file, &store).success();
    let out = tmp.path().join("site");
    build(&store, &out);
    let (_, css) = stylesheet(&Site::new(&out));
    assert_palette_in_css(&css, &effective(&read_json(&file), Some("minimal")), "imported harbour");
}

// ---------------------------------------------------------------------------------------
// Where the build gets its theme
// ---------------------------------------------------------------------------------------

#[test]
fn site_theme_json_is_used_unless_theme_is_given() {
    let (tmp, store) = demo_copy();
    let harbour = read_json(&fixture("harbour.json"));
    std::fs::copy(fixture("harbour.json"), store.join("theme.json")).expect("copy theme.json");
    let harbour_bg = canonical_colour(&palette_colour(&harbour, "background"));

    let own = tmp.path().join("own");
    build(&store, &own);
    let (_, css) = stylesheet(&Site::new(&own));
    assert_palette_in_css(&css, &effective(&harbour, Some("minimal")), "the site's theme.json");

    let preset = tmp.path().join("preset");
    build_theme(&store, &preset, os("bold"));
    let (_, css) = stylesheet(&Site::new(&preset));
    assert_palette_in_css(&css, &effective_preset("bold"), "--theme bold");
    let bg = custom_property(&css, "--color-background").expect("--color-background");
    assert_ne!(canonical_colour(&bg), harbour_bg, "--theme bold overrides theme.json");

    let file = tmp.path().join("file");
    build_theme(&store, &file, os(&fixture("partial-dark.json")));
    let (_, css) = stylesheet(&Site::new(&file));
    assert_palette_in_css(&css, &effective_preset("dark"), "--theme partial-dark.json");
}

#[test]
fn site_theme_json_without_extends_extends_the_store_preset() {
    let (tmp, store) = demo_copy();
    set_store_theme(&store, "classic");
    let partial = serde_json::json!({
        "version": 1,
        "metadata": { "name": "Classic, not sticky" },
        "components": { "header": { "sticky": false } }
    });
    std::fs::write(store.join("theme.json"), serde_json::to_string_pretty(&partial).expect("JSON"))
        .expect("write theme.json");
    let out = tmp.path().join("site");
    build(&store, &out);
    let (_, css) = stylesheet(&Site::new(&out));
    assert_palette_in_css(&css, &effective_preset("classic"), "theme.json over classic");
    assert!(css.contains(".site-header{position:static}"), "the override applies too");
    let exported = tmp.path().join("export.json");
    export(&store, &exported);
    assert_eq!(read_json(&exported), effective(&partial, Some("classic")));
}
