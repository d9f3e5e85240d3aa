//! Every folder under `fixtures/invalid/` is a catalog with a known mistake; building it
//! must fail, print each line of its `expected.txt`, and leave no output behind.

mod common;

use std::path::{Path, PathBuf};

fn invalid_cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/invalid exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[track_caller]
fn check(case: &Path) {
    let name = case.file_name().expect("named").to_string_lossy().into_owned();
    let expected = std::fs::read_to_string(case.join("expected.txt"))
        .unwrap_or_else(|e| panic!("{name}: expected.txt: {e}"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("site");
    // With a cache outside the case (common::shared_cache): a build must not write into
    // fixtures/, even one that fails.
    let run = common::try_build(case, &out, None);
    let stderr = &run.stderr;
    assert!(!run.success, "{name}: the build must fail\n{stderr}");
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        assert!(stderr.contains(line), "{name}: missing `{line}` in\n{stderr}");
    }
    assert!(stderr.contains("was left unchanged"), "{name}: says the output was kept\n{stderr}");
    assert!(!out.exists(), "{name}: a failed build must not create the output");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).expect("ls").collect();
    assert!(leftovers.is_empty(), "{name}: staging left behind: {leftovers:?}");
}

#[test]
fn every_invalid_fixture_fails_with_its_message() {
    let cases = invalid_cases();
    assert!(cases.len() >= 10, "expected the invalid fixtures, found {}", cases.len());
    for case in cases {
        check(&case);
    }
}

#[test]
fn all_problems_of_a_catalog_are_reported_at_once() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/invalid/many-errors");
    let expected = std::fs::read_to_string(case.join("expected.txt")).expect("expected.txt");
    assert!(
        expected.lines().filter(|l| l.starts_with("error")).count() >= 5,
        "the case lists several errors"
    );
    check(&case);
}
