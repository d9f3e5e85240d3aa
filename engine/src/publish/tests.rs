//! Publishing small hand-made sites to an in-memory store and a local directory.

use super::*;
use crate::output::{self, CachePolicy, Manifest};
use crate::progress::Silent;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{Attribute, ObjectStore, ObjectStoreExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Writes a built site: the files plus a manifest (assets and images immutable).
fn write_site(dir: &Path, files: &[(&str, &str)]) {
    let _ = std::fs::remove_dir_all(dir);
    let mut manifest = Manifest { version: 1, ..Manifest::default() };
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        let cache = if rel.starts_with("assets/") || rel.starts_with("images/") {
            CachePolicy::Immutable
        } else {
            CachePolicy::Revalidate
        };
        manifest.files.insert((*rel).to_owned(), output::entry(rel, text.as_bytes(), cache));
    }
    std::fs::write(dir.join(MANIFEST), serde_json::to_vec_pretty(&manifest).expect("json"))
        .expect("write manifest");
}

const V1: &[(&str, &str)] = &[
    ("index.html", r#"<link href="/assets/theme.1.css"><img src="/images/a.1.jpg">"#),
    (
        "products/a/index.html",
        r#"<link href="/assets/theme.1.css"><img srcset="/images/a.1.jpg 600w">"#,
    ),
    ("products/b/index.html", r#"<link href="/assets/theme.1.css">"#),
    ("assets/theme.1.css", "body{color:red}"),
    ("images/a.1.jpg", "jpeg-a"),
    ("robots.txt", "Sitemap: https://shop.test/sitemap.xml\n"),
];

const V2: &[(&str, &str)] = &[
    ("index.html", r#"<link href="/assets/theme.2.css"><img src="/images/a.1.jpg">"#),
    (
        "products/a/index.html",
        r#"<link href="/assets/theme.2.css"><img srcset="/images/a.1.jpg 600w">"#,
    ),
    ("products/c/index.html", r#"<link href="/assets/theme.2.css"><img src="/images/c.1.jpg">"#),
    ("assets/theme.2.css", "body{color:blue}"),
    ("images/a.1.jpg", "jpeg-a"),
    ("images/c.1.jpg", "jpeg-c"),
    ("robots.txt", "Sitemap: https://shop.test/sitemap.xml\n"),
];

struct Fixture {
    store: Arc<InMemory>,
    target: Target,
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let store = Arc::new(InMemory::new());
        let target =
            Target::from_store(store.clone(), "shop", "memory://shop", true).expect("target");
        Self { store, target, tmp: tempfile::tempdir().expect("tempdir") }
    }

    fn site(&self, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = self.tmp.path().join(name);
        write_site(&dir, files);
        dir
    }

    fn publish(&self, dir: &Path, opts: &PublishOptions) -> Result<PublishReport, PublishError> {
        publish(&self.target, dir, opts, &Silent)
    }

    /// Every object under the prefix: key (without the prefix) → bytes.
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.target.runtime.block_on(async {
            let list: Vec<_> =
                futures::TryStreamExt::try_collect(self.store.list(Some(&Key::from("shop"))))
                    .await
                    .expect("list");
            let mut out = BTreeMap::new();
            for meta in list {
                let bytes = self
                    .store
                    .get(&meta.location)
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("bytes");
                let key =
                    meta.location.as_ref().strip_prefix("shop/").unwrap_or_default().to_owned();
                out.insert(key, bytes.to_vec());
            }
            out
        })
    }

    /// The site as served: every object outside `_aurelio/`.
    fn served(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects().into_iter().filter(|(k, _)| !state::is_reserved(k)).collect()
    }

    fn headers(&self, rel: &str) -> (String, String) {
        self.target.runtime.block_on(async {
            let got = self.store.get(&Key::from(format!("shop/{rel}"))).await.expect("get");
            let attr = |a| got.attributes.get(&a).map(|v| v.to_string()).unwrap_or_default();
            (attr(Attribute::ContentType), attr(Attribute::CacheControl))
        })
    }

    /// Deploy records in the bucket.
    fn records(&self) -> usize {
        self.objects().keys().filter(|k| k.starts_with("_aurelio/deploys/")).count()
    }

    fn live(&self) -> Option<Live> {
        live_state(&self.target).expect("live state")
    }

    /// Every page of the live state exists, and every file it references exists.
    #[track_caller]
    fn assert_consistent(&self) {
        let Some(live) = self.live() else { return };
        let served = self.served();
        for path in live.files.keys().filter(|p| p.ends_with(".html")) {
            let page = served.get(path).unwrap_or_else(|| panic!("live page `{path}` is missing"));
            let text = String::from_utf8_lossy(page);
            for reference in
                text.split(['"', ' ']).filter(|s| s.starts_with('/') && s.contains('.'))
            {
                let rel = reference.trim_start_matches('/');
                assert!(
                    served.contains_key(rel),
                    "`{path}` references `{reference}`, which is missing"
                );
            }
        }
    }
}

fn opts() -> PublishOptions {
    PublishOptions { concurrency: 4, ..PublishOptions::default() }
}

fn bytes_of(files: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    files.iter().map(|(p, t)| ((*p).to_owned(), t.as_bytes().to_vec())).collect()
}

#[test]
fn a_first_publish_uploads_every_file_with_its_headers() {
    let f = Fixture::new();
    let dir = f.site("v1", V1);
    let report = f.publish(&dir, &opts()).expect("publish");
    assert_eq!(report.summary.uploaded, V1.len() + 1, "every file and the site manifest");
    assert_eq!(report.summary.unchanged, 0);
    let mut expected = bytes_of(V1);
    expected.insert(MANIFEST.into(), std::fs::read(dir.join(MANIFEST)).expect("manifest"));
    assert_eq!(f.served(), expected);
    assert_eq!(
        f.headers("assets/theme.1.css"),
        ("text/css; charset=utf-8".into(), "public, max-age=31536000, immutable".into())
    );
    assert_eq!(
        f.headers("products/a/index.html"),
        ("text/html; charset=utf-8".into(), "public, max-age=60, must-revalidate".into())
    );
    let live = f.live().expect("live");
    assert_eq!(live.deploy, report.summary.id);
    assert_eq!(live.base_url.as_deref(), Some("https://shop.test"));
    assert!(report.purge.urls.contains(&"https://shop.test/products/a/".to_owned()));
    let objects = f.objects();
    for entry in live.files.values() {
        assert!(objects.contains_key(&entry.object_key()), "copy of {entry:?}");
    }
}

#[test]
fn publishing_the_same_site_again_uploads_nothing() {
    let f = Fixture::new();
    let dir = f.site("v1", V1);
    let first = f.publish(&dir, &opts()).expect("publish");
    let live_before = f.objects()["_aurelio/manifest.json"].clone();
    let again = f.publish(&dir, &opts()).expect("publish again");
    assert_eq!(again.summary.uploaded, 0);
    assert_eq!(again.summary.unchanged, V1.len() + 1);
    assert!(again.purge.urls.is_empty());
    assert!(!again.recorded, "nothing changed, so no deploy is recorded");
    assert_eq!(again.summary.id, first.summary.id, "the live deploy stays");
    assert_eq!(list(&f.target).expect("list").history.len(), 1);
    assert_eq!(f.records(), 1, "no second deploy record");
    assert_eq!(f.objects()["_aurelio/manifest.json"], live_before, "the live state is untouched");
}

#[test]
fn deploys_beyond_keep_leave_with_their_records_and_the_copies_only_they_used() {
    let f = Fixture::new();
    let keep = PublishOptions { keep: 3, grace: Duration::ZERO, ..opts() };
    let mut ids = Vec::new();
    let page = |i: usize| format!("<link href=\"/assets/theme.{}.css\"><p>version {i}</p>", i / 2);
    for i in 0..8 {
        let (text, css) = (page(i), format!("assets/theme.{}.css", i / 2));
        let body = format!("body{{order:{}}}", i / 2);
        let files = [
            ("index.html", "<p>home</p>"),
            ("products/a/index.html", text.as_str()),
            (css.as_str(), body.as_str()),
            ("robots.txt", "Sitemap: https://shop.test/sitemap.xml\n"),
        ];
        let report = f.publish(&f.site(&format!("v{i}"), &files), &keep).expect("publish");
        assert!(report.recorded);
        ids.push(report.summary.id);
        assert!(f.records() <= 3, "{} deploy records after {} publishes", f.records(), i + 1);
        f.assert_consistent();
    }
    let live = f.live().expect("live");
    let kept: Vec<&str> = live.history.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(kept, ids[5..].iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(f.records(), 3);

    // The copies left are exactly those the kept deploys use.
    let copies: BTreeSet<String> =
        f.objects().into_keys().filter(|k| k.starts_with("_aurelio/objects/")).collect();
    let mut needed = BTreeSet::new();
    for id in &ids[5..] {
        let record: DeployRecord =
            serde_json::from_slice(&f.objects()[&format!("_aurelio/deploys/{id}.json")])
                .expect("record");
        needed.extend(record.files.values().map(Entry::object_key));
    }
    assert_eq!(copies, needed, "copies of the pruned deploys are gone, none the kept ones use");

    // Every kept deploy can be restored, byte for byte; a pruned one is unknown.
    for (i, id) in ids.iter().enumerate().skip(5) {
        rollback(&f.target, id, &keep, &Silent).expect("rollback to a kept deploy");
        let served = f.served();
        assert_eq!(served["products/a/index.html"], page(i).into_bytes());
        f.assert_consistent();
        assert!(f.records() <= 3);
    }
    let err = rollback(&f.target, &ids[0], &keep, &Silent).expect_err("pruned");
    assert!(err.to_string().contains(&format!("no deploy `{}`", ids[0])), "{err}");
}

#[test]
fn a_change_uploads_the_changed_files_and_retires_the_rest_safely() {
    let f = Fixture::new();
    f.publish(&f.site("v1", V1), &opts()).expect("publish v1");
    let report = f.publish(&f.site("v2", V2), &opts()).expect("publish v2");
    // index and products/a changed, products/c, theme.2.css, c.1.jpg are new, plus the manifest.
    assert_eq!(report.summary.uploaded, 6);
    assert_eq!(report.summary.unchanged, 2, "a.1.jpg and robots.txt");
    assert_eq!(report.summary.removed, 2, "products/b and theme.1.css left the site");
    assert_eq!(report.summary.deleted, 1, "the page goes at once");
    assert_eq!(report.kept, 1, "the old stylesheet stays for its grace period");
    let served = f.served();
    assert!(!served.contains_key("products/b/index.html"));
    assert!(served.contains_key("assets/theme.1.css"));
    assert!(
        report.purge.urls.contains(&"https://shop.test/products/b/".to_owned()),
        "deleted pages are purged"
    );
    assert!(report.purge.urls.contains(&"https://shop.test/index.html".to_owned()));
    assert!(!report.purge.urls.iter().any(|u| u.contains("a.1.jpg")));

    // With no grace left, the next publish deletes the old stylesheet.
    let zero = PublishOptions { grace: Duration::ZERO, ..opts() };
    let report = f.publish(&f.tmp.path().join("v2"), &zero).expect("publish v2 again");
    assert_eq!((report.summary.uploaded, report.summary.deleted, report.kept), (0, 1, 0));
    assert!(!f.served().contains_key("assets/theme.1.css"));
    f.assert_consistent();
}

#[test]
fn a_publish_interrupted_after_any_write_leaves_a_whole_site_and_a_rerun_completes() {
    // A clean publish of v2 over v1, to compare with.
    let clean = Fixture::new();
    clean.publish(&clean.site("v1", V1), &opts()).expect("v1");
    clean.publish(&clean.site("v2", V2), &opts()).expect("v2");
    let expected = clean.served();
    let expected_live: Vec<String> = clean.live().expect("live").files.into_keys().collect();

    for n in 0..30 {
        let f = Fixture::new();
        let v1 = f.site("v1", V1);
        let v2 = f.site("v2", V2);
        f.publish(&v1, &opts()).expect("v1");
        f.target.fail_after(Some(n));
        let result = f.publish(&v2, &opts());
        f.target.fail_after(None);
        f.assert_consistent();
        match result {
            Err(PublishError::Interrupted(_)) => {}
            Ok(_) => {
                assert!(n >= 14, "completed within {n} writes");
                continue;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        // Going back to v1 after an interrupted v2 must not keep v2 content behind.
        f.target.fail_after(Some(n / 2));
        let _ = f.publish(&v1, &opts());
        f.target.fail_after(None);
        f.assert_consistent();
        f.publish(&v2, &opts()).expect("re-run");
        f.assert_consistent();
        let served = f.served();
        for (path, bytes) in &expected {
            assert_eq!(served.get(path), Some(bytes), "after interruption at {n}: `{path}`");
        }
        let extra: Vec<_> = served.keys().filter(|k| !expected.contains_key(*k)).collect();
        assert!(
            extra.iter().all(|k| k.starts_with("assets/") || k.starts_with("images/")),
            "only hashed files in their grace period may stay: {extra:?}"
        );
        let state = f.live().expect("live");
        assert_eq!(state.files.into_keys().collect::<Vec<_>>(), expected_live);
        assert!(f.target.runtime.block_on(f.target.read(state::INFLIGHT)).expect("read").is_none());
    }
}

#[test]
fn a_rollback_restores_an_earlier_deploy_byte_for_byte() {
    let f = Fixture::new();
    let first = f.publish(&f.site("v1", V1), &opts()).expect("v1");
    let v1_served = f.served();
    let zero = PublishOptions { grace: Duration::ZERO, ..opts() };
    f.publish(&f.site("v2", V2), &zero).expect("v2");
    assert_ne!(f.served(), v1_served);

    let report =
        rollback(&f.target, &first.summary.id[..first.summary.id.len() - 1], &zero, &Silent)
            .expect("rollback");
    assert_eq!(report.summary.kind, DeployKind::Rollback);
    assert_eq!(report.summary.restores.as_deref(), Some(first.summary.id.as_str()));
    assert_eq!(f.served(), v1_served);
    assert_eq!(f.headers("assets/theme.1.css").1, "public, max-age=31536000, immutable");
    assert_eq!(f.live().expect("live").history.len(), 3);

    let err = rollback(&f.target, "19990101", &opts(), &Silent).expect_err("unknown");
    assert!(err.to_string().contains("no deploy `19990101`"), "{err}");
}

#[test]
fn a_file_changed_after_the_build_is_refused() {
    let f = Fixture::new();
    let dir = f.site("v1", V1);
    std::fs::write(dir.join("products/b/index.html"), "tampered").expect("write");
    let err = f.publish(&dir, &opts()).expect_err("refused");
    assert!(matches!(err, PublishError::Modified { .. }), "{err}");
    assert!(err.to_string().contains("products/b/index.html"), "{err}");
    assert!(f.live().is_none(), "nothing went live");
}

#[test]
fn a_directory_without_a_manifest_is_not_a_site() {
    let f = Fixture::new();
    let err = f.publish(f.tmp.path(), &opts()).expect_err("not a site");
    assert!(err.to_string().contains("run `aurelio build` first"), "{err}");
    let err = list(&f.target).map(|d| d.live);
    assert!(matches!(err, Ok(None)));
}

#[test]
fn publishes_to_a_local_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("site");
    write_site(&dir, V1);
    let out = tmp.path().join("bucket");
    let url = url::Url::from_directory_path(&out).expect("url").to_string();
    let target = Target::from_url(&url).expect("target");
    let report = publish(&target, &dir, &opts(), &Silent).expect("publish");
    assert_eq!(report.summary.uploaded, V1.len() + 1);
    for (rel, text) in V1 {
        assert_eq!(std::fs::read_to_string(out.join(rel)).expect("read"), *text);
    }
    assert!(out.join("_aurelio/manifest.json").is_file());
    write_site(&dir, V2);
    let zero = PublishOptions { grace: Duration::ZERO, ..opts() };
    publish(&target, &dir, &zero, &Silent).expect("publish v2");
    assert!(!out.join("products/b").exists(), "removed pages and their empty folders are gone");
    let first = list(&target).expect("list").history[0].id.clone();
    rollback(&target, &first, &zero, &Silent).expect("rollback");
    for (rel, text) in V1 {
        assert_eq!(std::fs::read_to_string(out.join(rel)).expect("read"), *text);
    }
    assert!(!out.join("products/c").exists());
}
