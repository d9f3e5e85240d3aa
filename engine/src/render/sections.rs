//! The home page sections of a theme, resolved against the catalog: featured products,
//! collection and category tiles, Markdown turned into sanitized HTML, images measured.

use super::Renderer;
use super::context::image_ctx;
use crate::catalog::Catalog;
use crate::diagnostics::Diagnostics;
use crate::text::markdown_to_html;
use crate::theme::Theme;
use serde_json::{Value, json};

/// Catalog images the sections use: (source path, JSON pointer in the theme).
pub fn image_refs(theme: &Theme) -> Vec<(String, String)> {
    theme
        .model
        .home
        .sections
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let src = s.settings.get("image")?.as_str()?;
            (!src.is_empty())
                .then(|| (src.to_owned(), format!("/home/sections/{i}/settings/image")))
        })
        .collect()
}

/// Checks the handles the sections name against the catalog.
pub fn check(theme: &Theme, catalog: &Catalog, diags: &mut Diagnostics) {
    let known = |h: &str| catalog.collections.iter().any(|c| c.handle == h);
    let mut report = |pointer: String, handle: &str| {
        let hint = crate::catalog::did_you_mean(
            handle,
            catalog.collections.iter().map(|c| c.handle.as_str()),
        )
        .map(|s| format!(", did you mean `{s}`?"))
        .unwrap_or_default();
        let position = crate::catalog::locate(&theme.text, &pointer);
        diags.push_at(
            crate::diagnostics::Severity::Error,
            "theme-section",
            &theme.source,
            position,
            Some(pointer),
            &format!("unknown collection `{handle}`{hint}"),
        );
    };
    for (i, s) in theme.model.home.sections.iter().enumerate() {
        let base = format!("/home/sections/{i}/settings");
        match s.kind.as_str() {
            "featuredCollection" => {
                if let Some(h) = s.settings.get("collection").and_then(Value::as_str)
                    && !h.is_empty()
                    && !known(h)
                {
                    report(format!("{base}/collection"), h);
                }
            }
            "collectionList" => {
                let handles = s.settings.get("collections").and_then(Value::as_array);
                for (j, h) in handles.into_iter().flatten().enumerate() {
                    if let Some(h) = h.as_str()
                        && !known(h)
                    {
                        report(format!("{base}/collections/{j}"), h);
                    }
                }
            }
            _ => {}
        }
    }
}

fn text<'v>(settings: &'v Value, key: &str) -> &'v str {
    settings.get(key).and_then(Value::as_str).unwrap_or("")
}

fn number(settings: &Value, key: &str, default: u64) -> usize {
    usize::try_from(settings.get(key).and_then(Value::as_u64).unwrap_or(default))
        .unwrap_or(usize::MAX)
}

impl Renderer<'_> {
    /// A link setting: root-relative paths go under the site root.
    fn section_link(&self, link: &str) -> String {
        match link.strip_prefix('/') {
            Some(path) if !link.starts_with("//") => self.urls.link(path),
            _ => link.to_owned(),
        }
    }

    /// A collection's tile: title, link, product count and image (its own or its first
    /// product's).
    pub(super) fn collection_tile(&self, index: usize) -> Value {
        let col = &self.catalog.collections[index];
        let image = col
            .image
            .as_ref()
            .and_then(|i| image_ctx(self.images, &self.urls, &i.src, &i.alt))
            .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
            .or_else(|| {
                col.products.first().and_then(|p| self.cards.get(*p).summary.get("image").cloned())
            });
        json!({
            "title": col.title,
            "url": self.urls.link(&format!("collections/{}/", col.handle)),
            "count": col.products.len(),
            "image": image,
        })
    }

    /// Every section of the home page with the data it shows.
    pub(super) fn home_sections(&self) -> Vec<Value> {
        self.theme
            .model
            .home
            .sections
            .iter()
            .map(|section| {
                let mut value = self.section(section);
                if let (Some(id), Value::Object(map)) = (&section.id, &mut value) {
                    map.insert("id".into(), json!(id));
                }
                value
            })
            .collect()
    }

    fn section(&self, section: &crate::theme::Section) -> Value {
        let c = self.catalog;
        let store = &c.store;
        let s = &section.settings;
        let image = || {
            let src = text(s, "image");
            image_ctx(self.images, &self.urls, src, "")
        };
        match section.kind.as_str() {
            "hero" => json!({
                "type": "hero",
                "heading": Some(text(s, "heading")).filter(|h| !h.is_empty()).unwrap_or(&store.name),
                "text": Some(text(s, "text")).filter(|h| !h.is_empty()).or(store.description.as_deref()),
                "button_label": text(s, "buttonLabel"),
                "button_link": self.section_link(text(s, "buttonLink")),
                "image": image(),
                "align": s.get("align").and_then(Value::as_str).unwrap_or("center"),
                "height": s.get("height").and_then(Value::as_str).unwrap_or("medium"),
            }),
            "featuredCollection" => {
                let handle = text(s, "collection");
                let index = if handle.is_empty() {
                    c.collections.iter().position(|col| !col.products.is_empty())
                } else {
                    c.collections.iter().position(|col| col.handle == handle)
                };
                let limit = number(s, "limit", 8);
                let (title, url, products): (&str, String, Vec<&Value>) = match index {
                    Some(i) => {
                        let col = &c.collections[i];
                        let products = col
                            .products
                            .iter()
                            .take(limit)
                            .map(|p| &self.cards.get(*p).summary)
                            .collect();
                        (
                            &col.title,
                            self.urls.link(&format!("collections/{}/", col.handle)),
                            products,
                        )
                    }
                    None => {
                        let products = self
                            .cards
                            .iter()
                            .map(|c| &c.summary)
                            .filter(|v| !v.is_null())
                            .take(limit)
                            .collect();
                        ("Products", self.urls.link("collections/"), products)
                    }
                };
                json!({
                    "type": "featuredCollection",
                    "heading": Some(text(s, "heading")).filter(|h| !h.is_empty()).unwrap_or(title),
                    "url": url,
                    "products": products,
                    "show_view_all": s.get("showViewAll").and_then(Value::as_bool).unwrap_or(true),
                })
            }
            "collectionList" => {
                let wanted: Vec<&str> = s
                    .get("collections")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let tiles: Vec<Value> = if wanted.is_empty() {
                    (0..c.collections.len()).map(|i| self.collection_tile(i)).collect()
                } else {
                    wanted
                        .iter()
                        .filter_map(|h| c.collections.iter().position(|col| col.handle == *h))
                        .map(|i| self.collection_tile(i))
                        .collect()
                };
                json!({"type": "collectionList", "heading": text(s, "heading"), "collections": tiles})
            }
            "categoryList" => {
                let limit = number(s, "limit", 6);
                let tiles: Vec<Value> = c
                    .categories
                    .iter()
                    .enumerate()
                    .filter(|(_, cat)| cat.parent.is_none())
                    .take(limit)
                    .map(|(i, cat)| {
                        let image = self.category_members[i]
                            .first()
                            .and_then(|p| self.cards.get(*p).summary.get("image").cloned());
                        json!({
                            "title": cat.title,
                            "url": self.urls.link(&super::category_path(cat)),
                            "count": self.category_members[i].len(),
                            "image": image,
                        })
                    })
                    .collect();
                json!({"type": "categoryList", "heading": text(s, "heading"), "categories": tiles})
            }
            "richText" => json!({
                "type": "richText",
                "heading": text(s, "heading"),
                "html": markdown_to_html(text(s, "text"), &self.urls.root),
                "align": s.get("align").and_then(Value::as_str).unwrap_or("left"),
            }),
            "imageWithText" => json!({
                "type": "imageWithText",
                "heading": text(s, "heading"),
                "html": markdown_to_html(text(s, "text"), &self.urls.root),
                "image": image(),
                "image_position": s.get("imagePosition").and_then(Value::as_str).unwrap_or("left"),
                "button_label": text(s, "buttonLabel"),
                "button_link": self.section_link(text(s, "buttonLink")),
            }),
            "newsletter" => json!({
                "type": "newsletter",
                "heading": text(s, "heading"),
                "text": text(s, "text"),
                "button_label": Some(text(s, "buttonLabel")).filter(|b| !b.is_empty()).unwrap_or("Subscribe"),
                "placeholder": Some(text(s, "placeholder")).filter(|b| !b.is_empty()).unwrap_or("Email address"),
            }),
            other => json!({"type": other}),
        }
    }
}
