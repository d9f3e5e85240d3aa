//! Renders the storefront's HTML pages with Tera, in parallel.
//!
//! Templates are compiled once per build (built-ins from `templates/`, overridden by a
//! shop's own `templates/` folder). Each page is a `Job`; rendering returns the page's
//! path and HTML and never touches shared mutable state.

mod cards;
mod context;
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

use crate::catalog::{Catalog, Product};
use crate::images::ImageMap;
use crate::text::{excerpt, markdown_to_html, markdown_to_text};
use crate::theme::Theme;
use context::{Meta, breadcrumb_ld, description, price_ctx};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Products per page of a collection or category listing.
pub const PAGE_SIZE: usize = 24;
/// Related products shown on a product page.
const RELATED: usize = 4;

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

/// A listing page's parts other than its cards (shared by rendering and fingerprints).
struct ListingParts<'a> {
    base: String,
    title: &'a String,
    description_md: &'a String,
    members: &'a Vec<usize>,
    image: Option<context::ImageCtx>,
    trail: Vec<Link>,
    subcategories: Vec<Link>,
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
        h.update(b"aurelio-page-v1\0");
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

    fn product(&self, ctx: &mut tera::Context, index: usize) -> Meta {
        let c = self.catalog;
        let p = &c.products[index];
        let path = product_path(p);
        let images: Vec<_> = p
            .images
            .iter()
            .filter_map(|img| image_ctx(self.images, &self.urls, &img.src, &img.alt))
            .collect();
        let variants: Vec<Value> = p
            .variants
            .iter()
            .map(|v| {
                json!({
                    "id": v.id(),
                    "sku": v.sku,
                    "title": if v.options.is_empty() { p.title.clone() } else { v.options.join(" / ") },
                    "options": v.options,
                    "price": price_ctx(v.price, c),
                    "compare_at_price": v.compare_at_price.map(|m| price_ctx(m, c)),
                    "availability": v.availability().as_str(),
                    "available": v.availability() != crate::catalog::Availability::OutOfStock,
                    "gtin": v.gtin,
                })
            })
            .collect();
        let options: Vec<Value> =
            p.options.iter().map(|o| json!({"name": o.name, "values": o.values})).collect();
        let trail = self.product_trail(p);
        let min = p.min_price();
        let product = json!({
            "handle": p.handle,
            "title": p.title,
            "url": self.urls.link(&path),
            "vendor": p.vendor,
            "product_type": p.product_type,
            "tags": p.tags,
            "description_html": markdown_to_html(&p.description, &self.urls.root),
            "images": images,
            "options": options,
            "variants": variants,
            "price": price_ctx(min, c),
            "price_varies": p.max_price() != min,
            "availability": p.availability().as_str(),
            "available": p.availability() != crate::catalog::Availability::OutOfStock,
            "variants_json": json_ld(&Value::Array(variants.clone())),
        });
        ctx.insert("product", &product);
        ctx.insert("related", &self.related(index));
        ctx.insert("breadcrumbs", &trail);
        let text = markdown_to_text(&p.description);
        let description = p.seo_description.clone().unwrap_or_else(|| excerpt(&text, 160));
        let title = p.seo_title.clone().unwrap_or_else(|| self.title(&p.title));
        let mut meta = self.meta(title, description, &path);
        meta.og_type = "product";
        meta.og_image = images.first().map(|i| i.absolute_url.clone());
        let product_url = self.urls.absolute(&path);
        let offers: Vec<Value> = p
            .variants
            .iter()
            .map(|v| {
                let mut offer = json!({
                    "@type": "Offer",
                    "sku": v.sku,
                    "price": v.price.decimal(),
                    "priceCurrency": c.store.currency.code(),
                    "availability": v.availability().schema_org(),
                    "itemCondition": "https://schema.org/NewCondition",
                    "url": variant_url(&product_url, &v.sku),
                });
                if let Some(g) = &v.gtin {
                    offer["gtin"] = json!(g);
                }
                if let Some(m) = &v.mpn {
                    offer["mpn"] = json!(m);
                }
                offer
            })
            .collect();
        let mut ld = json!({
            "@context": "https://schema.org",
            "@type": "Product",
            "name": p.title,
            "description": excerpt(&text, 5000),
            "url": product_url,
            "image": images.iter().map(|i| i.absolute_url.clone()).collect::<Vec<_>>(),
            "offers": offers,
        });
        if let Some(v) = &p.vendor {
            ld["brand"] = json!({"@type": "Brand", "name": v});
        }
        if let Some(t) = &p.product_type {
            ld["category"] = json!(t);
        }
        if let [only] = p.variants.as_slice() {
            ld["sku"] = json!(only.sku);
        }
        meta.json_ld.push(json_ld(&ld));
        meta.json_ld.push(json_ld(&breadcrumb_ld(&trail, &self.urls)));
        meta
    }

    /// Home → category path (of the first category) → product.
    fn product_trail(&self, p: &Product) -> Vec<Link> {
        let mut trail = vec![Link { title: "Home".into(), url: self.urls.link("") }];
        if let Some(&first) = p.categories.first() {
            trail.extend(self.category_trail(first));
        }
        trail.push(Link { title: p.title.clone(), url: self.urls.link(&product_path(p)) });
        trail
    }

    fn category_trail(&self, index: usize) -> Vec<Link> {
        let cats = &self.catalog.categories;
        let mut chain = vec![index];
        while let Some(parent) = cats[*chain.last().unwrap_or(&index)].parent {
            chain.push(parent);
        }
        chain
            .iter()
            .rev()
            .map(|&i| Link {
                title: cats[i].title.clone(),
                url: self.urls.link(&category_path(&cats[i])),
            })
            .collect()
    }

    /// The next products after this one in its first category (wrapping), else in the
    /// whole catalog: deterministic and cheap.
    fn related(&self, index: usize) -> Vec<&Value> {
        self.related_indices(index).into_iter().map(|i| &self.cards.get(i).summary).collect()
    }

    fn related_indices(&self, index: usize) -> Vec<usize> {
        let p = &self.catalog.products[index];
        let pool: &[usize] = match p.categories.first() {
            Some(&c) if self.category_members[c].len() > 1 => &self.category_members[c],
            _ => &[],
        };
        if pool.is_empty() {
            let n = self.cards.len();
            return (1..n)
                .map(|k| (index + k) % n)
                .filter(|i| !self.cards.get(*i).summary.is_null())
                .take(RELATED)
                .collect();
        }
        let start = self.place_in_category[index];
        (1..pool.len())
            .map(|k| pool[(start + k) % pool.len()])
            .filter(|i| *i != index)
            .take(RELATED)
            .collect()
    }

    /// Everything a listing page shows except its product cards.
    fn listing_parts(&self, kind: ListKind, index: usize) -> ListingParts<'_> {
        let c = self.catalog;
        let base = self.listing_base(kind, index);
        let (title, description_md, members, image) = match kind {
            ListKind::Collection => {
                let col = &c.collections[index];
                let image = col
                    .image
                    .as_ref()
                    .and_then(|i| image_ctx(self.images, &self.urls, &i.src, &i.alt));
                (&col.title, &col.description, &col.products, image)
            }
            ListKind::Category => {
                let cat = &c.categories[index];
                (&cat.title, &cat.description, &self.category_members[index], None)
            }
        };
        let mut trail = vec![Link { title: "Home".into(), url: self.urls.link("") }];
        let subcategories: Vec<Link> = match kind {
            ListKind::Collection => {
                trail.push(Link {
                    title: "Collections".into(),
                    url: self.urls.link("collections/"),
                });
                trail.push(Link { title: title.clone(), url: self.urls.link(&base) });
                Vec::new()
            }
            ListKind::Category => {
                trail.extend(self.category_trail(index));
                c.categories
                    .iter()
                    .filter(|s| s.parent == Some(index))
                    .map(|s| Link {
                        title: s.title.clone(),
                        url: self.urls.link(&category_path(s)),
                    })
                    .collect()
            }
        };
        ListingParts { base, title, description_md, members, image, trail, subcategories }
    }

    /// The fingerprint input of a listing page: its parts plus the hashes of its cards.
    fn listing_fingerprint(
        &self,
        h: &mut blake3::Hasher,
        kind: ListKind,
        index: usize,
        page: usize,
    ) {
        let parts = self.listing_parts(kind, index);
        h.update(b"listing\0");
        h.update(format!("{kind:?}\0{index}\0{page}\0{}\0", parts.members.len()).as_bytes());
        h.update(parts.base.as_bytes());
        h.update(parts.title.as_bytes());
        h.update(b"\0");
        h.update(parts.description_md.as_bytes());
        h.update(b"\0");
        h.update(
            serde_json::to_string(&(&parts.image, &parts.trail, &parts.subcategories))
                .unwrap_or_default()
                .as_bytes(),
        );
        for i in parts.members.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) {
            h.update(&self.cards.get(*i).hash);
        }
    }

    fn listing(&self, ctx: &mut tera::Context, kind: ListKind, index: usize, page: usize) -> Meta {
        let c = self.catalog;
        let ListingParts { base, title, description_md, members, image, trail, subcategories } =
            self.listing_parts(kind, index);
        let total_pages = pages_for(members.len());
        let shown: Vec<&Value> = members
            .iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .map(|i| &self.cards.get(*i).summary)
            .collect();
        let link = |n: usize| self.urls.link(&listing_path(&base, n));
        let numbers: Vec<Value> = page_window(page, total_pages)
            .into_iter()
            .map(|n| match n {
                Some(n) => json!({"number": n, "url": link(n), "current": n == page}),
                None => json!({"number": null}),
            })
            .collect();
        ctx.insert(
            "listing",
            &json!({
                "kind": match kind { ListKind::Collection => "collection", ListKind::Category => "category" },
                "title": title,
                "url": link(1),
                "description_html": if page == 1 { markdown_to_html(description_md, &self.urls.root) } else { String::new() },
                "image": image,
                "total": members.len(),
                "subcategories": subcategories,
            }),
        );
        ctx.insert("products", &shown);
        ctx.insert(
            "pagination",
            &json!({
                "current": page,
                "total_pages": total_pages,
                "per_page": PAGE_SIZE,
                "first_index": if members.is_empty() { 0 } else { (page - 1) * PAGE_SIZE + 1 },
                "last_index": ((page - 1) * PAGE_SIZE + shown.len()),
                "prev_url": (page > 1).then(|| link(page - 1)),
                "next_url": (page < total_pages).then(|| link(page + 1)),
                "pages": numbers,
            }),
        );
        ctx.insert("breadcrumbs", &trail);
        let heading = if page > 1 {
            format!("{title} – Page {page} of {total_pages}")
        } else {
            title.clone()
        };
        let mut description = description(description_md);
        if description.is_empty() {
            description = format!("{} products in {title} at {}", members.len(), c.store.name);
        }
        let mut meta = self.meta(self.title(&heading), description, &listing_path(&base, page));
        meta.prev = (page > 1).then(|| self.urls.absolute(&listing_path(&base, page - 1)));
        meta.next =
            (page < total_pages).then(|| self.urls.absolute(&listing_path(&base, page + 1)));
        meta.og_image = shown
            .first()
            .and_then(|s| s.pointer("/image/absolute_url"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        meta.json_ld.push(json_ld(&breadcrumb_ld(&trail, &self.urls)));
        meta
    }

    fn collections(&self, ctx: &mut tera::Context) -> Meta {
        let list: Vec<Value> =
            (0..self.catalog.collections.len()).map(|i| self.collection_tile(i)).collect();
        ctx.insert("collections", &list);
        let trail = vec![
            Link { title: "Home".into(), url: self.urls.link("") },
            Link { title: "Collections".into(), url: self.urls.link("collections/") },
        ];
        ctx.insert("breadcrumbs", &trail);
        let mut meta = self.meta(
            self.title("Collections"),
            format!("All collections at {}", self.catalog.store.name),
            "collections/",
        );
        meta.json_ld.push(json_ld(&breadcrumb_ld(&trail, &self.urls)));
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

/// Page numbers to show: first, last, and two around the current one; `None` is a gap.
fn page_window(current: usize, total: usize) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    let mut last = 0;
    for n in 1..=total {
        if n == 1 || n == total || n.abs_diff(current) <= 2 {
            if n > last + 1 {
                out.push(None);
            }
            out.push(Some(n));
            last = n;
        }
    }
    out
}

/// Active products of each category and its descendants, sorted by title then handle.
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
    fn page_window_shows_ends_and_neighbours() {
        assert_eq!(page_window(1, 1), vec![Some(1)]);
        assert_eq!(
            page_window(5, 10),
            vec![Some(1), None, Some(3), Some(4), Some(5), Some(6), Some(7), None, Some(10)]
        );
        assert_eq!(page_window(1, 4), vec![Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn built_in_templates_compile() {
        compile_templates(None).expect("built-in templates compile");
    }
}
