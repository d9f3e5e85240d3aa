//! `pages/*.md`: Markdown pages with TOML front matter; drafts are checked, not published.

use super::Page;
use super::load::{describe_serde_message, handle_message, plain, read_small};
use super::raw::RawFrontMatter;
use super::validate::is_handle;
use crate::diagnostics::Diagnostics;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(super) fn load_pages(dir: &Path, diags: &mut Diagnostics) -> Vec<Page> {
    let pages_dir = dir.join("pages");
    let Ok(entries) = std::fs::read_dir(&pages_dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let mut pages: Vec<Page> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for path in files {
        let name =
            format!("pages/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let Some(text) = read_small(dir, &name, true, diags) else { continue };
        let Some(page) = parse_page(&path, &name, &text, diags) else { continue };
        if let Some(first) = seen.get(&page.handle) {
            diags.error(
                "duplicate-handle",
                &name,
                Some(2),
                Some("handle".into()),
                format!("`{}` is already used by `{first}`", page.handle),
            );
            continue;
        }
        seen.insert(page.handle.clone(), name.clone());
        if !page.draft {
            pages.push(page.page);
        }
    }
    pages.sort_by(|a, b| a.handle.cmp(&b.handle));
    pages
}

struct ParsedPage {
    handle: String,
    draft: bool,
    page: Page,
}

fn parse_page(path: &Path, name: &str, text: &str, diags: &mut Diagnostics) -> Option<ParsedPage> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("+++\n").or_else(|| text.strip_prefix("+++\r\n")) else {
        diags.error(
            "front-matter",
            name,
            Some(1),
            None,
            "a page starts with TOML front matter between `+++` lines",
        );
        return None;
    };
    let Some(end) = rest.find("\n+++") else {
        diags.error(
            "front-matter",
            name,
            Some(1),
            None,
            "the front matter has no closing `+++` line",
        );
        return None;
    };
    let (front, body) = (&rest[..=end], &rest[end + 4..]);
    let body = body.trim_start_matches(['\r', '\n']);
    let meta: RawFrontMatter = match toml::from_str(front) {
        Ok(m) => m,
        Err(e) => {
            let line = e.span().map(|s| super::json_pos::line_col(front, s.start).0 + 1);
            let message = e.message().to_owned();
            let message = describe_serde_message(&message);
            diags.error("front-matter", name, line, None, message);
            return None;
        }
    };
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let handle = meta.handle.unwrap_or(stem);
    if !is_handle(&handle) {
        diags.error("handle", name, Some(2), Some("handle".into()), handle_message(&handle));
        return None;
    }
    let title = plain(meta.title, name, Some(2), "title", diags);
    Some(ParsedPage {
        handle: handle.clone(),
        draft: meta.draft,
        page: Page {
            handle,
            title,
            body: body.to_owned(),
            seo_description: meta.seo_description,
            footer: meta.footer,
            order: meta.order,
            file: name.to_owned(),
        },
    })
}
