//! Shared helpers for the end-to-end tests: run the real `aurelio` binary (never on a
//! fixture without a cache of its own, see [`command`]), read what it wrote (`site`), take
//! the HTML apart with `scraper` (`html`), read the catalog files the tests derive their
//! expectations from (`catalog`), make image files (`images`, `png_bomb`), and stall a
//! process mid-request at a chosen point (`proxy`).

#![allow(dead_code, unused_imports)]

mod catalog;
mod demo;
mod html;
mod images;
pub mod png_bomb;
mod problems;
mod proxy;
mod site;
mod theme;

pub use catalog::*;
pub use demo::*;
pub use html::*;
pub use images::*;
pub use problems::*;
pub use proxy::*;
pub use site::*;
pub use theme::*;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_aurelio");

/// The flag of `aurelio build` (and `watch`) naming the cache directory.
pub const BUILD_CACHE_FLAG: &str = "--cache";

/// The flag of `aurelio feed <channel>` naming the cache directory.
pub const FEED_CACHE_FLAG: &str = "--cache-dir";

/// A path inside the repository (never relative to the current directory).
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The demo catalog. Read-only: build it with a cache outside it (the helpers here do),
/// change a [`copy_dir`] copy of it.
pub fn demo_store() -> PathBuf {
    repo_path("fixtures/demo-store")
}

/// The catalog full of markup and script injection attempts (read-only, as the demo).
pub fn hostile_store() -> PathBuf {
    repo_path("fixtures/hostile")
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

// ---------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------

/// The cache directory every build and feed of this test process uses unless a test gives
/// its own: `<target>/tmp/test-cache/<pid>/`. Encoded images are keyed by their content
/// and the encoder's settings (the first build of the demo encodes them, later ones reuse
/// them; the engine stages each entry and renames it, so parallel builds may share it),
/// and build states by the output's path, which is a fresh temporary directory per test.
/// A new process starts empty, so every run of a test binary encodes the images once; the
/// directories of processes that are gone are removed here.
pub fn shared_cache() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-cache");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let alive = Path::new("/proc").join(&name).exists();
            if name.parse::<u32>().is_ok() && !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create `{}`: {e}", dir.display()));
        dir
    })
}

/// Panics unless a run of `args` leaves `fixtures/` alone. A command given a `--site`
/// inside `fixtures/` must name its cache (else the cache goes to `<site>/.aurelio/cache`,
/// a directory inside the repository that parallel tests would copy and read while another
/// writes it) and may not be `theme import` (which writes `theme.json` into the site); no
/// output, cache or data directory may be inside `fixtures/`. Checked before every run, so
/// the test that would write there fails by name, on every run, whatever the timing.
#[track_caller]
pub fn refuse_fixture_writes(args: &[OsString]) {
    let fixtures = std::fs::canonicalize(repo_path("fixtures")).expect("fixtures/ exists");
    // The path itself when it exists, else its nearest existing ancestor.
    let inside = |path: &Path| {
        let path = if path.is_absolute() { path.to_owned() } else { repo_path(".").join(path) };
        path.ancestors()
            .find_map(|p| std::fs::canonicalize(p).ok())
            .is_some_and(|p| p.starts_with(&fixtures))
    };
    let words: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let line = || words.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let writes = ["--out", "-o", "--output", "--data", BUILD_CACHE_FLAG, FEED_CACHE_FLAG];
    for pair in words.windows(2) {
        let writes_there = writes.iter().any(|w| pair[0] == *w) && inside(Path::new(pair[1]));
        assert!(!writes_there, "`aurelio {}` would write into fixtures/", line());
    }
    let Some(site) = words.windows(2).find(|w| w[0] == "--site").map(|w| Path::new(w[1])) else {
        return;
    };
    if !inside(site) {
        return;
    }
    let reads_only = words.starts_with(&[OsStr::new("theme"), OsStr::new("export")]);
    let imports = words.starts_with(&[OsStr::new("theme"), OsStr::new("import")]);
    let own_cache = words.iter().any(|a| *a == BUILD_CACHE_FLAG || *a == FEED_CACHE_FLAG);
    assert!(
        reads_only || (own_cache && !imports),
        "`aurelio {}` would write into {}: build fixtures with a cache of their own \
         (common::shared_cache) and change only copies (common::copy_dir)",
        line(),
        site.display()
    );
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Exit code, if any.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics (naming the command and showing its output) unless it succeeded.
    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.success,
            "`{}` failed with {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.command, self.code, self.stderr, self.stdout
        );
        self
    }

    /// Panics (naming the command and showing its output) unless it failed.
    #[track_caller]
    pub fn failure(self) -> Self {
        assert!(
            !self.success,
            "`{}` succeeded but was expected to fail\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.command, self.stderr, self.stdout
        );
        self
    }

    /// The result of a finished process.
    pub fn of(command: String, output: &std::process::Output) -> Self {
        Self {
            command,
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// `aurelio ARGS` as a command to run, after [`refuse_fixture_writes`]; without the
/// environment variables that would change logging or the cache.
#[track_caller]
pub fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    refuse_fixture_writes(&args);
    let mut cmd = Command::new(BIN);
    cmd.args(&args).env_remove("AURELIO_LOG").env_remove("AURELIO_CACHE_DIR");
    cmd
}

/// The command line of `args`, for messages.
pub fn command_line<S: AsRef<OsStr>>(args: &[S]) -> String {
    std::iter::once("aurelio".to_owned())
        .chain(args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `aurelio` with `args` and collects what it printed.
#[track_caller]
pub fn aurelio<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let line = command_line(args);
    let output = command(args).output().unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"));
    Run::of(line, &output)
}

/// `aurelio build --site SITE --out OUT --cache CACHE EXTRA…`, whatever its outcome.
#[track_caller]
pub fn try_build_in<S: AsRef<OsStr>>(site: &Path, out: &Path, cache: &Path, extra: &[S]) -> Run {
    let mut args: Vec<&OsStr> = vec![
        "build".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        BUILD_CACHE_FLAG.as_ref(),
        cache.as_os_str(),
    ];
    args.extend(extra.iter().map(AsRef::as_ref));
    aurelio(&args)
}

/// `aurelio build --site SITE --out OUT EXTRA…` with the [`shared_cache`], whatever its
/// outcome.
#[track_caller]
pub fn try_build_args<S: AsRef<OsStr>>(site: &Path, out: &Path, extra: &[S]) -> Run {
    try_build_in(site, out, shared_cache(), extra)
}

/// `aurelio build --site SITE --out OUT [--base-url URL]`, whatever its outcome.
#[track_caller]
pub fn try_build(site: &Path, out: &Path, base_url: Option<&str>) -> Run {
    match base_url {
        Some(url) => try_build_args(site, out, &["--base-url", url]),
        None => try_build_args::<&str>(site, out, &[]),
    }
}

/// A build that must succeed.
#[track_caller]
pub fn build(site: &Path, out: &Path) -> Run {
    try_build(site, out, None).success()
}

/// A build with `--base-url` that must succeed.
#[track_caller]
pub fn build_with_base_url(site: &Path, out: &Path, base_url: &str) -> Run {
    try_build(site, out, Some(base_url)).success()
}

/// `aurelio fixtures --products N --out DIR --seed S`, which must succeed.
#[track_caller]
pub fn fixtures(products: usize, out: &Path, seed: u64) -> Run {
    let products = products.to_string();
    let seed = seed.to_string();
    aurelio(&[
        "fixtures".as_ref(),
        "--products".as_ref(),
        products.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--seed".as_ref(),
        seed.as_ref(),
    ])
    .success()
}
