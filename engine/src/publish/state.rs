//! What a published site records about itself in its bucket, under `_aurelio/`: the live
//! state (the commit point of every publish), deploy records, the in-flight journal and
//! the content-addressed copies that make rollback possible.
//!
//! Only data shapes and key names live here; `run` decides when each is written.

use crate::output::CachePolicy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Folder of everything Aurelio keeps beside a published site.
pub const DIR: &str = "_aurelio";
/// The live state: written last by every publish, it is what is published.
pub const LIVE: &str = "_aurelio/manifest.json";
/// The journal of paths a publish in progress may have overwritten.
pub const INFLIGHT: &str = "_aurelio/inflight.json";
/// Folder of deploy records, `<id>.json`.
pub const DEPLOYS: &str = "_aurelio/deploys";
/// Folder of content-addressed copies of every file ever published.
pub const OBJECTS: &str = "_aurelio/objects";
/// Format version of the files above.
pub const FORMAT: u32 = 1;
/// Deploys kept by default: their records, their place in the history and the copies
/// they use, so that each of them can be restored.
pub const KEEP_DEPLOYS: usize = 20;

/// Cache policy as stored in manifests (mirrors `output::CachePolicy`, readable too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cache {
    /// Content-hashed name: cached for a year.
    Immutable,
    /// Pages, sitemap, feeds: short cache, revalidated.
    Revalidate,
}

impl Cache {
    /// The policy of the build's output module.
    pub fn policy(self) -> CachePolicy {
        match self {
            Self::Immutable => CachePolicy::Immutable,
            Self::Revalidate => CachePolicy::Revalidate,
        }
    }

    /// The `Cache-Control` header value.
    pub fn header(self) -> &'static str {
        self.policy().header()
    }
}

/// One file of a site: what the build's manifest says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// blake3 of the content, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type, sent as `Content-Type`.
    pub content_type: String,
    /// Cache policy, sent as `Cache-Control`.
    pub cache: Cache,
}

impl Entry {
    /// Name of the content-addressed copy: the content hash plus a tag of the headers, so
    /// that a copy restored by a server-side copy carries the right headers.
    pub fn object_name(&self) -> String {
        let headers = format!("{}\n{}", self.content_type, self.cache.header());
        format!("{}.{}", self.hash, &blake3::hash(headers.as_bytes()).to_hex()[..8])
    }

    /// Key of the content-addressed copy, relative to the site's prefix.
    pub fn object_key(&self) -> String {
        format!("{OBJECTS}/{}", self.object_name())
    }
}

/// Files of a site by relative path (`/` separators), sorted.
pub type Files = BTreeMap<String, Entry>;

/// The manifest a build writes (`aurelio-manifest.json`), as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct SiteManifest {
    /// Format version of the build's manifest.
    pub version: u32,
    /// Every file but the manifest itself.
    pub files: Files,
}

/// What a deploy did; kept in the live state's history and in its deploy record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploySummary {
    /// Sortable id, e.g. `20261122-101530-3f9a1c`.
    pub id: String,
    /// `publish` or `rollback`.
    pub kind: DeployKind,
    /// The deploy a rollback restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When its state went live.
    pub finished_at: DateTime<Utc>,
    /// Files in the site, manifest included.
    pub files: usize,
    /// Files written to their live path.
    pub uploaded: usize,
    /// Files already live with the same content.
    pub unchanged: usize,
    /// Files that left the site with this deploy.
    pub removed: usize,
    /// Files deleted from the bucket by this deploy (removed pages at once, assets after
    /// their grace period).
    pub deleted: usize,
    /// Bytes written to live paths.
    pub bytes_uploaded: u64,
    /// Bytes deleted.
    pub bytes_deleted: u64,
}

/// How a deploy came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployKind {
    /// `aurelio publish --from DIR`.
    Publish,
    /// `aurelio publish --rollback ID`.
    Rollback,
}

/// A deploy as recorded in `_aurelio/deploys/<id>.json`: enough to restore it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployRecord {
    /// Format version.
    pub format: u32,
    /// What it did.
    pub deploy: DeploySummary,
    /// Base URL of the site, for absolute purge URLs.
    pub base_url: Option<String>,
    /// URLs a CDN should purge after this deploy.
    pub purge: Vec<String>,
    /// Every file of the site as deployed.
    pub files: Files,
}

/// A file that left the site and waits for its deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// The file as it was last published.
    #[serde(flatten)]
    pub entry: Entry,
    /// When it left the site.
    pub since: DateTime<Utc>,
}

/// The live state, `_aurelio/manifest.json`: what is published. Every publish writes it
/// last, so a publish that dies before leaves the previous state in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Live {
    /// Format version.
    pub format: u32,
    /// The deploy that is live.
    pub deploy: String,
    /// When it went live.
    pub published_at: DateTime<Utc>,
    /// Base URL of the site.
    pub base_url: Option<String>,
    /// Every live file.
    pub files: Files,
    /// Files gone from the site, still in the bucket until they are due.
    #[serde(default)]
    pub retired: BTreeMap<String, Retired>,
    /// The deploys that can be restored, oldest first: the last `PublishOptions::keep`
    /// that went live, each with its record under `_aurelio/deploys/`.
    #[serde(default)]
    pub history: Vec<DeploySummary>,
    /// Per deploy of `history`: names of the content-addressed copies the deploy before it
    /// used and it does not (plus those of an interrupted publish it cleaned up after).
    /// With the live files, the lists of all deploys but the oldest name every copy a
    /// deploy in `history` can need; the oldest deploy's list holds copies only deploys
    /// that left the history used, deleted once no later deploy uses them. A deploy
    /// without a list (made before lists were kept) stops copies from being deleted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped: BTreeMap<String, Vec<String>>,
}

/// The in-flight journal: live paths a publish that has not finished may have written.
/// The next publish rewrites or removes them even when the live state says they are
/// current.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inflight {
    /// Deploys that wrote paths without finishing.
    pub deploys: Vec<String>,
    /// Paths they may have written, with the entry each was written with.
    pub paths: BTreeMap<String, Entry>,
}

/// Deploy record key of an id.
pub fn record_key(id: &str) -> String {
    format!("{DEPLOYS}/{id}.json")
}

/// Whether a site path is Aurelio's own (never part of a site).
pub fn is_reserved(path: &str) -> bool {
    path == DIR || path.starts_with("_aurelio/")
}

/// Paths of a set, for the journal.
pub fn path_set(files: &Files) -> BTreeSet<&str> {
    files.keys().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: &str, content_type: &str, cache: Cache) -> Entry {
        Entry { hash: hash.into(), size: 1, content_type: content_type.into(), cache }
    }

    #[test]
    fn object_names_depend_on_content_and_headers() {
        let a = entry("ab", "text/html; charset=utf-8", Cache::Revalidate);
        let same = entry("ab", "text/html; charset=utf-8", Cache::Revalidate);
        let other_type = entry("ab", "text/plain; charset=utf-8", Cache::Revalidate);
        let other_cache = entry("ab", "text/html; charset=utf-8", Cache::Immutable);
        assert_eq!(a.object_name(), same.object_name());
        assert_ne!(a.object_name(), other_type.object_name());
        assert_ne!(a.object_name(), other_cache.object_name());
        assert!(a.object_key().starts_with("_aurelio/objects/ab."));
    }

    #[test]
    fn reads_the_manifest_a_build_writes() {
        let json = r#"{"version": 1, "files": {"index.html": {"hash": "aa", "size": 3,
            "content_type": "text/html; charset=utf-8", "cache": "revalidate"}}}"#;
        let manifest: SiteManifest = serde_json::from_str(json).expect("parses");
        assert_eq!(manifest.files["index.html"].cache, Cache::Revalidate);
        assert_eq!(manifest.files["index.html"].cache.header(), CachePolicy::Revalidate.header());
    }

    #[test]
    fn reserved_paths_are_aurelios_own() {
        assert!(is_reserved("_aurelio/manifest.json"));
        assert!(!is_reserved("_aureliox/a.html"));
        assert!(!is_reserved("index.html"));
    }
}
