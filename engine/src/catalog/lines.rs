//! The lines of `products.jsonl`: their spans, and which of them an earlier load of the
//! file already had (compared as whole blocks of bytes, so an edit costs one pass).

/// How many leading positions of `len` are equal, given `same(i, n)`: whether the `n`
/// positions from `i` are. Compares blocks (one `memcmp` each), then narrows down.
fn common_len(len: usize, same: impl Fn(usize, usize) -> bool) -> usize {
    let mut at = 0;
    let mut step = 4096;
    while step > 0 {
        while at + step <= len && same(at, step) {
            at += step;
        }
        step /= 2;
    }
    at
}

/// Which lines of a new `products.jsonl` the last load had, with their hashes: a line
/// inside the common prefix of the two files has the same span in both, one inside the
/// common suffix the same distance from the end.
pub(super) struct Unchanged<'a> {
    /// The old file's lines: start, end (after the `\n`), blake3.
    old_lines: &'a [(usize, usize, [u8; 32])],
    prefix: usize,
    /// Where the common suffix starts in the new file.
    suffix_from: usize,
    /// Old offset minus new offset, within the suffix.
    shift: isize,
}

impl<'a> Unchanged<'a> {
    pub(super) fn new(old: &[u8], old_lines: &'a [(usize, usize, [u8; 32])], new: &[u8]) -> Self {
        let prefix = common_len(old.len().min(new.len()), |i, n| old[i..i + n] == new[i..i + n]);
        // The suffix may not overlap the prefix in either file.
        let room = old.len().min(new.len()) - prefix;
        let (o, w) = (old.len(), new.len());
        let suffix = common_len(room, |i, n| old[o - i - n..o - i] == new[w - i - n..w - i]);
        Self {
            old_lines,
            prefix,
            suffix_from: new.len() - suffix,
            shift: old.len().cast_signed() - new.len().cast_signed(),
        }
    }

    /// The index among the old file's lines and the hash of the new file's line
    /// `start..end`, when the old file had a line with the same bytes at the matching span.
    pub(super) fn find(&self, start: usize, end: usize) -> Option<(usize, [u8; 32])> {
        let (old_start, old_end) = if end <= self.prefix {
            (start, end)
        } else if start >= self.suffix_from {
            (start.checked_add_signed(self.shift)?, end.checked_add_signed(self.shift)?)
        } else {
            return None;
        };
        let at = self.old_lines.binary_search_by_key(&old_start, |(s, ..)| *s).ok()?;
        let (_, end, hash) = self.old_lines[at];
        (end == old_end).then_some((at, hash))
    }
}

/// The non-blank lines of `bytes` as (number from 1, start, end with the `\n`); blank
/// lines are skipped but counted, and a last line without `\n` counts too.
pub(super) fn line_spans(bytes: &[u8], expected: usize) -> Vec<(usize, usize, usize)> {
    let mut spans = Vec::with_capacity(expected);
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).map(|i| i + 1);
    let last = (!bytes.is_empty() && !bytes.ends_with(b"\n")).then_some(bytes.len());
    for (k, end) in ends.chain(last).enumerate() {
        if bytes[start..end].iter().any(|b| !b.is_ascii_whitespace()) {
            spans.push((k + 1, start, end));
        }
        start = end;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines of a file as `load_products` records them: start, end, blake3.
    fn lines_of(file: &[u8]) -> Vec<(usize, usize, [u8; 32])> {
        let mut out = Vec::new();
        let mut start = 0;
        for line in file.split_inclusive(|b| *b == b'\n') {
            out.push((start, start + line.len(), *blake3::hash(line).as_bytes()));
            start += line.len();
        }
        out
    }

    /// How many of `new`'s lines are known, checking that every hash given is right.
    fn known(old: &[u8], new: &[u8]) -> usize {
        let old_lines = lines_of(old);
        let unchanged = Unchanged::new(old, &old_lines, new);
        let mut count = 0;
        for (start, end, hash) in lines_of(new) {
            if let Some((_, h)) = unchanged.find(start, end) {
                assert_eq!(
                    h,
                    hash,
                    "wrong hash for {:?}",
                    String::from_utf8_lossy(&new[start..end])
                );
                count += 1;
            }
        }
        count
    }

    #[test]
    fn lines_are_numbered_with_blank_ones_counted() {
        assert_eq!(line_spans(b"", 0), vec![]);
        assert_eq!(line_spans(b"a\n", 0), vec![(1, 0, 2)]);
        assert_eq!(line_spans(b"a\n\n  \nb", 0), vec![(1, 0, 2), (4, 6, 7)], "no final newline");
        assert_eq!(line_spans(b"\na\r\n \t\n", 0), vec![(2, 1, 4)]);
    }

    #[test]
    fn unchanged_lines_are_found_around_an_edit() {
        let old = b"a1\nb22\nc333\nd4\n";
        assert_eq!(known(old, old), 4);
        assert_eq!(known(old, b"a1\nb23\nc333\nd4\n"), 3, "one line edited");
        assert_eq!(known(old, b"a1\nb22\nX\nc333\nd4\n"), 4, "one line inserted");
        assert_eq!(known(old, b"a1\nc333\nd4\n"), 3, "one line deleted");
        assert_eq!(known(old, b"a1\nb22\nc333\nd4"), 3, "last newline dropped");
        assert_eq!(known(old, b"a1\nb22\nc3"), 2, "cut in a line");
        assert_eq!(known(b"", old), 0);
        assert_eq!(known(old, b""), 0);
    }

    proptest! {
        /// Whatever the edit (bytes cut out of the old file and others put in their
        /// place), a line is never given another line's hash.
        #[test]
        fn unchanged_never_gives_a_wrong_hash(
            old in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b'\n']), 0..60),
            at in 0usize..60,
            cut in 0usize..10,
            put in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b'\n']), 0..10),
        ) {
            let at = at.min(old.len());
            let cut = cut.min(old.len() - at);
            let mut new = old[..at].to_vec();
            new.extend(&put);
            new.extend(&old[at + cut..]);
            known(&old, &new);
        }
    }
}
