//! Taking HTML apart: selectors, attributes, text, canonical and Open Graph tags, JSON-LD,
//! the URLs of a page and the `<loc>`s of a sitemap.

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;

/// A CSS selector (panics on a typo in the test).
#[track_caller]
pub fn sel(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("bad selector `{css}`: {e:?}"))
}

/// The one element matching `css` inside `el`.
#[track_caller]
pub fn one_in<'a>(el: ElementRef<'a>, css: &str) -> ElementRef<'a> {
    let found: Vec<_> = el.select(&sel(css)).collect();
    assert_eq!(found.len(), 1, "expected one `{css}` in {}", el.html());
    found[0]
}

/// All elements matching `css`.
pub fn select<'a>(doc: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    doc.select(&sel(css)).collect()
}

/// The one element matching `css`; panics when there are none or several.
#[track_caller]
pub fn one<'a>(doc: &'a Html, css: &str) -> ElementRef<'a> {
    let found = select(doc, css);
    assert_eq!(found.len(), 1, "expected exactly one `{css}`, found {}", found.len());
    found[0]
}

/// An attribute that must be present.
#[track_caller]
pub fn attr<'a>(el: ElementRef<'a>, name: &str) -> &'a str {
    el.value().attr(name).unwrap_or_else(|| {
        panic!("<{}> has no `{name}` attribute: {}", el.value().name(), el.html())
    })
}

/// The text of an element, whitespace collapsed.
pub fn text(el: ElementRef<'_>) -> String {
    el.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `<link rel="canonical">`.
#[track_caller]
pub fn canonical(doc: &Html) -> String {
    attr(one(doc, r#"link[rel="canonical"]"#), "href").to_owned()
}

/// `<meta property=PROP content>`.
pub fn meta_property(doc: &Html, property: &str) -> Option<String> {
    select(doc, &format!(r#"meta[property="{property}"]"#))
        .first()
        .and_then(|m| m.value().attr("content"))
        .map(str::to_owned)
}

/// The raw text of every `<script type="application/ld+json">`.
pub fn json_ld_sources(doc: &Html) -> Vec<String> {
    select(doc, r#"script[type="application/ld+json"]"#)
        .into_iter()
        .map(|s| s.inner_html())
        .collect()
}

/// Every JSON-LD document of a page; panics (with the text) when one is not JSON.
#[track_caller]
pub fn json_ld(doc: &Html) -> Vec<Value> {
    json_ld_sources(doc)
        .into_iter()
        .map(|s| {
            serde_json::from_str(&s).unwrap_or_else(|e| panic!("JSON-LD does not parse ({e}): {s}"))
        })
        .collect()
}

/// The JSON-LD documents of a page with `@type` `kind`.
#[track_caller]
pub fn json_ld_of_type(doc: &Html, kind: &str) -> Vec<Value> {
    json_ld(doc).into_iter().filter(|v| v["@type"] == kind).collect()
}

/// Attributes that hold URLs.
pub const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "xlink:href",
    "cite",
    "background",
];

/// Every URL in an element's attributes (`srcset` split into its URLs).
pub fn element_urls(el: ElementRef<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for (name, value) in el.value().attrs() {
        if !URL_ATTRIBUTES.contains(&name) {
            continue;
        }
        if name == "srcset" {
            urls.extend(srcset_urls(value));
        } else {
            urls.push(value.to_owned());
        }
    }
    urls
}

/// The URLs of a `srcset` value.
pub fn srcset_urls(srcset: &str) -> Vec<String> {
    srcset.split(',').filter_map(|c| c.split_whitespace().next()).map(str::to_owned).collect()
}

/// Every `href`, `src` (and other URL attribute) value in a page, in document order.
pub fn links(doc: &Html) -> Vec<String> {
    doc.select(&sel("*")).flat_map(element_urls).collect()
}

/// The product URLs of the product cards in a listing's grid, in order.
pub fn card_links(doc: &Html) -> Vec<String> {
    select(doc, "main ul.product-grid > li.product-card > a")
        .into_iter()
        .map(|a| attr(a, "href").to_owned())
        .collect()
}

/// `<loc>` values of a sitemap, unescaped.
pub fn sitemap_locs(xml: &str) -> Vec<String> {
    xml.split("<loc>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</loc>").map(|(loc, _)| loc))
        .map(|loc| {
            loc.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}
