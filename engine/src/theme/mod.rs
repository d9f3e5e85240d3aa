//! Themes: one JSON file of design tokens, component settings and home page sections,
//! checked against `themes/theme.schema.json`, merged over a preset, compiled to CSS.
//!
//! A theme extends a preset (`minimal` by default); objects merge key by key and arrays
//! replace, so the effective theme of any file is complete and exporting it round-trips.

mod css;
mod model;
mod schema;

pub use css::{TARGETS_DOC, compile_css, contrast_ratio};
pub use model::{Components, Section, Settings, ThemeModel};

use crate::catalog::locate;
use crate::diagnostics::{Diagnostics, Severity};
use serde_json::Value;
use std::path::Path;

/// The built-in presets: (name, JSON source).
pub const PRESETS: &[(&str, &str)] = &[
    ("minimal", include_str!("../../../themes/minimal.json")),
    ("bold", include_str!("../../../themes/bold.json")),
    ("classic", include_str!("../../../themes/classic.json")),
    ("boutique", include_str!("../../../themes/boutique.json")),
    ("dark", include_str!("../../../themes/dark.json")),
];

/// The JSON Schema of theme files.
pub const SCHEMA: &str = include_str!("../../../themes/theme.schema.json");

/// Longest `extends` chain followed, against cycles.
const MAX_DEPTH: usize = 8;

/// An effective theme: every key present, validated.
#[derive(Debug, Clone)]
pub struct Theme {
    /// Where it came from, for messages (`theme.json`, `preset bold`).
    pub source: String,
    /// The merged JSON (no `extends`, no `$schema`), sorted keys.
    pub value: Value,
    /// The same, typed.
    pub model: ThemeModel,
    /// The source text of the theme file, to locate problems found later (at build time).
    pub text: String,
}

impl Theme {
    /// The effective theme as pretty JSON, the format `theme export` writes.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.value).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Where to take a theme from.
#[derive(Debug, Clone)]
pub enum ThemeSource<'a> {
    /// A built-in preset by name.
    Preset(&'a str),
    /// A theme JSON file; `default_base` is the preset it extends when it names none.
    File {
        /// The file.
        path: &'a Path,
        /// Preset extended when the file has no `extends`.
        default_base: &'a str,
    },
}

/// Names of the built-in presets.
pub fn preset_names() -> impl Iterator<Item = &'static str> {
    PRESETS.iter().map(|(n, _)| *n)
}

/// `--theme NAME|FILE`: a preset name, otherwise a path to a theme file. A bare word that
/// is no file is taken as a (misspelt) preset name, so the error can suggest one.
pub fn source_from_arg(arg: &str) -> ThemeSource<'_> {
    let bare = !arg.contains(['/', '.', '\\']);
    if preset_names().any(|n| n == arg) || (bare && !Path::new(arg).exists()) {
        ThemeSource::Preset(arg)
    } else {
        ThemeSource::File { path: Path::new(arg), default_base: "minimal" }
    }
}

/// The theme of a catalog directory: its `theme.json` over the store's preset, or the preset.
pub fn for_site<'a>(theme_file: &'a Path, store_theme: &'a str) -> ThemeSource<'a> {
    if theme_file.is_file() {
        ThemeSource::File { path: theme_file, default_base: store_theme }
    } else {
        ThemeSource::Preset(store_theme)
    }
}

/// The preset a preset extends when it names none: `minimal`, which extends nothing.
fn preset_base(name: &str) -> Option<&'static str> {
    (name != "minimal").then_some("minimal")
}

/// Loads, validates and merges a theme. All problems come back at once; warnings (such as
/// low contrast) ride along with a successful result.
pub fn load(source: &ThemeSource<'_>) -> Result<(Theme, Diagnostics), Diagnostics> {
    match source {
        ThemeSource::Preset(name) => {
            let mut diags = Diagnostics::default();
            let Some(text) = preset_text(name) else {
                diags.error("unknown-preset", "theme", None, None, unknown_preset(name));
                return Err(diags);
            };
            check_text(text, &format!("preset {name}"), preset_base(name))
        }
        ThemeSource::File { path, default_base } => {
            let label = path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            let text = match std::fs::read(path) {
                Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                    let mut d = Diagnostics::default();
                    d.error("encoding", &label, None, None, "the file is not valid UTF-8");
                    d
                })?,
                Err(e) => {
                    let mut d = Diagnostics::default();
                    d.error(
                        "missing-file",
                        &path.display().to_string(),
                        None,
                        None,
                        format!("cannot read the file: {e}"),
                    );
                    return Err(d);
                }
            };
            check_text(&text, &label, Some(default_base))
        }
    }
}

fn preset_text(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

fn unknown_preset(name: &str) -> String {
    let hint = crate::catalog::did_you_mean(name, preset_names())
        .map(|s| format!(", did you mean `{s}`?"))
        .unwrap_or_default();
    format!(
        "unknown theme preset `{name}`{hint} (presets: {})",
        preset_names().collect::<Vec<_>>().join(", ")
    )
}

/// Validates theme source text and returns the effective theme. `label` names the file in
/// messages; `default_base` is the preset extended when the text names none.
pub fn check_text(
    text: &str,
    label: &str,
    default_base: Option<&str>,
) -> Result<(Theme, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::default();
    let raw: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let message = crate::catalog::describe_serde_message(&e.to_string());
            let message = format!("invalid JSON: {message}");
            if e.line() == 0 {
                diags.error("syntax", label, None, None, message);
            } else {
                let (column, excerpt) =
                    crate::catalog::snippet::locate_error(text, e.line(), e.column());
                diags.syntax(label, (e.line(), column), None, &message, excerpt);
            }
            return Err(diags);
        }
    };
    schema::validate(&raw, text, label, &mut diags);
    // After schema errors the checks go on as far as they can, so that every problem,
    // warnings included, is reported at once.
    let schema_ok = !diags.has_errors();
    let value =
        resolve(&raw, text, label, default_base, 0, &mut diags).ok_or_else(|| diags.clone())?;
    let model: ThemeModel = match serde_json::from_value(value.clone()) {
        Ok(m) => m,
        Err(e) if schema_ok => {
            diags.error(
                "incomplete",
                label,
                None,
                None,
                format!("the merged theme is incomplete: {e}"),
            );
            return Err(diags);
        }
        Err(_) => {
            contrast_checks(&palette_of(&value), text, label, &mut diags);
            return Err(diags);
        }
    };
    if schema_ok {
        semantic_checks(&model, text, label, &mut diags);
    } else {
        // Only what the schema did not already report at the same place.
        let mut more = Diagnostics::default();
        semantic_checks(&model, text, label, &mut more);
        let reported: std::collections::HashSet<Option<String>> =
            diags.iter().map(|d| d.field.clone()).collect();
        more.retain(|d| !reported.contains(&d.field));
        diags.extend(more);
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok((Theme { source: label.to_owned(), value, model, text: text.to_owned() }, diags))
}

/// Follows `extends` and merges: base first, then this theme's keys over it.
fn resolve(
    raw: &Value,
    text: &str,
    label: &str,
    default_base: Option<&str>,
    depth: usize,
    diags: &mut Diagnostics,
) -> Option<Value> {
    if depth >= MAX_DEPTH {
        diags.error(
            "extends",
            label,
            None,
            Some("/extends".into()),
            "themes extend each other in a cycle",
        );
        return None;
    }
    let base_name = raw.get("extends").and_then(Value::as_str).or(default_base);
    let mut effective = match base_name {
        None => Value::Object(serde_json::Map::new()),
        Some(base_name) => {
            let Some(base_text) = preset_text(base_name) else {
                let position = locate(text, "/extends");
                let message = unknown_preset(base_name);
                diags.push_at(
                    Severity::Error,
                    "unknown-preset",
                    label,
                    position,
                    Some("/extends".into()),
                    &message,
                );
                return None;
            };
            let base_raw: Value = serde_json::from_str(base_text).ok()?;
            let base_label = format!("preset {base_name}");
            resolve(&base_raw, base_text, &base_label, preset_base(base_name), depth + 1, diags)?
        }
    };
    merge(&mut effective, raw);
    if let Value::Object(map) = &mut effective {
        map.remove("extends");
        map.remove("$schema");
    }
    Some(effective)
}

/// Deep merge: objects key by key, everything else (arrays included) replaced.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Palette roles every theme must define.
pub const REQUIRED_ROLES: &[&str] = &["background", "text", "primary", "accent", "sale", "border"];
/// Pairs checked against WCAG AA (foreground, background).
const CONTRAST_PAIRS: &[(&str, &str)] = &[
    ("text", "background"),
    ("muted", "background"),
    ("primaryContrast", "primary"),
    ("sale", "background"),
    ("text", "surface"),
];
/// WCAG AA for normal text.
pub const AA_CONTRAST: f64 = 4.5;

fn semantic_checks(model: &ThemeModel, text: &str, label: &str, diags: &mut Diagnostics) {
    let at = |pointer: &str| locate(text, pointer);
    let s = &model.settings;
    let palette_slugs: Vec<&str> = s.color.palette.iter().map(|p| p.slug.as_str()).collect();
    for role in REQUIRED_ROLES {
        if !palette_slugs.contains(role) {
            diags.push_at(
                Severity::Error,
                "palette-role",
                label,
                at("/settings/color/palette"),
                Some("/settings/color/palette".into()),
                &format!(
                    "the palette has no `{role}` colour (required roles: {})",
                    REQUIRED_ROLES.join(", ")
                ),
            );
        }
    }
    let lists: [(&str, Vec<&str>); 4] = [
        ("/settings/color/palette", palette_slugs.clone()),
        (
            "/settings/typography/fontFamilies",
            s.typography.font_families.iter().map(|f| f.slug.as_str()).collect(),
        ),
        (
            "/settings/spacing/spacingSizes",
            s.spacing.spacing_sizes.iter().map(|f| f.slug.as_str()).collect(),
        ),
        ("/settings/shadow/presets", s.shadow.presets.iter().map(|f| f.slug.as_str()).collect()),
    ];
    for (pointer, slugs) in &lists {
        for (i, slug) in slugs.iter().enumerate() {
            if slugs[..i].contains(slug) {
                let p = format!("{pointer}/{i}/slug");
                diags.push_at(
                    Severity::Error,
                    "duplicate-slug",
                    label,
                    at(&p),
                    Some(p.clone()),
                    &format!("slug `{slug}` is used twice"),
                );
            }
        }
    }
    let families = &lists[1].1;
    for (key, slug) in [("body", &s.typography.body), ("heading", &s.typography.heading)] {
        if !families.contains(&slug.as_str()) {
            let p = format!("/settings/typography/{key}");
            let hint = crate::catalog::did_you_mean(slug, families.iter().copied())
                .map(|h| format!(", did you mean `{h}`?"))
                .unwrap_or_else(|| format!(" (font families: {})", families.join(", ")));
            diags.push_at(
                Severity::Error,
                "font-family",
                label,
                at(&p),
                Some(p.clone()),
                &format!("unknown font family `{slug}`{hint}"),
            );
        }
    }
    let palette: Vec<(&str, &str)> =
        s.color.palette.iter().map(|p| (p.slug.as_str(), p.color.as_str())).collect();
    contrast_checks(&palette, text, label, diags);
    for (i, section) in model.home.sections.iter().enumerate() {
        if let Some(src) = section.settings.get("image").and_then(Value::as_str)
            && !src.is_empty()
            && let Err(message) = crate::catalog::check_image_path(src)
        {
            let p = format!("/home/sections/{i}/settings/image");
            diags.push_at(Severity::Error, "image-path", label, at(&p), Some(p.clone()), &message);
        }
    }
    if !model.css.trim().is_empty()
        && let Err((line, column, message)) = css::check_custom_css(&model.css)
    {
        let position = crate::catalog::locate_offset(text, "/css")
            .and_then(|quote| crate::catalog::position_in_string(text, quote, line, column));
        diags.push_at(
            Severity::Error,
            "css",
            label,
            position,
            Some("/css".into()),
            &format!("custom CSS: {message}"),
        );
    }
}

/// The palette's (slug, colour) pairs of an untyped theme, skipping malformed entries.
fn palette_of(value: &Value) -> Vec<(&str, &str)> {
    let entries = value.pointer("/settings/color/palette").and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("slug")?.as_str()?, p.get("color")?.as_str()?)))
        .collect()
}

/// Warns about the `CONTRAST_PAIRS` of `palette` (slug, colour) below WCAG AA.
fn contrast_checks(palette: &[(&str, &str)], text: &str, label: &str, diags: &mut Diagnostics) {
    // Only ASCII colours are measured: after schema errors a colour can be any text.
    let color = |slug: &str| {
        palette.iter().find(|(s, _)| *s == slug).map(|(_, c)| *c).filter(|c| c.is_ascii())
    };
    for (fg, bg) in CONTRAST_PAIRS {
        let (Some(f), Some(b)) = (color(fg), color(bg)) else { continue };
        if let Some(ratio) = contrast_ratio(f, b)
            && ratio < AA_CONTRAST
        {
            let index = palette.iter().position(|(s, _)| s == fg).unwrap_or(0);
            let p = format!("/settings/color/palette/{index}/color");
            diags.push_at(
                Severity::Warning,
                "contrast",
                label,
                locate(text, &p),
                Some(p.clone()),
                &format!(
                    "`{fg}` {f} on `{bg}` {b} has a contrast of {ratio:.2}:1, below WCAG AA 4.5:1"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: &[&str]) {
        let diags = match check_text(text, "theme.json", Some("minimal")) {
            Ok((_, d)) | Err(d) => d,
        };
        let shown = diags.to_string();
        for e in expected {
            assert!(shown.contains(e), "missing `{e}` in\n{shown}");
        }
        if expected.is_empty() {
            assert!(!diags.has_errors(), "{shown}");
        }
    }

    #[test]
    fn every_preset_is_valid_and_complete() {
        for name in preset_names() {
            let (theme, diags) =
                load(&ThemeSource::Preset(name)).unwrap_or_else(|d| panic!("{name}: {d}"));
            assert_eq!(diags.warning_count(), 0, "{name}: {diags}");
            let sale = theme.model.color("sale").unwrap_or_default();
            let hex = sale.strip_prefix('#').unwrap_or_default();
            assert!(
                matches!(hex.len(), 3 | 4 | 6 | 8) && hex.chars().all(|c| c.is_ascii_hexdigit()),
                "{name}: the sale colour is `{sale}`"
            );
        }
    }

    #[test]
    fn reports_a_bad_colour_with_pointer_line_and_column() {
        let text = "{\n  \"version\": 1,\n  \"metadata\": {\"name\": \"X\"},\n  \"settings\": {\"color\": {\"palette\": [\n    {\"slug\": \"background\", \"color\": \"#fff\"},\n    {\"slug\": \"text\", \"color\": \"#ggg\"}\n  ]}}\n}";
        check(
            text,
            &["theme.json` line 6:31: `/settings/color/palette/1/color`: `#ggg` is not a colour"],
        );
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        check(
            r#"{"version": 1, "metadata": {"name": "X"}, "components": {"productCard": {"showVendr": true}}}"#,
            &[
                "`/components/productCard/showVendr`: unknown key `showVendr`, did you mean `showVendor`?",
            ],
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        check(
            r#"{"version": 2, "metadata": {}, "settings": {"layout": {"contentSize": "wide"}}, "home": {"sections": [{"type": "heroo"}]}}"#,
            &[
                "`/version`",
                "`/metadata`: missing key `name`",
                "`/settings/layout/contentSize`",
                "`/home/sections/0/type`",
            ],
        );
    }

    #[test]
    fn partial_themes_merge_over_their_preset() {
        let text = r#"{"version": 1, "extends": "dark", "metadata": {"name": "Mine"}, "components": {"header": {"sticky": false}}}"#;
        let (theme, _) = check_text(text, "theme.json", Some("minimal")).expect("valid");
        let (dark, _) = load(&ThemeSource::Preset("dark")).expect("dark");
        assert!(!theme.model.components.header.sticky);
        assert_eq!(theme.model.settings.color.palette, dark.model.settings.color.palette);
        assert_eq!(theme.value["metadata"]["name"], "Mine");
        assert!(theme.value.get("extends").is_none());
    }

    #[test]
    fn export_of_an_export_is_identical() {
        let text = r#"{"version": 1, "extends": "boutique", "metadata": {"name": "Mine"}}"#;
        let (first, _) = check_text(text, "theme.json", Some("minimal")).expect("valid");
        let (second, _) = check_text(&first.to_json(), "theme.json", Some("bold")).expect("valid");
        assert_eq!(first.to_json(), second.to_json());
    }

    #[test]
    fn low_contrast_is_a_warning() {
        let text = r##"{"version": 1, "metadata": {"name": "X"}, "settings": {"color": {"palette": [
            {"slug": "background", "color": "#ffffff"}, {"slug": "text", "color": "#bbbbbb"},
            {"slug": "primary", "color": "#000000"}, {"slug": "accent", "color": "#0000ff"},
            {"slug": "sale", "color": "#cc0000"}, {"slug": "border", "color": "#eeeeee"}]}}}"##;
        let (_, diags) =
            check_text(text, "theme.json", Some("minimal")).expect("valid with warnings");
        assert!(diags.to_string().contains("warning[contrast]"), "{diags}");
        assert!(diags.to_string().contains("below WCAG AA"), "{diags}");
    }

    /// Errors do not hide warnings: a schema error and a low contrast come back together.
    #[test]
    fn warnings_are_reported_with_errors() {
        let palette = r##""palette": [
            {"slug": "background", "color": "#ffffff"}, {"slug": "text", "color": "#bbbbbb"},
            {"slug": "primary", "color": "#000000"}, {"slug": "accent", "color": "#0000ff"},
            {"slug": "sale", "color": "#cc0000"}, {"slug": "border", "color": "#eeeeee"}]"##;
        for broken in [r#""colour": 1"#, r#""layout": {"contentSize": "wide"}"#] {
            let text = format!(
                r#"{{"version": 1, "metadata": {{"name": "X"}}, "settings": {{{broken}, "color": {{{palette}}}}}}}"#
            );
            let diags = check_text(&text, "theme.json", Some("minimal")).expect_err("an error");
            let shown = diags.to_string();
            assert!(shown.contains("error[theme]"), "{shown}");
            assert!(shown.contains("warning[contrast]"), "{shown}");
        }
    }

    #[test]
    fn missing_roles_and_unknown_fonts_are_errors() {
        check(
            r##"{"version": 1, "metadata": {"name": "X"}, "settings": {"color": {"palette": [{"slug": "background", "color": "#fff"}]}, "typography": {"body": "sytem"}}}"##,
            &[
                "the palette has no `text` colour",
                "unknown font family `sytem`, did you mean `system`?",
            ],
        );
    }

    #[test]
    fn unknown_presets_are_named() {
        check(
            r#"{"version": 1, "metadata": {"name": "X"}, "extends": "bolder"}"#,
            &["unknown theme preset `bolder`, did you mean `bold`?"],
        );
    }
}

#[cfg(test)]
mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "#fff", "1rem", "hero", "minimal", "pill", "#ggg", "/x/", "4:5"
            ])
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            let keys = prop::sample::select(vec![
                "version",
                "metadata",
                "name",
                "settings",
                "color",
                "palette",
                "slug",
                "components",
                "home",
                "sections",
                "type",
                "settings",
                "css",
                "extends",
                "typography",
                "body",
                "layout",
                "x",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(keys.prop_map(str::to_owned), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every diagnostic with a position points inside the text.
    fn positions_are_inside(text: &str, diags: &Diagnostics) {
        let lines = text.split('\n').count();
        for d in diags.iter() {
            if let Some(line) = d.line {
                assert!(line >= 1 && line <= lines, "{d} outside {lines} lines");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let (Ok((_, d)) | Err(d)) = check_text(&text, "theme.json", Some("minimal"));
            positions_are_inside(&text, &d);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            match check_text(&text, "theme.json", Some("minimal")) {
                Ok((theme, d)) => {
                    positions_are_inside(&text, &d);
                    prop_assert!(theme.model.color("background").is_some());
                }
                Err(d) => {
                    positions_are_inside(&text, &d);
                    prop_assert!(d.has_errors());
                }
            }
        }

        #[test]
        fn edits_of_a_preset_never_panic(cut in 0usize..4000, flip in 0usize..4000, byte in any::<u8>()) {
            let source = PRESETS[1].1;
            let mut bytes = source.as_bytes()[..cut.min(source.len())].to_vec();
            if let Some(b) = bytes.get_mut(flip) {
                *b = byte;
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = check_text(&text, "theme.json", None);
        }
    }
}
