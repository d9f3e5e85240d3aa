//! End-to-end tests of theme files through the real `aurelio` binary: `theme list` and
//! `theme validate`, each mistake reported with its JSON pointer, line and column (computed
//! from the fixture's text) and a hint, and ~330 generated inputs on which validation never
//! crashes. Builds with themes are in `theme_build.rs`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------
// theme list
// ---------------------------------------------------------------------------------------

#[test]
fn theme_list_prints_every_preset_in_the_themes_directory() {
    let presets = preset_names();
    assert!(presets.len() >= 5, "themes/ should hold the five presets, found {presets:?}");
    let run = aurelio(&["theme", "list"]).success();
    let listed: BTreeSet<String> =
        run.stdout.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    let expected: BTreeSet<String> = presets.iter().cloned().collect();
    assert_eq!(listed, expected, "`theme list` vs. themes/*.json\n{}", run.stdout);
    for name in &presets {
        let display = read_json(&preset_file(name))["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_owned();
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .expect("listed");
        assert!(line.contains(&display), "the line of `{name}` shows its name `{display}`: {line}");
    }
}

// ---------------------------------------------------------------------------------------
// theme validate
// ---------------------------------------------------------------------------------------

#[test]
fn every_preset_file_validates_without_errors_or_warnings() {
    for name in preset_names() {
        let run = validate(&preset_file(name.as_str())).success();
        assert!(
            diagnostic_lines(&run.stderr).is_empty(),
            "preset `{name}` should have no errors or warnings:\n{}",
            run.stderr
        );
        assert!(run.stdout.contains("is a valid theme"), "{name}: {}", run.stdout);
    }
}

/// One expected problem: the file, its JSON pointer (None for syntax errors), where it
/// is (a substring of the fixture that occurs once, and a byte offset into it) and text
/// the message must contain.
struct Expected<'a> {
    pointer: Option<&'a str>,
    anchor: &'a str,
    skip: usize,
    hints: Vec<String>,
}

impl<'a> Expected<'a> {
    fn at(pointer: &'a str, anchor: &'a str, skip: usize, hints: &[&str]) -> Self {
        Self {
            pointer: Some(pointer),
            anchor,
            skip,
            hints: hints.iter().map(|h| (*h).to_owned()).collect(),
        }
    }
}

/// Checks that `stderr` reports `e` for `file` with the pointer, `line L:C` computed from
/// the fixture text and every hint, all on one diagnostic line.
fn check_reported(problems: &mut Problems, file: &str, text: &str, stderr: &str, e: &Expected<'_>) {
    let (line, column) = position_of(text, e.anchor, e.skip);
    let mut expected = format!("`{file}` line {line}:{column}");
    if let Some(pointer) = e.pointer {
        expected.push_str(&format!(": `{pointer}`: "));
    }
    let found = diagnostic_lines(stderr).into_iter().find(|l| match e.pointer {
        Some(p) => l.contains(&format!("`{p}`: ")),
        None => l.contains(&format!("`{file}`")),
    });
    let Some(found) = found else {
        problems.push(format!("{file}: no diagnostic for {:?} in\n{stderr}", e.pointer));
        return;
    };
    problems.check(found.starts_with("error[") && found.contains(&expected), || {
        format!("{file}: expected an error with `{expected}`, got `{found}`")
    });
    for hint in &e.hints {
        problems.check(found.contains(hint.as_str()), || {
            format!("{file}: the message should contain `{hint}`: `{found}`")
        });
    }
}

#[track_caller]
fn check_invalid_file(name: &str, expected: &[Expected<'_>]) {
    let path = fixture(name);
    let text = read_text(&path);
    let run = validate(&path).failure();
    assert_eq!(run.code, Some(1), "{name}: exit code\n{}", run.stderr);
    let mut problems = Problems::default();
    for e in expected {
        check_reported(&mut problems, name, &text, &run.stderr, e);
    }
    let errors =
        diagnostic_lines(&run.stderr).into_iter().filter(|l| l.starts_with("error[")).count();
    problems.check(errors == expected.len(), || {
        format!("{name}: {errors} errors printed, expected {}:\n{}", expected.len(), run.stderr)
    });
    problems.assert_none(name);
}

#[test]
fn invalid_colour_is_reported_with_pointer_position_and_hint() {
    check_invalid_file(
        "bad-colour.json",
        &[Expected::at(
            "/settings/color/palette/1/color",
            "\"#ggg\"",
            0,
            &["`#ggg` is not a colour"],
        )],
    );
}

#[test]
fn unknown_key_is_reported_with_a_did_you_mean_suggestion() {
    // The position is that of the value under the unknown key, as for every pointer.
    check_invalid_file(
        "unknown-key.json",
        &[Expected::at(
            "/components/productCard/showVendr",
            "\"showVendr\": ",
            "\"showVendr\": ".len(),
            &["unknown key `showVendr`", "did you mean `showVendor`?"],
        )],
    );
}

#[test]
fn value_outside_an_enum_is_reported_with_the_closest_choice() {
    check_invalid_file(
        "bad-enum.json",
        &[Expected::at(
            "/components/button/radius",
            "\"pil\"",
            0,
            &["`pil` is not one of", "did you mean `pill`?"],
        )],
    );
}

#[test]
fn length_without_a_unit_is_reported_as_not_a_length() {
    check_invalid_file(
        "bad-length.json",
        &[Expected::at("/settings/typography/baseSize", "\"16\"", 0, &["`16` is not a length"])],
    );
}

#[test]
fn value_of_the_wrong_type_is_reported_at_its_pointer() {
    check_invalid_file(
        "wrong-type.json",
        &[Expected::at("/components/header/logoWidth", "\"120px\"", 0, &["`120px`", "wrong type"])],
    );
}

#[test]
fn full_palette_without_a_required_role_names_the_missing_role() {
    let text = read_text(&fixture("missing-role.json"));
    let doc: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let present: Vec<String> = palette(&doc).into_iter().map(|(s, _)| s).collect();
    // The required roles, as documented in docs/theme-format.md.
    let missing: Vec<&str> = ["background", "text", "primary", "accent", "sale", "border"]
        .into_iter()
        .filter(|r| !present.iter().any(|p| p == r))
        .collect();
    assert_eq!(missing.len(), 1, "the fixture leaves out exactly one required role");
    let hint = format!("the palette has no `{}` colour", missing[0]);
    check_invalid_file(
        "missing-role.json",
        &[Expected::at(
            "/settings/color/palette",
            "\"palette\": ",
            "\"palette\": ".len(),
            &[&hint],
        )],
    );
}

#[test]
fn unknown_font_family_slug_is_reported_with_a_suggestion() {
    check_invalid_file(
        "unknown-font.json",
        &[Expected::at(
            "/settings/typography/heading",
            "\"sytem\"",
            0,
            &["unknown font family `sytem`", "did you mean `system`?"],
        )],
    );
}

#[test]
fn invalid_json_syntax_is_reported_with_line_and_column() {
    // The trailing comma is only noticed at the `}` after it.
    check_invalid_file(
        "syntax.json",
        &[Expected { pointer: None, anchor: ", }", skip: 2, hints: vec!["invalid JSON".into()] }],
    );
}

#[test]
fn unknown_extends_preset_is_reported_with_a_suggestion() {
    check_invalid_file(
        "unknown-extends.json",
        &[Expected::at(
            "/extends",
            "\"bolder\"",
            0,
            &["unknown theme preset `bolder`", "did you mean `bold`?"],
        )],
    );
}

#[test]
fn broken_custom_css_is_reported_on_the_line_of_the_css_string() {
    // JSON strings cannot span lines: the CSS's second line (after the `\n` escape) is still
    // on the line of `"css"` in the file, and the error is at the second `.` of `..b`.
    check_invalid_file("broken-css.json", &[Expected::at("/css", "\\n..b", 3, &["custom CSS"])]);
}

#[test]
fn every_schema_problem_of_a_file_is_reported_at_once() {
    check_invalid_file(
        "four-problems.json",
        &[
            Expected::at("/settings/color/palette/1/color", "\"#ggg\"", 0, &["is not a colour"]),
            Expected::at("/settings/layout/contentSize", "\"wide\"", 0, &["is not a length"]),
            Expected::at("/components/button/radius", "\"pil\"", 0, &["did you mean `pill`?"]),
            Expected::at(
                "/components/productCard/showVendr",
                "\"showVendr\": ",
                "\"showVendr\": ".len(),
                &["did you mean `showVendor`?"],
            ),
        ],
    );
    let run = validate(&fixture("four-problems.json"));
    assert!(run.stderr.contains("4 error(s)"), "the summary counts 4 errors:\n{}", run.stderr);
}

#[test]
fn every_problem_of_the_merged_theme_is_reported_at_once() {
    check_invalid_file(
        "semantic-problems.json",
        &[
            Expected::at(
                "/settings/color/palette",
                "\"palette\": ",
                "\"palette\": ".len(),
                &["no `sale` colour"],
            ),
            Expected::at(
                "/settings/color/palette/2/slug",
                "\"text\", \"name\": \"Text again\"",
                0,
                &["`text` is used twice"],
            ),
            Expected::at("/settings/typography/body", "\"sytem\"", 0, &["did you mean `system`?"]),
        ],
    );
}

#[test]
fn values_that_would_break_the_stylesheet_are_rejected_by_validate() {
    // Font stacks and shadows are copied into custom properties; a value that opens a
    // comment, a string or a url, or closes a parenthesis, swallows or breaks the rest of
    // the generated stylesheet, so validation must catch it.
    check_invalid_file(
        "stylesheet-breaking-values.json",
        &[
            Expected::at(
                "/settings/typography/fontFamilies/0/fontFamily",
                "\"Georgia, url(x\"",
                0,
                &["is not a font stack"],
            ),
            Expected::at(
                "/settings/typography/fontFamilies/1/fontFamily",
                "\"Georgia, serif)\"",
                0,
                &["is not a font stack"],
            ),
            Expected::at(
                "/settings/shadow/presets/0/shadow",
                "\"0 1px 2px red /*\"",
                0,
                &["is not a box shadow"],
            ),
            Expected::at(
                "/settings/shadow/presets/1/shadow",
                "\"0 2px 4px \\\"x\"",
                0,
                &["is not a box shadow"],
            ),
        ],
    );
}

#[test]
fn shadow_opening_a_css_comment_does_not_silently_drop_the_rest_of_the_theme() {
    let file = fixture("comment-shadow.json");
    let raw = read_json(&file);
    let custom = raw["css"].as_str().expect("css");
    let selector = custom.split('{').next().expect("a rule").trim();
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let run = try_build_theme(&demo_store(), &out, Some(os(&file)));
    if run.success {
        // Accepted: then everything after the shadow must still be in the stylesheet.
        let (_, css) = stylesheet(&Site::new(&out));
        assert_eq!(
            custom_property(&css, "--button-radius").as_deref(),
            Some("999px"),
            "button radius lost"
        );
        assert!(css.contains(selector), "the theme's custom CSS `{selector}` was swallowed");
    } else {
        // Rejected: with the shadow's pointer, and the output left alone.
        assert!(run.stderr.contains("`/settings/shadow/presets/0/shadow`"), "{}", run.stderr);
        assert!(!out.exists(), "a failed build wrote output");
    }
}

// ---------------------------------------------------------------------------------------
// Robustness: theme validate never crashes
// ---------------------------------------------------------------------------------------

/// A small deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a generated input must do beyond not crashing.
#[derive(Debug, Clone)]
enum Outcome {
    /// Exit 0 or 1.
    Any,
    /// Exit 1.
    Invalid,
    /// Exit 1, blaming this pointer (or a place below it).
    InvalidAt(String),
}

/// Every JSON pointer of a document, root first.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                pointers(x, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                pointers(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn json_kind(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// ~330 inputs: truncations, byte flips, arbitrary bytes, deep nesting, huge strings and a
/// wrong type at every pointer of minimal.json.
fn robustness_inputs() -> Vec<(String, Vec<u8>, Outcome)> {
    let text = read_text(&preset_file("minimal"));
    let bytes = text.as_bytes();
    let minimal: Value = serde_json::from_str(&text).expect("minimal.json is JSON");
    let mut rng = Rng(0x05ee_da11_e110_7e57);
    let mut inputs = Vec::new();

    for cut in (0..bytes.len()).step_by(37) {
        let prefix = &bytes[..cut];
        let outcome = if String::from_utf8_lossy(prefix).trim_end() == text.trim_end() {
            Outcome::Any
        } else {
            Outcome::Invalid
        };
        inputs.push((format!("truncated-at-{cut}"), prefix.to_vec(), outcome));
    }

    for i in 0..60 {
        let mut flipped = bytes.to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(flipped.len());
            flipped[at] = (rng.next() & 0xff) as u8;
        }
        inputs.push((format!("flipped-{i}"), flipped, Outcome::Any));
    }

    let alphabet = b"{}[]\":,0123456789.eE+-truefalsnl \n\t\\u#abcdefgxyz/";
    for i in 0..20 {
        let len = rng.below(3000);
        let data: Vec<u8> = if i % 2 == 0 {
            (0..len).map(|_| (rng.next() & 0xff) as u8).collect()
        } else {
            (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect()
        };
        inputs.push((format!("arbitrary-{i}"), data, Outcome::Any));
    }

    let with = |pointer: &str, value: Value| {
        let mut doc = minimal.clone();
        *doc.pointer_mut(pointer).expect("pointer exists") = value;
        serde_json::to_vec_pretty(&doc).expect("JSON")
    };
    let nested = |depth: usize| -> Value {
        let mut v = Value::Array(Vec::new());
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        v
    };
    let special: Vec<(&str, Vec<u8>, Outcome)> = vec![
        ("open-brackets", "[".repeat(10_000).into_bytes(), Outcome::Invalid),
        (
            "balanced-brackets",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            Outcome::Invalid,
        ),
        ("open-objects", "{\"a\":".repeat(10_000).into_bytes(), Outcome::Invalid),
        ("nested-css", with("/css", nested(120)), Outcome::InvalidAt("/css".into())),
        (
            "nested-name",
            with("/metadata/name", nested(120)),
            Outcome::InvalidAt("/metadata/name".into()),
        ),
        (
            "huge-name",
            with("/metadata/name", Value::String("é".repeat(300_000))),
            Outcome::InvalidAt("/metadata/name".into()),
        ),
        (
            "huge-css",
            with("/css", Value::String("a{}".repeat(70_000))),
            Outcome::InvalidAt("/css".into()),
        ),
        (
            "long-valid-css",
            with("/css", Value::String(format!("/*{}*/", "x".repeat(90_000)))),
            Outcome::Any,
        ),
        (
            "huge-colour",
            with(
                "/settings/color/palette/0/color",
                Value::String(format!("#{}", "f".repeat(200_000))),
            ),
            Outcome::InvalidAt("/settings/color/palette/0/color".into()),
        ),
        (
            "huge-unknown-key",
            {
                let mut doc = minimal.clone();
                doc["metadata"]["k".repeat(50_000)] = Value::Bool(true);
                serde_json::to_vec(&doc).expect("JSON")
            },
            Outcome::InvalidAt("/metadata/".into()),
        ),
        ("empty", Vec::new(), Outcome::Invalid),
        ("whitespace", b"  \n\t ".to_vec(), Outcome::Invalid),
        ("null", b"null".to_vec(), Outcome::Invalid),
        ("bom", [b"\xef\xbb\xbf".as_slice(), bytes].concat(), Outcome::Any),
        (
            "lone-surrogate",
            br#"{"version": 1, "metadata": {"name": "\ud800"}}"#.to_vec(),
            Outcome::Any,
        ),
        (
            "nul-in-string",
            br#"{"version": 1, "metadata": {"name": "a\u0000b"}}"#.to_vec(),
            Outcome::Any,
        ),
        (
            "number-overflow",
            br#"{"version": 1e400, "metadata": {"name": "x"}}"#.to_vec(),
            Outcome::Invalid,
        ),
        ("float-version", br#"{"version": 1.0, "metadata": {"name": "x"}}"#.to_vec(), Outcome::Any),
        (
            "big-integer",
            br#"{"version": 18446744073709551616, "metadata": {"name": "x"}}"#.to_vec(),
            Outcome::Invalid,
        ),
        ("invalid-utf8", [bytes, b"\xff\xfe".as_slice()].concat(), Outcome::Invalid),
    ];
    inputs.extend(special.into_iter().map(|(n, b, o)| (n.to_owned(), b, o)));

    let mut all = Vec::new();
    pointers(&minimal, "", &mut all);
    let wrong = [
        Value::Null,
        Value::Bool(true),
        serde_json::json!(1.5),
        Value::String("x".into()),
        Value::Array(Vec::new()),
        Value::Object(serde_json::Map::new()),
    ];
    for (i, pointer) in all.iter().enumerate() {
        let current = json_kind(minimal.pointer(pointer).expect("pointer exists"));
        let choices: Vec<&Value> = wrong.iter().filter(|w| json_kind(w) != current).collect();
        let value = choices[i % choices.len()].clone();
        let blamed = if pointer.is_empty() { "/".to_owned() } else { pointer.clone() };
        inputs.push((format!("wrong-type-{i}"), with(pointer, value), Outcome::InvalidAt(blamed)));
    }
    inputs
}

#[test]
fn theme_validate_never_crashes_on_generated_inputs() {
    let tmp = tempdir();
    let cases: Vec<(String, PathBuf, Outcome)> = robustness_inputs()
        .into_iter()
        .enumerate()
        .map(|(i, (name, bytes, outcome))| {
            let path = tmp.path().join(format!("{i:03}-{name}.json"));
            std::fs::write(&path, bytes).expect("write a generated input");
            (name, path, outcome)
        })
        .collect();
    assert!(cases.len() >= 200, "expected about 200+ inputs, generated {}", cases.len());
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get().min(8));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let cases = &cases;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (name, path, outcome) in cases.iter().skip(w).step_by(workers) {
                        let run = validate(path);
                        let mut fail = |why: &str| {
                            let tail: String = run.stderr.chars().take(600).collect();
                            failures.push(format!(
                                "{name} ({}): {why}; exit {:?}\n{tail}",
                                path.display(),
                                run.code
                            ));
                        };
                        if !matches!(run.code, Some(0 | 1)) {
                            fail("exit code is not 0 or 1 (signal or panic)");
                            continue;
                        }
                        if run.stderr.contains("panicked") {
                            fail("it panicked");
                            continue;
                        }
                        if run.code == Some(1) && !run.stderr.contains("error[") {
                            fail("it failed without printing a diagnostic");
                        }
                        if run.code == Some(0) && !run.stdout.contains("is a valid theme") {
                            fail("it succeeded without saying the theme is valid");
                        }
                        match outcome {
                            Outcome::Any => {}
                            Outcome::Invalid if run.code != Some(1) => fail("it should be invalid"),
                            Outcome::InvalidAt(p)
                                if run.code != Some(1)
                                    || !run.stderr.contains(&format!("`{p}")) =>
                            {
                                fail(&format!("it should be invalid at `{p}`"));
                            }
                            _ => {}
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker thread")).collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} inputs misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
