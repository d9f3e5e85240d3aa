//! The tabular feeds: Meta's catalog CSV and TikTok's catalog template (the same columns,
//! `id` named `sku_id`), written with the csv crate (RFC 4180 quoting), and TikTok's fields
//! as JSON.

use super::item::{Item, Sources, availability_name, price_text};
use super::{Channel, Encoder};
use crate::catalog::ShippingRate;
use std::borrow::Cow;

/// Columns that differ between the variants of a product, after the id column.
pub const ITEM_COLUMNS: [&str; 13] = [
    "title",
    "availability",
    "availability_date",
    "price",
    "sale_price",
    "link",
    "gtin",
    "mpn",
    "color",
    "size",
    "material",
    "pattern",
    "shipping_weight",
];

/// Columns all variants of a product share, after the item columns.
pub const PRODUCT_COLUMNS: [&str; 9] = [
    "description",
    "condition",
    "image_link",
    "additional_image_link",
    "brand",
    "item_group_id",
    "google_product_category",
    "product_type",
    "shipping",
];

/// The id column of a channel.
pub fn id_column(channel: Channel) -> &'static str {
    match channel {
        Channel::Tiktok => "sku_id",
        _ => "id",
    }
}

/// `COUNTRY:REGION:SERVICE:PRICE` per rate, comma-separated (region left empty).
fn shipping_cell(rates: &[ShippingRate]) -> String {
    rates
        .iter()
        .map(|r| format!("{}::{}:{}", r.country, r.service, price_text(r.price)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The item cells after the id, in `ITEM_COLUMNS` order.
fn item_cells(channel: Channel, item: &Item<'_>) -> [String; 13] {
    let opt = |v: Option<&str>| v.unwrap_or_default().to_owned();
    [
        item.title.clone(),
        availability_name(channel, item.availability).to_owned(),
        opt(item.availability_date.as_deref()),
        price_text(item.price),
        item.sale_price.map(price_text).unwrap_or_default(),
        item.link.clone(),
        opt(item.gtin),
        opt(item.mpn),
        opt(item.color),
        opt(item.size.as_deref()),
        opt(item.material),
        opt(item.pattern),
        item.weight_grams.map(|g| format!("{g} g")).unwrap_or_default(),
    ]
}

/// The product cells, in `PRODUCT_COLUMNS` order.
fn product_cells(item: &Item<'_>, sources: &Sources<'_>) -> [String; 9] {
    let opt = |v: Option<&str>| v.unwrap_or_default().to_owned();
    [
        item.description.to_owned(),
        "new".to_owned(),
        item.image.to_owned(),
        item.additional_images.join(","),
        opt(item.brand),
        opt(item.group_id),
        opt(item.google_category),
        opt(item.product_type),
        shipping_cell(&sources.catalog.store.feeds.shipping),
    ]
}

/// The CSV encoder of a channel.
pub(super) struct Csv(pub Channel);

/// A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice): one
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, unless
/// it is a plain number (`-5`, `+1.5`), which a spreadsheet reads as the number it is.
fn inert(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let number = cell.len() > 1
        && cell[1..].bytes().any(|b| b.is_ascii_digit())
        && cell[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && cell[1..].bytes().filter(|b| *b == b'.').count() <= 1
        && cell.starts_with(['+', '-']);
    if risky && !number { Cow::Owned(format!("'{cell}")) } else { Cow::Borrowed(cell) }
}

/// One CSV record (RFC 4180 quoting by the csv crate), ending in `\n`; every cell made
/// inert (`inert`).
fn csv_row<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    let mut w = csv::WriterBuilder::new().has_headers(false).buffer_capacity(4096).from_writer(out);
    // Writing into a `Vec` cannot fail.
    let _ = w.write_record(fields.into_iter().map(|f| inert(f).into_owned()));
    let _ = w.flush();
}

impl Encoder for Csv {
    fn header(&self, _: &Sources<'_>, out: &mut Vec<u8>) {
        let names = std::iter::once(id_column(self.0)).chain(ITEM_COLUMNS).chain(PRODUCT_COLUMNS);
        csv_row(out, names);
    }

    fn shared(&self, item: &Item<'_>, sources: &Sources<'_>) -> Vec<u8> {
        let cells = product_cells(item, sources);
        let mut out = Vec::with_capacity(item.description.len() + 512);
        csv_row(&mut out, cells.iter().map(String::as_str));
        out
    }

    fn item(&self, item: &Item<'_>, shared: &[u8], out: &mut Vec<u8>) {
        let cells = item_cells(self.0, item);
        csv_row(out, std::iter::once(item.id).chain(cells.iter().map(String::as_str)));
        // The record ends in `\n`: continue it with the product's cells (which end in one).
        out.pop();
        out.push(b',');
        out.extend_from_slice(shared);
    }

    fn footer(&self, _: &mut Vec<u8>) {}
}

/// TikTok's fields as JSON: `{"products": [{"sku_id": ..., "title": ..., ...}]}`, one
/// product record a line, empty fields left out, additional images as an array.
pub(super) struct Json;

/// `"name":value,` for every non-empty cell.
fn json_members(out: &mut Vec<u8>, names: &[&str], cells: &[String]) {
    for (name, value) in names.iter().zip(cells) {
        if value.is_empty() || *name == "additional_image_link" {
            continue;
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        let _ = serde_json::to_writer(&mut *out, value);
        out.push(b',');
    }
}

impl Encoder for Json {
    fn header(&self, _: &Sources<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"products\": [\n");
    }

    fn shared(&self, item: &Item<'_>, sources: &Sources<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(item.description.len() + 512);
        json_members(&mut out, &PRODUCT_COLUMNS, &product_cells(item, sources));
        if !item.additional_images.is_empty() {
            out.extend_from_slice(b"\"additional_image_link\":");
            let _ = serde_json::to_writer(&mut out, item.additional_images);
            out.push(b',');
        }
        out.pop();
        out
    }

    fn item(&self, item: &Item<'_>, shared: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b",\n{\"sku_id\":");
        let _ = serde_json::to_writer(&mut *out, item.id);
        out.push(b',');
        json_members(out, &ITEM_COLUMNS, &item_cells(Channel::Tiktok, item));
        out.extend_from_slice(shared);
        out.push(b'}');
    }

    fn footer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\n]}\n");
    }

    fn first_item_skip(&self) -> usize {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_made_inert_and_numbers_kept() {
        for (cell, expected) in [
            ("=HYPERLINK(\"https://x.test\")", "'=HYPERLINK(\"https://x.test\")"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-.", "'-."),
            ("-5", "-5"),
            ("+1.5", "+1.5"),
            ("19.99 EUR", "19.99 EUR"),
            ("Linen shirt", "Linen shirt"),
            ("", ""),
        ] {
            assert_eq!(inert(cell), expected, "{cell:?}");
        }
        let mut out = Vec::new();
        csv_row(&mut out, ["=1+1", "a,b", "-3"]);
        assert_eq!(String::from_utf8(out).expect("utf-8"), "'=1+1,\"a,b\",-3\n");
    }
}
