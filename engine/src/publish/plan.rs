//! The diff between the site to publish and what is live: which files to write and in
//! which order, which stay, which leave the site and when they may be deleted.
//!
//! Pure: reads no store and writes nothing; `run` carries the plan out.

use super::state::{Cache, Entry, Files, Inflight, Live, Retired};
use crate::output::MANIFEST;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a deploy will do, in the order it does it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Content-hashed files (assets, images) to write first.
    pub immutable: Vec<String>,
    /// Pages, sitemap, robots, feeds: written once every file they may reference is.
    pub pages: Vec<String>,
    /// The site's own manifest, written after the pages.
    pub manifest: Vec<String>,
    /// Files already live with the same content and headers.
    pub unchanged: usize,
    /// Live files that are not part of the new site.
    pub removed: Vec<String>,
    /// Files waiting for deletion once the new state is live.
    pub retired: BTreeMap<String, Retired>,
    /// Retired files to delete right after the new state is live: pages at once (nothing
    /// cached can need a page that is gone), hashed files once their grace period is over.
    pub due: Vec<String>,
}

impl Plan {
    /// Every path to write, in order.
    pub fn uploads(&self) -> impl Iterator<Item = &String> {
        self.immutable.iter().chain(&self.pages).chain(&self.manifest)
    }

    /// Number of paths to write.
    pub fn upload_count(&self) -> usize {
        self.immutable.len() + self.pages.len() + self.manifest.len()
    }

    /// Paths whose content at their URL changes with this deploy: a CDN should purge them.
    pub fn purge_paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.uploads().map(String::as_str).collect();
        paths.extend(
            self.due
                .iter()
                .filter(|p| {
                    self.retired.get(*p).is_some_and(|r| r.entry.cache == Cache::Revalidate)
                })
                .map(String::as_str),
        );
        paths.sort_unstable();
        paths.dedup();
        paths
    }
}

/// Plans the deploy of `site` over `live` (nothing live on a first publish). Paths in the
/// journal of an interrupted publish are written again even when the live state has them,
/// and removed when the new site does not.
pub fn plan(
    site: &Files,
    live: Option<&Live>,
    inflight: &Inflight,
    now: DateTime<Utc>,
    grace: Duration,
) -> Plan {
    let empty = Files::new();
    let live_files = live.map_or(&empty, |l| &l.files);
    let mut plan =
        Plan { retired: live.map(|l| l.retired.clone()).unwrap_or_default(), ..Plan::default() };
    for (path, entry) in site {
        plan.retired.remove(path);
        let dirty = inflight.paths.contains_key(path);
        if !dirty && live_files.get(path) == Some(entry) {
            plan.unchanged += 1;
        } else if path == MANIFEST {
            plan.manifest.push(path.clone());
        } else if entry.cache == Cache::Immutable {
            plan.immutable.push(path.clone());
        } else {
            plan.pages.push(path.clone());
        }
    }
    let retire = |plan: &mut Plan, path: &str, entry: &Entry| {
        plan.retired
            .entry(path.to_owned())
            .or_insert_with(|| Retired { entry: entry.clone(), since: now });
    };
    for (path, entry) in live_files {
        if !site.contains_key(path) {
            plan.removed.push(path.clone());
            retire(&mut plan, path, entry);
        }
    }
    for (path, entry) in &inflight.paths {
        if !site.contains_key(path) && !live_files.contains_key(path) {
            retire(&mut plan, path, entry);
        }
    }
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    plan.due = plan
        .retired
        .iter()
        .filter(|(_, r)| r.entry.cache == Cache::Revalidate || now - r.since >= grace)
        .map(|(p, _)| p.clone())
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::state::FORMAT;

    fn e(hash: &str, cache: Cache) -> Entry {
        Entry { hash: hash.into(), size: 1, content_type: "text/html; charset=utf-8".into(), cache }
    }

    fn files(list: &[(&str, &str)]) -> Files {
        list.iter()
            .map(|(p, h)| {
                let cache =
                    if p.starts_with("assets/") { Cache::Immutable } else { Cache::Revalidate };
                ((*p).to_owned(), e(h, cache))
            })
            .collect()
    }

    fn live(files: Files) -> Live {
        Live {
            format: FORMAT,
            deploy: "d1".into(),
            published_at: Utc::now(),
            base_url: None,
            files,
            retired: BTreeMap::new(),
            history: Vec::new(),
            dropped: BTreeMap::new(),
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn first_publish_writes_assets_then_pages_then_the_manifest() {
        let site = files(&[("index.html", "1"), ("assets/a.css", "2"), (MANIFEST, "3")]);
        let p = plan(&site, None, &Inflight::default(), Utc::now(), DAY);
        assert_eq!(p.immutable, ["assets/a.css"]);
        assert_eq!(p.pages, ["index.html"]);
        assert_eq!(p.manifest, [MANIFEST]);
        assert_eq!(p.uploads().collect::<Vec<_>>(), ["assets/a.css", "index.html", MANIFEST]);
    }

    #[test]
    fn a_republish_of_the_same_site_writes_nothing() {
        let site = files(&[("index.html", "1"), ("assets/a.css", "2")]);
        let p = plan(&site, Some(&live(site.clone())), &Inflight::default(), Utc::now(), DAY);
        assert_eq!(p.upload_count(), 0);
        assert_eq!(p.unchanged, 2);
        assert!(p.due.is_empty() && p.removed.is_empty());
    }

    #[test]
    fn changed_headers_are_a_change() {
        let site = files(&[("index.html", "1")]);
        let mut old = site.clone();
        old.get_mut("index.html").expect("entry").content_type = "text/plain".into();
        let p = plan(&site, Some(&live(old)), &Inflight::default(), Utc::now(), DAY);
        assert_eq!(p.pages, ["index.html"]);
    }

    #[test]
    fn removed_pages_go_at_once_and_assets_after_the_grace_period() {
        let old = files(&[("index.html", "1"), ("old/index.html", "2"), ("assets/a.1.css", "3")]);
        let site = files(&[("index.html", "1b"), ("assets/a.2.css", "4")]);
        let now = Utc::now();
        let p = plan(&site, Some(&live(old.clone())), &Inflight::default(), now, DAY);
        assert_eq!(p.removed, ["assets/a.1.css", "old/index.html"]);
        assert_eq!(p.due, ["old/index.html"]);
        assert!(p.retired.contains_key("assets/a.1.css"));
        assert_eq!(p.purge_paths(), ["assets/a.2.css", "index.html", "old/index.html"]);

        // A day later the asset is due; a zero grace deletes it at once.
        let mut later = live(site.clone());
        later.retired = p.retired.clone();
        later.retired.remove("old/index.html");
        let p2 =
            plan(&site, Some(&later), &Inflight::default(), now + chrono::Duration::hours(25), DAY);
        assert_eq!(p2.due, ["assets/a.1.css"]);
        let p3 = plan(&site, Some(&live(old)), &Inflight::default(), now, Duration::ZERO);
        assert_eq!(p3.due, ["assets/a.1.css", "old/index.html"]);
    }

    #[test]
    fn a_file_coming_back_is_no_longer_retired() {
        let site = files(&[("assets/a.1.css", "3")]);
        let mut state = live(Files::new());
        state.retired.insert(
            "assets/a.1.css".into(),
            Retired { entry: e("3", Cache::Immutable), since: Utc::now() },
        );
        let p = plan(&site, Some(&state), &Inflight::default(), Utc::now(), Duration::ZERO);
        assert!(p.retired.is_empty() && p.due.is_empty());
        assert_eq!(p.immutable, ["assets/a.1.css"]);
    }

    #[test]
    fn paths_an_interrupted_publish_wrote_are_rewritten_or_retired() {
        let site = files(&[("index.html", "1"), ("assets/a.css", "2")]);
        let mut inflight = Inflight::default();
        inflight.paths.insert("index.html".into(), e("9", Cache::Revalidate));
        inflight.paths.insert("new/index.html".into(), e("8", Cache::Revalidate));
        inflight.paths.insert("assets/b.css".into(), e("7", Cache::Immutable));
        let p = plan(&site, Some(&live(site.clone())), &inflight, Utc::now(), DAY);
        assert_eq!(p.pages, ["index.html"], "live says unchanged, but an interrupted run wrote it");
        assert_eq!(p.unchanged, 1);
        assert_eq!(p.due, ["new/index.html"]);
        assert!(p.retired.contains_key("assets/b.css"), "an orphaned asset waits for its grace");
        assert!(p.removed.is_empty(), "orphans were never part of the live site");
    }
}
