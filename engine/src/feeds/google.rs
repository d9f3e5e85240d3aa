//! Google Merchant Center feed: RSS 2.0 with the `g:` namespace, written with quick-xml
//! (which escapes every text), one `<item>` per variant.

use super::item::{Item, Sources, availability_name, clean, price_text};
use super::{Channel, Encoder};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// The Google namespace URI.
pub const NAMESPACE: &str = "http://base.google.com/ns/1.0";

/// The RSS encoder.
pub(super) struct Rss;

/// Writing into a `Vec` cannot fail; quick-xml still returns `io::Result`.
/// Each element goes on its own line, indented under `<item>`.
fn text(w: &mut Writer<&mut Vec<u8>>, name: &str, value: &str) {
    w.get_mut().extend_from_slice(b"\n  ");
    let _ = w.create_element(name).write_text_content(BytesText::new(value));
}

fn start(w: &mut Writer<&mut Vec<u8>>, name: &str) {
    let _ = w.write_event(Event::Start(BytesStart::new(name)));
}

fn end(w: &mut Writer<&mut Vec<u8>>, name: &str) {
    let _ = w.write_event(Event::End(BytesEnd::new(name)));
}

impl Encoder for Rss {
    fn header(&self, sources: &Sources<'_>, out: &mut Vec<u8>) {
        let store = &sources.catalog.store;
        let mut w = Writer::new_with_indent(out, b' ', 2);
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        let rss =
            BytesStart::new("rss").with_attributes([("version", "2.0"), ("xmlns:g", NAMESPACE)]);
        let _ = w.write_event(Event::Start(rss));
        start(&mut w, "channel");
        let mut el = |name: &str, value: &str| {
            let _ = w.create_element(name).write_text_content(BytesText::new(value));
        };
        el("title", &clean(&store.name));
        el("link", &sources.urls.absolute(""));
        let description = store.description.as_deref().map(clean).unwrap_or_default();
        let description = if description.is_empty() {
            format!("Products of {}", clean(&store.name))
        } else {
            description
        };
        el("description", &description);
        w.into_inner().push(b'\n');
    }

    fn shared(&self, item: &Item<'_>, sources: &Sources<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(item.description.len() + 1024);
        let mut w = Writer::new(&mut out);
        text(&mut w, "g:description", item.description);
        text(&mut w, "g:image_link", item.image);
        for url in item.additional_images {
            text(&mut w, "g:additional_image_link", url);
        }
        if let Some(brand) = item.brand {
            text(&mut w, "g:brand", brand);
        }
        text(&mut w, "g:condition", "new");
        if let Some(group) = item.group_id {
            text(&mut w, "g:item_group_id", group);
        }
        if let Some(category) = item.google_category {
            text(&mut w, "g:google_product_category", category);
        }
        if let Some(t) = item.product_type {
            text(&mut w, "g:product_type", t);
        }
        for rate in &sources.catalog.store.feeds.shipping {
            w.get_mut().extend_from_slice(b"\n  ");
            start(&mut w, "g:shipping");
            let mut el = |name: &str, value: &str| {
                let _ = w.create_element(name).write_text_content(BytesText::new(value));
            };
            el("g:country", &rate.country);
            el("g:service", &rate.service);
            el("g:price", &price_text(rate.price));
            end(&mut w, "g:shipping");
        }
        out
    }

    fn item(&self, item: &Item<'_>, shared: &[u8], out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        start(&mut w, "item");
        text(&mut w, "g:id", item.id);
        text(&mut w, "g:title", &item.title);
        text(&mut w, "g:link", &item.link);
        text(&mut w, "g:availability", availability_name(Channel::Google, item.availability));
        if let Some(date) = &item.availability_date {
            text(&mut w, "g:availability_date", date);
        }
        text(&mut w, "g:price", &price_text(item.price));
        if let Some(sale) = item.sale_price {
            text(&mut w, "g:sale_price", &price_text(sale));
        }
        if let Some(gtin) = item.gtin {
            text(&mut w, "g:gtin", gtin);
        }
        if let Some(mpn) = item.mpn {
            text(&mut w, "g:mpn", mpn);
        }
        if !item.identifiers_exist() {
            text(&mut w, "g:identifier_exists", "no");
        }
        for (name, value) in [
            ("g:color", item.color),
            ("g:size", item.size.as_deref()),
            ("g:material", item.material),
            ("g:pattern", item.pattern),
        ] {
            if let Some(value) = value {
                text(&mut w, name, value);
            }
        }
        if let Some(grams) = item.weight_grams {
            text(&mut w, "g:shipping_weight", &format!("{grams} g"));
        }
        w.get_mut().extend_from_slice(shared);
        w.get_mut().push(b'\n');
        end(&mut w, "item");
        w.into_inner().push(b'\n');
    }

    fn footer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"</channel>\n</rss>\n");
    }
}
