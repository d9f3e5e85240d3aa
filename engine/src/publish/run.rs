//! Carries a deploy out, in the order that keeps the live site whole at every moment:
//! journal, hashed files, pages, the site's manifest, the deploy record, the live state
//! (the commit point), then deletions of what is due, then the purge webhook.
//!
//! A deploy killed anywhere before the live state is written leaves the previous state in
//! force and every file it references in place; the journal makes the next run rewrite
//! whatever the killed one may have overwritten.

use super::plan::{self, Plan};
use super::prune;
use super::purge::{self, PurgeList};
use super::state::{
    self, DeployKind, DeployRecord, DeploySummary, Entry, FORMAT, Files, INFLIGHT, Inflight, LIVE,
    Live,
};
use super::{PublishError, PublishOptions, PublishReport, Target};
use crate::progress::Progress;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Where the bytes of the files to write come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// A built site directory (publish).
    Dir(&'a Path),
    /// The content-addressed copies in the bucket (rollback).
    Copies,
}

/// One deploy to carry out.
pub(crate) struct Deploy<'a> {
    pub target: &'a Target,
    pub progress: &'a dyn Progress,
    pub opts: &'a PublishOptions,
    pub kind: DeployKind,
    pub restores: Option<String>,
    pub files: Files,
    pub base_url: Option<String>,
    pub source: Source<'a>,
}

/// A sortable, unique deploy id: UTC time plus a short hash.
pub(crate) fn new_id(now: DateTime<Utc>) -> String {
    let seed = format!("{now:?} {} {:?}", std::process::id(), Instant::now());
    format!("{}-{}", now.format("%Y%m%d-%H%M%S"), &blake3::hash(seed.as_bytes()).to_hex()[..6])
}

pub(crate) async fn run(d: Deploy<'_>) -> Result<PublishReport, PublishError> {
    let clock = Instant::now();
    let started_at = Utc::now();
    let id = new_id(started_at);
    let target = d.target;
    let concurrency = d.opts.concurrency.max(1);

    d.progress.phase("connect", 0);
    let live: Option<Live> = target.read_json(LIVE).await?;
    if live.is_none() {
        target.check_bucket().await?;
    }
    let inflight: Inflight = target.read_json(INFLIGHT).await?.unwrap_or_default();
    d.progress.finish_phase();

    let plan = plan::plan(&d.files, live.as_ref(), &inflight, started_at, d.opts.grace);
    if let Some(live) = &live
        && d.kind == DeployKind::Publish
        && changes_nothing(&plan, live, &inflight, d.base_url.as_ref())
    {
        d.progress.phase("commit", 0);
        d.progress.finish_phase();
        return Ok(unchanged(&d, live, started_at, clock));
    }
    if matches!(d.source, Source::Copies) {
        verify_copies(&d, &plan, &id, concurrency).await?;
    }
    if plan.upload_count() > 0 {
        let mut journal = inflight.clone();
        journal.deploys.push(id.clone());
        for path in plan.uploads() {
            journal.paths.insert(path.clone(), d.files[path].clone());
        }
        target.put_json(INFLIGHT, &journal).await?;
    }

    let known: Mutex<HashSet<String>> =
        Mutex::new(live.iter().flat_map(|l| l.files.values()).map(Entry::object_name).collect());
    let uploaded_bytes = AtomicU64::new(0);
    for (phase, paths) in
        [("assets", &plan.immutable), ("pages", &plan.pages), ("manifest", &plan.manifest)]
    {
        d.progress.phase(phase, paths.len() as u64);
        futures::stream::iter(paths.iter().map(Ok))
            .try_for_each_concurrent(concurrency, |path| {
                let (known, uploaded_bytes, d) = (&known, &uploaded_bytes, &d);
                async move {
                    let entry = &d.files[path];
                    write_one(d, path, entry, known).await?;
                    uploaded_bytes.fetch_add(entry.size, Ordering::Relaxed);
                    d.progress.advance(1);
                    Ok::<(), PublishError>(())
                }
            })
            .await?;
        d.progress.finish_phase();
    }

    d.progress.phase("commit", 0);
    let mut summary = DeploySummary {
        id: id.clone(),
        kind: d.kind,
        restores: d.restores.clone(),
        started_at,
        finished_at: Utc::now(),
        files: d.files.len(),
        uploaded: plan.upload_count(),
        unchanged: plan.unchanged,
        removed: plan.removed.len(),
        deleted: 0,
        bytes_uploaded: uploaded_bytes.load(Ordering::Relaxed),
        bytes_deleted: 0,
    };
    let purge = PurgeList {
        deploy: id.clone(),
        base_url: d.base_url.clone(),
        urls: purge::urls(d.base_url.as_deref(), &plan.purge_paths()),
    };
    let mut record = DeployRecord {
        format: FORMAT,
        deploy: summary.clone(),
        base_url: d.base_url.clone(),
        purge: purge.urls.clone(),
        files: d.files.clone(),
    };
    target.put_json(&state::record_key(&id), &record).await?;
    let gone = prune::dropped(live.as_ref().map(|l| &l.files), &inflight, &d.files);
    let (mut history, mut dropped) = live.map(|l| (l.history, l.dropped)).unwrap_or_default();
    history.push(summary.clone());
    dropped.insert(id.clone(), gone);
    let mut next = Live {
        format: FORMAT,
        deploy: id.clone(),
        published_at: summary.finished_at,
        base_url: d.base_url.clone(),
        files: d.files,
        retired: plan.retired.clone(),
        history,
        dropped,
    };
    let pruned_ids = prune::trim(&mut next, d.opts.keep);
    target.put_json(LIVE, &next).await?;
    d.progress.finish_phase();

    d.progress.phase("cleanup", plan.due.len() as u64);
    let deleted_bytes = AtomicU64::new(0);
    futures::stream::iter(plan.due.iter().map(Ok))
        .try_for_each_concurrent(concurrency, |path| {
            let (next, deleted_bytes, progress) = (&next, &deleted_bytes, d.progress);
            async move {
                target.delete(path).await?;
                let size = next.retired.get(path).map_or(0, |r| r.entry.size);
                deleted_bytes.fetch_add(size, Ordering::Relaxed);
                progress.advance(1);
                Ok::<(), PublishError>(())
            }
        })
        .await?;
    if !plan.due.is_empty() {
        for path in &plan.due {
            next.retired.remove(path);
        }
        summary.deleted = plan.due.len();
        summary.bytes_deleted = deleted_bytes.load(Ordering::Relaxed);
        if let Some(last) = next.history.last_mut() {
            *last = summary.clone();
        }
        record.deploy = summary.clone();
        target.put_json(&state::record_key(&id), &record).await?;
    }
    if plan.upload_count() > 0 || !inflight.paths.is_empty() {
        target.delete(INFLIGHT).await?;
    }
    d.progress.finish_phase();
    let stale_records = !pruned_ids.is_empty() || !inflight.deploys.is_empty();
    let pruned = prune_after(target, d.progress, &mut next, stale_records, concurrency).await?;
    if !plan.due.is_empty() || pruned.rewrite {
        target.put_json(LIVE, &next).await?;
    }

    let webhook = match &d.opts.purge_webhook {
        Some(url) if !purge.urls.is_empty() => {
            d.progress.phase("purge", 0);
            let result = purge::notify(url, &purge).await;
            d.progress.finish_phase();
            Some(result)
        }
        _ => None,
    };
    Ok(PublishReport {
        summary,
        url: target.url().to_owned(),
        purge,
        kept: next.retired.len(),
        webhook,
        elapsed: clock.elapsed(),
        recorded: true,
        pruned_deploys: pruned.records,
        pruned_copies: pruned.copies,
    })
}

/// Whether a publish would change nothing: same files, nothing to delete, no interrupted
/// publish to repair, same base URL. Such a publish records no deploy.
fn changes_nothing(plan: &Plan, live: &Live, inflight: &Inflight, base: Option<&String>) -> bool {
    plan.upload_count() == 0
        && plan.removed.is_empty()
        && plan.due.is_empty()
        && inflight.paths.is_empty()
        && inflight.deploys.is_empty()
        && live.base_url.as_ref() == base
}

/// The report of a publish that changed nothing: the live deploy stays, none is recorded.
fn unchanged(
    d: &Deploy<'_>,
    live: &Live,
    started_at: DateTime<Utc>,
    clock: Instant,
) -> PublishReport {
    let files = d.files.len();
    PublishReport {
        summary: DeploySummary {
            id: live.deploy.clone(),
            kind: d.kind,
            restores: None,
            started_at,
            finished_at: Utc::now(),
            files,
            uploaded: 0,
            unchanged: files,
            removed: 0,
            deleted: 0,
            bytes_uploaded: 0,
            bytes_deleted: 0,
        },
        url: d.target.url().to_owned(),
        purge: PurgeList {
            deploy: live.deploy.clone(),
            base_url: d.base_url.clone(),
            urls: vec![],
        },
        kept: live.retired.len(),
        webhook: None,
        elapsed: clock.elapsed(),
        recorded: false,
        pruned_deploys: 0,
        pruned_copies: 0,
    }
}

/// What pruning deleted, and whether the live state must be written again.
#[derive(Default)]
struct Pruned {
    records: usize,
    copies: usize,
    rewrite: bool,
}

/// After the commit: deletes the copies no deploy of the history uses (then empties the
/// oldest deploy's list, in the live state written next) and, when deploys left the
/// history or an interrupted publish may have left its record, the records of deploys not
/// in the history. Killed halfway, the next deploy does the rest.
async fn prune_after(
    target: &Target,
    progress: &dyn Progress,
    next: &mut Live,
    stale_records: bool,
    concurrency: usize,
) -> Result<Pruned, PublishError> {
    let mut pruned = Pruned::default();
    let doomed = prune::deletable(next);
    let stale: Vec<String> = if stale_records {
        let kept: HashSet<String> = next.history.iter().map(|s| format!("{}.json", s.id)).collect();
        let names = target.list_names(state::DEPLOYS).await?;
        names.into_iter().filter(|n| n.ends_with(".json") && !kept.contains(n)).collect()
    } else {
        Vec::new()
    };
    let work = doomed.as_ref().map_or(0, Vec::len) + stale.len();
    if work == 0 && doomed.is_none() {
        return Ok(pruned);
    }
    progress.phase("prune", work as u64);
    let keys: Vec<String> = doomed
        .iter()
        .flatten()
        .map(|name| format!("{}/{name}", state::OBJECTS))
        .chain(stale.iter().map(|n| format!("{}/{n}", state::DEPLOYS)))
        .collect();
    futures::stream::iter(keys.iter().map(Ok))
        .try_for_each_concurrent(concurrency, |key| async move {
            target.delete(key).await?;
            progress.advance(1);
            Ok::<(), PublishError>(())
        })
        .await?;
    progress.finish_phase();
    pruned.records = stale.len();
    if let (Some(doomed), Some(oldest)) = (doomed, next.history.first()) {
        pruned.copies = doomed.len();
        let list = next.dropped.entry(oldest.id.clone()).or_default();
        if !list.is_empty() {
            list.clear();
            pruned.rewrite = true;
        }
    }
    Ok(pruned)
}

/// Writes one file to its live path: from the site directory (with its content-addressed
/// copy, unless that copy exists already), or by a server-side copy from that copy.
async fn write_one(
    d: &Deploy<'_>,
    path: &str,
    entry: &Entry,
    known: &Mutex<HashSet<String>>,
) -> Result<(), PublishError> {
    let target = d.target;
    match d.source {
        Source::Copies => target.copy(&entry.object_key(), path).await,
        Source::Dir(dir) => {
            let file = dir.join(path);
            let bytes = tokio::fs::read(&file)
                .await
                .map_err(|error| PublishError::Read { path: file.clone(), error })?;
            if bytes.len() as u64 != entry.size
                || blake3::hash(&bytes).to_hex().as_str() != entry.hash
            {
                return Err(PublishError::Modified { path: file });
            }
            let payload = PutPayload::from(bytes);
            let new_copy = known.lock().map(|mut k| k.insert(entry.object_name())).unwrap_or(true);
            let copy = async {
                if new_copy {
                    target.put(&entry.object_key(), payload.clone(), Some(entry)).await
                } else {
                    Ok(())
                }
            };
            futures::try_join!(copy, target.put(path, payload.clone(), Some(entry))).map(drop)
        }
    }
}

/// Before a rollback touches anything: every copy it needs is there.
async fn verify_copies(
    d: &Deploy<'_>,
    plan: &Plan,
    id: &str,
    concurrency: usize,
) -> Result<(), PublishError> {
    let mut needed: Vec<(&String, String)> =
        plan.uploads().map(|p| (p, d.files[p].object_key())).collect();
    needed.sort_by(|a, b| a.1.cmp(&b.1));
    needed.dedup_by(|a, b| a.1 == b.1);
    d.progress.phase("verify", needed.len() as u64);
    let restores = d.restores.clone().unwrap_or_else(|| id.to_owned());
    futures::stream::iter(needed)
        .map(|(path, key)| async move {
            let exists = d.target.exists(&key).await?;
            d.progress.advance(1);
            Ok::<_, PublishError>((path, key, exists))
        })
        .buffer_unordered(concurrency)
        .try_for_each(|(path, key, exists)| {
            let restores = restores.clone();
            async move {
                if exists {
                    Ok(())
                } else {
                    Err(PublishError::MissingCopy { id: restores, path: path.clone(), key })
                }
            }
        })
        .await?;
    d.progress.finish_phase();
    Ok(())
}
