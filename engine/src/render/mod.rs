//! Renders the storefront's HTML pages with Tera, in parallel.
//!
//! Templates are compiled once per build (built-ins from `templates/`, overridden by a
//! shop's own `templates/` folder). Each page is a `Job`; rendering returns the page's
//! path and HTML and never touches shared mutable state.

mod cards;
mod context;
mod listing;
mod product;
mod recursion;
mod sections;
mod templates;

pub use templates::{
    BUILTIN_TEMPLATES, MAX_PAGE_BYTES, MAX_RANGE, compile_sources, compile_templates, error_chain,
    escape_html, template_sources,
};

pub use cards::{Card, CardCache, ProductCards};

pub use sections::{check as check_sections, image_refs as section_image_refs};

pub use context::{
    Link, Urls, category_path, image_ctx, image_url, json_ld, listing_path, product_path,
    variant_url,
};

use crate::catalog::Catalog;
use crate::images::ImageMap;
use crate::text::markdown_to_html;
use crate::theme::Theme;
use context::{Meta, description};
use serde_json::json;
use std::collections::HashMap;

/// Products per page of a collection or category listing.
pub const PAGE_SIZE: usize = 24;

/// Which listing a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// A collection.
    Collection,
    /// A category.
    Category,
}

/// One page to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// `index.html`.
    Home,
    /// A product page (index into `catalog.products`).
    Product(usize),
    /// Page `page` (1-based) of a collection or category.
    Listing {
        /// Collection or category.
        kind: ListKind,
        /// Its index.
        index: usize,
        /// 1-based page number.
        page: usize,
    },
    /// `collections/index.html`.
    Collections,
    /// A Markdown page.
    Page(usize),
    /// The cart shell.
    Cart,
    /// The search page.
    Search,
    /// `404.html`.
    NotFound,
}

impl Job {
    /// Whether the page belongs in the sitemap.
    pub fn indexable(self) -> bool {
        !matches!(self, Self::Cart | Self::Search | Self::NotFound)
    }
}

/// Everything pages share, converted once per build.
pub struct Renderer<'a> {
    catalog: &'a Catalog,
    theme: &'a Theme,
    tera: std::sync::Arc<tera::Tera>,
    images: &'a ImageMap,
    /// Site URLs.
    pub urls: Urls,
    /// Each product's card, its hash and sort key.
    cards: ProductCards,
    /// A digest of each published image, for fingerprints.
    image_hashes: HashMap<&'a str, [u8; 32]>,
    /// Active members of each category (with descendants), sorted by title.
    category_members: Vec<Vec<usize>>,
    /// Each product's place among the members of its first category (0 when not one).
    place_in_category: Vec<usize>,
    /// A digest of each category's breadcrumb trail, for product fingerprints.
    trail_hashes: Vec<[u8; 32]>,
    common: tera::Context,
    search_index: String,
}

/// Paths of the static assets pages link to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AssetUrls {
    /// Stylesheet.
    pub css: String,
    /// Storefront script.
    pub js: String,
    /// Search index JSON.
    pub search_index: String,
}

impl<'a> Renderer<'a> {
    /// Prepares shared data: category members, navigation; `cards` are the products'
    /// cards (`CardCache::cards`).
    pub fn new(
        catalog: &'a Catalog,
        theme: &'a Theme,
        tera: std::sync::Arc<tera::Tera>,
        images: &'a ImageMap,
        urls: Urls,
        assets: &AssetUrls,
        cards: ProductCards,
    ) -> Self {
        let category_members = category_members(catalog, &cards);
        let mut place_in_category = vec![0; catalog.products.len()];
        for (c, members) in category_members.iter().enumerate() {
            for (place, &i) in members.iter().enumerate() {
                if catalog.products[i].categories.first() == Some(&c) {
                    place_in_category[i] = place;
                }
            }
        }
        let image_hashes = images.iter().map(|(src, info)| (src.as_str(), digest(info))).collect();
        let store = &catalog.store;
        let mut common = tera::Context::new();
        common.insert(
            "store",
            &json!({
                "name": store.name,
                "handle": store.handle,
                "url": urls.link(""),
                "base_url": urls.base,
                "locale": store.locale.tag(),
                "lang": store.locale.tag().split('-').next().unwrap_or("en"),
                "currency": store.currency.code(),
                "description": store.description,
                "logo": store.logo.as_ref().and_then(|l| image_ctx(images, &urls, &l.src, &l.alt)),
                "contact_email": store.contact_email,
                "social": store.social,
                "api_url": store.api_url,
                "publishable_key": store.publishable_key,
                "prices_include_tax": store.prices_include_tax,
                "theme": store.theme,
            }),
        );
        let top: Vec<Link> = catalog
            .categories
            .iter()
            .filter(|c| c.parent.is_none())
            .map(|c| Link { title: c.title.clone(), url: urls.link(&category_path(c)) })
            .collect();
        let mut footer: Vec<&crate::catalog::Page> =
            catalog.pages.iter().filter(|p| p.footer).collect();
        footer.sort_by_key(|p| (p.order, p.handle.as_str()));
        let footer: Vec<Link> = footer
            .iter()
            .map(|p| Link {
                title: p.title.clone(),
                url: urls.link(&format!("pages/{}/", p.handle)),
            })
            .collect();
        common.insert(
            "nav",
            &json!({
                "categories": top,
                "footer_pages": footer,
                "home": urls.link(""),
                "collections": urls.link("collections/"),
                "cart": urls.link("cart/"),
                "search": urls.link("search/"),
            }),
        );
        let asset_links = AssetUrls {
            css: urls.link(&assets.css),
            js: urls.link(&assets.js),
            search_index: urls.link(&assets.search_index),
        };
        // The search index changes with every product edit; only the search page links it,
        // so it stays out of the context every page shares.
        common.insert("assets", &json!({"css": asset_links.css, "js": asset_links.js}));
        common.insert(
            "theme",
            &json!({
                "name": theme.model.metadata.name,
                "slug": theme
                    .model
                    .metadata
                    .name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                    .collect::<String>(),
                "components": theme.value.get("components"),
            }),
        );
        let mut renderer = Self {
            catalog,
            theme,
            tera,
            images,
            urls,
            cards,
            image_hashes,
            category_members,
            place_in_category,
            trail_hashes: Vec::new(),
            common,
            search_index: asset_links.search_index,
        };
        renderer.trail_hashes =
            (0..catalog.categories.len()).map(|c| digest(&renderer.category_trail(c))).collect();
        renderer
    }

    /// Every page of the site, in a stable order.
    pub fn jobs(&self) -> Vec<Job> {
        let c = self.catalog;
        let mut jobs = vec![Job::Home, Job::Collections, Job::Cart, Job::Search, Job::NotFound];
        jobs.extend(
            c.products
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_active())
                .map(|(i, _)| Job::Product(i)),
        );
        for (index, col) in c.collections.iter().enumerate() {
            for page in 1..=pages_for(col.products.len()) {
                jobs.push(Job::Listing { kind: ListKind::Collection, index, page });
            }
        }
        for (index, members) in self.category_members.iter().enumerate() {
            for page in 1..=pages_for(members.len()) {
                jobs.push(Job::Listing { kind: ListKind::Category, index, page });
            }
        }
        jobs.extend((0..c.pages.len()).map(Job::Page));
        jobs
    }

    /// The site path (directory index) a job writes.
    pub fn path(&self, job: Job) -> String {
        let c = self.catalog;
        match job {
            Job::Home => String::new(),
            Job::Product(i) => product_path(&c.products[i]),
            Job::Listing { kind, index, page } => {
                listing_path(&self.listing_base(kind, index), page)
            }
            Job::Collections => "collections/".into(),
            Job::Page(i) => format!("pages/{}/", c.pages[i].handle),
            Job::Cart => "cart/".into(),
            Job::Search => "search/".into(),
            Job::NotFound => "404.html".into(),
        }
    }

    /// The file a job writes (`products/x/index.html`).
    pub fn file(&self, job: Job) -> String {
        let path = self.path(job);
        if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path }
    }

    fn listing_base(&self, kind: ListKind, index: usize) -> String {
        match kind {
            ListKind::Collection => {
                format!("collections/{}/", self.catalog.collections[index].handle)
            }
            ListKind::Category => category_path(&self.catalog.categories[index]),
        }
    }

    /// Renders one page to HTML.
    pub fn render(&self, job: Job) -> Result<String, String> {
        let (template, page) = self.context(job);
        let mut ctx = self.common.clone();
        ctx.extend(page);
        templates::render_bounded(&self.tera, template, &ctx)
    }

    /// The template and the page's own context (what is not shared by every page).
    fn context(&self, job: Job) -> (&'static str, tera::Context) {
        let mut ctx = tera::Context::new();
        let (template, meta) = match job {
            Job::Home => ("index.html", self.home(&mut ctx)),
            Job::Product(i) => ("product.html", self.product(&mut ctx, i)),
            Job::Listing { kind, index, page } => match kind {
                ListKind::Collection => {
                    ("collection.html", self.listing(&mut ctx, kind, index, page))
                }
                ListKind::Category => ("category.html", self.listing(&mut ctx, kind, index, page)),
            },
            Job::Collections => ("collections.html", self.collections(&mut ctx)),
            Job::Page(i) => ("page.html", self.page(&mut ctx, i)),
            Job::Cart => ("cart.html", self.plain_meta("Cart", "cart/")),
            Job::Search => {
                ctx.insert("search_index", &self.search_index);
                ("search.html", self.plain_meta("Search", "search/"))
            }
            Job::NotFound => ("404.html", self.plain_meta("Page not found", "404.html")),
        };
        ctx.insert("meta", &meta);
        (template, ctx)
    }

    /// What every page shares (store, navigation, assets, theme, templates), hashed.
    pub fn global_fingerprint(&self, templates: &str) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        // Bumped whenever a page's bytes change for the same input.
        h.update(b"aurelio-page-v2\0");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(self.common.clone().into_json().to_string().as_bytes());
        h.update(templates.as_bytes());
        h.finalize()
    }

    /// A hash of exactly the inputs page `job` reads, given the global fingerprint. Product
    /// pages hash their source record, images, breadcrumb and related cards instead of
    /// building their context (which renders Markdown).
    pub fn fingerprint(&self, job: Job, global: &blake3::Hash) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        h.update(global.as_bytes());
        match job {
            Job::Product(i) => {
                let p = &self.catalog.products[i];
                h.update(b"product\0");
                h.update(&p.fingerprint);
                for img in &p.images {
                    h.update(img.src.as_bytes());
                    if let Some(hash) = self.image_hashes.get(img.src.as_str()) {
                        h.update(hash);
                    }
                }
                // The breadcrumb (`product_trail`): its last link is the product's own
                // title and path, which its fingerprint covers.
                h.update(b"trail\0");
                if let Some(&first) = p.categories.first() {
                    h.update(&self.trail_hashes[first]);
                }
                for card in self.related_indices(i) {
                    h.update(&self.cards.get(card).hash);
                }
            }
            Job::Listing { kind, index, page } => {
                self.listing_fingerprint(&mut h, kind, index, page);
            }
            other => {
                let (template, ctx) = self.context(other);
                h.update(template.as_bytes());
                h.update(ctx.into_json().to_string().as_bytes());
            }
        }
        h.finalize()
    }

    fn title(&self, title: &str) -> String {
        format!("{title} – {}", self.catalog.store.name)
    }

    fn meta(&self, title: String, description: String, path: &str) -> Meta {
        Meta {
            title,
            description,
            canonical: self.urls.absolute(path),
            og_type: "website",
            og_image: None,
            json_ld: Vec::new(),
            noindex: false,
            prev: None,
            next: None,
        }
    }

    fn plain_meta(&self, title: &str, path: &str) -> Meta {
        let mut meta = self.meta(
            self.title(title),
            self.catalog.store.description.clone().unwrap_or_default(),
            path,
        );
        meta.noindex = true;
        meta
    }

    fn home(&self, ctx: &mut tera::Context) -> Meta {
        let c = self.catalog;
        ctx.insert("sections", &self.home_sections());
        let name = &c.store.name;
        let mut meta = self.meta(name.clone(), c.store.description.clone().unwrap_or_default(), "");
        meta.json_ld.push(json_ld(&json!({
            "@context": "https://schema.org",
            "@type": "WebSite",
            "name": name,
            "url": self.urls.absolute(""),
            "potentialAction": {
                "@type": "SearchAction",
                "target": format!("{}?q={{search_term_string}}", self.urls.absolute("search/")),
                "query-input": "required name=search_term_string",
            },
        })));
        meta.og_image = c
            .store
            .logo
            .as_ref()
            .and_then(|l| image_ctx(self.images, &self.urls, &l.src, &l.alt))
            .map(|i| i.absolute_url);
        meta
    }

    fn page(&self, ctx: &mut tera::Context, index: usize) -> Meta {
        let page = &self.catalog.pages[index];
        let path = format!("pages/{}/", page.handle);
        ctx.insert("page", &json!({"title": page.title, "body_html": markdown_to_html(&page.body, &self.urls.root), "handle": page.handle}));
        let description = page.seo_description.clone().unwrap_or_else(|| description(&page.body));
        self.meta(self.title(&page.title), description, &path)
    }
}

/// Number of listing pages for `n` items (at least one, even when empty).
pub fn pages_for(n: usize) -> usize {
    n.div_ceil(PAGE_SIZE).max(1)
}

/// A blake3 digest of a value's `Hash` stream: for fingerprints, without serialising.
fn digest(value: &impl std::hash::Hash) -> [u8; 32] {
    struct Blake3(blake3::Hasher);
    impl std::hash::Hasher for Blake3 {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the blake3 digest is read")
        }
    }
    let mut h = Blake3(blake3::Hasher::new());
    value.hash(&mut h);
    *h.0.finalize().as_bytes()
}

/// Active products of each category and its descendants, sorted by title then handle.
fn category_members(catalog: &Catalog, cards: &ProductCards) -> Vec<Vec<usize>> {
    let cats = &catalog.categories;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); cats.len()];
    for (i, p) in catalog.products.iter().enumerate().filter(|(_, p)| p.is_active()) {
        for &c in &p.categories {
            let mut at = Some(c);
            while let Some(cat) = at {
                if members[cat].last() != Some(&i) {
                    members[cat].push(i);
                }
                at = cats[cat].parent;
            }
        }
    }
    for list in &mut members {
        list.sort_by(|a, b| {
            (&cards.get(*a).title_key, &catalog.products[*a].handle)
                .cmp(&(&cards.get(*b).title_key, &catalog.products[*b].handle))
        });
        list.dedup();
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_compile() {
        compile_templates(None).expect("built-in templates compile");
    }
}
