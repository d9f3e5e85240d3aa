//! `categories.json`: the category tree, flattened parents first, each with its path.

use super::follow_on::Gaps;
use super::load::{CATEGORIES, handle_message, parse_json, plain, read_small};
use super::raw::RawCategory;
use super::validate::is_handle;
use super::{Category, locate};
use crate::diagnostics::Diagnostics;
use std::collections::HashMap;
use std::path::Path;

/// Loads `categories.json` (optional: no file, no categories); notes in `gaps` when the
/// file exists but cannot be read, so that references to categories are not reported.
pub(super) fn load_categories(
    dir: &Path,
    gaps: &mut Gaps,
    diags: &mut Diagnostics,
) -> Vec<Category> {
    let errors_before = diags.error_count();
    let text = read_small(dir, CATEGORIES, false, diags);
    let raw: Option<Vec<RawCategory>> =
        text.as_deref().and_then(|text| parse_json(text, CATEGORIES, diags));
    let (Some(text), Some(raw)) = (text, raw) else {
        if diags.error_count() > errors_before {
            gaps.categories_unreadable();
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    fn walk(
        nodes: Vec<RawCategory>,
        parent: Option<usize>,
        pointer: &str,
        text: &str,
        out: &mut Vec<Category>,
        seen: &mut HashMap<String, String>,
        diags: &mut Diagnostics,
    ) {
        for (i, node) in nodes.into_iter().enumerate() {
            let here = format!("{pointer}/{i}");
            let line = locate(text, &format!("{here}/handle")).map(|(l, _)| l);
            let field = format!("{}.handle", pointer_to_path(&here));
            if !is_handle(&node.handle) {
                diags.error("handle", CATEGORIES, line, Some(field), handle_message(&node.handle));
                continue;
            }
            if let Some(first) = seen.get(&node.handle) {
                diags.error(
                    "duplicate-handle",
                    CATEGORIES,
                    line,
                    Some(field),
                    format!("category `{}` is already defined at `{first}`", node.handle),
                );
                continue;
            }
            seen.insert(node.handle.clone(), pointer_to_path(&here));
            let path = match parent {
                Some(p) => format!("{}/{}", out[p].path, node.handle),
                None => node.handle.clone(),
            };
            let title = plain(
                node.title,
                CATEGORIES,
                line,
                &format!("{}.title", pointer_to_path(&here)),
                diags,
            );
            out.push(Category {
                handle: node.handle,
                title,
                description: node.description,
                parent,
                path,
            });
            let index = out.len() - 1;
            walk(node.children, Some(index), &format!("{here}/children"), text, out, seen, diags);
        }
    }
    walk(raw, None, "", &text, &mut out, &mut seen, diags);
    out
}

/// `/0/children/1` → `[0].children[1]`, the field style used in messages.
pub(super) fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        if token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_pointers_to_paths() {
        assert_eq!(pointer_to_path("/0/children/1"), "[0].children[1]");
    }
}
