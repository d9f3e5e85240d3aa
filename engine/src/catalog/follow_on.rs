//! What failed to load, so that references to it are not also reported as unknown: one
//! broken line of `products.jsonl` must not show up as an "unknown product" in every
//! collection that lists it, before the real cause. A reference that could name what
//! failed is not reported; when that cannot be told (a line without a readable handle, a
//! file that could not be read), the references are not checked and one warning per file
//! says so.

use crate::diagnostics::Diagnostics;
use std::collections::{BTreeMap, HashSet};

/// The gaps a load left in the catalog and the references it did not check because of them.
#[derive(Debug, Default)]
pub(super) struct Gaps {
    /// Handles of `products.jsonl` lines that are not in the catalog (errors, clashes).
    product_handles: HashSet<String>,
    /// `products.jsonl` lines with errors whose handle could not be read.
    unreadable_lines: Vec<usize>,
    /// `products.jsonl` could not be read at all.
    products_unreadable: bool,
    /// `categories.json` could not be read or parsed.
    categories_unreadable: bool,
    /// Per referring file: (what was not checked, how many references, the cause).
    unchecked: BTreeMap<&'static str, (&'static str, usize, String)>,
}

impl Gaps {
    /// Notes a `products.jsonl` line that did not become a product, with its handle if known.
    pub fn broken_product(&mut self, line: usize, handle: Option<String>) {
        match handle {
            Some(handle) => {
                self.product_handles.insert(handle);
            }
            None => self.unreadable_lines.push(line),
        }
    }

    /// Notes that `products.jsonl` could not be read.
    pub fn products_unreadable(&mut self) {
        self.products_unreadable = true;
    }

    /// Notes that `categories.json` could not be read or parsed.
    pub fn categories_unreadable(&mut self) {
        self.categories_unreadable = true;
    }

    /// Whether category references are checked (`categories.json` was read).
    pub fn categories_known(&self) -> bool {
        !self.categories_unreadable
    }

    /// Whether a reference from `file` to product `handle`, which is not in the catalog,
    /// may be a consequence of another error (then it is not reported).
    pub fn product_follows(&mut self, file: &'static str, handle: &str) -> bool {
        if self.product_handles.contains(handle) {
            return true;
        }
        let cause = if self.products_unreadable {
            "`products.jsonl` could not be read".to_owned()
        } else if let Some(first) = self.unreadable_lines.first() {
            let more = self.unreadable_lines.len() - 1;
            let others = if more > 0 { format!(" (and {more} more)") } else { String::new() };
            format!("`products.jsonl` line {first}{others} could not be parsed")
        } else {
            return false;
        };
        self.skip(file, "product", cause);
        true
    }

    /// Whether a reference from `file` to category `handle`, which does not exist, may be a
    /// consequence of another error (then it is not reported).
    pub fn category_follows(&mut self, file: &'static str) -> bool {
        if self.categories_known() {
            return false;
        }
        self.skip(file, "category", "`categories.json` could not be read".to_owned());
        true
    }

    /// Counts `n` references from `file` to `what` left unchecked because of `cause`.
    pub fn skip_many(&mut self, file: &'static str, what: &'static str, n: usize, cause: &str) {
        if n > 0 {
            let entry = self.unchecked.entry(file).or_insert((what, 0, cause.to_owned()));
            entry.1 += n;
        }
    }

    fn skip(&mut self, file: &'static str, what: &'static str, cause: String) {
        let entry = self.unchecked.entry(file).or_insert((what, 0, cause));
        entry.1 += 1;
    }

    /// One warning per file whose references were not all checked.
    pub fn report(self, diags: &mut Diagnostics) {
        for (file, (what, n, cause)) in self.unchecked {
            let references = if n == 1 { "reference" } else { "references" };
            diags.warning(
                "unchecked",
                file,
                None,
                None,
                format!("{n} {what} {references} not checked because {cause}"),
            );
        }
    }
}

/// The handle of a `products.jsonl` line that is not valid JSON, if it can still be read:
/// the first `"handle": "…"` not inside a string escape.
pub(super) fn salvage_handle(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let mut from = 0;
    while let Some(i) = text[from..].find("\"handle\"") {
        let at = from + i;
        from = at + 1;
        if text[..at].ends_with('\\') {
            continue;
        }
        let rest = text[at + "\"handle\"".len()..].trim_start().strip_prefix(':')?;
        let value = rest.trim_start().strip_prefix('"')?;
        let end = value.find('"')?;
        let handle = &value[..end];
        return super::validate::is_handle(handle).then(|| handle.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_read_from_broken_lines() {
        let line = br#"{"handle": "donegal-tweed-scarf", "title": "Donegal "Tweed" Scarf"}"#;
        assert_eq!(salvage_handle(line).as_deref(), Some("donegal-tweed-scarf"));
        let escaped = br#"{"title": "say \"handle\": \"x\"", "handle" : "real-one", oops}"#;
        assert_eq!(salvage_handle(escaped).as_deref(), Some("real-one"));
        assert_eq!(salvage_handle(br#"{"title": "no handle"#), None);
        assert_eq!(salvage_handle(br#"{"handle": "Not A Handle"}"#), None);
    }

    #[test]
    fn unreadable_lines_leave_references_unchecked_with_one_warning() {
        let mut gaps = Gaps::default();
        gaps.broken_product(3, Some("known".into()));
        assert!(gaps.product_follows("collections.json", "known"));
        assert!(!gaps.product_follows("collections.json", "other"));
        gaps.broken_product(7, None);
        assert!(gaps.product_follows("collections.json", "other"));
        assert!(gaps.product_follows("collections.json", "another"));
        let mut d = Diagnostics::default();
        gaps.report(&mut d);
        assert_eq!(
            d.to_string(),
            "warning[unchecked]: `collections.json`: 2 product references not checked because \
             `products.jsonl` line 7 could not be parsed\n"
        );
    }
}
