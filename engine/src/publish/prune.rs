//! Bounds what a destination keeps about its past: the history and the deploy records of
//! the last `keep` deploys, and the content-addressed copies only those deploys use.
//!
//! Pure planning (`dropped`, `trim`, `deletable`); `run` deletes after the commit, so a
//! deploy that leaves the history can no longer be asked for by the time its copies go,
//! and a deploy still in the history always finds every copy it needs.

use super::state::{Entry, Files, Inflight, Live};
use std::collections::{BTreeSet, HashSet};

/// Names of the copies the files live before a deploy (`old`) and an interrupted
/// publish's journal use that the deploy's own files (`new`) do not.
pub(crate) fn dropped(old: Option<&Files>, inflight: &Inflight, new: &Files) -> Vec<String> {
    let used: HashSet<String> = new.values().map(Entry::object_name).collect();
    let names: BTreeSet<String> = old
        .into_iter()
        .flat_map(|files| files.values())
        .chain(inflight.paths.values())
        .map(Entry::object_name)
        .filter(|name| !used.contains(name))
        .collect();
    names.into_iter().collect()
}

/// Drops the oldest deploys from `live.history` so that `keep` (at least one: the live
/// deploy) remain. Their lists of dropped copies, and any list of a deploy no longer in the
/// history, move to the oldest deploy that stays. The ids dropped.
pub(crate) fn trim(live: &mut Live, keep: usize) -> Vec<String> {
    let excess = live.history.len().saturating_sub(keep.max(1));
    let removed: Vec<String> = live.history.drain(..excess).map(|s| s.id).collect();
    let ids: HashSet<&str> = live.history.iter().map(|s| s.id.as_str()).collect();
    let gone: Vec<String> =
        live.dropped.keys().filter(|id| !ids.contains(id.as_str())).cloned().collect();
    let mut carried = BTreeSet::new();
    for id in gone {
        carried.extend(live.dropped.remove(&id).unwrap_or_default());
    }
    if let Some(oldest) = live.history.first()
        && !carried.is_empty()
    {
        let list = live.dropped.entry(oldest.id.clone()).or_default();
        carried.extend(list.drain(..));
        *list = carried.into_iter().collect();
    }
    removed
}

/// The copies no deploy of the history uses any more: the oldest deploy's list less every
/// copy the live files and the later deploys' lists name. `None` when that cannot be known
/// (a later deploy has no list, being older than lists): then nothing is deleted.
pub(crate) fn deletable(live: &Live) -> Option<Vec<String>> {
    let (oldest, later) = live.history.split_first()?;
    let candidates = live.dropped.get(&oldest.id)?;
    let mut used: HashSet<&str> = HashSet::new();
    for s in later {
        used.extend(live.dropped.get(&s.id)?.iter().map(String::as_str));
    }
    let live_names: HashSet<String> = live.files.values().map(Entry::object_name).collect();
    Some(
        candidates
            .iter()
            .filter(|c| !used.contains(c.as_str()) && !live_names.contains(*c))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::state::{Cache, DeployKind, DeploySummary, FORMAT};
    use chrono::Utc;
    use std::collections::BTreeMap;

    fn files(list: &[(&str, &str)]) -> Files {
        list.iter()
            .map(|(p, h)| {
                let e = Entry {
                    hash: (*h).into(),
                    size: 1,
                    content_type: "text/html".into(),
                    cache: Cache::Revalidate,
                };
                ((*p).to_owned(), e)
            })
            .collect()
    }

    fn name(hash: &str) -> String {
        files(&[("x", hash)])["x"].object_name()
    }

    fn summary(id: &str) -> DeploySummary {
        let now = Utc::now();
        DeploySummary {
            id: id.into(),
            kind: DeployKind::Publish,
            restores: None,
            started_at: now,
            finished_at: now,
            files: 0,
            uploaded: 0,
            unchanged: 0,
            removed: 0,
            deleted: 0,
            bytes_uploaded: 0,
            bytes_deleted: 0,
        }
    }

    /// The live state after deploying each site in turn, keeping `keep` deploys, with the
    /// copies deleted as `run` deletes them.
    fn deploy_all(sites: &[Files], keep: usize) -> (Live, BTreeSet<String>) {
        let mut live: Option<Live> = None;
        let mut deleted = BTreeSet::new();
        for (i, site) in sites.iter().enumerate() {
            let id = format!("d{i:02}");
            let gone = dropped(live.as_ref().map(|l| &l.files), &Inflight::default(), site);
            let mut next = live.take().unwrap_or(Live {
                format: FORMAT,
                deploy: String::new(),
                published_at: Utc::now(),
                base_url: None,
                files: Files::new(),
                retired: BTreeMap::new(),
                history: Vec::new(),
                dropped: BTreeMap::new(),
            });
            next.deploy.clone_from(&id);
            next.files = site.clone();
            next.history.push(summary(&id));
            next.dropped.insert(id, gone);
            trim(&mut next, keep);
            if let Some(doomed) = deletable(&next) {
                deleted.extend(doomed);
                let oldest = next.history[0].id.clone();
                next.dropped.insert(oldest, Vec::new());
            }
            live = Some(next);
        }
        (live.expect("deployed"), deleted)
    }

    #[test]
    fn copies_go_when_the_last_deploy_using_them_leaves_the_history() {
        let sites = [
            files(&[("a", "1"), ("b", "1")]),
            files(&[("a", "2"), ("b", "1")]),
            files(&[("a", "3"), ("b", "1")]),
            files(&[("a", "1"), ("b", "4")]),
            files(&[("a", "5"), ("b", "4")]),
        ];
        let (live, deleted) = deploy_all(&sites, 2);
        assert_eq!(live.history.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["d03", "d04"]);
        // Kept: d03 (a=1, b=4) and d04 (a=5, b=4). Gone: 2 and 3; 1 came back with d03.
        assert_eq!(deleted, [name("2"), name("3")].into_iter().collect());
        assert!(live.dropped.keys().all(|k| k == "d03" || k == "d04"));
    }

    #[test]
    fn a_deploy_without_a_list_keeps_every_copy() {
        let mut live = deploy_all(&[files(&[("a", "1")])], 5).0;
        live.history = vec![summary("d1"), summary("legacy"), summary("d3")];
        live.dropped = BTreeMap::from([("d1".into(), vec![name("7")]), ("d3".into(), vec![])]);
        assert_eq!(deletable(&live), None, "`legacy` has no list: its copies are unknown");
        live.dropped.insert("legacy".into(), Vec::new());
        assert_eq!(deletable(&live), Some(vec![name("7")]));
    }

    #[test]
    fn trimming_keeps_at_least_the_live_deploy() {
        let (live, _) = deploy_all(&[files(&[("a", "1")]), files(&[("a", "2")])], 0);
        assert_eq!(live.history.len(), 1);
        assert_eq!(live.history[0].id, "d01");
    }
}
