//! The rules of each channel, applied to one item at a time: required fields, lengths,
//! enumerations, prices, identifiers, URLs, shipping, duplicate ids and item groups.

use super::Problem;
use super::formats::{
    check_shipping, check_url, is_datetime, is_interval, is_weight, looks_like_html, parse_price,
};
use crate::catalog::{did_you_mean, gtin_is_valid};
use crate::diagnostics::Severity;
use crate::feeds::Channel;
use crate::feeds::item::{GOOGLE, Limits, META, TIKTOK};
use std::collections::{BTreeMap, HashMap};

/// One item as read: field name → values (repeatable fields have several), and its line.
#[derive(Debug, Default)]
pub(super) struct Record {
    pub(super) line: Option<usize>,
    pub(super) fields: BTreeMap<String, Vec<String>>,
}

impl Record {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.first()).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(super) fn add(&mut self, name: &str, value: String) {
        self.fields.entry(name.to_owned()).or_default().push(value);
    }
}

/// Fields every channel knows (ours plus the common optional ones), for typo warnings.
const KNOWN: &[&str] = &[
    "id",
    "sku_id",
    "title",
    "description",
    "link",
    "mobile_link",
    "image_link",
    "additional_image_link",
    "video_link",
    "availability",
    "availability_date",
    "expiration_date",
    "price",
    "sale_price",
    "sale_price_effective_date",
    "cost_of_goods_sold",
    "unit_pricing_measure",
    "unit_pricing_base_measure",
    "brand",
    "gtin",
    "mpn",
    "identifier_exists",
    "condition",
    "adult",
    "age_group",
    "gender",
    "color",
    "size",
    "size_type",
    "size_system",
    "material",
    "pattern",
    "item_group_id",
    "google_product_category",
    "fb_product_category",
    "product_type",
    "product_detail",
    "product_highlight",
    "shipping",
    "shipping_weight",
    "shipping_label",
    "ships_from_country",
    "tax",
    "custom_label_0",
    "custom_label_1",
    "custom_label_2",
    "custom_label_3",
    "custom_label_4",
    "excluded_destination",
    "included_destination",
    "quantity_to_sell_on_facebook",
    "rich_text_description",
    "status",
    "offer_price",
    "offer_price_effective_date",
    "inventory",
];

/// The rules of one channel, applied record by record.
pub(super) struct Rules {
    pub(super) channel: Channel,
    limits: Limits,
    pub(super) items: usize,
    pub(super) problems: Vec<Problem>,
    /// id → line (or item number) of its first use.
    ids: HashMap<String, String>,
    /// item group → variant attributes → id of the first item with them.
    groups: HashMap<String, HashMap<String, String>>,
    unknown_reported: std::collections::HashSet<String>,
}

impl Rules {
    pub(super) fn new(channel: Channel) -> Self {
        let limits = match channel {
            Channel::Google => GOOGLE,
            Channel::Meta => META,
            Channel::Tiktok => TIKTOK,
        };
        Self {
            channel,
            limits,
            items: 0,
            problems: Vec::new(),
            ids: HashMap::new(),
            groups: HashMap::new(),
            unknown_reported: Default::default(),
        }
    }

    pub(super) fn id_field(&self) -> &'static str {
        if self.channel == Channel::Tiktok { "sku_id" } else { "id" }
    }

    /// A problem not tied to an item (syntax, header).
    pub(super) fn file_problem(
        &mut self,
        severity: Severity,
        line: Option<usize>,
        message: String,
    ) {
        self.problems.push(Problem { severity, line, item: None, field: None, message });
    }

    /// A field name seen in the header or an item: warns once about names no channel uses.
    pub(super) fn field_name(&mut self, name: &str, line: Option<usize>) {
        if KNOWN.contains(&name) || self.unknown_reported.contains(name) {
            return;
        }
        self.unknown_reported.insert(name.to_owned());
        let hint = did_you_mean(name, KNOWN.iter().copied())
            .map(|s| format!(", did you mean `{s}`?"))
            .unwrap_or_default();
        self.problems.push(Problem {
            severity: Severity::Warning,
            line,
            item: None,
            field: Some(name.to_owned()),
            message: format!("unknown field `{name}`{hint}"),
        });
    }

    pub(super) fn record(&mut self, r: &Record) {
        self.items += 1;
        let id_field = self.id_field();
        // TikTok reads Google-format XML too, where the id is `id`.
        let id = r.get(id_field).or_else(|| r.get("id")).map(str::to_owned);
        let mut out: Vec<(Severity, Option<String>, String)> = Vec::new();
        macro_rules! err {
            ($field:expr, $message:expr $(,)?) => {
                out.push((Severity::Error, Some(($field).to_string()), $message))
            };
        }
        let required: &[&str] = match self.channel {
            Channel::Google => {
                &["title", "description", "link", "image_link", "availability", "price"]
            }
            Channel::Meta => &[
                "title",
                "description",
                "availability",
                "condition",
                "price",
                "link",
                "image_link",
            ],
            Channel::Tiktok => &[
                "title",
                "description",
                "availability",
                "condition",
                "price",
                "link",
                "image_link",
                "brand",
            ],
        };
        if id.is_none() {
            err!(id_field, format!("`{id_field}` is required"));
        }
        for name in required {
            if r.get(name).is_none() {
                err!(name, format!("`{name}` is required"));
            }
        }
        for (name, values) in &r.fields {
            for value in values {
                if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
                    err!(name, "contains control characters".into());
                }
            }
        }
        let l = self.limits;
        let limits: [(&str, usize); 11] = [
            (id_field, l.id),
            ("id", l.id),
            ("title", l.title),
            ("description", l.description),
            ("link", l.url),
            ("image_link", l.url),
            ("brand", l.brand),
            ("mpn", l.mpn),
            ("item_group_id", l.group_id),
            ("product_type", l.product_type),
            ("google_product_category", l.product_type),
        ];
        for (name, max) in limits
            .into_iter()
            .chain(["color", "size", "material", "pattern"].into_iter().map(|n| (n, l.attribute)))
        {
            if let Some(v) = r.get(name) {
                let n = v.chars().count();
                if n > max {
                    err!(
                        name,
                        format!("is {n} characters long, {} allows {max}", self.channel_name())
                    );
                }
            }
        }
        if let Some(d) = r.get("description")
            && looks_like_html(d)
        {
            out.push((
                Severity::Warning,
                Some("description".into()),
                "looks like HTML; descriptions are plain text".into(),
            ));
        }
        // Availability.
        let availability = r.get("availability");
        if let Some(a) = availability {
            let allowed: &[&str] = match self.channel {
                Channel::Google => &["in_stock", "out_of_stock", "preorder", "backorder"],
                Channel::Meta => {
                    &["in stock", "out of stock", "preorder", "available for order", "discontinued"]
                }
                Channel::Tiktok => {
                    &["in stock", "available for order", "preorder", "out of stock", "discontinued"]
                }
            };
            let spaced = a.replace('_', " ");
            if allowed.contains(&a) {
            } else if self.channel == Channel::Google
                && allowed.contains(&a.replace(' ', "_").as_str())
            {
                out.push((
                    Severity::Warning,
                    Some("availability".into()),
                    format!("`{a}` is the older spelling; use `{}`", a.replace(' ', "_")),
                ));
            } else if self.channel != Channel::Google && allowed.contains(&spaced.as_str()) {
                err!(
                    "availability",
                    format!("`{a}` must be spelt `{spaced}` for {}", self.channel_name())
                );
            } else {
                err!("availability", format!("`{a}` is not one of `{}`", allowed.join("`, `")));
            }
            if self.channel == Channel::Google
                && (a == "preorder" || a == "backorder")
                && r.get("availability_date").is_none()
            {
                out.push((
                    Severity::Warning,
                    Some("availability_date".into()),
                    format!("`{a}` items should give an `availability_date`"),
                ));
            }
        }
        if let Some(d) = r.get("availability_date") {
            if !is_datetime(d) {
                err!(
                    "availability_date",
                    format!("`{d}` is not an ISO 8601 date-time like `2026-12-25T13:00-0800`"),
                );
            } else if d.chars().count() > 25 {
                err!("availability_date", format!("`{d}` is longer than 25 characters"));
            }
        }
        if let Some(c) = r.get("condition")
            && !["new", "refurbished", "used"].contains(&c)
        {
            err!("condition", format!("`{c}` is not one of `new`, `refurbished`, `used`"));
        }
        // Prices.
        let price = r.get("price").and_then(|p| match parse_price(p) {
            Ok(m) if m.minor > 0 => Some(m),
            Ok(_) => {
                err!("price", format!("`{p}` must be greater than zero"));
                None
            }
            Err(message) => {
                err!("price", message);
                None
            }
        });
        if let Some(s) = r.get("sale_price") {
            match parse_price(s) {
                Ok(sale) => {
                    if let Some(price) = price {
                        if sale.currency != price.currency {
                            err!(
                                "sale_price",
                                format!("`{s}` is not in the currency of the price")
                            );
                        } else if sale.minor >= price.minor {
                            err!(
                                "sale_price",
                                format!(
                                    "`{s}` must be lower than the price `{}`",
                                    r.get("price").unwrap_or_default()
                                ),
                            );
                        }
                    }
                    if sale.minor <= 0 {
                        err!("sale_price", format!("`{s}` must be greater than zero"));
                    }
                }
                Err(message) => err!("sale_price", message),
            }
        }
        if let Some(d) = r.get("sale_price_effective_date")
            && !is_interval(d)
        {
            err!(
                "sale_price_effective_date",
                format!(
                    "`{d}` is not an ISO 8601 interval like `2026-12-01T00:00-0800/2026-12-31T23:59-0800`"
                ),
            );
        }
        // Identifiers.
        let gtin = r.get("gtin");
        if let Some(g) = gtin
            && !gtin_is_valid(g)
        {
            err!("gtin", format!("`{g}` is not a GTIN-8, 12, 13 or 14 with a valid check digit"));
        }
        let mpn = r.get("mpn");
        let brand = r.get("brand");
        match self.channel {
            Channel::Google => {
                let exists = r.get("identifier_exists");
                let says_no = match exists {
                    None | Some("yes" | "true") => false,
                    Some("no" | "false") => true,
                    Some(other) => {
                        err!("identifier_exists", format!("`{other}` is not `yes` or `no`"));
                        false
                    }
                };
                if says_no && gtin.is_some() {
                    err!("identifier_exists", "is `no` but the item has a `gtin`".into());
                }
                if !says_no && gtin.is_none() && mpn.is_none() {
                    err!(
                        "identifier_exists",
                        "the item has neither `gtin` nor `mpn`; send `identifier_exists` `no`"
                            .into(),
                    );
                }
                if !says_no && brand.is_none() {
                    out.push((
                        Severity::Warning,
                        Some("brand".into()),
                        "branded products need a `brand`".into(),
                    ));
                }
            }
            Channel::Meta => {
                if brand.is_none() && gtin.is_none() && mpn.is_none() {
                    err!("brand", "one of `brand`, `gtin` or `mpn` is required".into());
                }
            }
            Channel::Tiktok => {}
        }
        // URLs.
        for name in ["link", "image_link"] {
            if let Some(u) = r.get(name)
                && let Err(message) = check_url(u)
            {
                err!(name, message);
            }
        }
        let additional: Vec<&str> = match r.fields.get("additional_image_link") {
            Some(values) if self.channel == Channel::Google => {
                values.iter().map(String::as_str).filter(|v| !v.is_empty()).collect()
            }
            Some(values) => values
                .iter()
                .flat_map(|v| v.split([',', ';', '|']))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect(),
            None => Vec::new(),
        };
        if additional.len() > l.additional_images {
            err!(
                "additional_image_link",
                format!(
                    "{} images, {} allows {}",
                    additional.len(),
                    self.channel_name(),
                    l.additional_images
                ),
            );
        }
        for u in &additional {
            if let Err(message) = check_url(u) {
                err!("additional_image_link", message);
            } else if u.chars().count() > l.url {
                err!("additional_image_link", format!("a URL is longer than {} characters", l.url));
            }
        }
        if l.additional_images_cell > 0
            && let Some(cell) = r.get("additional_image_link")
            && cell.chars().count() > l.additional_images_cell
        {
            err!(
                "additional_image_link",
                format!("the cell is longer than {} characters", l.additional_images_cell),
            );
        }
        // Shipping.
        for rate in r.fields.get("shipping").into_iter().flatten() {
            for one in rate.split(',').filter(|s| !s.trim().is_empty()) {
                if let Err(message) = check_shipping(one.trim()) {
                    err!("shipping", message);
                }
            }
        }
        if let Some(w) = r.get("shipping_weight")
            && !is_weight(w)
        {
            err!("shipping_weight", format!("`{w}` is not a weight like `480 g` or `2 lb`"));
        }
        // Duplicates and item groups.
        let place = |r: &Record| {
            r.line.map_or_else(|| format!("item {}", self.items), |l| format!("line {l}"))
        };
        if let Some(id) = &id {
            match self.ids.get(id) {
                Some(first) => err!(id_field, format!("duplicate id, first used at {first}")),
                None => {
                    self.ids.insert(id.clone(), place(r));
                }
            }
        }
        if let (Some(group), Some(id)) = (r.get("item_group_id"), &id) {
            let attributes: Vec<&str> =
                ["color", "size", "material", "pattern", "age_group", "gender"]
                    .iter()
                    .map(|n| r.get(n).unwrap_or_default())
                    .collect();
            let key = attributes.join("\u{1f}");
            let members = self.groups.entry(group.to_owned()).or_default();
            match members.get(&key) {
                Some(first) if first != id => out.push((
                    Severity::Warning,
                    Some("item_group_id".into()),
                    format!(
                        "same color, size, material and pattern as `{first}` in group `{group}`"
                    ),
                )),
                Some(_) => {}
                None => {
                    members.insert(key, id.clone());
                }
            }
        }
        for (severity, field, message) in out {
            self.problems.push(Problem {
                severity,
                line: r.line,
                item: id.clone(),
                field,
                message,
            });
        }
    }

    pub(super) fn channel_name(&self) -> &'static str {
        match self.channel {
            Channel::Google => "Google",
            Channel::Meta => "Meta",
            Channel::Tiktok => "TikTok",
        }
    }
}
