//! End-to-end tests of themes through the real `aurelio` binary: `theme list`, `theme
//! validate`, `theme export` / `theme import`, and `build --theme`. Expectations are derived
//! from the theme files themselves (`themes/*.json`, `fixtures/themes/*.json`) and the demo
//! catalog, never copied from the output: positions are computed from the fixture text,
//! colours from the presets' palettes, products from `collections.json` and
//! `products.jsonl`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A test theme under `fixtures/themes/`.
fn fixture(name: &str) -> PathBuf {
    repo_path("fixtures/themes").join(name)
}

/// The text of a file.
#[track_caller]
fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
}

/// The presets shipped in `themes/`: every `*.json` except the schema, by file stem, sorted.
fn preset_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_path("themes"))
        .expect("themes/ exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension() == Some(OsStr::new("json")))
        .filter(|p| p.file_name() != Some(OsStr::new("theme.schema.json")))
        .map(|p| p.file_stem().expect("a file name").to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `themes/NAME.json`.
fn preset_file(name: &str) -> PathBuf {
    repo_path("themes").join(format!("{name}.json"))
}

/// The documented merge: objects key by key, everything else (arrays too) replaced.
fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A theme document laid over the preset it extends (`default_base` when it names none),
/// without `extends` and `$schema`: the effective theme as the format describes it.
fn effective(raw: &Value, default_base: Option<&str>) -> Value {
    let base_name = raw.get("extends").and_then(Value::as_str).or(default_base);
    let mut merged = match base_name {
        Some(name) => effective_preset(name),
        None => Value::Object(serde_json::Map::new()),
    };
    deep_merge(&mut merged, raw);
    let map = merged.as_object_mut().expect("a theme is an object");
    map.remove("extends");
    map.remove("$schema");
    merged
}

/// The effective theme of a preset, computed from `themes/*.json` (minimal extends
/// nothing; every other preset extends minimal unless it says otherwise).
fn effective_preset(name: &str) -> Value {
    let raw = read_json(&preset_file(name));
    effective(&raw, (name != "minimal").then_some("minimal"))
}

/// `(slug, colour)` of a theme's palette.
fn palette(theme: &Value) -> Vec<(String, String)> {
    theme
        .pointer("/settings/color/palette")
        .and_then(Value::as_array)
        .expect("the theme has a palette")
        .iter()
        .map(|p| {
            (
                p["slug"].as_str().expect("slug").to_owned(),
                p["color"].as_str().expect("color").to_owned(),
            )
        })
        .collect()
}

/// The colour of one palette role.
#[track_caller]
fn palette_colour(theme: &Value, slug: &str) -> String {
    palette(theme)
        .into_iter()
        .find(|(s, _)| s == slug)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("the palette has no `{slug}`"))
}

/// `primaryContrast` → `primary-contrast`, as the format documents.
fn kebab(slug: &str) -> String {
    let mut out = String::new();
    for c in slug.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A hex colour in one canonical form (`#abc` → `#aabbcc`, opaque alpha dropped, lower
/// case), so `#FFFFFF`, `#fff` and `#ffffffff` compare equal.
fn canonical_colour(colour: &str) -> String {
    let lower = colour.trim().to_ascii_lowercase();
    let Some(hex) = lower.strip_prefix('#') else { return lower };
    let expanded: String = match hex.len() {
        3 | 4 => hex.chars().flat_map(|c| [c, c]).collect(),
        _ => hex.to_owned(),
    };
    let opaque = expanded.strip_suffix("ff").filter(|_| expanded.len() == 8);
    format!("#{}", opaque.unwrap_or(&expanded))
}

/// The value of the last declaration of custom property `name` (`--color-text`) in a
/// minified stylesheet: the one that wins, since the theme's tokens come after the
/// stylesheet's defaults.
fn custom_property(css: &str, name: &str) -> Option<String> {
    let needle = format!("{name}:");
    let mut found = None;
    let mut from = 0;
    while let Some(i) = css[from..].find(&needle) {
        let at = from + i;
        let before = css[..at].chars().next_back();
        if matches!(before, Some('{' | ';')) {
            let rest = &css[at + needle.len()..];
            let end = rest.find([';', '}']).unwrap_or(rest.len());
            found = Some(rest[..end].trim().to_owned());
        }
        from = at + needle.len();
    }
    found
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Line and column of `needle` in `text` plus `skip` bytes; `needle` must occur once.
#[track_caller]
fn position_of(text: &str, needle: &str, skip: usize) -> (usize, usize) {
    let found: Vec<usize> = text.match_indices(needle).map(|(i, _)| i).collect();
    assert_eq!(found.len(), 1, "`{needle}` should occur exactly once in the fixture");
    line_col(text, found[0] + skip)
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// `aurelio theme validate FILE`.
fn validate(file: &Path) -> Run {
    aurelio(&[os("theme"), os("validate"), os(file)])
}

/// `aurelio build --site SITE --out OUT [--theme THEME]`, whatever its outcome.
fn try_build_theme(site: &Path, out: &Path, theme: Option<&OsStr>) -> Run {
    let mut args = vec![os("build"), os("--site"), os(site), os("--out"), os(out)];
    if let Some(theme) = theme {
        args.push(os("--theme"));
        args.push(theme);
    }
    aurelio(&args)
}

/// A build with `--theme` (a preset name or a file) that must succeed.
#[track_caller]
fn build_theme(site: &Path, out: &Path, theme: &OsStr) -> Run {
    try_build_theme(site, out, Some(theme)).success()
}

/// The stylesheet a built site links: `(path relative to the site, its text)`. Every
/// page must link exactly one stylesheet, the same one, named `assets/theme.<10 hex>.css`.
#[track_caller]
fn stylesheet(site: &Site) -> (String, String) {
    let mut hrefs = BTreeSet::new();
    for (file, _, doc) in site.html_pages() {
        let links = select(&doc, r#"link[rel="stylesheet"]"#);
        assert_eq!(links.len(), 1, "`{file}` links {} stylesheets, expected one", links.len());
        hrefs.insert(attr(links[0], "href").to_owned());
    }
    assert_eq!(hrefs.len(), 1, "pages link different stylesheets: {hrefs:?}");
    let href = hrefs.into_iter().next().unwrap_or_default();
    let rel = href.trim_start_matches('/').to_owned();
    let hash = rel
        .strip_prefix("assets/theme.")
        .and_then(|r| r.strip_suffix(".css"))
        .unwrap_or_else(|| panic!("stylesheet `{href}` is not assets/theme.<hash>.css"));
    assert!(
        hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "stylesheet `{href}`: `{hash}` is not 10 lower-case hex digits"
    );
    assert!(site.exists(&rel), "the linked stylesheet `{rel}` was not written");
    let css = site.read(&rel);
    (rel, css)
}

/// Asserts that every colour of `theme`'s palette is the winning `--color-<slug>` in `css`.
#[track_caller]
fn assert_palette_in_css(css: &str, theme: &Value, what: &str) {
    let mut problems = Problems::default();
    for (slug, colour) in palette(theme) {
        let name = format!("--color-{}", kebab(&slug));
        match custom_property(css, &name) {
            Some(value) => problems
                .check(canonical_colour(&value) == canonical_colour(&colour), || {
                    format!("{what}: `{name}` is `{value}`, expected `{colour}`")
                }),
            None => problems.push(format!("{what}: the stylesheet has no `{name}`")),
        }
    }
    problems.assert_none("palette colours in the stylesheet");
}

/// A copy of the demo store in a temporary directory: `(tempdir, catalog dir)`.
fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let dir = tmp.path().join("store");
    copy_dir(&demo_store(), &dir);
    (tmp, dir)
}

/// Rewrites a catalog's `store.json` `theme`.
fn set_store_theme(catalog: &Path, preset: &str) {
    let path = catalog.join("store.json");
    let mut store = read_json(&path);
    store["theme"] = Value::String(preset.to_owned());
    std::fs::write(&path, serde_json::to_string_pretty(&store).expect("JSON")).expect("write");
}

/// The stderr lines that are diagnostics (`error[…]` or `warning[…]`).
fn diagnostic_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error[") || l.starts_with("warning[")).collect()
}

// ---------------------------------------------------------------------------------------
// theme list
// ---------------------------------------------------------------------------------------

#[test]
fn theme_list_prints_every_preset_in_the_themes_directory() {
    let presets = preset_names();
    assert!(presets.len() >= 5, "themes/ should hold the five presets, found {presets:?}");
    let run = aurelio(&["theme", "list"]).success();
    let listed: BTreeSet<String> =
        run.stdout.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    let expected: BTreeSet<String> = presets.iter().cloned().collect();
    assert_eq!(listed, expected, "`theme list` vs. themes/*.json\n{}", run.stdout);
    for name in &presets {
        let display = read_json(&preset_file(name))["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_owned();
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .expect("listed");
        assert!(line.contains(&display), "the line of `{name}` shows its name `{display}`: {line}");
    }
}

// ---------------------------------------------------------------------------------------
// theme validate
// ---------------------------------------------------------------------------------------

#[test]
fn every_preset_file_validates_without_errors_or_warnings() {
    for name in preset_names() {
        let run = validate(&preset_file(name.as_str())).success();
        assert!(
            diagnostic_lines(&run.stderr).is_empty(),
            "preset `{name}` should have no errors or warnings:\n{}",
            run.stderr
        );
        assert!(run.stdout.contains("is a valid theme"), "{name}: {}", run.stdout);
    }
}

/// One expected problem: the file, its JSON pointer (None for syntax errors), where it
/// is (a substring of the fixture that occurs once, and a byte offset into it) and text
/// the message must contain.
struct Expected<'a> {
    pointer: Option<&'a str>,
    anchor: &'a str,
    skip: usize,
    hints: Vec<String>,
}

impl<'a> Expected<'a> {
    fn at(pointer: &'a str, anchor: &'a str, skip: usize, hints: &[&str]) -> Self {
        Self {
            pointer: Some(pointer),
            anchor,
            skip,
            hints: hints.iter().map(|h| (*h).to_owned()).collect(),
        }
    }
}

/// Checks that `stderr` reports `e` for `file` with the pointer, `line L:C` computed from
/// the fixture text and every hint, all on one diagnostic line.
fn check_reported(problems: &mut Problems, file: &str, text: &str, stderr: &str, e: &Expected<'_>) {
    let (line, column) = position_of(text, e.anchor, e.skip);
    let mut expected = format!("`{file}` line {line}:{column}");
    if let Some(pointer) = e.pointer {
        expected.push_str(&format!(": `{pointer}`: "));
    }
    let found = diagnostic_lines(stderr).into_iter().find(|l| match e.pointer {
        Some(p) => l.contains(&format!("`{p}`: ")),
        None => l.contains(&format!("`{file}`")),
    });
    let Some(found) = found else {
        problems.push(format!("{file}: no diagnostic for {:?} in\n{stderr}", e.pointer));
        return;
    };
    problems.check(found.starts_with("error[") && found.contains(&expected), || {
        format!("{file}: expected an error with `{expected}`, got `{found}`")
    });
    for hint in &e.hints {
        problems.check(found.contains(hint.as_str()), || {
            format!("{file}: the message should contain `{hint}`: `{found}`")
        });
    }
}

#[track_caller]
fn check_invalid_file(name: &str, expected: &[Expected<'_>]) {
    let path = fixture(name);
    let text = read_text(&path);
    let run = validate(&path).failure();
    assert_eq!(run.code, Some(1), "{name}: exit code\n{}", run.stderr);
    let mut problems = Problems::default();
    for e in expected {
        check_reported(&mut problems, name, &text, &run.stderr, e);
    }
    let errors =
        diagnostic_lines(&run.stderr).into_iter().filter(|l| l.starts_with("error[")).count();
    problems.check(errors == expected.len(), || {
        format!("{name}: {errors} errors printed, expected {}:\n{}", expected.len(), run.stderr)
    });
    problems.assert_none(name);
}

#[test]
fn invalid_colour_is_reported_with_pointer_position_and_hint() {
    check_invalid_file(
        "bad-colour.json",
        &[Expected::at(
            "/settings/color/palette/1/color",
            "\"#ggg\"",
            0,
            &["`#ggg` is not a colour"],
        )],
    );
}

#[test]
fn unknown_key_is_reported_with_a_did_you_mean_suggestion() {
    // The position is that of the value under the unknown key, as for every pointer.
    check_invalid_file(
        "unknown-key.json",
        &[Expected::at(
            "/components/productCard/showVendr",
            "\"showVendr\": ",
            "\"showVendr\": ".len(),
            &["unknown key `showVendr`", "did you mean `showVendor`?"],
        )],
    );
}

#[test]
fn value_outside_an_enum_is_reported_with_the_closest_choice() {
    check_invalid_file(
        "bad-enum.json",
        &[Expected::at(
            "/components/button/radius",
            "\"pil\"",
            0,
            &["`pil` is not one of", "did you mean `pill`?"],
        )],
    );
}

#[test]
fn length_without_a_unit_is_reported_as_not_a_length() {
    check_invalid_file(
        "bad-length.json",
        &[Expected::at("/settings/typography/baseSize", "\"16\"", 0, &["`16` is not a length"])],
    );
}

#[test]
fn value_of_the_wrong_type_is_reported_at_its_pointer() {
    check_invalid_file(
        "wrong-type.json",
        &[Expected::at("/components/header/logoWidth", "\"120px\"", 0, &["`120px`", "wrong type"])],
    );
}

#[test]
fn full_palette_without_a_required_role_names_the_missing_role() {
    let text = read_text(&fixture("missing-role.json"));
    let doc: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let present: Vec<String> = palette(&doc).into_iter().map(|(s, _)| s).collect();
    // The required roles, as documented in docs/theme-format.md.
    let missing: Vec<&str> = ["background", "text", "primary", "accent", "sale", "border"]
        .into_iter()
        .filter(|r| !present.iter().any(|p| p == r))
        .collect();
    assert_eq!(missing.len(), 1, "the fixture leaves out exactly one required role");
    let hint = format!("the palette has no `{}` colour", missing[0]);
    check_invalid_file(
        "missing-role.json",
        &[Expected::at(
            "/settings/color/palette",
            "\"palette\": ",
            "\"palette\": ".len(),
            &[&hint],
        )],
    );
}

#[test]
fn unknown_font_family_slug_is_reported_with_a_suggestion() {
    check_invalid_file(
        "unknown-font.json",
        &[Expected::at(
            "/settings/typography/heading",
            "\"sytem\"",
            0,
            &["unknown font family `sytem`", "did you mean `system`?"],
        )],
    );
}

#[test]
fn invalid_json_syntax_is_reported_with_line_and_column() {
    // The trailing comma is only noticed at the `}` after it.
    check_invalid_file(
        "syntax.json",
        &[Expected { pointer: None, anchor: ", }", skip: 2, hints: vec!["invalid JSON".into()] }],
    );
}

#[test]
fn unknown_extends_preset_is_reported_with_a_suggestion() {
    check_invalid_file(
        "unknown-extends.json",
        &[Expected::at(
            "/extends",
            "\"bolder\"",
            0,
            &["unknown theme preset `bolder`", "did you mean `bold`?"],
        )],
    );
}

#[test]
fn broken_custom_css_is_reported_on_the_line_of_the_css_string() {
    // JSON strings cannot span lines: the CSS's second line (after the `\n` escape) is still
    // on the line of `"css"` in the file, and the error is at the second `.` of `..b`.
    check_invalid_file("broken-css.json", &[Expected::at("/css", "\\n..b", 3, &["custom CSS"])]);
}

#[test]
fn every_schema_problem_of_a_file_is_reported_at_once() {
    check_invalid_file(
        "four-problems.json",
        &[
            Expected::at("/settings/color/palette/1/color", "\"#ggg\"", 0, &["is not a colour"]),
            Expected::at("/settings/layout/contentSize", "\"wide\"", 0, &["is not a length"]),
            Expected::at("/components/button/radius", "\"pil\"", 0, &["did you mean `pill`?"]),
            Expected::at(
                "/components/productCard/showVendr",
                "\"showVendr\": ",
                "\"showVendr\": ".len(),
                &["did you mean `showVendor`?"],
            ),
        ],
    );
    let run = validate(&fixture("four-problems.json"));
    assert!(run.stderr.contains("4 error(s)"), "the summary counts 4 errors:\n{}", run.stderr);
}

#[test]
fn every_problem_of_the_merged_theme_is_reported_at_once() {
    check_invalid_file(
        "semantic-problems.json",
        &[
            Expected::at(
                "/settings/color/palette",
                "\"palette\": ",
                "\"palette\": ".len(),
                &["no `sale` colour"],
            ),
            Expected::at(
                "/settings/color/palette/2/slug",
                "\"text\", \"name\": \"Text again\"",
                0,
                &["`text` is used twice"],
            ),
            Expected::at("/settings/typography/body", "\"sytem\"", 0, &["did you mean `system`?"]),
        ],
    );
}

#[test]
fn values_that_would_break_the_stylesheet_are_rejected_by_validate() {
    // Font stacks and shadows are copied into custom properties; a value that opens a
    // comment, a string or a url, or closes a parenthesis, swallows or breaks the rest of
    // the generated stylesheet, so validation must catch it.
    check_invalid_file(
        "stylesheet-breaking-values.json",
        &[
            Expected::at(
                "/settings/typography/fontFamilies/0/fontFamily",
                "\"Georgia, url(x\"",
                0,
                &["is not a font stack"],
            ),
            Expected::at(
                "/settings/typography/fontFamilies/1/fontFamily",
                "\"Georgia, serif)\"",
                0,
                &["is not a font stack"],
            ),
            Expected::at(
                "/settings/shadow/presets/0/shadow",
                "\"0 1px 2px red /*\"",
                0,
                &["is not a box shadow"],
            ),
            Expected::at(
                "/settings/shadow/presets/1/shadow",
                "\"0 2px 4px \\\"x\"",
                0,
                &["is not a box shadow"],
            ),
        ],
    );
}

#[test]
fn shadow_opening_a_css_comment_does_not_silently_drop_the_rest_of_the_theme() {
    let file = fixture("comment-shadow.json");
    let raw = read_json(&file);
    let custom = raw["css"].as_str().expect("css");
    let selector = custom.split('{').next().expect("a rule").trim();
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let run = try_build_theme(&demo_store(), &out, Some(os(&file)));
    if run.success {
        // Accepted: then everything after the shadow must still be in the stylesheet.
        let (_, css) = stylesheet(&Site::new(&out));
        assert_eq!(
            custom_property(&css, "--button-radius").as_deref(),
            Some("999px"),
            "button radius lost"
        );
        assert!(css.contains(selector), "the theme's custom CSS `{selector}` was swallowed");
    } else {
        // Rejected: with the shadow's pointer, and the output left alone.
        assert!(run.stderr.contains("`/settings/shadow/presets/0/shadow`"), "{}", run.stderr);
        assert!(!out.exists(), "a failed build wrote output");
    }
}

// ---------------------------------------------------------------------------------------
// Robustness: theme validate never crashes
// ---------------------------------------------------------------------------------------

/// A small deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a generated input must do beyond not crashing.
#[derive(Debug, Clone)]
enum Outcome {
    /// Exit 0 or 1.
    Any,
    /// Exit 1.
    Invalid,
    /// Exit 1, blaming this pointer (or a place below it).
    InvalidAt(String),
}

/// Every JSON pointer of a document, root first.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                pointers(x, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                pointers(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn json_kind(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// ~330 inputs: truncations, byte flips, arbitrary bytes, deep nesting, huge strings and a
/// wrong type at every pointer of minimal.json.
fn robustness_inputs() -> Vec<(String, Vec<u8>, Outcome)> {
    let text = read_text(&preset_file("minimal"));
    let bytes = text.as_bytes();
    let minimal: Value = serde_json::from_str(&text).expect("minimal.json is JSON");
    let mut rng = Rng(0x05ee_da11_e110_7e57);
    let mut inputs = Vec::new();

    for cut in (0..bytes.len()).step_by(37) {
        let prefix = &bytes[..cut];
        let outcome = if String::from_utf8_lossy(prefix).trim_end() == text.trim_end() {
            Outcome::Any
        } else {
            Outcome::Invalid
        };
        inputs.push((format!("truncated-at-{cut}"), prefix.to_vec(), outcome));
    }

    for i in 0..60 {
        let mut flipped = bytes.to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(flipped.len());
            flipped[at] = (rng.next() & 0xff) as u8;
        }
        inputs.push((format!("flipped-{i}"), flipped, Outcome::Any));
    }

    let alphabet = b"{}[]\":,0123456789.eE+-truefalsnl \n\t\\u#abcdefgxyz/";
    for i in 0..20 {
        let len = rng.below(3000);
        let data: Vec<u8> = if i % 2 == 0 {
            (0..len).map(|_| (rng.next() & 0xff) as u8).collect()
        } else {
            (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect()
        };
        inputs.push((format!("arbitrary-{i}"), data, Outcome::Any));
    }

    let with = |pointer: &str, value: Value| {
        let mut doc = minimal.clone();
        *doc.pointer_mut(pointer).expect("pointer exists") = value;
        serde_json::to_vec_pretty(&doc).expect("JSON")
    };
    let nested = |depth: usize| -> Value {
        let mut v = Value::Array(Vec::new());
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        v
    };
    let special: Vec<(&str, Vec<u8>, Outcome)> = vec![
        ("open-brackets", "[".repeat(10_000).into_bytes(), Outcome::Invalid),
        (
            "balanced-brackets",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            Outcome::Invalid,
        ),
        ("open-objects", "{\"a\":".repeat(10_000).into_bytes(), Outcome::Invalid),
        ("nested-css", with("/css", nested(120)), Outcome::InvalidAt("/css".into())),
        (
            "nested-name",
            with("/metadata/name", nested(120)),
            Outcome::InvalidAt("/metadata/name".into()),
        ),
        (
            "huge-name",
            with("/metadata/name", Value::String("é".repeat(300_000))),
            Outcome::InvalidAt("/metadata/name".into()),
        ),
        (
            "huge-css",
            with("/css", Value::String("a{}".repeat(70_000))),
            Outcome::InvalidAt("/css".into()),
        ),
        (
            "long-valid-css",
            with("/css", Value::String(format!("/*{}*/", "x".repeat(90_000)))),
            Outcome::Any,
        ),
        (
            "huge-colour",
            with(
                "/settings/color/palette/0/color",
                Value::String(format!("#{}", "f".repeat(200_000))),
            ),
            Outcome::InvalidAt("/settings/color/palette/0/color".into()),
        ),
        (
            "huge-unknown-key",
            {
                let mut doc = minimal.clone();
                doc["metadata"]["k".repeat(50_000)] = Value::Bool(true);
                serde_json::to_vec(&doc).expect("JSON")
            },
            Outcome::InvalidAt("/metadata/".into()),
        ),
        ("empty", Vec::new(), Outcome::Invalid),
        ("whitespace", b"  \n\t ".to_vec(), Outcome::Invalid),
        ("null", b"null".to_vec(), Outcome::Invalid),
        ("bom", [b"\xef\xbb\xbf".as_slice(), bytes].concat(), Outcome::Any),
        (
            "lone-surrogate",
            br#"{"version": 1, "metadata": {"name": "\ud800"}}"#.to_vec(),
            Outcome::Any,
        ),
        (
            "nul-in-string",
            br#"{"version": 1, "metadata": {"name": "a\u0000b"}}"#.to_vec(),
            Outcome::Any,
        ),
        (
            "number-overflow",
            br#"{"version": 1e400, "metadata": {"name": "x"}}"#.to_vec(),
            Outcome::Invalid,
        ),
        ("float-version", br#"{"version": 1.0, "metadata": {"name": "x"}}"#.to_vec(), Outcome::Any),
        (
            "big-integer",
            br#"{"version": 18446744073709551616, "metadata": {"name": "x"}}"#.to_vec(),
            Outcome::Invalid,
        ),
        ("invalid-utf8", [bytes, b"\xff\xfe".as_slice()].concat(), Outcome::Invalid),
    ];
    inputs.extend(special.into_iter().map(|(n, b, o)| (n.to_owned(), b, o)));

    let mut all = Vec::new();
    pointers(&minimal, "", &mut all);
    let wrong = [
        Value::Null,
        Value::Bool(true),
        serde_json::json!(1.5),
        Value::String("x".into()),
        Value::Array(Vec::new()),
        Value::Object(serde_json::Map::new()),
    ];
    for (i, pointer) in all.iter().enumerate() {
        let current = json_kind(minimal.pointer(pointer).expect("pointer exists"));
        let choices: Vec<&Value> = wrong.iter().filter(|w| json_kind(w) != current).collect();
        let value = choices[i % choices.len()].clone();
        let blamed = if pointer.is_empty() { "/".to_owned() } else { pointer.clone() };
        inputs.push((format!("wrong-type-{i}"), with(pointer, value), Outcome::InvalidAt(blamed)));
    }
    inputs
}

#[test]
fn theme_validate_never_crashes_on_generated_inputs() {
    let tmp = tempdir();
    let cases: Vec<(String, PathBuf, Outcome)> = robustness_inputs()
        .into_iter()
        .enumerate()
        .map(|(i, (name, bytes, outcome))| {
            let path = tmp.path().join(format!("{i:03}-{name}.json"));
            std::fs::write(&path, bytes).expect("write a generated input");
            (name, path, outcome)
        })
        .collect();
    assert!(cases.len() >= 200, "expected about 200+ inputs, generated {}", cases.len());
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get().min(8));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let cases = &cases;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (name, path, outcome) in cases.iter().skip(w).step_by(workers) {
                        let run = validate(path);
                        let mut fail = |why: &str| {
                            let tail: String = run.stderr.chars().take(600).collect();
                            failures.push(format!(
                                "{name} ({}): {why}; exit {:?}\n{tail}",
                                path.display(),
                                run.code
                            ));
                        };
                        if !matches!(run.code, Some(0 | 1)) {
                            fail("exit code is not 0 or 1 (signal or panic)");
                            continue;
                        }
                        if run.stderr.contains("panicked") {
                            fail("it panicked");
                            continue;
                        }
                        if run.code == Some(1) && !run.stderr.contains("error[") {
                            fail("it failed without printing a diagnostic");
                        }
                        if run.code == Some(0) && !run.stdout.contains("is a valid theme") {
                            fail("it succeeded without saying the theme is valid");
                        }
                        match outcome {
                            Outcome::Any => {}
                            Outcome::Invalid if run.code != Some(1) => fail("it should be invalid"),
                            Outcome::InvalidAt(p)
                                if run.code != Some(1)
                                    || !run.stderr.contains(&format!("`{p}")) =>
                            {
                                fail(&format!("it should be invalid at `{p}`"));
                            }
                            _ => {}
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker thread")).collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} inputs misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

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
    for (file, _, doc) in Site::new(&with).html_pages() {
        assert_eq!(
            select(&doc, "form.header-search").len(),
            1,
            "minimal: `{file}` has the search form"
        );
    }
    for (file, _, doc) in Site::new(&without).html_pages() {
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
