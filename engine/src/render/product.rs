//! The product page: its context (variants, options, images, breadcrumb, related
//! products) and its JSON-LD (`Product` with one `Offer` per variant, `BreadcrumbList`);
//! also the category trails that product and category breadcrumbs share.

use super::context::{Meta, breadcrumb_ld, price_ctx};
use super::{Link, Renderer, category_path, image_ctx, json_ld, product_path, variant_url};
use crate::catalog::Product;
use crate::text::{excerpt, markdown_to_html, markdown_to_text};
use serde_json::{Value, json};

/// Related products shown on a product page.
const RELATED: usize = 4;

impl Renderer<'_> {
    pub(super) fn product(&self, ctx: &mut tera::Context, index: usize) -> Meta {
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
                // The date the feeds give for a variant on backorder, so page and feed agree.
                if let Some(date) = v
                    .availability_date
                    .as_deref()
                    .filter(|_| v.availability() == crate::catalog::Availability::Backorder)
                {
                    offer["availabilityStarts"] = json!(date);
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
    pub(super) fn product_trail(&self, p: &Product) -> Vec<Link> {
        let mut trail = vec![Link { title: "Home".into(), url: self.urls.link("") }];
        if let Some(&first) = p.categories.first() {
            trail.extend(self.category_trail(first));
        }
        trail.push(Link { title: p.title.clone(), url: self.urls.link(&product_path(p)) });
        trail
    }

    pub(super) fn category_trail(&self, index: usize) -> Vec<Link> {
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
    pub(super) fn related(&self, index: usize) -> Vec<&Value> {
        self.related_indices(index).into_iter().map(|i| &self.cards.get(i).summary).collect()
    }

    pub(super) fn related_indices(&self, index: usize) -> Vec<usize> {
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
}
