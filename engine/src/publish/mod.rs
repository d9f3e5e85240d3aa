//! Publishing a built site to object storage: diff upload against what is live, in an
//! order that never serves a page whose assets are missing, with every deploy recorded
//! and restorable, and a purge list for the CDN.
//!
//! The engine's one edge with network I/O: `object_store` is async, so each `Target` owns a
//! small tokio runtime and these functions stay synchronous for the command line (and for
//! the API, which calls them from its blocking pool).
//!
//! Layout of a destination (`s3://bucket/prefix`, `file:///dir`, ...):
//!
//! ```text
//! index.html, products/…, assets/…, images/…   the live site, served by the CDN
//! aurelio-manifest.json                         the site's manifest, written after the pages
//! _aurelio/manifest.json                        the live state; written last: the commit point
//! _aurelio/deploys/<id>.json                    one record per deploy: counts, purge list, files
//! _aurelio/objects/<blake3>.<tag>               a copy of every file ever published, by content
//! _aurelio/inflight.json                        paths a publish in progress may have written
//! ```

mod error;
pub mod plan;
mod prune;
pub mod purge;
mod run;
pub mod state;
mod target;

pub use error::PublishError;
pub use purge::PurgeList;
pub use state::{DeployKind, DeploySummary};
pub use target::{Target, install_crypto_provider};

use crate::output::MANIFEST;
use crate::progress::Progress;
use run::{Deploy, Source};
use state::{Cache, DeployRecord, Entry, Files, LIVE, Live, SiteManifest};
use std::path::Path;
use std::time::Duration;

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Base URL for absolute purge URLs; read from the site's `robots.txt` when absent.
    pub base_url: Option<String>,
    /// How long hashed files (assets, images) that left the site stay in the bucket, so
    /// that pages still cached somewhere never reference a missing file.
    pub grace: Duration,
    /// Store operations in flight at once.
    pub concurrency: usize,
    /// URL that receives the purge list as a JSON POST after a deploy that changed files.
    pub purge_webhook: Option<String>,
    /// Deploys kept restorable (at least 1): older ones leave the history, their records
    /// and the copies only they used are deleted.
    pub keep: usize,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            base_url: None,
            grace: Duration::from_secs(24 * 3600),
            concurrency: 16,
            purge_webhook: None,
            keep: state::KEEP_DEPLOYS,
        }
    }
}

/// What a deploy did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// Counts and bytes, as recorded.
    pub summary: DeploySummary,
    /// The destination.
    pub url: String,
    /// URLs to purge from the CDN.
    pub purge: PurgeList,
    /// Files that left the site and stay in the bucket for their grace period.
    pub kept: usize,
    /// The purge webhook's answer (`None` when none was called): its HTTP status, or why
    /// it failed. A failure does not undo the deploy.
    pub webhook: Option<Result<u16, String>>,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether a deploy was recorded: `false` when the site was already live exactly as
    /// it is (the summary then names the live deploy, which stays).
    pub recorded: bool,
    /// Records of deploys that left the history, deleted by this deploy.
    pub pruned_deploys: usize,
    /// Content-addressed copies no deploy in the history uses, deleted by this deploy.
    pub pruned_copies: usize,
}

/// The deploys of a destination.
#[derive(Debug, Clone, Default)]
pub struct Deploys {
    /// The live deploy, if anything is published.
    pub live: Option<String>,
    /// The deploys that can be restored (the last `PublishOptions::keep`), oldest first.
    pub history: Vec<DeploySummary>,
}

/// Reads the files of a built site: its manifest's entries plus the manifest itself.
pub fn site_files(dir: &Path) -> Result<Files, PublishError> {
    let not_a_site = |reason: String| PublishError::NotASite { dir: dir.to_owned(), reason };
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            not_a_site(format!("no `{MANIFEST}`; run `aurelio build` first"))
        }
        _ => PublishError::Read { path: path.clone(), error: e },
    })?;
    let manifest: SiteManifest =
        serde_json::from_slice(&bytes).map_err(|e| not_a_site(format!("`{MANIFEST}`: {e}")))?;
    if let Some(bad) = manifest.files.keys().find(|p| {
        state::is_reserved(p)
            || p.as_str() == MANIFEST
            || p.starts_with('/')
            || p.split('/').any(|s| s == "..")
    }) {
        return Err(not_a_site(format!(
            "`{MANIFEST}` lists `{bad}`, a path that cannot be published"
        )));
    }
    let mut files = manifest.files;
    files.insert(
        MANIFEST.to_owned(),
        Entry {
            hash: blake3::hash(&bytes).to_hex().to_string(),
            size: bytes.len() as u64,
            content_type: crate::output::content_type(MANIFEST).to_owned(),
            cache: Cache::Revalidate,
        },
    );
    Ok(files)
}

/// Publishes the built site in `dir`: uploads only what changed, assets before pages
/// before the manifest, and deletes what left the site once the new state is live.
pub fn publish(
    target: &Target,
    dir: &Path,
    opts: &PublishOptions,
    progress: &dyn Progress,
) -> Result<PublishReport, PublishError> {
    let files = site_files(dir)?;
    let base_url = purge::base_url(dir, opts.base_url.as_deref());
    if let Some(url) = &opts.base_url
        && !purge::is_base_url(url)
    {
        return Err(PublishError::BaseUrl(url.clone()));
    }
    target.runtime.block_on(run::run(Deploy {
        target,
        progress,
        opts,
        kind: DeployKind::Publish,
        restores: None,
        files,
        base_url,
        source: Source::Dir(dir),
    }))
}

/// Makes an earlier deploy live again, byte for byte, by server-side copies of the
/// content-addressed copies; recorded as a new deploy. `deploy` is an id or a unique
/// prefix of one.
pub fn rollback(
    target: &Target,
    deploy: &str,
    opts: &PublishOptions,
    progress: &dyn Progress,
) -> Result<PublishReport, PublishError> {
    target.runtime.block_on(async {
        let url = target.url().to_owned();
        let live: Live = target
            .read_json(LIVE)
            .await?
            .ok_or_else(|| PublishError::NothingPublished { url: url.clone() })?;
        let id = resolve(&live, deploy, &url)?;
        let record: DeployRecord = target
            .read_json(&state::record_key(&id))
            .await?
            .ok_or_else(|| PublishError::UnknownDeploy { id: id.clone(), url: url.clone() })?;
        let base_url = opts.base_url.clone().or(record.base_url);
        run::run(Deploy {
            target,
            progress,
            opts,
            kind: DeployKind::Rollback,
            restores: Some(id),
            files: record.files,
            base_url,
            source: Source::Copies,
        })
        .await
    })
}

/// The deploys of a destination (none when nothing is published there yet).
pub fn list(target: &Target) -> Result<Deploys, PublishError> {
    target.runtime.block_on(async {
        match target.read_json::<Live>(LIVE).await? {
            Some(live) => Ok(Deploys { live: Some(live.deploy), history: live.history }),
            None => {
                target.check_bucket().await?;
                Ok(Deploys::default())
            }
        }
    })
}

/// The live state of a destination, as the last deploy wrote it.
pub fn live_state(target: &Target) -> Result<Option<Live>, PublishError> {
    target.runtime.block_on(target.read_json(LIVE))
}

/// The id of the deploy `wanted` names: exact, or the one id it is a prefix of.
fn resolve(live: &Live, wanted: &str, url: &str) -> Result<String, PublishError> {
    if live.history.iter().any(|s| s.id == wanted) {
        return Ok(wanted.to_owned());
    }
    let matches: Vec<String> =
        live.history.iter().filter(|s| s.id.starts_with(wanted)).map(|s| s.id.clone()).collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        0 => Err(PublishError::UnknownDeploy { id: wanted.to_owned(), url: url.to_owned() }),
        _ => Err(PublishError::AmbiguousDeploy {
            id: wanted.to_owned(),
            url: url.to_owned(),
            matches,
        }),
    }
}

#[cfg(test)]
mod tests;
