//! Checks a theme document against `themes/theme.schema.json` and turns every violation
//! into a diagnostic with its JSON pointer, line:column and a hint.

use super::SCHEMA;
use crate::catalog::{did_you_mean, locate};
use crate::diagnostics::{Diagnostics, Severity};
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;
use std::sync::LazyLock;

struct Compiled {
    validator: Option<jsonschema::Validator>,
    schema: Value,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap_or(Value::Null);
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .with_format("color", is_color)
        .with_format("length", is_length)
        .with_format("font-stack", is_font_stack)
        .with_format("shadow", is_shadow)
        .with_format("link", is_link)
        .build(&schema)
        .ok();
    Compiled { validator, schema }
});

/// `#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa`.
pub fn is_color(s: &str) -> bool {
    s.strip_prefix('#').is_some_and(|h| {
        [3, 4, 6, 8].contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A non-negative number with a unit (px, rem, em, ch, vw, vh, %) or a bare `0`.
pub fn is_length(s: &str) -> bool {
    if s == "0" {
        return true;
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    !number.is_empty()
        && number.parse::<f64>().is_ok_and(f64::is_finite)
        && ["px", "rem", "em", "ch", "vw", "vh", "%"].contains(&unit)
}

/// Whether a value could escape its declaration in generated CSS: comments, `url(`,
/// unbalanced quotes or parentheses.
fn breaks_css(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if lower.contains("/*") || lower.contains("*/") || lower.contains("url(") {
        return true;
    }
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    quote.is_some() || depth != 0
}

/// Comma-separated font names; nothing that could end a CSS declaration.
pub fn is_font_stack(s: &str) -> bool {
    !breaks_css(s)
        && !s.trim().is_empty()
        && !s.contains([';', '{', '}', '<', '>', '\\'])
        && s.split(',').all(|name| {
            let name = name.trim();
            !name.is_empty()
                && (name.matches('"').count() % 2 == 0)
                && (name.matches('\'').count() % 2 == 0)
        })
}

/// A box-shadow value: nothing that could end a declaration.
pub fn is_shadow(s: &str) -> bool {
    !breaks_css(s) && !s.trim().is_empty() && !s.contains([';', '{', '}', '<', '>', '\\'])
}

/// A root-relative path or an absolute http(s) URL.
pub fn is_link(s: &str) -> bool {
    let rel = s.starts_with('/') && !s.starts_with("//");
    let abs = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .is_some_and(|r| !r.is_empty());
    (rel || abs) && !s.contains(|c: char| c.is_whitespace() || c == '\\')
}

fn format_hint(format: &str) -> &'static str {
    match format {
        "color" => "is not a colour (use #rgb, #rrggbb or #rrggbbaa)",
        "length" => "is not a length (use a number with px, rem, em, ch, vw, vh or %, e.g. `1rem`)",
        "font-stack" => "is not a font stack (comma-separated names, e.g. `Georgia, serif`)",
        "shadow" => "is not a box shadow (e.g. `0 1px 2px rgba(0, 0, 0, 0.1)`)",
        "link" => "is not a link (use a path such as `/collections/sale/` or an http(s) URL)",
        _ => "has the wrong format",
    }
}

/// Adds one diagnostic per schema violation of `doc` (parsed from `text`).
pub fn validate(doc: &Value, text: &str, label: &str, diags: &mut Diagnostics) {
    let compiled = &*COMPILED;
    let Some(validator) = &compiled.validator else {
        diags.error("schema", label, None, None, "the built-in theme schema does not compile");
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for error in validator.iter_errors(doc) {
        let pointer = error.instance_path().as_str().to_owned();
        let instance = error.instance();
        let shown = short(instance);
        let mut report = |pointer: String, message: String| {
            if seen.insert((pointer.clone(), message.clone())) {
                let position = locate(text, &pointer);
                let field = Some(if pointer.is_empty() { "/".to_owned() } else { pointer });
                diags.push_at(Severity::Error, "theme", label, position, field, &message);
            }
        };
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let allowed = allowed_keys(&compiled.schema, error.schema_path().as_str());
                for key in unexpected {
                    let hint = match did_you_mean(key, allowed.iter().map(String::as_str)) {
                        Some(s) => format!(", did you mean `{s}`?"),
                        None if allowed.is_empty() => String::new(),
                        None => format!(" (allowed: {})", allowed.join(", ")),
                    };
                    report(
                        format!("{pointer}/{}", escape(key)),
                        format!("unknown key `{key}`{hint}"),
                    );
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                report(pointer, format!("missing key `{name}`"));
            }
            ValidationErrorKind::Format { format } => {
                report(pointer, format!("{shown} {}", format_hint(format)));
            }
            ValidationErrorKind::Enum { options } => {
                let choices: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let hint = instance
                    .as_str()
                    .and_then(|s| did_you_mean(s, choices.iter().map(String::as_str)))
                    .map(|s| format!(", did you mean `{s}`?"))
                    .unwrap_or_default();
                report(pointer, format!("{shown} is not one of `{}`{hint}", choices.join("`, `")));
            }
            ValidationErrorKind::Constant { expected_value } => {
                report(pointer, format!("{shown} is not supported, expected `{expected_value}`"));
            }
            ValidationErrorKind::Type { .. } => {
                report(
                    pointer,
                    format!("{shown} has the wrong type: {}", strip_instance(&error.to_string())),
                );
            }
            ValidationErrorKind::Pattern { .. } => {
                report(pointer, format!("{shown} {}", pattern_hint(error.schema_path().as_str())));
            }
            _ => report(pointer, error.to_string()),
        }
    }
}

/// The keys allowed where an `additionalProperties` failed: the `properties` beside it in
/// the schema, following `$ref`s along the evaluation path.
fn allowed_keys(schema: &Value, schema_path: &str) -> Vec<String> {
    let mut node = schema;
    let segments: Vec<String> =
        schema_path.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
    for segment in segments.iter().take(segments.len().saturating_sub(1)) {
        if segment == "$ref" {
            let Some(target) =
                node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#'))
            else {
                return Vec::new();
            };
            match schema.pointer(target) {
                Some(n) => node = n,
                None => return Vec::new(),
            }
        } else {
            let next = match node {
                Value::Object(map) => map.get(segment.as_str()),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return Vec::new(),
            }
        }
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn pattern_hint(schema_path: &str) -> &'static str {
    if schema_path.contains("slug") {
        "is not a slug (letters, digits and `-`, up to 40)"
    } else if schema_path.contains("handle") || schema_path.contains("collection") {
        "is not a handle (a-z, 0-9 and `-`)"
    } else if schema_path.contains("image") {
        "is not an image path such as `images/hero.jpg`"
    } else if schema_path.contains("version") {
        "is not a version such as `1.0.0`"
    } else {
        "has the wrong form"
    }
}

/// A JSON value shown briefly in backticks.
fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cut: String = text.chars().take(60).collect();
    if cut.len() < text.len() { format!("`{cut}…`") } else { format!("`{cut}`") }
}

/// jsonschema's message without the instance it starts with.
fn strip_instance(message: &str) -> String {
    message
        .rsplit_once(" is not ")
        .map_or_else(|| message.to_owned(), |(_, rest)| format!("expected {rest}"))
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(is_color("#fff") && is_color("#ffffff80") && !is_color("#ggg") && !is_color("red"));
        assert!(
            is_length("1rem")
                && is_length("0")
                && is_length("72ch")
                && !is_length("wide")
                && !is_length("-1px")
        );
        assert!(
            is_font_stack("\"Iowan Old Style\", Georgia, serif") && !is_font_stack("x; color: red")
        );
        for broken in ["serif /*", "Georgia, url(x", "serif)", "\"Open", "0 1px \"x"] {
            assert!(!is_font_stack(broken) && !is_shadow(broken), "{broken}");
        }
        assert!(is_shadow("0 1px 2px rgba(0, 0, 0, 0.1)"));
        assert!(
            is_link("/collections/")
                && is_link("https://x.test/")
                && !is_link("//evil.test")
                && !is_link("javascript:alert(1)")
                && !is_link("/\\evil.test")
        );
    }
}
