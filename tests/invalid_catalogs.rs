//! The diagnostics of every case under `fixtures/invalid/`, exactly: each folder is a catalog
//! with known mistakes and its `expected.txt` holds what `aurelio build` must print about
//! it, line for line and in order (the lines of standard error that are diagnostics or
//! their excerpts; the case's own path written `$CASE`). So a message that gets worse, an
//! extra follow-on error, or a change of order fails here. A case with a `theme.json` is
//! also checked with `aurelio theme validate`, which must print the same diagnostics.
//!
//! Adding a case is adding a folder (an `expected.txt` alone is an empty catalog). With
//! `AURELIO_BLESS=1` the test writes each `expected.txt` from the output instead: review
//! the diff before committing it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/invalid exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// The diagnostic lines of a command's standard error, with `case` written `$CASE`.
fn diagnostics(stderr: &[u8], case: &Path) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr).replace(&*case.to_string_lossy(), "$CASE");
    text.lines()
        .filter(|l| l.starts_with("error[") || l.starts_with("warning[") || l.starts_with("    | "))
        .map(str::to_owned)
        .collect()
}

fn aurelio(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aurelio")).args(args).output().expect("aurelio runs")
}

/// Runs the case; `None` when it passes, otherwise what is wrong.
fn check(case: &Path, bless: bool) -> Option<String> {
    let name = case.file_name().expect("named").to_string_lossy().into_owned();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("site");
    let output = aurelio(&[
        "build".as_ref(),
        "--site".as_ref(),
        case.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let found = diagnostics(&output.stderr, case);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || out.exists() {
        return Some(format!("{name}: the build must fail and write nothing\n{stderr}"));
    }
    let expected_path = case.join("expected.txt");
    if bless {
        std::fs::write(&expected_path, found.join("\n") + "\n").expect("expected.txt written");
        return None;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    if found != expected {
        return Some(format!(
            "{name}: the build printed\n{}\ninstead of\n{}\n(all of standard error:\n{stderr})",
            found.join("\n"),
            expected.join("\n")
        ));
    }
    let theme = case.join("theme.json");
    if theme.is_file() {
        let output = aurelio(&[
            "theme".as_ref(),
            "validate".as_ref(),
            theme.as_os_str(),
            "--site".as_ref(),
            case.as_os_str(),
        ]);
        let validated = diagnostics(&output.stderr, case);
        if validated != expected {
            return Some(format!(
                "{name}: `theme validate` printed\n{}\ninstead of\n{}",
                validated.join("\n"),
                expected.join("\n")
            ));
        }
    }
    None
}

#[test]
fn every_invalid_case_prints_exactly_its_diagnostics() {
    let bless = std::env::var_os("AURELIO_BLESS").is_some();
    let cases = cases();
    assert!(cases.len() >= 25, "expected the invalid cases, found {}", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|case| check(case, bless)).collect();
    assert!(failures.is_empty(), "{} case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The cases of issue #29 are there and say what the issue asked for (so that blessing a
/// worse output cannot go unnoticed).
#[test]
fn the_issue_cases_point_at_the_fix() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/invalid");
    let read = |case: &str| {
        std::fs::read_to_string(root.join(case).join("expected.txt"))
            .unwrap_or_else(|e| panic!("{case}: {e}"))
    };
    let broken = read("follow-on-broken-line");
    assert!(!broken.contains("unknown product"), "no follow-on errors:\n{broken}");
    assert!(broken.starts_with("error[syntax]: `products.jsonl` line 3:"), "{broken}");
    assert!(broken.contains("    | ") && broken.contains('^'), "a snippet:\n{broken}");
    assert!(broken.lines().all(|l| l.chars().count() < 120), "bounded:\n{broken}");
    let unreadable = read("follow-on-unreadable-line");
    assert!(unreadable.contains("warning[unchecked]: `collections.json`"), "{unreadable}");
    for (case, code, fix) in [
        ("price-decimal-comma", "price-decimal-comma", "`19.95`"),
        ("price-currency-symbol", "price-currency-symbol", "`19.95`"),
        ("price-thousands-separator", "price-thousands-separator", "`1299.00`"),
        ("price-json-number", "price-type", "`\"19.95\"`"),
    ] {
        let text = read(case);
        assert!(text.contains(&format!("error[{code}]")) && text.contains(fix), "{case}: {text}");
    }
    let category = read("unknown-category-lists-categories");
    assert!(category.contains("clothing, shirts, knitwear, scarves"), "{category}");
    let theme = read("theme-errors-and-warnings");
    assert!(theme.contains("error[") && theme.contains("warning[contrast]"), "{theme}");
    let empty = read("empty-directory");
    assert!(empty.contains("docs/catalog-format.md") && empty.contains("aurelio fixtures"));
}
