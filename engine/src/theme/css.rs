//! Theme to CSS: tokens become custom properties, component settings become rules, and the
//! storefront stylesheet, tokens and custom CSS go through lightningcss into one file.

use super::ThemeModel;
use lightningcss::stylesheet::{
    MinifyOptions, ParserFlags, ParserOptions, PrinterOptions, StyleSheet,
};
use lightningcss::targets::{Browsers, Targets};
use std::fmt::Write;

/// The browser targets, as documented for designers.
pub const TARGETS_DOC: &str = "Chrome >= 100, Edge >= 100, Firefox >= 100, Safari >= 15, iOS Safari >= 15, Samsung Internet >= 18";

fn targets() -> Targets {
    let v = |major: u32| Some(major << 16);
    Targets::from(Browsers {
        chrome: v(100),
        edge: v(100),
        firefox: v(100),
        safari: v(15),
        ios_saf: v(15),
        samsung: v(18),
        ..Browsers::default()
    })
}

/// `primaryContrast` → `primary-contrast`.
fn kebab(slug: &str) -> String {
    let mut out = String::with_capacity(slug.len() + 4);
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

/// The theme's tokens and component rules as plain CSS (before lightningcss).
pub fn theme_css(theme: &ThemeModel) -> String {
    let s = &theme.settings;
    let c = &theme.components;
    let mut css = String::from(":root {\n");
    let mut var = |name: &str, value: &str| {
        let _ = writeln!(css, "  --{name}: {value};");
    };
    for p in &s.color.palette {
        var(&format!("color-{}", kebab(&p.slug)), &p.color);
    }
    if theme.color("primaryContrast").is_none()
        && let Some(primary) = theme.color("primary")
    {
        let white = contrast_ratio("#ffffff", primary).unwrap_or(0.0);
        let black = contrast_ratio("#000000", primary).unwrap_or(0.0);
        var("color-primary-contrast", if white >= black { "#ffffff" } else { "#000000" });
    }
    for f in &s.typography.font_families {
        var(&format!("font-{}", kebab(&f.slug)), &f.font_family);
    }
    var("font-body", &format!("var(--font-{})", kebab(&s.typography.body)));
    var("font-heading", &format!("var(--font-{})", kebab(&s.typography.heading)));
    var("font-size-base", &s.typography.base_size);
    var("scale-ratio", &s.typography.scale_ratio.to_string());
    var("line-height-body", &s.typography.line_height.to_string());
    var("font-weight-heading", &s.typography.heading_weight.to_string());
    for size in &s.spacing.spacing_sizes {
        var(&format!("space-{}", kebab(&size.slug)), &size.size);
    }
    var("radius-small", &s.border.radius.small);
    var("radius-medium", &s.border.radius.medium);
    var("radius-large", &s.border.radius.large);
    for shadow in &s.shadow.presets {
        var(&format!("shadow-{}", kebab(&shadow.slug)), &shadow.shadow);
    }
    var("layout-content-width", &s.layout.content_size);
    var("layout-wide-width", &s.layout.wide_size);
    var("grid-columns-mobile", &s.layout.grid_columns.mobile.to_string());
    var("grid-columns-tablet", &s.layout.grid_columns.tablet.to_string());
    var("grid-columns-desktop", &s.layout.grid_columns.desktop.to_string());
    var("card-image-ratio", &c.product_card.image_ratio.replace(':', " / "));
    let button_radius = match c.button.radius.as_str() {
        "none" => "0".to_owned(),
        "pill" => "999px".to_owned(),
        other => format!("var(--radius-{other})"),
    };
    var("button-radius", &button_radius);
    css.push_str("}\n");
    css.push_str(".button, button, .header-search input, input, select { border-radius: var(--button-radius); }\n");
    if c.button.text_transform == "uppercase" {
        css.push_str(".button, button { text-transform: uppercase; letter-spacing: 0.06em; }\n");
    }
    if c.button.style == "outline" {
        css.push_str(
            ".button--primary { background: transparent; color: var(--color-primary); border: 2px solid var(--color-primary); }\n\
             .button--primary:hover { background: var(--color-primary); color: var(--color-primary-contrast); }\n",
        );
    }
    match c.product_card.badge_style.as_str() {
        "square" => css.push_str(".badge { border-radius: 0; }\n"),
        "none" => css.push_str(".badge { display: none; }\n"),
        _ => css.push_str(".badge { border-radius: 999px; }\n"),
    }
    if c.product_card.border {
        css.push_str(
            ".product-card { border: 1px solid var(--color-border); border-radius: var(--radius-medium); overflow: hidden; }\n\
             .product-card-body { padding: var(--space-3) var(--space-3) var(--space-4); }\n",
        );
    }
    if !c.header.sticky {
        css.push_str(".site-header { position: static; }\n");
    }
    if c.header.align == "center" {
        css.push_str(
            ".header-inner { grid-template-columns: 1fr auto; grid-template-areas: \"brand brand\" \"nav actions\"; }\n\
             .brand { justify-self: center; }\n\
             @media (min-width: 700px) { .header-inner { grid-template-columns: 1fr auto; grid-template-areas: \"brand brand\" \"nav actions\"; } .main-nav ul { justify-content: center; } }\n",
        );
    }
    let _ = writeln!(
        css,
        ".brand img {{ width: {}px; height: auto; max-height: none; }}",
        c.header.logo_width
    );
    if header_is_dark(theme) {
        // Logos are drawn for light paper: on a dark header the logo becomes a light
        // silhouette, which contrasts with any background dark enough to land here.
        css.push_str(".brand img { filter: brightness(0) invert(1); }\n");
    }
    css
}

/// Whether the header (the palette's `background`) is dark: white text would contrast
/// with it more than black.
pub fn header_is_dark(theme: &ThemeModel) -> bool {
    theme.color("background").is_some_and(|bg| {
        contrast_ratio("#ffffff", bg).unwrap_or(0.0) > contrast_ratio("#000000", bg).unwrap_or(0.0)
    })
}

/// Deepest nesting of blocks, parentheses and brackets accepted in custom CSS. The parser
/// and minifier recurse once (or more) per level: a few thousand levels overflow a 2 MiB
/// thread stack and abort the process. Real stylesheets stay below 10 (nested rules in
/// `@media` in `@supports`, `calc(var(--a, var(--b)))`); 64 leaves room and is checked safe
/// on a 2 MiB thread by `deepest_allowed_css_is_safe_on_a_small_stack`.
pub const MAX_CSS_NESTING: usize = 64;
/// Deepest nesting of parentheses (functions: `calc(`, `var(`, `:is(`, media queries) in
/// custom CSS. lightningcss re-parses a failed nested `calc(` at every level, so its time
/// doubles with each level (22 unclosed levels took 20 s); real stylesheets nest functions
/// 3 or 4 deep (`calc(var(--a) * (1 + var(--b)))`), and 8 keeps the worst case small.
pub const MAX_CSS_FUNCTION_NESTING: usize = 8;

/// Where custom CSS first nests deeper than `MAX_CSS_NESTING`: `Err((line, column,
/// message))`, 1-based. A cheap scan that reads strings, comments and escapes as the CSS
/// tokenizer does, so nothing lightningcss sees as nesting escapes it: a closing bracket
/// only ends a block of its own kind (as in the tokenizer, `(]` stays open).
pub fn check_nesting(css: &str) -> Result<(), (usize, usize, String)> {
    let mut open: Vec<u8> = Vec::new();
    let mut parens = 0usize;
    let (mut line, mut column) = (1usize, 0usize);
    let mut chars = css.chars().peekable();
    let mut quote: Option<char> = None;
    let mut comment = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        if comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                column += 1;
                comment = false;
            }
            continue;
        }
        match (quote, c) {
            // An escape: the next character is literal (a newline after it continues).
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    if next == '\n' {
                        line += 1;
                        column = 0;
                    } else {
                        column += 1;
                    }
                }
            }
            (Some(q), c) if c == q || c == '\n' => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                column += 1;
                comment = true;
            }
            (None, '{' | '(' | '[') => {
                open.push(match c {
                    '{' => b'}',
                    '(' => b')',
                    _ => b']',
                });
                parens += usize::from(c == '(');
                let too_deep = if parens > MAX_CSS_FUNCTION_NESTING {
                    Some(("parentheses (functions)", MAX_CSS_FUNCTION_NESTING))
                } else if open.len() > MAX_CSS_NESTING {
                    Some(("blocks, parentheses and brackets", MAX_CSS_NESTING))
                } else {
                    None
                };
                if let Some((what, limit)) = too_deep {
                    return Err((
                        line,
                        column,
                        format!(
                            "{what} nest more than {limit} levels deep at line {line}, column \
                             {column} (the nesting limit is {limit})"
                        ),
                    ));
                }
            }
            (None, '}' | ')' | ']') if open.last().is_some_and(|&close| char::from(close) == c) => {
                open.pop();
                parens -= usize::from(c == ')');
            }
            _ => {}
        }
    }
    Ok(())
}

/// Compiles the storefront stylesheet, the theme and its custom CSS into one minified,
/// prefixed stylesheet.
pub fn compile_css(base: &str, theme: &ThemeModel) -> Result<String, String> {
    // Checked when the theme was loaded; checked again so no caller can skip it.
    check_nesting(&theme.css).map_err(|(_, _, message)| format!("custom CSS: {message}"))?;
    let source = format!("{base}\n{}\n{}", theme_css(theme), theme.css);
    let options = ParserOptions {
        filename: "theme.css".into(),
        flags: ParserFlags::NESTING,
        ..ParserOptions::default()
    };
    let mut sheet = StyleSheet::parse(&source, options).map_err(|e| e.to_string())?;
    let targets = targets();
    sheet
        .minify(MinifyOptions { targets, ..MinifyOptions::default() })
        .map_err(|e| e.to_string())?;
    let printed = sheet
        .to_css(PrinterOptions { minify: true, targets, ..PrinterOptions::default() })
        .map_err(|e| e.to_string())?;
    Ok(printed.code)
}

/// Parses custom CSS alone; `Err((line, column, message))` with 1-based positions in it.
pub(super) fn check_custom_css(css: &str) -> Result<(), (usize, usize, String)> {
    // Before the parser sees it: too deep a nesting overflows its stack.
    check_nesting(css)?;
    let options = ParserOptions {
        filename: "css".into(),
        flags: ParserFlags::NESTING,
        ..ParserOptions::default()
    };
    let sheet = StyleSheet::parse(css, options).map_err(|e| {
        let (line, column) =
            e.loc.as_ref().map_or((1, 1), |l| (l.line as usize + 1, l.column as usize));
        (line, column, e.kind.to_string())
    })?;
    // Unbalanced or invalid rules are recovered silently by the parser; printing catches
    // what would otherwise vanish.
    sheet.to_css(PrinterOptions::default()).map(drop).map_err(|e| (1, 1, e.to_string()))
}

/// WCAG contrast ratio between two hex colours (alpha ignored), `None` if not hex.
pub fn contrast_ratio(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(a)?, luminance(b)?);
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

fn luminance(hex: &str) -> Option<f64> {
    let h = hex.strip_prefix('#')?;
    let channel = |s: &str| u8::from_str_radix(s, 16).ok();
    let (r, g, b) = match h.len() {
        3 | 4 => {
            let d = |i: usize| channel(&h[i..=i].repeat(2));
            (d(0)?, d(1)?, d(2)?)
        }
        6 | 8 => (channel(&h[0..2])?, channel(&h[2..4])?, channel(&h[4..6])?),
        _ => return None,
    };
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    Some(0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logos_turn_light_on_dark_headers_only() {
        let preset = |name: &str| {
            let (theme, _) = crate::theme::load(&crate::theme::ThemeSource::Preset(name))
                .unwrap_or_else(|d| panic!("preset {name}: {d:?}"));
            theme.model
        };
        let dark = preset("dark");
        assert!(header_is_dark(&dark));
        assert!(theme_css(&dark).contains("filter: brightness(0) invert(1)"));
        let bg = dark.color("background").expect("a background");
        assert!(contrast_ratio("#ffffff", bg).unwrap_or(0.0) >= 3.0, "a light logo is legible");
        for name in ["minimal", "classic", "bold", "boutique"] {
            let light = preset(name);
            assert!(!header_is_dark(&light), "{name}");
            assert!(!theme_css(&light).contains("invert(1)"), "{name}");
        }
    }

    #[test]
    fn contrast_matches_wcag_examples() {
        let ratio = contrast_ratio("#000000", "#ffffff").expect("hex");
        assert!((ratio - 21.0).abs() < 0.01, "{ratio}");
        let ratio = contrast_ratio("#777", "#fff").expect("hex");
        assert!((ratio - 4.48).abs() < 0.01, "{ratio}");
        assert_eq!(contrast_ratio("red", "#fff"), None);
    }

    #[test]
    fn kebab_cases_slugs() {
        assert_eq!(kebab("primaryContrast"), "primary-contrast");
        assert_eq!(kebab("card"), "card");
    }

    #[test]
    fn compiles_nesting_and_adds_prefixes() {
        let (theme, _) =
            super::super::load(&super::super::ThemeSource::Preset("minimal")).expect("minimal");
        let mut model = theme.model;
        model.css = ".product-card { & h3 { user-select: none; } }".into();
        let css = compile_css(":root { --x: 1 }", &model).expect("compiles");
        assert!(css.contains(".product-card h3"), "{css}");
        assert!(css.contains("-webkit-user-select:none"), "{css}");
        assert!(css.contains("--color-sale:#b3261e"), "{css}");
    }

    #[test]
    fn reports_broken_custom_css() {
        assert!(check_custom_css(".a { color: red; }").is_ok());
        for broken in
            [".a { color: red; }\n..b { color: blue }", ".a { color: red; }\n.b[ { x: y }"]
        {
            let err = check_custom_css(broken).err();
            assert!(matches!(err, Some((2, _, _))), "{broken:?}: {err:?}");
        }
    }

    /// Custom CSS nested `depth` levels in blocks and brackets, each way the parser recurses.
    fn blocks(depth: usize) -> Vec<(&'static str, String)> {
        let inner = depth.saturating_sub(1);
        vec![
            ("rules", format!("{}.z{{color:red}}{}", ".a{".repeat(inner), "}".repeat(inner))),
            ("open rules", ".a{".repeat(depth)),
            ("brackets", format!(".a{{grid-template-areas:{}}}", "[".repeat(inner))),
            (
                "media",
                format!(
                    "{}.a{{color:red}}{}",
                    "@media (min-width:1px){".repeat(inner),
                    "}".repeat(inner)
                ),
            ),
            (
                "mixed",
                ["@supports (x:y){", ".a{", "["].iter().cycle().take(depth).copied().collect(),
            ),
        ]
    }

    /// Custom CSS with functions nested `depth` levels, closed or not.
    fn functions(depth: usize) -> Vec<(&'static str, String)> {
        vec![
            ("calc", format!(".a{{width:{}1px{}}}", "calc(".repeat(depth), ")".repeat(depth))),
            ("open calc", format!(".a{{width:{}1px}}", "calc(".repeat(depth))),
            (
                "bad calc",
                format!(".a{{width:{}1px +{}}}", "calc(".repeat(depth), ")".repeat(depth)),
            ),
            ("is", format!("{}.b{}{{color:red}}", ":is(".repeat(depth), ")".repeat(depth))),
            ("var", format!(".a{{color:{}red{}}}", "var(--x,".repeat(depth), ")".repeat(depth))),
        ]
    }

    #[test]
    fn too_deep_nesting_is_refused_with_its_position() {
        let over = blocks(MAX_CSS_NESTING + 1)
            .into_iter()
            .map(|(k, css)| (k, css, "nesting limit is 64"))
            .chain(
                functions(MAX_CSS_FUNCTION_NESTING + 1)
                    .into_iter()
                    .map(|(k, css)| (k, css, "parentheses (functions) nest more than 8")),
            );
        for (kind, css, expected) in over {
            let err = check_custom_css(&css).err();
            let Some((line, column, message)) = err else {
                panic!("{kind}: accepted");
            };
            assert_eq!(line, 1, "{kind}");
            assert!(column > 0 && column <= css.chars().count(), "{kind}: {column}");
            assert!(message.contains(expected), "{kind}: {message}");
        }
        // Strings, comments and escapes do not nest; a closer of another kind closes nothing.
        let quoted = format!(".a{{content:\"{}\"}}/*{}*/.b\\{{}}", "{".repeat(99), "(".repeat(99));
        assert!(check_nesting(&quoted).is_ok());
        assert!(check_nesting(&"(]".repeat(MAX_CSS_FUNCTION_NESTING + 1)).is_err());
        let late = format!("\n\n\n{}", "{".repeat(MAX_CSS_NESTING + 1));
        assert_eq!(check_nesting(&late).err().map(|e| (e.0, e.1)), Some((4, 65)));
        let calc = format!(".a{{width:{}", "calc(".repeat(9));
        assert_eq!(check_nesting(&calc).err().map(|e| (e.0, e.1)), Some((1, 54)));
    }

    #[test]
    fn the_reported_attacks_are_refused_not_fatal() {
        for css in [".a{".repeat(33_000), "calc(".repeat(19_000), ":is(".repeat(24_000)] {
            assert!(check_custom_css(&css).is_err());
        }
    }

    /// The deepest nesting allowed goes through the check and the build's compilation on a
    /// thread with a 2 MiB stack (tokio's blocking threads, rayon's workers), and a whole
    /// custom stylesheet (100,000 characters) of the slowest functions allowed is checked
    /// and compiled.
    #[test]
    fn deepest_allowed_css_is_safe_on_a_small_stack() {
        let (theme, _) =
            super::super::load(&super::super::ThemeSource::Preset("minimal")).expect("minimal");
        let model = theme.model;
        let worker = std::thread::Builder::new().stack_size(2 << 20).spawn(move || {
            let deepest =
                blocks(MAX_CSS_NESTING).into_iter().chain(functions(MAX_CSS_FUNCTION_NESTING));
            for (kind, css) in deepest {
                assert!(check_nesting(&css).is_ok(), "{kind}: within the limit");
                let _ = check_custom_css(&css);
                let mut model = model.clone();
                model.css = css;
                let _ = compile_css(":root{--x:1}", &model);
            }
            let depth = MAX_CSS_FUNCTION_NESTING;
            let slowest =
                format!(".a{{width:{}1px +{}}}", "calc(".repeat(depth), ")".repeat(depth));
            let sheet = slowest.repeat(100_000 / slowest.len());
            assert!(check_nesting(&sheet).is_ok());
            let _ = check_custom_css(&sheet);
            let mut model = model.clone();
            model.css = sheet;
            let _ = compile_css(":root{--x:1}", &model);
        });
        worker.expect("spawn").join().expect("no overflow");
    }
}
