//! Merchant-written text made safe: Markdown rendered and sanitized, plain-text fields freed
//! of markup, excerpts for meta descriptions.
//!
//! Nothing that leaves here can carry a script, an event handler or a `javascript:` URL.

use pulldown_cmark::{Options, Parser, html};
use std::borrow::Cow;
use std::sync::LazyLock;

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.add_tags(["figure", "figcaption"])
        .add_tag_attributes("img", ["loading", "width", "height"])
        .add_tag_attributes("td", ["align", "style"])
        .add_tag_attributes("th", ["align", "style"])
        .url_schemes(["http", "https", "mailto", "tel"].into_iter().collect())
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            ("td" | "th", "style") => cell_alignment(value).map(Cow::Owned),
            _ => Some(Cow::Borrowed(value)),
        });
    b
});

/// The one style a table cell keeps: the alignment Markdown tables write
/// (`text-align: center`). Anything else (a `position: fixed` overlay, a tracking
/// `background: url(…)`) drops the attribute.
fn cell_alignment(style: &str) -> Option<String> {
    let mut declarations = style.split(';').map(str::trim).filter(|d| !d.is_empty());
    let (property, value) = declarations.next()?.split_once(':')?;
    let value = value.trim().to_ascii_lowercase();
    let allowed = ["left", "center", "right", "justify", "start", "end"];
    (declarations.next().is_none()
        && property.trim().eq_ignore_ascii_case("text-align")
        && allowed.contains(&value.as_str()))
    .then(|| format!("text-align: {value}"))
}

static STRIP_ALL: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.clean_content_tags(
        ["script", "style", "template", "iframe", "noscript"].into_iter().collect(),
    );
    b
});

/// Renders Markdown to sanitized HTML. Root-relative links and images (`/pages/faq/`)
/// are moved under `root`, the site's path prefix (`""` or `/shop`).
pub fn markdown_to_html(source: &str, root: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SMART_PUNCTUATION;
    let mut unsafe_html = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(source, options));
    let clean = SANITIZER.clean(&unsafe_html).to_string();
    if root.is_empty() { clean } else { prefix_root_relative(&clean, root) }
}

/// Inserts `root` before every root-relative `href`/`src` of sanitized HTML. Sanitized
/// output always quotes attributes with `"` and escapes quotes in text, so the pattern
/// cannot match inside text.
fn prefix_root_relative(html: &str, root: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(i) = rest.find("=\"/") {
        let (before, after) = rest.split_at(i + 2);
        out.push_str(before);
        let is_url_attr = before.ends_with("href=\"") || before.ends_with("src=\"");
        if is_url_attr && !after.starts_with("//") {
            out.push_str(root);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Removes any HTML markup from a plain-text field. Returns `None` when there was none.
pub fn strip_markup(text: &str) -> Option<String> {
    if !text.contains('<') {
        return None;
    }
    let cleaned = unescape(&STRIP_ALL.clean(text).to_string());
    (cleaned != text).then_some(cleaned)
}

/// Plain text of a Markdown source: no markup, whitespace collapsed. Blocks (paragraphs,
/// headings, list items) are separated by a space; inline markup (emphasis, links, images,
/// code) leaves its text in place, so `simply *wet*.` reads `simply wet.`.
pub fn markdown_to_text(source: &str) -> String {
    use pulldown_cmark::{Event, Tag, TagEnd};
    let mut out = String::with_capacity(source.len());
    // Where the link or image being read started in `out`, to tell an empty one.
    let mut starts: Vec<usize> = Vec::new();
    // A link or image without text just ended where the source had a space before it.
    let mut dropped = false;
    // The structure `markdown_to_html` reads (tables, strikethrough), so no `|` or `~~`
    // is left in the text.
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(source, options) {
        match event {
            Event::Text(t) | Event::Code(t) => {
                // `See ![](x.jpg).`: no space is left before the period.
                if dropped && t.starts_with(['.', ',', ')']) {
                    out.truncate(out.trim_end().len());
                }
                out.push_str(&t);
            }
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => starts.push(out.len()),
            Event::End(TagEnd::Link | TagEnd::Image) => {
                dropped = starts.pop() == Some(out.len());
                continue;
            }
            Event::End(TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough) => {}
            Event::SoftBreak | Event::HardBreak | Event::End(_) => out.push(' '),
            _ => {}
        }
        dropped = false;
    }
    let text = strip_markup(&out).unwrap_or(out);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `text` to at most `max` characters at a word boundary, adding `…` when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([',', '.', ';', ':', ' ']))
}

/// Reverses the five entities ammonia writes in text.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_loses_scripts_handlers_and_javascript_urls() {
        let html = markdown_to_html(
            "**Bold** <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) <a href=\"JaVaScRiPt:alert(1)\">y</a>",
            "",
        );
        assert!(html.contains("<strong>Bold</strong>"), "{html}");
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("onerror"), "{html}");
        assert!(!lower.contains("javascript:"), "{html}");
    }

    #[test]
    fn markdown_keeps_tables_and_links() {
        let html =
            markdown_to_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n[home](https://x.test/)", "");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("href=\"https://x.test/\""), "{html}");
    }

    #[test]
    fn table_cells_keep_only_their_alignment() {
        let html = markdown_to_html("| a | b |\n|:-:|--:|\n| 1 | 2 |", "");
        assert!(html.contains("<th style=\"text-align: center\">a</th>"), "{html}");
        assert!(html.contains("<td style=\"text-align: right\">2</td>"), "{html}");
        let html = markdown_to_html(
            "<table><tr><td style=\"position:fixed;inset:0;background:url(https://t.test/p)\">x</td>\
             <th style=\"text-align:left;position:fixed\">y</th>\
             <td style=\"TEXT-ALIGN: Center\">z</td></tr></table>",
            "",
        );
        let lower = html.to_lowercase();
        assert!(!lower.contains("position") && !lower.contains("url("), "{html}");
        assert!(html.contains("<td>x</td>") && html.contains("<th>y</th>"), "{html}");
        assert!(html.contains("<td style=\"text-align: center\">z</td>"), "{html}");
    }

    #[test]
    fn root_relative_links_move_under_the_site_root() {
        let html = markdown_to_html(
            "[faq](/pages/faq/) [cdn](//cdn.test/x) [abs](https://x.test/) <a href=\"/a/\">a</a>",
            "/shop",
        );
        assert!(html.contains("href=\"/shop/pages/faq/\""), "{html}");
        assert!(html.contains("href=\"/shop/a/\""), "{html}");
        assert!(html.contains("href=\"//cdn.test/x\""), "{html}");
        assert!(html.contains("href=\"https://x.test/\""), "{html}");
    }

    #[test]
    fn strips_markup_from_plain_text() {
        assert_eq!(strip_markup("Linen Shirt"), None);
        assert_eq!(
            strip_markup("<b>Bold</b> <script>alert(1)</script>Tee").as_deref(),
            Some("Bold Tee")
        );
        assert_eq!(strip_markup("Fish & Chips").as_deref(), None);
        assert_eq!(strip_markup("a < b").as_deref(), None);
    }

    #[test]
    fn excerpts_cut_at_words() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("one two three four five", 12), "one two…");
    }

    #[test]
    fn inline_markup_leaves_punctuation_attached() {
        for (source, text) in [
            (
                "built for days when the forecast is simply *wet*.",
                "built for days when the forecast is simply wet.",
            ),
            (
                "A **reflective heel strip**, pull-on handles.",
                "A reflective heel strip, pull-on handles.",
            ),
            ("~~Old~~; new", "Old; new"),
            ("Read [our sizing guide](https://x.test/sizes/).", "Read our sizing guide."),
            ("Ask us ([email](mailto:a@x.test)), or call.", "Ask us (email), or call."),
            (
                "Run `aurelio build`, then `aurelio publish`.",
                "Run aurelio build, then aurelio publish.",
            ),
            ("Shown: ![the Fjell boot](boot.jpg).", "Shown: the Fjell boot."),
            ("Shown below ![](boot.jpg).", "Shown below."),
            ("Empty link [](https://x.test/), then text", "Empty link, then text"),
            ("***[wet](https://x.test/)***!", "wet!"),
            ("*a*b **c**d", "ab cd"),
        ] {
            assert_eq!(markdown_to_text(source), text, "{source}");
        }
    }

    #[test]
    fn markdown_text_separates_blocks() {
        assert_eq!(markdown_to_text("# Wet\n\nDry.\n\n- *a*\n- b"), "Wet Dry. a b");
        assert_eq!(markdown_to_text("line one\nline two  \nthree"), "line one line two three");
        assert_eq!(markdown_to_text("| a | b |\n|---|---|\n| 1 | **2** |"), "a b 1 2");
    }

    #[test]
    fn markdown_text_has_no_markup() {
        assert_eq!(
            markdown_to_text("# Title\n\nSome **bold** text.\n\n- a\n- b"),
            "Title Some bold text. a b"
        );
    }
}
