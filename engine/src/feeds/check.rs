//! The feed checker: validates a feed file against the rules of its channel (required
//! fields, formats, enumerations, lengths, GTIN check digits, identifier rules, duplicate
//! ids, prices above zero, absolute URLs) and reports every problem with the item's id and,
//! where the format has lines, its line.
//!
//! No offline validator exists for these channels, so the rules are ours, taken from the
//! channels' specifications (see `docs/feeds.md`). The checker reads the feed as a stream;
//! only the ids seen (for duplicates) and the variant attributes per item group grow with it.

use super::Channel;
use super::item::{GOOGLE, Limits, META, TIKTOK};
use crate::catalog::{did_you_mean, gtin_is_valid};
use crate::diagnostics::Severity;
use crate::money::{Currency, Money};
use quick_xml::events::Event;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead, Read};

/// The file syntaxes the checker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// RSS 2.0 XML with the `g:` namespace (Google; TikTok imports it too).
    Xml,
    /// CSV with a header row (Meta, TikTok).
    Csv,
    /// TikTok's fields as JSON (`{"products": [...]}` or a bare array).
    Json,
}

/// One problem found in a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line where the item (or the problem) starts, when the format has lines.
    pub line: Option<usize>,
    /// The item's id, when known.
    pub item: Option<String>,
    /// The field, when the problem is about one.
    pub field: Option<String>,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        if let Some(item) = &self.item {
            write!(f, ": item `{item}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What checking a feed found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The channel whose rules were applied.
    pub channel: Channel,
    /// The syntax read.
    pub syntax: Syntax,
    /// Items read.
    pub items: usize,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.severity == Severity::Error).count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.problems.iter().filter(|p| p.severity == Severity::Warning).count()
    }
}

/// Guesses syntax and channel from the start of a file: XML is Google's, JSON TikTok's, and
/// a CSV header starting with `sku_id` TikTok's, with `id` Meta's.
pub fn detect(start: &[u8]) -> Option<(Channel, Syntax)> {
    let text = String::from_utf8_lossy(start);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    match text.chars().next()? {
        '<' => Some((Channel::Google, Syntax::Xml)),
        '{' | '[' => Some((Channel::Tiktok, Syntax::Json)),
        _ => {
            let first = text.split(['\n', '\r', ',', '\t']).next()?.trim().trim_matches('"');
            match first {
                "sku_id" => Some((Channel::Tiktok, Syntax::Csv)),
                "id" => Some((Channel::Meta, Syntax::Csv)),
                _ => None,
            }
        }
    }
}

/// The syntax of a feed for a known channel: Google's is XML; TikTok's is read from the
/// start of the file (CSV, JSON or Google-format XML); Meta's is CSV.
pub fn syntax_for(channel: Channel, start: &[u8]) -> Syntax {
    let detected = detect(start).map(|(_, s)| s);
    match channel {
        Channel::Google => Syntax::Xml,
        Channel::Meta => Syntax::Csv,
        Channel::Tiktok => detected.unwrap_or(Syntax::Csv),
    }
}

/// Checks the feed read from `input` with the rules of `channel`.
pub fn check<R: BufRead>(input: R, channel: Channel, syntax: Syntax) -> io::Result<Report> {
    let mut rules = Rules::new(channel);
    match syntax {
        Syntax::Xml => read_xml(input, &mut rules)?,
        Syntax::Csv => read_csv(input, &mut rules),
        Syntax::Json => read_json(input, &mut rules)?,
    }
    Ok(Report { channel, syntax, items: rules.items, problems: rules.problems })
}

/// One item as read: field name → values (repeatable fields have several), and its line.
#[derive(Debug, Default)]
struct Record {
    line: Option<usize>,
    fields: BTreeMap<String, Vec<String>>,
}

impl Record {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.first()).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn add(&mut self, name: &str, value: String) {
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
struct Rules {
    channel: Channel,
    limits: Limits,
    items: usize,
    problems: Vec<Problem>,
    /// id → line (or item number) of its first use.
    ids: HashMap<String, String>,
    /// item group → variant attributes → id of the first item with them.
    groups: HashMap<String, HashMap<String, String>>,
    unknown_reported: std::collections::HashSet<String>,
}

impl Rules {
    fn new(channel: Channel) -> Self {
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

    fn id_field(&self) -> &'static str {
        if self.channel == Channel::Tiktok { "sku_id" } else { "id" }
    }

    /// A problem not tied to an item (syntax, header).
    fn file_problem(&mut self, severity: Severity, line: Option<usize>, message: String) {
        self.problems.push(Problem { severity, line, item: None, field: None, message });
    }

    /// A field name seen in the header or an item: warns once about names no channel uses.
    fn field_name(&mut self, name: &str, line: Option<usize>) {
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

    fn record(&mut self, r: &Record) {
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

    fn channel_name(&self) -> &'static str {
        match self.channel {
            Channel::Google => "Google",
            Channel::Meta => "Meta",
            Channel::Tiktok => "TikTok",
        }
    }
}

fn looks_like_html(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(2).any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/'))
}

/// `15.00 USD`: an amount, one space, an ISO 4217 code; decimals as the currency has them.
fn parse_price(text: &str) -> Result<Money, String> {
    let bad = || format!("`{text}` is not a price like `15.00 USD`");
    let (amount, code) = text.split_once(' ').ok_or_else(bad)?;
    let currency = Currency::from_code(code)
        .ok_or_else(|| format!("`{code}` in `{text}` is not an ISO 4217 currency code"))?;
    Money::parse(amount, currency).map_err(|e| match e {
        crate::money::AmountError::TooManyDecimals { given } => {
            format!("`{text}` has {given} decimals, {code} allows {}", currency.exponent())
        }
        _ => bad(),
    })
}

/// An absolute `http(s)` URL with a host and no whitespace.
fn check_url(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_whitespace) {
        return Err(format!("`{text}` contains whitespace"));
    }
    match url::Url::parse(text) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Ok(()),
        _ => Err(format!("`{text}` is not an absolute http(s) URL")),
    }
}

/// `YYYY-MM-DDTHH:MM[:SS][Z|±HH[:]MM]` (Meta's template also writes single-digit hours).
fn is_datetime(text: &str) -> bool {
    let Some((date, time)) = text.split_once('T') else { return false };
    let d: Vec<&str> = date.split('-').collect();
    let date_ok = d.len() == 3
        && d[0].len() == 4
        && d[1].len() == 2
        && d[2].len() == 2
        && d.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let c: Vec<&str> = clock.split(':').collect();
    let clock_ok = (2..=3).contains(&c.len())
        && c.iter().all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()));
    let zone_digits: String = zone.chars().skip(1).filter(|c| *c != ':').collect();
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || (zone_digits.len() == 4 && zone_digits.bytes().all(|b| b.is_ascii_digit()));
    date_ok && clock_ok && zone_ok
}

fn is_interval(text: &str) -> bool {
    text.split_once('/').is_some_and(|(a, b)| is_datetime(a) && is_datetime(b))
}

fn is_weight(text: &str) -> bool {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    !number.is_empty()
        && number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && ["g", "kg", "oz", "lb"].contains(&unit)
}

/// `COUNTRY:REGION:SERVICE:PRICE` (the text form of `shipping`; region and service may be
/// empty).
fn check_shipping(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 4 {
        return Err(format!(
            "`{text}` is not `COUNTRY:REGION:SERVICE:PRICE` like `US:CA:Standard:4.95 USD`"
        ));
    }
    let country = parts[0];
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("`{country}` in `{text}` is not an ISO 3166-1 country code"));
    }
    parse_price(parts[3]).map(drop)
}

// ---------------------------------------------------------------------------------------
// Readers

fn read_csv<R: Read>(input: R, rules: &mut Rules) {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            rules.file_problem(
                Severity::Error,
                Some(1),
                format!("cannot read the header row: {e}"),
            );
            return;
        }
    };
    let names: Vec<String> =
        headers.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_owned()).collect();
    let id_field = rules.id_field();
    if !names.iter().any(|n| n == id_field) {
        rules.file_problem(
            Severity::Error,
            Some(1),
            format!("the header row has no `{id_field}` column ({} feed)", rules.channel_name()),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        if !seen.insert(name.as_str()) {
            rules.file_problem(Severity::Error, Some(1), format!("column `{name}` appears twice"));
        }
        rules.field_name(name, Some(1));
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line() as usize);
                if record.len() != names.len() {
                    rules.file_problem(
                        Severity::Error,
                        line,
                        format!(
                            "the row has {} fields, the header has {}",
                            record.len(),
                            names.len()
                        ),
                    );
                    rules.items += 1;
                    continue;
                }
                let mut r = Record { line, ..Record::default() };
                for (name, value) in names.iter().zip(record.iter()) {
                    r.add(name, value.to_owned());
                }
                rules.record(&r);
            }
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_owned(),
                    _ => format!("cannot read the row: {e}"),
                };
                rules.file_problem(Severity::Error, line, message);
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
}

fn read_xml<R: BufRead>(input: R, rules: &mut Rules) -> io::Result<()> {
    // Whitespace is kept (values are trimmed below) so that every newline passes through
    // an event and lines can be counted.
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut line = 1usize;
    // Element names from the root down.
    let mut path: Vec<String> = Vec::new();
    let mut item: Option<Record> = None;
    let mut shipping: Option<BTreeMap<String, String>> = None;
    let mut text = String::new();
    let mut saw_rss = false;
    loop {
        let event = reader.read_event_into(&mut buf);
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                rules.file_problem(
                    Severity::Error,
                    Some(line),
                    format!("the XML is malformed: {e}"),
                );
                return Ok(());
            }
        };
        let start_line = line;
        match &event {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                if path.is_empty() {
                    saw_rss = name == "rss";
                    let has_namespace = e.attributes().flatten().any(|a| {
                        a.key.as_ref() == "xmlns:g" && a.value.as_ref() == super::google::NAMESPACE
                    });
                    if !saw_rss {
                        rules.file_problem(
                            Severity::Error,
                            Some(start_line),
                            format!("the root element is `{name}`, expected `rss`"),
                        );
                    } else if !has_namespace {
                        rules.file_problem(
                            Severity::Error,
                            Some(start_line),
                            format!(
                                "`rss` does not declare `xmlns:g=\"{}\"`",
                                super::google::NAMESPACE
                            ),
                        );
                    }
                }
                if name == "item" && item.is_none() {
                    item = Some(Record { line: Some(start_line), ..Record::default() });
                } else if item.is_some() && field_of(&name) == "shipping" {
                    shipping = Some(BTreeMap::new());
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                if let Some(r) = item.as_mut() {
                    let name = e.name().as_ref().to_owned();
                    r.add(field_of(&name), String::new());
                }
            }
            Event::Text(t) => {
                text.push_str(&t.xml10_content());
            }
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content().into_owned();
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(s) => text.push_str(s),
                    None => match r.resolve_char_ref() {
                        Ok(Some(c)) => text.push(c),
                        _ => rules.file_problem(
                            Severity::Error,
                            Some(line),
                            format!("unknown entity `&{name};`"),
                        ),
                    },
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let value = std::mem::take(&mut text);
                if name == "item" && path.last().is_some_and(|p| p == "channel") {
                    if let Some(r) = item.take() {
                        for field in r.fields.keys() {
                            rules.field_name(field, r.line);
                        }
                        rules.record(&r);
                    }
                } else if let Some(rates) = shipping.as_mut() {
                    if field_of(&name) == "shipping" {
                        let get = |k: &str| rates.get(k).cloned().unwrap_or_default();
                        let line_text = format!(
                            "{}:{}:{}:{}",
                            get("country"),
                            get("region"),
                            get("service"),
                            get("price")
                        );
                        if let Some(r) = item.as_mut() {
                            r.add("shipping", line_text);
                        }
                        shipping = None;
                    } else {
                        rates.insert(field_of(&name).to_owned(), value.trim().to_owned());
                    }
                } else if let Some(r) = item.as_mut()
                    && path.last().is_some_and(|p| p == "item")
                {
                    r.add(field_of(&name), value.trim().to_owned());
                }
            }
            Event::Eof => break,
            _ => {}
        }
        line += buf.iter().filter(|b| **b == b'\n').count();
        buf.clear();
    }
    if !saw_rss && rules.problems.is_empty() {
        rules.file_problem(Severity::Error, Some(1), "the file has no `rss` element".into());
    }
    Ok(())
}

/// `g:price` → `price`; `title` stays `title`.
fn field_of(name: &str) -> &str {
    name.strip_prefix("g:").unwrap_or(name)
}

fn read_json<R: Read>(input: R, rules: &mut Rules) -> io::Result<()> {
    let value: serde_json::Value = match serde_json::from_reader(input) {
        Ok(v) => v,
        Err(e) => {
            rules.file_problem(
                Severity::Error,
                Some(e.line()),
                format!("the JSON is malformed: {e}"),
            );
            return Ok(());
        }
    };
    let records = match &value {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("products") {
            Some(serde_json::Value::Array(a)) => a,
            _ => {
                rules.file_problem(
                    Severity::Error,
                    None,
                    "expected `{\"products\": [...]}`".into(),
                );
                return Ok(());
            }
        },
        _ => {
            rules.file_problem(Severity::Error, None, "expected `{\"products\": [...]}`".into());
            return Ok(());
        }
    };
    for record in records {
        let mut r = Record::default();
        let Some(fields) = record.as_object() else {
            rules.items += 1;
            rules.file_problem(
                Severity::Error,
                None,
                format!("item {} is not an object", rules.items),
            );
            continue;
        };
        for (name, value) in fields {
            rules.field_name(name, None);
            match value {
                serde_json::Value::String(s) => r.add(name, s.clone()),
                serde_json::Value::Array(list) if name == "additional_image_link" => {
                    let urls: Vec<&str> =
                        list.iter().filter_map(serde_json::Value::as_str).collect();
                    r.add(name, urls.join(","));
                }
                serde_json::Value::Null => {}
                other => r.add(name, other.to_string()),
            }
        }
        rules.record(&r);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "id,title,description,availability,condition,price,link,image_link,brand,gtin";

    #[track_caller]
    fn check_csv(rows: &[&str], expected: &[&str]) {
        let text = format!("{HEADER}\n{}\n", rows.join("\n"));
        let report = check(text.as_bytes(), Channel::Meta, Syntax::Csv).expect("reads");
        let got: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        for e in expected {
            assert!(got.iter().any(|g| g.contains(e)), "expected `{e}` in {got:#?}");
        }
        if expected.is_empty() {
            assert!(got.is_empty(), "{got:#?}");
        }
    }

    const GOOD: &str = "A-1,Tee,Soft tee,in stock,new,15.00 USD,https://x.test/p/,https://x.test/i.jpg,Acme,4006381333931";

    #[test]
    fn accepts_a_valid_row() {
        check_csv(&[GOOD], &[]);
    }

    #[test]
    fn rejects_zero_prices_and_bad_decimals() {
        check_csv(
            &[
                "A-1,Tee,Soft tee,in stock,new,0.00 USD,https://x.test/p/,https://x.test/i.jpg,Acme,",
            ],
            &["line 2: item `A-1`: `price`: `0.00 USD` must be greater than zero"],
        );
        check_csv(
            &[
                "A-1,Tee,Soft tee,in stock,new,1500.00 JPY,https://x.test/p/,https://x.test/i.jpg,Acme,",
            ],
            &["`1500.00 JPY` has 2 decimals, JPY allows 0"],
        );
    }

    #[test]
    fn rejects_bad_gtins_enums_urls_and_duplicates() {
        check_csv(
            &[
                "A-1,Tee,Soft tee,in_stock,new,15.00 USD,https://x.test/p/,https://x.test/i.jpg,Acme,4006381333932",
                "A-1,Tee,Soft tee,in stock,mint,15.00 USD,/p/,https://x.test/i.jpg,Acme,",
            ],
            &[
                "`4006381333932` is not a GTIN",
                "`in_stock` must be spelt `in stock` for Meta",
                "`mint` is not one of",
                "`/p/` is not an absolute http(s) URL",
                "line 3: item `A-1`: `id`: duplicate id, first used at line 2",
            ],
        );
    }

    #[test]
    fn detects_channels_from_content() {
        assert_eq!(detect(b"<?xml version=\"1.0\"?><rss>"), Some((Channel::Google, Syntax::Xml)));
        assert_eq!(detect(b"id,title\n"), Some((Channel::Meta, Syntax::Csv)));
        assert_eq!(detect(b"sku_id,title\n"), Some((Channel::Tiktok, Syntax::Csv)));
        assert_eq!(detect(b"{\"products\": []}"), Some((Channel::Tiktok, Syntax::Json)));
        assert_eq!(detect(b"name,price\n"), None);
    }

    #[test]
    fn google_xml_lines_and_identifiers() {
        let xml = "<?xml version=\"1.0\"?>\n<rss version=\"2.0\" xmlns:g=\"http://base.google.com/ns/1.0\">\n<channel>\n<item>\n<g:id>A&amp;1</g:id>\n<g:title>Tee</g:title>\n<g:description>Soft</g:description>\n<g:link>https://x.test/p/</g:link>\n<g:image_link>https://x.test/i.jpg</g:image_link>\n<g:availability>in_stock</g:availability>\n<g:price>15.00 USD</g:price>\n<g:brand>Acme</g:brand>\n</item>\n</channel>\n</rss>\n";
        let report = check(xml.as_bytes(), Channel::Google, Syntax::Xml).expect("reads");
        assert_eq!(report.items, 1);
        let got: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "error: line 4: item `A&1`: `identifier_exists`: the item has neither `gtin` nor `mpn`; send `identifier_exists` `no`"
            ]
        );
    }

    #[test]
    fn recognises_intervals_and_weights() {
        assert!(is_interval("2026-12-01T00:00-0800/2026-12-31T23:59-0800"));
        assert!(is_interval("2026-02-24T11:07+01:00/2026-02-29T23:07+01:00"));
        assert!(!is_interval("2026-12-01/2026-12-31"));
        assert!(is_weight("480 g") && is_weight("2.5 lb"));
        assert!(!is_weight("heavy") && !is_weight("0 g"));
    }
}
