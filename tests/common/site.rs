//! A built site on disk and whole directory trees: read pages and files of an output,
//! snapshot a tree to compare it before and after, copy a catalog to change it.

use scraper::Html;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A built site on disk.
#[derive(Debug, Clone)]
pub struct Site {
    /// Its root directory.
    pub root: PathBuf,
}

impl Site {
    /// The site in `root`.
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_owned() }
    }

    /// The file of a site path: `products/x/` → `products/x/index.html`, `""` → `index.html`.
    pub fn file_of(path: &str) -> String {
        if path.is_empty() || path.ends_with('/') {
            format!("{path}index.html")
        } else {
            path.to_owned()
        }
    }

    /// The site path of a file: `products/x/index.html` → `products/x/`.
    pub fn path_of(file: &str) -> String {
        file.strip_suffix("index.html").unwrap_or(file).to_owned()
    }

    /// Whether a site path (or file) exists.
    pub fn exists(&self, path: &str) -> bool {
        self.root.join(Self::file_of(path)).is_file()
    }

    /// The text of a file.
    #[track_caller]
    pub fn read(&self, rel: &str) -> String {
        let path = self.root.join(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
    }

    /// The parsed page at a site path (`products/x/`, `404.html`).
    #[track_caller]
    pub fn page(&self, path: &str) -> Html {
        Html::parse_document(&self.read(&Self::file_of(path)))
    }

    /// Every file, relative with `/`, sorted.
    pub fn file_list(&self) -> Vec<String> {
        snapshot(&self.root).into_keys().collect()
    }

    /// Every file with its bytes.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        snapshot(&self.root)
    }

    /// Every `.html` file, relative, sorted.
    pub fn html_files(&self) -> Vec<String> {
        self.file_list().into_iter().filter(|f| f.ends_with(".html")).collect()
    }

    /// Every `.html` file, parsed, with its raw text.
    pub fn html_pages(&self) -> Vec<(String, String, Html)> {
        self.html_files()
            .into_iter()
            .map(|f| {
                let text = self.read(&f);
                let doc = Html::parse_document(&text);
                (f, text, doc)
            })
            .collect()
    }

    /// The one file whose relative path starts with `prefix` and ends with `suffix`
    /// (content-hashed assets such as `assets/search-index.*.json`).
    #[track_caller]
    pub fn find_one(&self, prefix: &str, suffix: &str) -> String {
        let found: Vec<String> = self
            .file_list()
            .into_iter()
            .filter(|f| f.starts_with(prefix) && f.ends_with(suffix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one `{prefix}*{suffix}` in {}, found {found:?}",
            self.root.display()
        );
        found.into_iter().next().unwrap_or_default()
    }

    /// A listing (collection or category) and all its pages: `base`, `base/page/2/`, …
    /// until a page does not exist. Returns (site path, parsed page) pairs.
    #[track_caller]
    pub fn listing_pages(&self, base: &str) -> Vec<(String, Html)> {
        assert!(self.exists(base), "listing `{base}` has no page in {}", self.root.display());
        let mut pages = vec![(base.to_owned(), self.page(base))];
        for n in 2.. {
            let path = format!("{base}page/{n}/");
            if !self.exists(&path) {
                break;
            }
            let doc = self.page(&path);
            pages.push((path, doc));
        }
        pages
    }
}

/// Every file under `dir` with its bytes, keyed by relative path with `/`.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list `{}`: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("inside root");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names of the entries directly inside `dir`, sorted.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list `{}`: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Copies a catalog's directory tree, leaving out every `.aurelio/` (the default place of
/// the build cache and of `aurelio demo`'s data: another process may be writing there, and
/// a copy must start without a cache).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create `{}`: {e}", to.display()));
    for entry in
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot list `{}`: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        if entry.file_name() == ".aurelio" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("cannot copy `{}`: {e}", entry.path().display()));
        }
    }
}

/// Describes how two snapshots differ (empty when identical).
pub fn snapshot_diff(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> String {
    let mut diff = String::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => writeln!(diff, "  removed: {path}").unwrap_or_default(),
            Some(b) if b != bytes => writeln!(diff, "  changed: {path}").unwrap_or_default(),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        writeln!(diff, "  added:   {path}").unwrap_or_default();
    }
    diff
}
