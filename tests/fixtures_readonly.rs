//! The suite never writes into `fixtures/`. Every run of the binary goes through
//! `common::command`, which refuses (panics, naming the command) a run that would: a build
//! or feed of a fixture without a cache of its own (the default cache is
//! `<site>/.aurelio/cache`), `theme import` into a fixture, an output, cache or data
//! directory inside `fixtures/`. This checks that guard; `scripts/test` also compares the
//! state of `fixtures/` before and after the whole run.

mod common;

use common::*;
use std::ffi::OsString;
use std::path::Path;

/// Whether the guard refuses `args`.
fn refused(args: &[&Path]) -> bool {
    let args: Vec<OsString> = args.iter().map(|a| a.as_os_str().to_owned()).collect();
    std::panic::catch_unwind(|| refuse_fixture_writes(&args)).is_err()
}

#[test]
fn runs_that_would_write_into_fixtures_are_refused_before_they_start() {
    // The refusals' messages would fill the output; a failure below still shows its own.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let tmp = tempdir();
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    let p = Path::new;
    let (demo, hostile, theme) = (demo_store(), hostile_store(), repo_path("fixtures/themes"));
    let (demo_out, theme_csv, harbour) =
        (demo.join("site"), theme.join("x.csv"), theme.join("harbour.json"));
    let (demo, hostile, theme) = (demo.as_path(), hostile.as_path(), theme.as_path());
    let (out, cache) = (out.as_path(), cache.as_path());
    let cases: Vec<(bool, Vec<&Path>)> = vec![
        // Builds and feeds of a fixture: only with a cache of their own.
        (true, vec![p("build"), p("--site"), demo, p("--out"), out]),
        (true, vec![p("build"), p("--site"), hostile, p("--out"), out, p("--clean")]),
        (false, vec![p("build"), p("--site"), demo, p("--out"), out, p("--cache"), cache]),
        (true, vec![p("feed"), p("meta"), p("--site"), demo]),
        (false, vec![p("feed"), p("meta"), p("--site"), demo, p("--cache-dir"), cache]),
        (true, vec![p("watch"), p("--site"), demo, p("--out"), out]),
        // Theme files: exported from a fixture, never imported into one.
        (false, vec![p("theme"), p("export"), p("--site"), demo, p("-o"), out]),
        (true, vec![p("theme"), p("import"), theme, p("--site"), demo, p("--cache"), cache]),
        // Outputs, caches and data directories inside fixtures/, existing or not.
        (true, vec![p("build"), p("--site"), out, p("--out"), demo_out.as_path()]),
        (true, vec![p("build"), p("--site"), out, p("--out"), out, p("--cache"), demo]),
        (true, vec![p("feed"), p("meta"), p("--site"), out, p("-o"), theme_csv.as_path()]),
        (true, vec![p("serve"), p("--data"), p("fixtures/data")]),
        // Anything else is left alone.
        (false, vec![p("build"), p("--site"), out, p("--out"), out]),
        (false, vec![p("theme"), p("validate"), harbour.as_path()]),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(refuse, args)| refused(args) != *refuse)
        .map(|(refuse, args)| {
            let line = args.iter().map(|a| a.display().to_string()).collect::<Vec<_>>();
            format!(
                "{} `aurelio {}`",
                if *refuse { "let through" } else { "refused" },
                line.join(" ")
            )
        })
        .collect();
    // Through the runner: the binary never starts (it would have created `out`).
    let ran = std::panic::catch_unwind(|| {
        aurelio(&[p("build"), p("--site"), demo, p("--out"), out]);
    });
    std::panic::set_hook(hook);
    assert!(wrong.is_empty(), "the guard {}", wrong.join("\n  "));
    assert!(ran.is_err(), "`aurelio build` of the demo store without a cache ran");
    assert!(!out.exists(), "the refused build started");
}
