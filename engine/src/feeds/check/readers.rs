//! The readers of each feed syntax (CSV with a header row, Google's RSS XML, TikTok's
//! JSON): each turns the file into records, with their lines where the syntax has them,
//! and hands them to the channel's rules; syntax problems are reported as they are met.

use super::rules::{Record, Rules};
use crate::diagnostics::Severity;
use crate::feeds::google::NAMESPACE;
use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

pub(super) fn read_csv<R: Read>(input: R, rules: &mut Rules) {
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

pub(super) fn read_xml<R: BufRead>(input: R, rules: &mut Rules) -> io::Result<()> {
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
                    let has_namespace = e
                        .attributes()
                        .flatten()
                        .any(|a| a.key.as_ref() == "xmlns:g" && a.value.as_ref() == NAMESPACE);
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
                            format!("`rss` does not declare `xmlns:g=\"{}\"`", NAMESPACE),
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

pub(super) fn read_json<R: Read>(input: R, rules: &mut Rules) -> io::Result<()> {
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
