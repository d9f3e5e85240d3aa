//! Listing pages (a collection's or a category's products, a page at a time, with
//! pagination) and the page of all collections; listings' fingerprints hash the same parts.

use super::context::{self, Meta, breadcrumb_ld, description};
use super::{
    Link, ListKind, PAGE_SIZE, Renderer, category_path, image_ctx, json_ld, listing_path, pages_for,
};
use crate::text::markdown_to_html;
use serde_json::{Value, json};

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

impl Renderer<'_> {
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
    pub(super) fn listing_fingerprint(
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

    pub(super) fn listing(
        &self,
        ctx: &mut tera::Context,
        kind: ListKind,
        index: usize,
        page: usize,
    ) -> Meta {
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

    pub(super) fn collections(&self, ctx: &mut tera::Context) -> Meta {
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
}
