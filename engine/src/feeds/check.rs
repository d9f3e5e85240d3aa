//! The feed checker: validates a feed file against the rules of its channel (required
//! fields, formats, enumerations, lengths, GTIN check digits, identifier rules, duplicate
//! ids, prices above zero, absolute URLs) and reports every problem with the item's id and,
//! where the format has lines, its line.
//!
//! No offline validator exists for these channels, so the rules are ours, taken from the
//! channels' specifications (see `docs/feeds.md`). The checker reads the feed as a stream;
//! only the ids seen (for duplicates) and the variant attributes per item group grow with it.

mod formats;
mod readers;
mod rules;

use super::Channel;
use crate::diagnostics::Severity;
use rules::Rules;
use std::fmt;
use std::io::{self, BufRead};

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
        Syntax::Xml => readers::read_xml(input, &mut rules)?,
        Syntax::Csv => readers::read_csv(input, &mut rules),
        Syntax::Json => readers::read_json(input, &mut rules)?,
    }
    Ok(Report { channel, syntax, items: rules.items, problems: rules.problems })
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
    fn availability_dates_are_checked() {
        let item = |fields: &str| {
            format!(
                "<?xml version=\"1.0\"?>\n<rss version=\"2.0\" xmlns:g=\"http://base.google.com/ns/1.0\">\n<channel>\n<item>\n<g:id>A-1</g:id>\n<g:title>Tee</g:title>\n<g:description>Soft</g:description>\n<g:link>https://x.test/p/</g:link>\n<g:image_link>https://x.test/i.jpg</g:image_link>\n<g:price>15.00 USD</g:price>\n<g:brand>Acme</g:brand>\n<g:gtin>4006381333931</g:gtin>\n{fields}\n</item>\n</channel>\n</rss>\n"
            )
        };
        let problems = |fields: &str| -> Vec<String> {
            let report =
                check(item(fields).as_bytes(), Channel::Google, Syntax::Xml).expect("reads");
            report.problems.iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            problems("<g:availability>backorder</g:availability>"),
            vec![
                "warning: line 4: item `A-1`: `availability_date`: `backorder` items should give an `availability_date`"
            ]
        );
        for good in ["2027-03-01T09:00+0100", "2027-03-01T00:00Z", "2027-03-01T09:00:00+01:00"] {
            let fields = format!(
                "<g:availability>backorder</g:availability>\n<g:availability_date>{good}</g:availability_date>"
            );
            assert_eq!(problems(&fields), Vec::<String>::new(), "{good}");
        }
        for bad in ["2027-03-01", "next week", "2027-03-01T09:00:00.000000000+01:00"] {
            let fields = format!(
                "<g:availability>backorder</g:availability>\n<g:availability_date>{bad}</g:availability_date>"
            );
            let got = problems(&fields);
            assert!(
                got.len() == 1
                    && got[0].starts_with("error: line 4: item `A-1`: `availability_date`: "),
                "{bad}: {got:#?}"
            );
        }
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
}
