//! The one canonical mapping of a product and its variants to feed items; the writers only
//! spell these fields in their channel's format.
//!
//! Everything a product's variants share (plain-text description, category path, image
//! URLs) is computed once per product; per variant only the few fields that differ are.

use super::Channel;
use crate::catalog::{Availability, Catalog, Product, Variant};
use crate::images::ImageMap;
use crate::money::Money;
use crate::render::{Urls, image_url, product_path, variant_url};
use crate::text::{excerpt, markdown_to_text};

/// Length limits of a channel, counted in Unicode characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `id` (`sku_id` on TikTok).
    pub id: usize,
    /// `title`.
    pub title: usize,
    /// `description`.
    pub description: usize,
    /// `link`, `image_link` and each additional image URL.
    pub url: usize,
    /// Number of additional images.
    pub additional_images: usize,
    /// Length of the whole `additional_image_link` cell of a CSV feed (0: one element each).
    pub additional_images_cell: usize,
    /// `brand`.
    pub brand: usize,
    /// `mpn`.
    pub mpn: usize,
    /// `item_group_id`.
    pub group_id: usize,
    /// `product_type` and `google_product_category`.
    pub product_type: usize,
    /// `color`, `size`, `material`, `pattern`.
    pub attribute: usize,
}

/// Google Merchant Center product data specification (answer 7052112).
pub const GOOGLE: Limits = Limits {
    id: 50,
    title: 150,
    description: 5000,
    url: 2000,
    additional_images: 10,
    additional_images_cell: 0,
    brand: 70,
    mpn: 70,
    group_id: 50,
    product_type: 750,
    attribute: 100,
};

/// Meta commerce catalog fields.
pub const META: Limits = Limits {
    id: 100,
    title: 200,
    description: 9999,
    url: 2000,
    additional_images: 20,
    additional_images_cell: 2000,
    brand: 100,
    mpn: 100,
    group_id: 100,
    product_type: 750,
    attribute: 100,
};

/// TikTok publishes no limits in the copy of its spec we have; Meta's (which TikTok's
/// template mirrors column for column) are used as a conservative stand-in.
pub const TIKTOK: Limits = META;

impl Channel {
    /// The channel's length limits.
    pub fn limits(self) -> Limits {
        match self {
            Self::Google => GOOGLE,
            Self::Meta => META,
            Self::Tiktok => TIKTOK,
        }
    }
}

/// Availability as each channel spells it.
pub fn availability_name(channel: Channel, a: Availability) -> &'static str {
    match (channel, a) {
        (Channel::Google, Availability::InStock) => "in_stock",
        (Channel::Google, Availability::Backorder) => "backorder",
        (Channel::Google, Availability::OutOfStock) => "out_of_stock",
        (_, Availability::InStock) => "in stock",
        (_, Availability::Backorder) => "available for order",
        (_, Availability::OutOfStock) => "out of stock",
    }
}

/// A price as every channel wants it: the amount with all the currency's decimals, a space
/// and the ISO 4217 code (`15.00 USD`, `1500 JPY`, `1.005 KWD`).
pub fn price_text(m: Money) -> String {
    format!("{} {}", m.decimal(), m.currency.code())
}

/// A catalog's `availability_date` (`2027-03-01` or an RFC 3339 date-time) as Google
/// spells a date-time, `YYYY-MM-DDThh:mm` then `Z` or `±hhmm` (25 characters at most;
/// Meta and TikTok read the same ISO 8601 form). A bare date is the start of that day in
/// UTC. `None` for anything else (the loader has refused it already).
pub fn feed_datetime(text: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let date = text.get(..10)?;
    let date_ok = date.as_bytes()[4] == b'-'
        && date.as_bytes()[7] == b'-'
        && [&date[..4], &date[5..7], &date[8..]].iter().all(|p| digits(p));
    if !date_ok {
        return None;
    }
    let Some(time) = text[10..].strip_prefix(['T', 't']) else {
        return text[10..].is_empty().then(|| format!("{date}T00:00Z"));
    };
    let (clock, zone) = time.split_at(time.find(['Z', 'z', '+', '-'])?);
    let hh_mm = clock.get(..5).filter(|c| c.as_bytes()[2] == b':')?;
    if !digits(&hh_mm[..2]) || !digits(&hh_mm[3..]) {
        return None;
    }
    let zone = match zone {
        "Z" | "z" => "Z".to_owned(),
        _ => {
            let (sign, rest) = zone.split_at(1);
            let offset = rest.replace(':', "");
            (offset.len() == 4 && digits(&offset)).then(|| format!("{sign}{offset}"))?
        }
    };
    Some(format!("{date}T{hh_mm}{zone}"))
}

/// Removes control characters (invalid in XML 1.0, rejected by every channel) and trims.
pub(super) fn clean(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().into()
    } else {
        text.trim().to_owned()
    }
}

/// `text` within `max` characters: cut at a word when too long, ending in `…`.
pub(super) fn fit(text: &str, max: usize) -> String {
    if text.len() <= max || text.chars().count() <= max {
        text.to_owned()
    } else {
        excerpt(text, max)
    }
}

/// `text` cut to at most `max` characters at a character boundary, no ellipsis.
pub(super) fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Where feed URLs come from: the built site's own functions, so links and image links
/// are exactly the storefront's.
pub struct Sources<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// Published images by source path (from `images::process`).
    pub images: &'a ImageMap,
    /// The site's URLs.
    pub urls: &'a Urls,
}

/// What all variants of a product share, computed once.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Feed title (the `feed.title` override or the product title), cleaned.
    pub title: String,
    /// Plain-text description, whitespace collapsed, not yet cut.
    pub description: String,
    /// Absolute URL of the product page.
    pub url: String,
    /// Absolute URL of the largest fallback of each published image, main first.
    pub images: Vec<String>,
    /// Brand (the vendor).
    pub brand: Option<String>,
    /// Category path (`Apparel > Jackets`) or the product type.
    pub product_type: Option<String>,
    /// Google product category: the product's override, else the mapping of its first
    /// category or that category's nearest mapped ancestor.
    pub google_category: Option<String>,
    /// `item_group_id`: the product handle, for products with more than one variant.
    pub group_id: Option<String>,
    /// For each of the product's options, which variant attribute it fills, if any.
    pub option_roles: Vec<Option<Attribute>>,
}

/// A variant attribute a channel knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// `color`.
    Color,
    /// `size`.
    Size,
    /// `material`.
    Material,
    /// `pattern`.
    Pattern,
}

impl Attribute {
    fn of_option(name: &str) -> Option<Self> {
        match name.trim().to_lowercase().as_str() {
            "color" | "colour" => Some(Self::Color),
            "size" => Some(Self::Size),
            "material" => Some(Self::Material),
            "pattern" => Some(Self::Pattern),
            _ => None,
        }
    }
}

/// One feed item: a variant of a product, in canonical form.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    /// The variant's SKU.
    pub id: &'a str,
    /// Title for this channel (variant options appended), within the channel's limit.
    pub title: String,
    /// Plain-text description within the channel's limit (never empty).
    pub description: &'a str,
    /// Product page URL with this variant chosen.
    pub link: String,
    /// Main image URL.
    pub image: &'a str,
    /// Additional image URLs within the channel's count limit.
    pub additional_images: &'a [String],
    /// Availability from stock.
    pub availability: Availability,
    /// When a variant on backorder ships again (`feed_datetime`); only on backorder.
    pub availability_date: Option<String>,
    /// The regular price: the compare-at price when on sale, else the price.
    pub price: Money,
    /// The price the shopper pays when on sale.
    pub sale_price: Option<Money>,
    /// Brand within the channel's limit.
    pub brand: Option<&'a str>,
    /// GTIN (check digit verified by the loader).
    pub gtin: Option<&'a str>,
    /// Manufacturer part number within the channel's limit.
    pub mpn: Option<&'a str>,
    /// `item_group_id`.
    pub group_id: Option<&'a str>,
    /// Variant attributes: color, size, material, pattern.
    pub color: Option<&'a str>,
    /// Size: the Size option's value, joined by `/` with the values of options no channel
    /// has a name for (Waist and Leg become `32/34`, Capacity `10L`), so that the variants
    /// of a group always differ in a variant attribute.
    pub size: Option<String>,
    /// Material.
    pub material: Option<&'a str>,
    /// Pattern.
    pub pattern: Option<&'a str>,
    /// Google product category.
    pub google_category: Option<&'a str>,
    /// Own category path.
    pub product_type: Option<&'a str>,
    /// Weight in grams.
    pub weight_grams: Option<u64>,
}

impl Item<'_> {
    /// Google's `identifier_exists`: `false` when the item has no GTIN and no MPN with a
    /// brand, so Google does not expect identifiers.
    pub fn identifiers_exist(&self) -> bool {
        self.gtin.is_some() || (self.mpn.is_some() && self.brand.is_some())
    }
}

/// The `size` of a variant: see `Item::size`.
fn size(s: &Shared, v: &Variant, max: usize) -> Option<String> {
    let parts: Vec<&str> = s
        .option_roles
        .iter()
        .zip(&v.options)
        .filter(|(role, _)| matches!(role, None | Some(Attribute::Size)))
        .map(|(_, value)| value.as_str())
        .collect();
    (!parts.is_empty()).then(|| truncate(&clean(&parts.join("/")), max).to_owned())
}

/// Why a variant is left out of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The product has no published image; every channel requires one.
    NoImage,
    /// Price zero: every channel requires a price above zero.
    FreeItem,
    /// The SKU is longer than the channel's id limit.
    IdTooLong(usize),
    /// The channel requires a brand and the product has no vendor.
    NoBrand,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoImage => f.write_str("the product has no image; feeds require one"),
            Self::FreeItem => f.write_str("the price is zero; feeds require a price above zero"),
            Self::IdTooLong(max) => {
                write!(f, "the SKU is longer than the {max} characters allowed")
            }
            Self::NoBrand => {
                f.write_str("the product has no vendor; this channel requires a brand")
            }
        }
    }
}

impl Sources<'_> {
    /// What `p`'s variants share.
    pub fn shared(&self, p: &Product) -> Shared {
        let c = self.catalog;
        let title = clean(p.feed.title.as_deref().unwrap_or(&p.title));
        let mut description = markdown_to_text(&p.description);
        if description.is_empty() {
            description = p.seo_description.clone().unwrap_or_default();
        }
        let mut description = clean(&description);
        if description.is_empty() {
            description = title.clone();
        }
        let images =
            p.images.iter().filter_map(|i| image_url(self.images, self.urls, &i.src)).collect();
        let chain = |first: usize| {
            let mut chain = vec![first];
            while let Some(parent) = c.categories[chain[chain.len() - 1]].parent {
                chain.push(parent);
            }
            chain
        };
        let product_type = match p.categories.first() {
            Some(&first) => Some(
                chain(first)
                    .iter()
                    .rev()
                    .map(|&i| clean(&c.categories[i].title))
                    .collect::<Vec<_>>()
                    .join(" > "),
            ),
            None => p.product_type.as_deref().map(clean),
        };
        let mapping = &c.store.feeds.google_product_category;
        let google_category = p.feed.google_product_category.clone().or_else(|| {
            let first = *p.categories.first()?;
            chain(first)
                .into_iter()
                .find_map(|i| mapping.get(&c.categories[i].handle))
                .map(|m| m.value.clone())
        });
        Shared {
            title,
            description,
            url: self.urls.absolute(&product_path(p)),
            images,
            brand: p.vendor.as_deref().map(clean).filter(|b| !b.is_empty()),
            product_type,
            google_category,
            group_id: (p.variants.len() > 1).then(|| p.handle.clone()),
            option_roles: p.options.iter().map(|o| Attribute::of_option(&o.name)).collect(),
        }
    }

    /// The item of variant `v` of a product with shared data `s` for `channel`, or why
    /// it is left out.
    pub fn item<'a>(
        &self,
        channel: Channel,
        s: &'a Shared,
        v: &'a Variant,
        description: &'a str,
    ) -> Result<Item<'a>, Skip> {
        let limits = channel.limits();
        let Some((image, rest)) = s.images.split_first() else { return Err(Skip::NoImage) };
        if v.price.minor <= 0 {
            return Err(Skip::FreeItem);
        }
        if v.sku.chars().count() > limits.id {
            return Err(Skip::IdTooLong(limits.id));
        }
        if channel == Channel::Tiktok && s.brand.is_none() {
            return Err(Skip::NoBrand);
        }
        let mut title = s.title.clone();
        if s.group_id.is_some() && !v.options.is_empty() {
            title.push_str(" – ");
            title.push_str(&clean(&v.options.join(" / ")));
        }
        let (price, sale_price) = match v.compare_at_price {
            Some(regular) if regular.minor > v.price.minor => (regular, Some(v.price)),
            _ => (v.price, None),
        };
        let mut additional = &rest[..rest.len().min(limits.additional_images)];
        if limits.additional_images_cell > 0 {
            // The cell holds the URLs joined by `,`: keep as many as fit.
            let mut len = 0;
            let fits = additional
                .iter()
                .take_while(|u| {
                    len += u.len() + usize::from(len > 0);
                    len <= limits.additional_images_cell
                })
                .count();
            additional = &additional[..fits];
        }
        let attribute = |which: Attribute| {
            s.option_roles
                .iter()
                .zip(&v.options)
                .find(|(role, _)| **role == Some(which))
                .map(|(_, value)| truncate(value, limits.attribute))
        };
        Ok(Item {
            id: &v.sku,
            title: fit(&title, limits.title),
            description,
            link: variant_url(&s.url, &v.sku),
            image,
            additional_images: additional,
            availability: v.availability(),
            availability_date: v
                .availability_date
                .as_deref()
                .filter(|_| v.availability() == Availability::Backorder)
                .and_then(feed_datetime),
            price,
            sale_price,
            brand: s.brand.as_deref().map(|b| truncate(b, limits.brand)),
            gtin: v.gtin.as_deref(),
            mpn: v.mpn.as_deref().filter(|m| m.chars().count() <= limits.mpn),
            group_id: s.group_id.as_deref().filter(|g| g.len() <= limits.group_id),
            color: attribute(Attribute::Color),
            size: size(s, v, limits.attribute),
            material: attribute(Attribute::Material),
            pattern: attribute(Attribute::Pattern),
            google_category: s.google_category.as_deref(),
            product_type: s.product_type.as_deref().map(|t| truncate(t, limits.product_type)),
            weight_grams: v.weight_grams,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn prices_keep_the_currency_decimals() {
        let m = |amount: &str, code: &str| {
            Money::parse(amount, Currency::from_code(code).expect("currency")).expect("amount")
        };
        assert_eq!(price_text(m("15", "USD")), "15.00 USD");
        assert_eq!(price_text(m("1500", "JPY")), "1500 JPY");
        assert_eq!(price_text(m("1.005", "KWD")), "1.005 KWD");
    }

    #[test]
    fn availability_is_spelt_per_channel() {
        assert_eq!(availability_name(Channel::Google, Availability::InStock), "in_stock");
        assert_eq!(availability_name(Channel::Meta, Availability::InStock), "in stock");
        assert_eq!(
            availability_name(Channel::Tiktok, Availability::Backorder),
            "available for order"
        );
        assert_eq!(availability_name(Channel::Google, Availability::OutOfStock), "out_of_stock");
    }

    #[test]
    fn availability_dates_are_spelt_as_google_asks() {
        assert_eq!(feed_datetime("2027-03-01").as_deref(), Some("2027-03-01T00:00Z"));
        assert_eq!(
            feed_datetime("2027-03-01T09:30:00+01:00").as_deref(),
            Some("2027-03-01T09:30+0100")
        );
        assert_eq!(
            feed_datetime("2027-03-01T09:30:15.250-08:00").as_deref(),
            Some("2027-03-01T09:30-0800")
        );
        assert_eq!(feed_datetime("2027-03-01T23:59:59Z").as_deref(), Some("2027-03-01T23:59Z"));
        for bad in ["", "soon", "2027-03", "2027-03-01T09", "2027-03-01T09:30:00", "2027-03-01 x"] {
            assert_eq!(feed_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn cuts_text_at_char_boundaries() {
        assert_eq!(truncate("Ærøskøbing", 3), "Ærø");
        assert_eq!(truncate("ab", 5), "ab");
        let long = "wörd ".repeat(40);
        let cut = fit(&long, 50);
        assert!(cut.chars().count() <= 50, "{cut}");
        assert!(cut.ends_with('…'), "{cut}");
        assert_eq!(fit("short", 50), "short");
    }

    #[test]
    fn control_characters_are_removed() {
        assert_eq!(clean(" a\u{1}b\u{7f} "), "a b");
        assert_eq!(clean("plain"), "plain");
    }
}
