//! A short excerpt of a source line around a column, with a caret under the column, for
//! syntax errors in long lines (a `products.jsonl` line can be thousands of characters).
//!
//! The excerpt is bounded in width, cut at character boundaries, and shows no control or
//! bidirectional-formatting characters (they would move the caret or the terminal).

use crate::diagnostics::Diagnostics;

/// Display columns shown before and after the column.
const BEFORE: usize = 36;
const AFTER: usize = 28;

/// The 1-based character column of `byte_offset` in `line`, and a two-line excerpt (the
/// text, then a caret under the column). `byte_offset` is clamped into the line.
pub(crate) fn excerpt(line: &str, byte_offset: usize) -> (usize, String) {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut at = byte_offset.min(line.len());
    while !line.is_char_boundary(at) {
        at -= 1;
    }
    let column = line[..at].chars().count() + 1;
    let (before, before_width, cut_left) = take(line[..at].chars().rev(), BEFORE);
    let (after, _, cut_right) = take(line[at..].chars(), AFTER);
    let mut text = String::with_capacity(4 * (BEFORE + AFTER));
    if cut_left {
        text.push('…');
    }
    text.extend(before.iter().rev());
    text.extend(after.iter());
    if cut_right {
        text.push('…');
    }
    let pad = before_width + usize::from(cut_left);
    (column, format!("{}\n{}^", text.trim_end(), " ".repeat(pad)))
}

/// Characters as shown, while their width stays within `limit`; whether some were left.
fn take(chars: impl Iterator<Item = char>, limit: usize) -> (Vec<char>, usize, bool) {
    let mut out = Vec::new();
    let mut width = 0;
    for c in chars {
        let shown = visible(c);
        let w = display_width(shown);
        if width + w > limit {
            return (out, width, true);
        }
        width += w;
        out.push(shown);
    }
    (out, width, false)
}

/// The character printed for `c`: tabs as spaces; control, bidirectional-formatting,
/// zero-width and combining characters as U+FFFD.
fn visible(c: char) -> char {
    let invisible = c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
        || is_combining(c);
    match c {
        '\t' => ' ',
        _ if invisible => '\u{fffd}',
        _ => c,
    }
}

/// Combining marks: at an excerpt's edge they would join the ellipsis.
fn is_combining(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}'
        | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// Terminal columns of a (visible) character: 2 for East Asian wide ones and emoji.
fn display_width(c: char) -> usize {
    let wide = matches!(c, '\u{1100}'..='\u{115f}' | '\u{2e80}'..='\u{303e}' | '\u{3041}'..='\u{33ff}'
        | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{a000}'..='\u{a4cf}'
        | '\u{ac00}'..='\u{d7a3}' | '\u{f900}'..='\u{faff}' | '\u{fe30}'..='\u{fe4f}'
        | '\u{ff00}'..='\u{ff60}' | '\u{ffe0}'..='\u{ffe6}' | '\u{1f300}'..='\u{1f64f}'
        | '\u{1f900}'..='\u{1f9ff}' | '\u{20000}'..='\u{3fffd}');
    if wide { 2 } else { 1 }
}

/// Where a serde_json error is in `text`: the 1-based character column on its `line`, and
/// the excerpt around it. serde_json counts columns in bytes, from 1.
pub(crate) fn locate_error(text: &str, line: usize, byte_column: usize) -> (usize, String) {
    let source = text.split('\n').nth(line.saturating_sub(1)).unwrap_or_default();
    excerpt(source, byte_column.saturating_sub(1))
}

/// A hint for the most common syntax error in a hand-edited line: a `"` inside a text
/// ends the string early, and the parser then finds a letter where a `,` belongs.
pub(crate) fn quote_hint(
    text: &str,
    line: usize,
    byte_column: usize,
    message: &str,
) -> Option<&'static str> {
    let source = text.split('\n').nth(line.saturating_sub(1))?;
    let expects_separator = message.starts_with("expected `,` or `}`")
        || message.starts_with("expected `,` or `]`")
        || message.starts_with("expected `:`");
    let before = source.get(..byte_column.saturating_sub(1))?.trim_end();
    (expects_separator && before.ends_with('"'))
        .then_some(" (a `\"` inside a text must be written `\\\"`)")
}

/// Reports a serde error in `text` (whose first line is line `first_line` of `file`) as a
/// syntax error with its field, line, column and an excerpt around the column.
pub(super) fn report_serde_error(
    d: &mut Diagnostics,
    file: &str,
    text: &str,
    first_line: usize,
    err: &serde_path_to_error::Error<serde_json::Error>,
) {
    let (_, field, mut message) = super::load::serde_problem(err);
    let inner = err.inner();
    if inner.line() == 0 {
        d.error("syntax", file, Some(first_line), field, message);
        return;
    }
    if let Some(hint) = quote_hint(text, inner.line(), inner.column(), &message) {
        message.push_str(hint);
    }
    // An error at the very end (EOF after a trailing newline) is shown at the end of the
    // last line of text, not on the empty line after it.
    let trimmed = text.trim_end_matches(['\n', '\r']);
    let lines = trimmed.split('\n').count();
    let (line, byte_column) = if inner.line() > lines {
        (lines, trimmed.rsplit('\n').next().map_or(0, str::len) + 1)
    } else {
        (inner.line(), inner.column())
    };
    let (column, excerpt) = locate_error(trimmed, line, byte_column);
    d.syntax(file, (first_line + line - 1, column), field, &message, excerpt);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_shown_whole_with_the_caret_under_the_column() {
        let (column, text) = excerpt(r#"{"a": "x" "b"}"#, 10);
        assert_eq!(column, 11);
        assert_eq!(text, "{\"a\": \"x\" \"b\"}\n          ^");
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}X{}", "a".repeat(1000), "b".repeat(1000));
        let (column, text) = excerpt(&line, 1000);
        assert_eq!(column, 1001);
        let (top, caret) = text.split_once('\n').expect("two lines");
        assert!(top.starts_with('…') && top.ends_with('…'), "{top}");
        assert!(top.chars().count() <= BEFORE + AFTER + 2, "{top}");
        let caret_at = caret.chars().count() - 1;
        assert_eq!(top.chars().nth(caret_at), Some('X'), "{text}");
    }

    #[test]
    fn multibyte_and_control_characters_are_safe() {
        let line = "é\u{1b}[31m\u{202e}\t漢字x";
        // Every offset, including ones inside `é` and past the end, gives a clean excerpt.
        for offset in 0..=line.len() + 3 {
            let (_, text) = excerpt(line, offset);
            assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "{text:?}");
            assert!(!text.contains('\t'), "{text:?}");
        }
        let x = line.find('x').expect("x");
        let (column, text) = excerpt(line, x);
        assert_eq!(column, line[..x].chars().count() + 1);
        let (top, caret) = text.split_once('\n').expect("two lines");
        // Wide characters take two columns: the caret is under the `x`.
        let pad = caret.len() - 1;
        let mut width = 0;
        let mut under = None;
        for c in top.chars() {
            if width == pad {
                under = Some(c);
                break;
            }
            width += display_width(c);
        }
        assert_eq!(under, Some('x'), "{text}");
    }

    #[test]
    fn an_unescaped_quote_gets_a_hint_and_the_caret_after_it() {
        let line = r#"{"title": "Donegal "Tweed" Scarf"}"#;
        let err = serde_json::from_str::<serde_json::Value>(line).expect_err("broken");
        let message = err.to_string();
        assert!(quote_hint(line, err.line(), err.column(), &message).is_some(), "{message}");
        let (column, text) = locate_error(line, err.line(), err.column());
        assert_eq!(line.chars().nth(column - 1), Some('T'), "{text}");
    }
}
