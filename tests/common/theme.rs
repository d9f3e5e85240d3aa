//! Helpers of the theme tests: the theme files of the repository (`themes/*.json`, the test
//! themes in `fixtures/themes/`), the effective theme computed from them as the format
//! describes it (presets laid over `minimal`, objects merged key by key), positions in a
//! file, and the stylesheet a built site links, read back as custom properties.

use super::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A test theme under `fixtures/themes/`.
pub fn fixture(name: &str) -> PathBuf {
    repo_path("fixtures/themes").join(name)
}

/// The text of a file.
#[track_caller]
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
}

/// The presets shipped in `themes/`: every `*.json` except the schema, by file stem, sorted.
pub fn preset_names() -> Vec<String> {
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
pub fn preset_file(name: &str) -> PathBuf {
    repo_path("themes").join(format!("{name}.json"))
}

/// The documented merge: objects key by key, everything else (arrays too) replaced.
pub fn deep_merge(base: &mut Value, over: &Value) {
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
pub fn effective(raw: &Value, default_base: Option<&str>) -> Value {
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
pub fn effective_preset(name: &str) -> Value {
    let raw = read_json(&preset_file(name));
    effective(&raw, (name != "minimal").then_some("minimal"))
}

/// `(slug, colour)` of a theme's palette.
pub fn palette(theme: &Value) -> Vec<(String, String)> {
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
pub fn palette_colour(theme: &Value, slug: &str) -> String {
    palette(theme)
        .into_iter()
        .find(|(s, _)| s == slug)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("the palette has no `{slug}`"))
}

/// `primaryContrast` → `primary-contrast`, as the format documents.
pub fn kebab(slug: &str) -> String {
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
pub fn canonical_colour(colour: &str) -> String {
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
pub fn custom_property(css: &str, name: &str) -> Option<String> {
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
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Line and column of `needle` in `text` plus `skip` bytes; `needle` must occur once.
#[track_caller]
pub fn position_of(text: &str, needle: &str, skip: usize) -> (usize, usize) {
    let found: Vec<usize> = text.match_indices(needle).map(|(i, _)| i).collect();
    assert_eq!(found.len(), 1, "`{needle}` should occur exactly once in the fixture");
    line_col(text, found[0] + skip)
}

/// An argument for [`aurelio`].
pub fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// `aurelio theme validate FILE`.
pub fn validate(file: &Path) -> Run {
    aurelio(&[os("theme"), os("validate"), os(file)])
}

/// `aurelio build --site SITE --out OUT [--theme THEME]` with the shared cache, whatever
/// its outcome.
#[track_caller]
pub fn try_build_theme(site: &Path, out: &Path, theme: Option<&OsStr>) -> Run {
    match theme {
        Some(theme) => try_build_args(site, out, &[os("--theme"), theme]),
        None => try_build_args::<&str>(site, out, &[]),
    }
}

/// A build with `--theme` (a preset name or a file) that must succeed.
#[track_caller]
pub fn build_theme(site: &Path, out: &Path, theme: &OsStr) -> Run {
    try_build_theme(site, out, Some(theme)).success()
}

/// The stylesheet a built site links: `(path relative to the site, its text)`. Every
/// page must link exactly one stylesheet, the same one, named `assets/theme.<10 hex>.css`.
#[track_caller]
pub fn stylesheet(site: &Site) -> (String, String) {
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
pub fn assert_palette_in_css(css: &str, theme: &Value, what: &str) {
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
pub fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let dir = tmp.path().join("store");
    copy_dir(&demo_store(), &dir);
    (tmp, dir)
}

/// Rewrites a catalog's `store.json` `theme`.
pub fn set_store_theme(catalog: &Path, preset: &str) {
    let path = catalog.join("store.json");
    let mut store = read_json(&path);
    store["theme"] = Value::String(preset.to_owned());
    std::fs::write(&path, serde_json::to_string_pretty(&store).expect("JSON")).expect("write");
}

/// The stderr lines that are diagnostics (`error[…]` or `warning[…]`).
pub fn diagnostic_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error[") || l.starts_with("warning[")).collect()
}
