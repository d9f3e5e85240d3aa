//! Finds the line and column of a JSON pointer in JSON source text, so that problems found
//! after parsing can still name the place to fix.

/// Returns the 1-based `(line, column)` where the value at `pointer` (RFC 6901, e.g.
/// `/0/children/1/handle`) starts in `text`, or `None` if the text does not contain it.
pub fn locate(text: &str, pointer: &str) -> Option<(usize, usize)> {
    locate_offset(text, pointer).map(|offset| line_col(text, offset))
}

/// The byte offset where the value at `pointer` starts in `text`.
pub fn locate_offset(text: &str, pointer: &str) -> Option<usize> {
    let target: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .strip_prefix('/')?
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut scanner = Scanner { bytes: text.as_bytes(), pos: 0 };
    scanner.skip_ws();
    for token in &target {
        match scanner.peek()? {
            b'{' => {
                scanner.pos += 1;
                loop {
                    scanner.skip_ws();
                    if scanner.peek()? == b'}' {
                        return None;
                    }
                    let key = scanner.string()?;
                    scanner.skip_ws();
                    scanner.expect(b':')?;
                    scanner.skip_ws();
                    if key == *token {
                        break;
                    }
                    scanner.skip_value()?;
                    scanner.skip_ws();
                    if scanner.peek()? == b',' {
                        scanner.pos += 1;
                    }
                }
            }
            b'[' => {
                let index: usize = token.parse().ok()?;
                scanner.pos += 1;
                for _ in 0..index {
                    scanner.skip_ws();
                    if scanner.peek()? == b']' {
                        return None;
                    }
                    scanner.skip_value()?;
                    scanner.skip_ws();
                    scanner.expect(b',')?;
                }
                scanner.skip_ws();
                if scanner.peek()? == b']' {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(scanner.pos)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// Reads a string and returns it unescaped (enough for keys: `\"`, `\\`, `\/`, `\uXXXX`).
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'u' => {
                            let hex = std::str::from_utf8(self.bytes.get(self.pos..self.pos + 4)?)
                                .ok()?;
                            self.pos += 4;
                            let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)
                                .unwrap_or('\u{fffd}');
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.pos += 1;
                loop {
                    self.skip_ws();
                    if self.peek()? == close {
                        self.pos += 1;
                        return Some(());
                    }
                    if open == b'{' {
                        self.string()?;
                        self.skip_ws();
                        self.expect(b':')?;
                        self.skip_ws();
                    }
                    self.skip_value()?;
                    self.skip_ws();
                    if self.peek()? == b',' {
                        self.pos += 1;
                    }
                }
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(b) if !matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }
}

/// Where a position inside a JSON string's *value* is in the JSON text: `quote` is the byte
/// offset of the string's opening quote, `line` and `column` (1-based) count in the decoded
/// value. Escapes such as `\n` are decoded while walking, so the second line of a string
/// value is found on the same source line, after its `\n`.
pub fn position_in_string(
    text: &str,
    quote: usize,
    line: usize,
    column: usize,
) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(quote) != Some(&b'"') {
        return None;
    }
    let (mut at_line, mut at_col) = (1, 1);
    let mut i = quote + 1;
    while i < bytes.len() {
        if (at_line, at_col) >= (line, column) {
            return Some(line_col(text, i));
        }
        let (decoded, width) = match bytes[i] {
            b'"' => break,
            b'\\' => match bytes.get(i + 1) {
                Some(b'n') => ('\n', 2),
                Some(b'u') => ('x', 6),
                Some(_) => ('x', 2),
                None => break,
            },
            _ => {
                let ch = text[i..].chars().next()?;
                (ch, ch.len_utf8())
            }
        };
        if decoded == '\n' {
            at_line += 1;
            at_col = 1;
        } else {
            at_col += 1;
        }
        i += width;
    }
    Some(line_col(text, i.min(text.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, pointer: &str, expected: Option<(usize, usize)>) {
        assert_eq!(locate(text, pointer), expected);
    }

    #[test]
    fn finds_nested_values() {
        let text = "[\n  {\"handle\": \"a\",\n   \"children\": [\n     {\"handle\": \"b\"},\n     {\"handle\": \"c d\"}]}\n]";
        check(text, "", Some((1, 1)));
        check(text, "/0/handle", Some((2, 14)));
        check(text, "/0/children/1/handle", Some((5, 17)));
        check(text, "/0/children/2", None);
        check(text, "/1", None);
    }

    #[test]
    fn finds_positions_inside_string_values() {
        let text = "{\n  \"css\": \".a { color: red; }\\n.b[ { x: y }\"\n}";
        let quote = locate_offset(text, "/css").expect("found");
        assert_eq!(position_in_string(text, quote, 1, 1), Some((2, 11)));
        assert_eq!(position_in_string(text, quote, 2, 3), Some((2, 33)));
    }

    #[test]
    fn handles_escapes_and_strings_with_brackets() {
        let text = r#"{"a]": "}[", "b/c": [1, {"x": "\"q\""}], "ü": true}"#;
        check(text, "/b~1c/1/x", Some((1, 31)));
        check(text, "/ü", Some((1, 47)));
    }
}
