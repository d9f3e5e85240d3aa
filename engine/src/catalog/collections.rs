//! `collections.json`: manual lists and rule-based collections, their members resolved
//! and sorted; an edit that keeps every product at its index re-checks only the changed
//! products against the rules.

use super::follow_on::Gaps;
use super::limits::MAX_RULE_CONDITIONS;
use super::load::{COLLECTIONS, amount_message, handle_message, parse_json, plain, read_small};
use super::locate;
use super::raw::{Match, RawCollection, RawCondition, RawImage, SortOrder};
use super::validate::{check_image_path, is_handle, unknown_category};
use super::{Category, Collection, ImageRef, Product};
use crate::diagnostics::Diagnostics;
use crate::money::{Currency, Money};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What collections are made from besides `collections.json`.
pub(super) struct RuleInputs<'a> {
    pub currency: Option<Currency>,
    pub categories: &'a [Category],
    pub products: &'a [Product],
}

/// Members of rule-based collections by handle, as a load made them.
type RuleMembers = HashMap<String, Vec<usize>>;

/// Rule-based members with the `collections_key` of what they were made from.
pub(super) type KeyedMembers = ([u8; 32], RuleMembers);

/// What rule-based collections depend on besides the products: the file, the currency
/// (price bounds) and the category tree.
fn collections_key(text: &str, inputs: &RuleInputs<'_>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    if let Some(currency) = inputs.currency {
        h.update(currency.code().as_bytes());
    }
    for c in inputs.categories {
        h.update(&(c.handle.len() as u64).to_le_bytes());
        h.update(c.handle.as_bytes());
        h.update(&c.parent.map_or(u64::MAX, |p| p as u64).to_le_bytes());
    }
    h.update(text.as_bytes());
    *h.finalize().as_bytes()
}

/// Loads `collections.json`. With `prior`, the products changed since the last load
/// (every other one unchanged at its index) and that load's rule-based members: a rule
/// collection then re-checks only the changed products. Also returns this load's members,
/// for the next.
pub(super) fn load_collections(
    dir: &Path,
    inputs: &RuleInputs<'_>,
    prior: Option<(&[usize], KeyedMembers)>,
    gaps: &mut Gaps,
    diags: &mut Diagnostics,
) -> (Vec<Collection>, Option<KeyedMembers>) {
    let (currency, categories, products) = (inputs.currency, inputs.categories, inputs.products);
    let Some(text) = read_small(dir, COLLECTIONS, false, diags) else { return (Vec::new(), None) };
    let Some(raw): Option<Vec<RawCollection>> = parse_json(&text, COLLECTIONS, diags) else {
        return (Vec::new(), None);
    };
    let key = collections_key(&text, inputs);
    let mut reuse = prior.filter(|(_, (k, _))| *k == key).map(|(changed, (_, old))| (changed, old));
    let mut made = RuleMembers::new();
    // Only manual lists look products up by handle.
    let mut by_handle: Option<HashMap<&str, usize>> = None;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, rc) in raw.into_iter().enumerate() {
        let line_of = |pointer: &str| locate(&text, &format!("/{i}{pointer}")).map(|(l, _)| l);
        let field = |name: &str| Some(format!("[{i}].{name}"));
        let line = line_of("");
        let errors_before = diags.error_count();
        if !is_handle(&rc.handle) {
            diags.error(
                "handle",
                COLLECTIONS,
                line_of("/handle"),
                field("handle"),
                handle_message(&rc.handle),
            );
        } else if let Some(first) = seen.insert(rc.handle.clone(), i) {
            diags.error(
                "duplicate-handle",
                COLLECTIONS,
                line_of("/handle"),
                field("handle"),
                format!("collection `{}` is already defined at `[{first}]`", rc.handle),
            );
        }
        let image = rc.image.and_then(|RawImage { src, alt }| match check_image_path(&src) {
            Ok(()) => Some(ImageRef { src, alt }),
            Err(message) => {
                diags.error(
                    "image-path",
                    COLLECTIONS,
                    line_of("/image/src"),
                    field("image.src"),
                    message,
                );
                None
            }
        });
        let members = match (rc.products, rc.rules) {
            (Some(list), None) => {
                let by_handle = by_handle.get_or_insert_with(|| {
                    products.iter().enumerate().map(|(i, p)| (p.handle.as_str(), i)).collect()
                });
                let mut members = Vec::with_capacity(list.len());
                for (j, handle) in list.iter().enumerate() {
                    match by_handle.get(handle.as_str()) {
                        Some(&p) if products[p].is_active() => members.push(p),
                        Some(_) => {}
                        None if gaps.product_follows(COLLECTIONS, handle) => {}
                        None => diags.error(
                            "unknown-product",
                            COLLECTIONS,
                            line_of(&format!("/products/{j}")),
                            field(&format!("products[{j}]")),
                            format!("unknown product `{handle}`"),
                        ),
                    }
                }
                let mut seen_members = HashSet::new();
                members.retain(|p| seen_members.insert(*p));
                sort_members(&mut members, rc.sort.unwrap_or(SortOrder::Manual), products);
                members
            }
            (None, Some(rules)) if rules.conditions.len() > MAX_RULE_CONDITIONS => {
                diags.error(
                    "too-many",
                    COLLECTIONS,
                    line_of("/rules/conditions"),
                    field("rules.conditions"),
                    format!(
                        "{} conditions given, a rule has at most {MAX_RULE_CONDITIONS}",
                        rules.conditions.len()
                    ),
                );
                continue;
            }
            (None, Some(rules)) => {
                let Some(rule) = compile_rules(
                    &rules.conditions,
                    currency,
                    categories,
                    gaps,
                    &mut |j, name, message| {
                        diags.error(
                            "rule",
                            COLLECTIONS,
                            line_of(&format!("/rules/conditions/{j}")),
                            field(&format!("rules.conditions[{j}].{name}")),
                            message,
                        );
                    },
                ) else {
                    continue;
                };
                let sort = rc.sort.unwrap_or(SortOrder::Title);
                let member = |p: &Product| p.is_active() && rule.matches(p, rules.match_);
                let old = reuse.as_mut().and_then(|(changed, old)| {
                    old.remove(&rc.handle).map(|members| (*changed, members))
                });
                let members = match old {
                    Some((changed, old)) => update_members(old, changed, member, sort, products),
                    None => {
                        let mut members: Vec<usize> =
                            (0..products.len()).filter(|&i| member(&products[i])).collect();
                        sort_members(&mut members, sort, products);
                        members
                    }
                };
                made.insert(rc.handle.clone(), members.clone());
                members
            }
            _ => {
                diags.error(
                    "collection-kind",
                    COLLECTIONS,
                    line,
                    Some(format!("[{i}]")),
                    "a collection needs either `products` (a manual list) or `rules`, not both or neither",
                );
                continue;
            }
        };
        if diags.error_count() > errors_before {
            made.remove(&rc.handle);
            continue;
        }
        let title = plain(rc.title, COLLECTIONS, line_of("/title"), &format!("[{i}].title"), diags);
        out.push(Collection {
            handle: rc.handle,
            title,
            description: rc.description,
            image,
            products: members,
        });
    }
    (out, Some((key, made)))
}

/// What a sorted list of members is ordered by. Each key ends in something unique to the
/// product (its handle, or its index for a rule-based list in catalog order), so the order
/// is total and one product's place can be found in a list sorted earlier.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum MemberKey<'a> {
    Index(usize),
    Title(String, &'a str),
    Price(i64, &'a str),
    PriceDescending(std::cmp::Reverse<i64>, &'a str),
    Newest(std::cmp::Reverse<Option<i64>>, &'a str),
}

fn member_key(sort: SortOrder, i: usize, products: &[Product]) -> MemberKey<'_> {
    let p = &products[i];
    let handle = p.handle.as_str();
    match sort {
        SortOrder::Manual => MemberKey::Index(i),
        SortOrder::Title => MemberKey::Title(p.title.to_lowercase(), handle),
        SortOrder::PriceAscending => MemberKey::Price(p.min_price().minor, handle),
        SortOrder::PriceDescending => {
            MemberKey::PriceDescending(std::cmp::Reverse(p.min_price().minor), handle)
        }
        SortOrder::Newest => MemberKey::Newest(std::cmp::Reverse(p.created_unix), handle),
    }
}

/// Sorts members; a manual sort keeps the order they are in.
fn sort_members(members: &mut [usize], sort: SortOrder, products: &[Product]) {
    if sort != SortOrder::Manual {
        // Keys (a lowercased title, the lowest price over the variants) made once each.
        members.sort_by_cached_key(|&i| member_key(sort, i, products));
    }
}

/// A rule-based collection's sorted members `old` brought up to date for the products at
/// `changed` (ascending; every other product unchanged at its index): those leave the
/// list and go back in at their place if `member` still holds.
fn update_members(
    mut members: Vec<usize>,
    changed: &[usize],
    member: impl Fn(&Product) -> bool,
    sort: SortOrder,
    products: &[Product],
) -> Vec<usize> {
    members.retain(|m| changed.binary_search(m).is_err());
    for &c in changed.iter().filter(|&&c| member(&products[c])) {
        let key = member_key(sort, c, products);
        let at = members.partition_point(|&m| member_key(sort, m, products) < key);
        members.insert(at, c);
    }
    members
}

/// A compiled collection rule: conditions with text lowered and prices parsed.
struct Rule {
    conditions: Vec<Condition>,
}

enum Condition {
    Tag(String),
    Vendor(String),
    ProductType(String),
    /// The category and all its descendants.
    Category(HashSet<usize>),
    Price(Option<i64>, Option<i64>),
}

fn compile_rules(
    raw: &[RawCondition],
    currency: Option<Currency>,
    categories: &[Category],
    gaps: &mut Gaps,
    report: &mut dyn FnMut(usize, &str, String),
) -> Option<Rule> {
    let mut conditions = Vec::with_capacity(raw.len());
    let mut ok = true;
    if raw.is_empty() {
        report(0, "", "a rule-based collection needs at least one condition".into());
        return None;
    }
    for (j, c) in raw.iter().enumerate() {
        conditions.push(match c {
            RawCondition::Tag(t) => Condition::Tag(t.to_lowercase()),
            RawCondition::Vendor(v) => Condition::Vendor(v.to_lowercase()),
            RawCondition::ProductType(t) => Condition::ProductType(t.to_lowercase()),
            RawCondition::Category(handle) => {
                let Some(root) = categories.iter().position(|c| c.handle == *handle) else {
                    if !gaps.category_follows(COLLECTIONS) {
                        let known: Vec<&str> =
                            categories.iter().map(|c| c.handle.as_str()).take(1000).collect();
                        report(j, "category", unknown_category(handle, &known, categories.len()));
                    }
                    ok = false;
                    continue;
                };
                let mut set = HashSet::from([root]);
                for (i, c) in categories.iter().enumerate() {
                    // parents come before children, so one pass finds all descendants
                    if c.parent.is_some_and(|p| set.contains(&p)) {
                        set.insert(i);
                    }
                }
                Condition::Category(set)
            }
            RawCondition::Price(range) => {
                let currency = currency?;
                let mut bound = |name: &str, text: &Option<String>| match text
                    .as_deref()
                    .map(|t| (t, Money::parse(t, currency)))
                {
                    None => None,
                    Some((_, Ok(m))) => Some(m.minor),
                    Some((t, Err(e))) => {
                        report(j, &format!("price.{name}"), amount_message(t, &e, currency));
                        ok = false;
                        None
                    }
                };
                Condition::Price(bound("min", &range.min), bound("max", &range.max))
            }
        });
    }
    ok.then_some(Rule { conditions })
}

/// Whether `a.to_lowercase() == lower` (`lower` is lowercase already), without allocating
/// for ASCII text, which is what tags, vendors and types nearly always are.
fn lower_eq(a: &str, lower: &str) -> bool {
    if a.is_ascii() { a.eq_ignore_ascii_case(lower) } else { a.to_lowercase() == lower }
}

impl Rule {
    fn matches(&self, p: &Product, how: Match) -> bool {
        let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| lower_eq(a, b));
        let test = |c: &Condition| match c {
            Condition::Tag(t) => p.tags.iter().any(|x| lower_eq(x, t)),
            Condition::Vendor(v) => eq(&p.vendor, v),
            Condition::ProductType(t) => eq(&p.product_type, t),
            Condition::Category(set) => p.categories.iter().any(|c| set.contains(c)),
            Condition::Price(min, max) => {
                let price = p.min_price().minor;
                min.is_none_or(|m| price >= m) && max.is_none_or(|m| price <= m)
            }
        };
        match how {
            Match::All => self.conditions.iter().all(test),
            Match::Any => self.conditions.iter().any(test),
        }
    }
}
