//! Template sources and their compilation, with what a shop's own templates may not do:
//! read the environment (`get_env`), build unbounded ranges, or render unbounded pages.
//!
//! A catalog directory's `templates/` is untrusted input (the API builds directories it did
//! not write, `aurelio build` runs on downloaded ones): its templates get the same Tera,
//! minus the functions that leak or exhaust the machine.

use std::collections::HashMap;
use std::path::Path;

/// Most items `range` makes: a template loop over `range(end=1e9)` would otherwise spin
/// (and allocate) for as long as it likes. Listings paginate at 24; 10,000 is far beyond
/// any page's need.
pub const MAX_RANGE: usize = 10_000;
/// Largest rendered page. The demo's largest page is about 40 KB and a product page with
/// the longest description allowed stays far below; a template that loops its output
/// out of bounds stops here, with a diagnostic, instead of filling memory.
pub const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// The built-in templates, compiled into the binary.
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../templates/base.html")),
    ("macros.html", include_str!("../../../templates/macros.html")),
    ("index.html", include_str!("../../../templates/index.html")),
    ("product.html", include_str!("../../../templates/product.html")),
    ("collection.html", include_str!("../../../templates/collection.html")),
    ("collections.html", include_str!("../../../templates/collections.html")),
    ("category.html", include_str!("../../../templates/category.html")),
    ("page.html", include_str!("../../../templates/page.html")),
    ("cart.html", include_str!("../../../templates/cart.html")),
    ("search.html", include_str!("../../../templates/search.html")),
    ("404.html", include_str!("../../../templates/404.html")),
];

/// The template sources of a build: the built-ins, replaced by same-named `.html` files of
/// `overrides` (a shop's `templates/` folder). Sorted by name.
pub fn template_sources(overrides: Option<&Path>) -> Result<Vec<(String, String)>, String> {
    let mut sources: HashMap<String, String> =
        BUILTIN_TEMPLATES.iter().map(|(n, s)| ((*n).to_owned(), (*s).to_owned())).collect();
    if let Some(dir) = overrides.filter(|d| d.is_dir()) {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "html") {
                let name = entry.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                check_shape(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
                sources.insert(name, text);
            }
        }
    }
    let mut sorted: Vec<(String, String)> = sources.into_iter().collect();
    sorted.sort();
    Ok(sorted)
}

/// Compiles template sources once for a build.
pub fn compile_sources(sources: &[(String, String)]) -> Result<tera::Tera, String> {
    let mut tera = tera::Tera::default();
    tera.set_escape_fn(escape_html);
    tera.register_function("get_env", no_env);
    tera.register_function("range", bounded_range);
    tera.add_raw_templates(sources.to_vec()).map_err(|e| error_chain(&e))?;
    super::recursion::check(&tera)?;
    Ok(tera)
}

/// Compiles the built-in templates plus the `.html` files of `overrides`.
pub fn compile_templates(overrides: Option<&Path>) -> Result<tera::Tera, String> {
    compile_sources(&template_sources(overrides)?)
}

/// HTML escaping for text and attribute values: `&`, `<`, `>`, `"` and `'` only (Tera's
/// default also escapes `/`, which bloats every URL).
pub fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 8);
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Tera's error with all its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Largest template file of a catalog's `templates/` (the built-in ones are below 10 KB).
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// Deepest nesting of a template's block tags (`if`, `for`, `block`, `macro`, `filter`)
/// plus parentheses and brackets inside its tags: Tera's parser and renderer recurse once
/// per level, and thousands of levels overflow the stack.
pub const MAX_TEMPLATE_NESTING: usize = 64;

/// Checks a template's size and nesting (`MAX_TEMPLATE_BYTES`, `MAX_TEMPLATE_NESTING`)
/// before Tera parses it.
fn check_shape(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "the template is {} bytes, the limit is {MAX_TEMPLATE_BYTES}",
            text.len()
        ));
    }
    let bytes = text.as_bytes();
    let (mut blocks, mut brackets, mut i) = (0usize, 0usize, 0usize);
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let too_deep = |at: usize| {
        format!(
            "blocks, parentheses and brackets nest more than {MAX_TEMPLATE_NESTING} levels deep \
             at line {} (the nesting limit is {MAX_TEMPLATE_NESTING})",
            line_of(at)
        )
    };
    while i + 1 < bytes.len() {
        let open = &bytes[i..i + 2];
        let close: &[u8] = match open {
            b"{{" => b"}}",
            b"{%" => b"%}",
            b"{#" => b"#}",
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + 2;
        let end = text[start..]
            .find(std::str::from_utf8(close).unwrap_or("}}"))
            .map_or(bytes.len(), |e| start + e);
        let tag = &text[start..end];
        i = end + 2;
        if open == b"{#" {
            continue;
        }
        let word = tag.trim_start_matches('-').split_whitespace().next().unwrap_or_default();
        if open == b"{%" {
            if word == "raw" {
                // Raw content is text up to `endraw`, whatever it holds.
                let after = text[i.min(text.len())..].find("endraw").map_or(bytes.len(), |e| i + e);
                i = after;
                continue;
            }
            if ["if", "for", "block", "macro", "filter"].contains(&word) {
                blocks += 1;
            } else if word.starts_with("end") {
                blocks = blocks.saturating_sub(1);
            }
        }
        let mut quote = None;
        for c in tag.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'' | '`') => quote = Some(c),
                (None, '(' | '[') => brackets += 1,
                (None, ')' | ']') => brackets = brackets.saturating_sub(1),
                _ => {}
            }
            if blocks + brackets > MAX_TEMPLATE_NESTING {
                return Err(too_deep(start));
            }
        }
        brackets = 0;
        if blocks > MAX_TEMPLATE_NESTING {
            return Err(too_deep(start));
        }
    }
    Ok(())
}

/// `range(end, start=0, step_by=1)` as Tera's, refusing more than `MAX_RANGE` items.
fn bounded_range(args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let number = |name: &str, default: Option<u64>| -> tera::Result<u64> {
        match args.get(name) {
            Some(v) => v.as_u64().ok_or_else(|| {
                tera::Error::msg(format!("`range` takes a whole number ≥ 0 as `{name}`, not `{v}`"))
            }),
            None => default.ok_or_else(|| tera::Error::msg("`range` needs an `end` argument")),
        }
    };
    let (start, end, step) =
        (number("start", Some(0))?, number("end", None)?, number("step_by", Some(1))?);
    if step == 0 {
        return Err(tera::Error::msg("`range` needs a `step_by` above 0"));
    }
    if start > end {
        return Err(tera::Error::msg("`range` was called with `start` above `end`"));
    }
    let count = (end - start).div_ceil(step);
    if count > MAX_RANGE as u64 {
        return Err(tera::Error::msg(format!(
            "`range` would make {count} items; the limit is {MAX_RANGE}"
        )));
    }
    Ok(tera::Value::Array((start..end).step_by(step as usize).map(tera::Value::from).collect()))
}

/// `get_env`, refused: a shop's templates never see the build machine's environment
/// (secret keys, cloud credentials).
fn no_env(_: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    Err(tera::Error::msg(
        "`get_env` is not available in templates: the environment (secret keys, credentials) \
         stays out of published pages",
    ))
}

/// A writer that refuses to grow past `MAX_PAGE_BYTES`.
struct Bounded {
    out: Vec<u8>,
    over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len().saturating_add(buf.len()) > MAX_PAGE_BYTES {
            self.over = true;
            return Err(std::io::Error::other("the page is too large"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `template`, stopping (with a message naming the limit) as soon as the page
/// grows past `MAX_PAGE_BYTES`.
pub(super) fn render_bounded(
    tera: &tera::Tera,
    template: &str,
    ctx: &tera::Context,
) -> Result<String, String> {
    let mut page = Bounded { out: Vec::with_capacity(16 * 1024), over: false };
    match tera.render_to(template, ctx, &mut page) {
        Ok(()) => String::from_utf8(page.out)
            .map_err(|_| format!("`{template}`: the page is not valid UTF-8")),
        Err(_) if page.over => Err(format!(
            "`{template}`: the page grew past {} MiB, the limit of a rendered page (does a \
             template loop without end?)",
            MAX_PAGE_BYTES / (1024 * 1024)
        )),
        Err(e) => Err(format!("`{template}`: {}", error_chain(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(template: &str, expected: Result<&str, &str>) {
        let sources = vec![("t.html".to_owned(), template.to_owned())];
        let tera = compile_sources(&sources).expect("compiles");
        let got = render_bounded(&tera, "t.html", &tera::Context::new());
        match (got, expected) {
            (Ok(html), Ok(want)) => assert_eq!(html, want),
            (Err(message), Err(want)) => assert!(message.contains(want), "{message}"),
            (got, want) => panic!("{template}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn templates_cannot_read_the_environment() {
        check("{{ get_env(name=\"PATH\") }}", Err("`get_env` is not available"));
        check("{{ get_env(name=\"PATH\", default=\"x\") }}", Err("`get_env` is not available"));
    }

    #[test]
    fn ranges_are_bounded() {
        check("{% for i in range(end=3) %}{{ i }}{% endfor %}", Ok("012"));
        check("{% for i in range(start=1, end=8, step_by=3) %}{{ i }}{% endfor %}", Ok("147"));
        check("{{ range(end=10000) | length }}", Ok("10000"));
        check("{% for i in range(end=1000000000) %}{% endfor %}", Err("the limit is 10000"));
        check("{{ range(end=3, step_by=0) }}", Err("`step_by` above 0"));
        check("{{ range(end=-3) }}", Err("whole number"));
    }

    /// A template nested `depth` levels in blocks and in brackets.
    fn nested(depth: usize) -> [String; 2] {
        let ifs = format!("{}x{}", "{% if true %}".repeat(depth), "{% endif %}".repeat(depth));
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(depth), ")".repeat(depth));
        [ifs, parens]
    }

    #[test]
    fn deep_or_large_templates_are_refused_before_parsing() {
        for text in nested(MAX_TEMPLATE_NESTING + 1) {
            let err = check_shape(&text).err().unwrap_or_default();
            assert!(err.contains("nesting limit is 64") && err.contains("line 1"), "{err}");
        }
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(check_shape(&big).is_err_and(|e| e.contains("limit is 262144")));
        // Brackets in text, strings, comments and raw sections are not nesting.
        let text = format!(
            "{}{{{{ \"{}\" }}}}{{# {} #}}{{% raw %}}{}{{% endraw %}}",
            "(".repeat(99),
            "(".repeat(99),
            "(".repeat(99),
            "{% if x %}".repeat(99)
        );
        assert_eq!(check_shape(&text), Ok(()));
        for (_, source) in BUILTIN_TEMPLATES {
            assert_eq!(check_shape(source), Ok(()));
        }
    }

    /// The deepest templates allowed compile and render on a 2 MiB stack (rayon's).
    #[test]
    fn deepest_allowed_templates_are_safe_on_a_small_stack() {
        let worker = std::thread::Builder::new().stack_size(2 << 20).spawn(|| {
            for text in nested(MAX_TEMPLATE_NESTING) {
                assert_eq!(check_shape(&text), Ok(()));
                let tera = compile_sources(&[("t.html".to_owned(), text)]).expect("compiles");
                let html = render_bounded(&tera, "t.html", &tera::Context::new());
                assert!(html.is_ok_and(|h| h.contains(['x', '1'])));
            }
        });
        worker.expect("spawn").join().expect("no overflow");
    }

    #[test]
    fn pages_are_bounded() {
        let loop_out = "{% for i in range(end=10000) %}{% for j in range(end=10000) %}\
                        xxxxxxxxxxxxxxxx{% endfor %}{% endfor %}";
        check(loop_out, Err("the limit of a rendered page"));
    }
}
