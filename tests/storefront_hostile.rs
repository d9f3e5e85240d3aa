//! End-to-end tests of the hostile catalog (`fixtures/hostile`: markup, scripts and event
//! handlers in every text field) through the real `aurelio` binary: the build warns where
//! markup was removed, and the pages carry no active content, while the text survives as
//! text in JSON-LD, the product JSON and attributes.

mod common;

use common::*;
use serde_json::Value;

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
    let pages = hostile.site.html_pages();
    let products = read_products(&hostile_store()).iter().filter(|p| p.is_active()).count();
    assert!(
        pages.len() > products && products > 0,
        "{} pages for {products} hostile products",
        pages.len()
    );
    for (file, _, doc) in pages {
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
    let mut checked_options = 0;
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
        let records = json.as_array().map_or(0, Vec::len);
        assert_eq!(records, p.variants().len(), "product JSON records of `{handle}`");
        if records > 1 {
            assert_eq!(options.len(), records, "variant options of `{handle}`");
        }
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
            checked_options += shown.len();
        }
    }
    assert!(checked_close, "the hostile catalog has `</script>` in a field that lands in JSON-LD");
    assert!(checked_options > 0, "the hostile catalog has products with options to check");
}
