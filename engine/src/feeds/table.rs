//! The tabular feeds: Meta's catalog CSV and TikTok's catalog template (the same columns,
//! `id` named `sku_id`), written with the csv crate (RFC 4180 quoting), and TikTok's fields
//! as JSON.

use super::item::{Item, Sources, availability_name, price_text};
use super::{Channel, Encoder};
use crate::catalog::ShippingRate;

/// Columns after the id column, in order.
pub const COLUMNS: [&str; 21] = [
    "title",
    "description",
    "availability",
    "condition",
    "price",
    "sale_price",
    "link",
    "image_link",
    "additional_image_link",
    "brand",
    "gtin",
    "mpn",
    "item_group_id",
    "color",
    "size",
    "material",
    "pattern",
    "google_product_category",
    "product_type",
    "shipping",
    "shipping_weight",
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

/// The cells of an item after the id, in `COLUMNS` order.
fn cells(channel: Channel, item: &Item<'_>, shipping: &str) -> [String; 21] {
    let opt = |v: Option<&str>| v.unwrap_or_default().to_owned();
    [
        item.title.clone(),
        item.description.to_owned(),
        availability_name(channel, item.availability).to_owned(),
        "new".to_owned(),
        price_text(item.price),
        item.sale_price.map(price_text).unwrap_or_default(),
        item.link.clone(),
        item.image.to_owned(),
        item.additional_images.join(","),
        opt(item.brand),
        opt(item.gtin),
        opt(item.mpn),
        opt(item.group_id),
        opt(item.color),
        opt(item.size.as_deref()),
        opt(item.material),
        opt(item.pattern),
        opt(item.google_category),
        opt(item.product_type),
        shipping.to_owned(),
        item.weight_grams.map(|g| format!("{g} g")).unwrap_or_default(),
    ]
}

/// The CSV encoder of a channel.
pub(super) struct Csv(pub Channel);

fn csv_row<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(out);
    // Writing into a `Vec` cannot fail.
    let _ = w.write_record(fields);
    let _ = w.flush();
}

impl Encoder for Csv {
    fn header(&self, _: &Sources<'_>, out: &mut Vec<u8>) {
        csv_row(out, std::iter::once(id_column(self.0)).chain(COLUMNS));
    }

    fn item(&self, item: &Item<'_>, sources: &Sources<'_>, out: &mut Vec<u8>) {
        let shipping = shipping_cell(&sources.catalog.store.feeds.shipping);
        let cells = cells(self.0, item, &shipping);
        csv_row(out, std::iter::once(item.id).chain(cells.iter().map(String::as_str)));
    }

    fn footer(&self, _: &mut Vec<u8>) {}
}

/// TikTok's fields as JSON: `{"products": [{"sku_id": ..., "title": ..., ...}]}`, one
/// product record a line, empty fields left out, additional images as an array.
pub(super) struct Json;

impl Encoder for Json {
    fn header(&self, _: &Sources<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"products\": [\n");
    }

    fn item(&self, item: &Item<'_>, sources: &Sources<'_>, out: &mut Vec<u8>) {
        let shipping = shipping_cell(&sources.catalog.store.feeds.shipping);
        let cells = cells(Channel::Tiktok, item, &shipping);
        let mut record = serde_json::Map::new();
        record.insert("sku_id".into(), item.id.into());
        for (name, value) in COLUMNS.iter().zip(cells) {
            if *name == "additional_image_link" {
                if !item.additional_images.is_empty() {
                    record.insert((*name).into(), item.additional_images.into());
                }
            } else if !value.is_empty() {
                record.insert((*name).into(), value.into());
            }
        }
        out.extend_from_slice(b",\n");
        let _ = serde_json::to_writer(&mut *out, &record);
    }

    fn footer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\n]}\n");
    }

    fn first_item_skip(&self) -> usize {
        2
    }
}
