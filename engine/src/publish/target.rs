//! Where a site is published: an `object_store` store plus a key prefix, built from a
//! destination URL, with retries, clear errors and the runtime its I/O runs on.
//!
//! `file:///path`, `memory://`, `s3://bucket/prefix` (configured from the `AWS_*`
//! variables: keys, region, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`), `gs://bucket/prefix`
//! (`GOOGLE_*`) and `az://container/prefix` (`AZURE_*`).

use super::error::{PublishError, describe, is_missing_bucket, status};
use super::state::Entry;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutOptions,
    PutPayload, RetryConfig,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts of our own around a store operation whose error looks transient, on top of
/// the store client's retries of HTTP 5xx, 429 and connection errors.
const ATTEMPTS: u32 = 3;

/// A destination: a store, the prefix of the site's keys in it, and the runtime that
/// drives its I/O (the engine's only async code; callers stay synchronous). Like any tokio
/// runtime it must not be dropped inside async code: an async caller uses it from a
/// blocking thread (`spawn_blocking`).
pub struct Target {
    pub(crate) store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    bucket: Option<String>,
    attributes: bool,
    pub(crate) runtime: tokio::runtime::Runtime,
    writes: Budget,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("url", &self.url).field("store", &self.store).finish()
    }
}

/// The client settings every cloud store gets unless the environment says otherwise.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        max_retries: 6,
        retry_timeout: Duration::from_secs(120),
    }
}

/// Makes ring the process's TLS crypto provider (the one compiled in: no C build of
/// aws-lc). `Target::from_url` calls it; call it before building other `object_store` or
/// `reqwest` clients. Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn runtime() -> Result<tokio::runtime::Runtime, PublishError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("aurelio-publish")
        .enable_all()
        .build()
        .map_err(PublishError::Runtime)
}

impl Target {
    /// The destination named by `url`.
    pub fn from_url(url: &str) -> Result<Self, PublishError> {
        let bad = |reason: String| PublishError::Destination { url: url.to_owned(), reason };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("{e}")))?;
        install_crypto_provider();
        let runtime = runtime()?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let prefix = parsed.path().trim_matches('/').to_owned();
        let (store, bucket, attributes): (Arc<dyn ObjectStore>, Option<String>, bool) = match parsed
            .scheme()
        {
            "file" => {
                let dir =
                    parsed.to_file_path().map_err(|()| bad("not an absolute local path".into()))?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| bad(format!("cannot create `{}`: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(format!("{e}")))?
                    .with_automatic_cleanup(true);
                return Ok(Self::assemble(Arc::new(fs), "", url, None, false, runtime));
            }
            "memory" => {
                return Ok(Self::assemble(Arc::new(InMemory::new()), "", url, None, true, runtime));
            }
            "s3" | "s3a" => {
                if host.is_empty() {
                    return Err(bad("no bucket: use `s3://BUCKET/PREFIX`".into()));
                }
                let mut b =
                    AmazonS3Builder::from_env().with_bucket_name(&host).with_retry(retry_config());
                if b.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
                    b = b.with_region("us-east-1");
                }
                for (key, value) in
                    [(ClientConfigKey::ConnectTimeout, "10s"), (ClientConfigKey::Timeout, "60s")]
                {
                    if b.get_config_value(&AmazonS3ConfigKey::Client(key)).is_none() {
                        b = b.with_config(AmazonS3ConfigKey::Client(key), value);
                    }
                }
                let s3 = runtime.block_on(async { b.build() }).map_err(|e| bad(format!("{e}")))?;
                (Arc::new(s3), Some(host), true)
            }
            "gs" => {
                if host.is_empty() {
                    return Err(bad("no bucket: use `gs://BUCKET/PREFIX`".into()));
                }
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&host)
                    .with_retry(retry_config());
                for (key, value) in
                    [(ClientConfigKey::ConnectTimeout, "10s"), (ClientConfigKey::Timeout, "60s")]
                {
                    if b.get_config_value(&GoogleConfigKey::Client(key)).is_none() {
                        b = b.with_config(GoogleConfigKey::Client(key), value);
                    }
                }
                let gcs = runtime.block_on(async { b.build() }).map_err(|e| bad(format!("{e}")))?;
                (Arc::new(gcs), Some(host), true)
            }
            "az" | "azure" => {
                if host.is_empty() {
                    return Err(bad("no container: use `az://CONTAINER/PREFIX`".into()));
                }
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_container_name(&host)
                    .with_retry(retry_config());
                for (key, value) in
                    [(ClientConfigKey::ConnectTimeout, "10s"), (ClientConfigKey::Timeout, "60s")]
                {
                    if b.get_config_value(&AzureConfigKey::Client(key)).is_none() {
                        b = b.with_config(AzureConfigKey::Client(key), value);
                    }
                }
                let az = runtime.block_on(async { b.build() }).map_err(|e| bad(format!("{e}")))?;
                (Arc::new(az), Some(host), true)
            }
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}`: use `file:///path`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` or `memory://`"
                )));
            }
        };
        Ok(Self::assemble(store, &prefix, url, bucket, attributes, runtime))
    }

    /// A destination over an existing store (tests share one in-memory store between
    /// publishes this way). `attributes`: whether the store keeps `Content-Type` and
    /// `Cache-Control` (a local file system does not).
    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        label: &str,
        attributes: bool,
    ) -> Result<Self, PublishError> {
        Ok(Self::assemble(store, prefix.trim_matches('/'), label, None, attributes, runtime()?))
    }

    fn assemble(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        url: &str,
        bucket: Option<String>,
        attributes: bool,
        runtime: tokio::runtime::Runtime,
    ) -> Self {
        Self {
            store,
            prefix: prefix.to_owned(),
            url: url.to_owned(),
            bucket,
            attributes,
            runtime,
            writes: Budget::default(),
        }
    }

    /// The destination as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops every write after `n` more writes succeeded, as a crash would (tests).
    pub fn fail_after(&self, n: Option<u64>) {
        self.writes.set(n);
    }

    /// The store key of a site path.
    pub(crate) fn key(&self, rel: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn error(&self, op: &'static str, rel: &str, error: object_store::Error) -> PublishError {
        let key = self.key(rel).to_string();
        let missing = matches!(error, object_store::Error::NotFound { .. }) && op != "read";
        if self.bucket.is_some() && (missing || is_missing_bucket(&error)) {
            return PublishError::NoBucket {
                bucket: self.bucket.clone().unwrap_or_default(),
                url: self.url.clone(),
            };
        }
        let reason = describe(&error);
        let error = Box::new(error);
        match *error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                PublishError::Denied { url: self.url.clone(), op, key, reason, error }
            }
            _ if matches!(status(&error), Some(401 | 403)) => {
                PublishError::Denied { url: self.url.clone(), op, key, reason, error }
            }
            _ => PublishError::Store { url: self.url.clone(), op, key, reason, error },
        }
    }

    /// Reads and parses a JSON file of the site; `None` when it does not exist.
    pub(crate) async fn read_json<T: DeserializeOwned>(
        &self,
        rel: &str,
    ) -> Result<Option<T>, PublishError> {
        let Some(bytes) = self.read(rel).await? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| PublishError::Corrupt {
            url: self.url.clone(),
            key: self.key(rel).to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads a file; `None` when it does not exist.
    pub(crate) async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let key = self.key(rel);
        let got = retry(|| async { self.store.get(&key).await?.bytes().await }).await;
        match got {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("read", rel, e)),
        }
    }

    /// Whether a file exists.
    pub(crate) async fn exists(&self, rel: &str) -> Result<bool, PublishError> {
        let key = self.key(rel);
        match retry(|| self.store.head(&key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("read", rel, e)),
        }
    }

    /// Fails with a clear error when the bucket does not exist (a missing object and a
    /// missing bucket look alike to a read).
    pub(crate) async fn check_bucket(&self) -> Result<(), PublishError> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        retry(|| self.store.list_with_delimiter(prefix.as_ref()))
            .await
            .map(drop)
            .map_err(|e| self.error("list", "", e))
    }

    /// Writes a file, with the headers of `entry` where the store keeps headers.
    pub(crate) async fn put(
        &self,
        rel: &str,
        payload: PutPayload,
        entry: Option<&Entry>,
    ) -> Result<(), PublishError> {
        self.writes.spend()?;
        let key = self.key(rel);
        let mut attributes = Attributes::new();
        if let (true, Some(entry)) = (self.attributes, entry) {
            attributes.insert(Attribute::ContentType, entry.content_type.clone().into());
            attributes.insert(Attribute::CacheControl, entry.cache.header().into());
        }
        retry(|| {
            let opts = PutOptions::from(attributes.clone());
            self.store.put_opts(&key, payload.clone(), opts)
        })
        .await
        .map(drop)
        .map_err(|e| self.error("write", rel, e))
    }

    /// Writes a JSON file (revalidated, never cached for long).
    pub(crate) async fn put_json<T: Serialize>(
        &self,
        rel: &str,
        value: &T,
    ) -> Result<(), PublishError> {
        let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
        let entry = Entry {
            hash: String::new(),
            size: bytes.len() as u64,
            content_type: "application/json".into(),
            cache: super::state::Cache::Revalidate,
        };
        self.put(rel, PutPayload::from(bytes), Some(&entry)).await
    }

    /// A server-side copy (headers travel with the object).
    pub(crate) async fn copy(&self, from: &str, to: &str) -> Result<(), PublishError> {
        self.writes.spend()?;
        let (src, dst) = (self.key(from), self.key(to));
        retry(|| self.store.copy(&src, &dst)).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => self.error("read", from, e),
            e => self.error("copy", to, e),
        })
    }

    /// Names of the files directly in a folder of the site (none when it does not exist).
    pub(crate) async fn list_names(&self, dir: &str) -> Result<Vec<String>, PublishError> {
        let key = self.key(dir);
        match retry(|| self.store.list_with_delimiter(Some(&key))).await {
            Ok(listing) => Ok(listing
                .objects
                .iter()
                .filter_map(|o| o.location.filename().map(str::to_owned))
                .collect()),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(self.error("list", dir, e)),
        }
    }

    /// Deletes a file; a file already gone is fine.
    pub(crate) async fn delete(&self, rel: &str) -> Result<(), PublishError> {
        self.writes.spend()?;
        let key = self.key(rel);
        match retry(|| self.store.delete(&key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", rel, e)),
        }
    }
}

/// Runs a store operation again, with exponential backoff, when it failed in a way that
/// may be transient (`Generic`: timeouts, connection resets, 5xx once the client gave up).
/// Missing objects, refused access and invalid requests fail at once.
async fn retry<T, F, Fut>(mut op: F) -> object_store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e @ object_store::Error::Generic { .. })
                if attempt < ATTEMPTS && !status(&e).is_some_and(|s| (400..500).contains(&s)) =>
            {
                tracing::warn!(
                    error = describe(&e),
                    attempt,
                    "transient store error, trying again"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Writes left before a simulated crash (`None`: unlimited).
#[derive(Debug, Default)]
struct Budget {
    limit: AtomicU64,
    spent: AtomicU64,
}

impl Budget {
    fn set(&self, n: Option<u64>) {
        self.limit.store(n.map_or(0, |n| n + 1), Ordering::SeqCst);
        self.spent.store(0, Ordering::SeqCst);
    }

    fn spend(&self) -> Result<(), PublishError> {
        let limit = self.limit.load(Ordering::SeqCst);
        if limit == 0 {
            return Ok(());
        }
        let spent = self.spent.fetch_add(1, Ordering::SeqCst);
        if spent + 1 >= limit { Err(PublishError::Interrupted(limit - 1)) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_schemes_and_missing_buckets() {
        let err = Target::from_url("ftp://host/x").expect_err("unknown scheme");
        assert!(err.to_string().contains("unknown scheme `ftp`"), "{err}");
        let err = Target::from_url("s3:///prefix").expect_err("no bucket");
        assert!(err.to_string().contains("no bucket"), "{err}");
    }

    #[test]
    fn keys_carry_the_prefix() {
        let t = Target::from_store(Arc::new(InMemory::new()), "/shops/acme/", "memory://", true)
            .expect("target");
        assert_eq!(t.key("index.html").as_ref(), "shops/acme/index.html");
        let t =
            Target::from_store(Arc::new(InMemory::new()), "", "memory://", true).expect("target");
        assert_eq!(t.key("a/b.css").as_ref(), "a/b.css");
    }

    #[test]
    fn refusals_and_missing_buckets_get_their_own_errors() {
        let mut t = Target::from_store(Arc::new(InMemory::new()), "shop", "s3://b/shop", true)
            .expect("target");
        t.bucket = Some("b".into());
        let generic = |text: &str| object_store::Error::Generic {
            store: "S3",
            source: text.to_owned().into(),
        };
        let denied = t.error(
            "write",
            "index.html",
            generic("Server returned non-2xx status code: 403 Forbidden: <Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>"),
        );
        assert!(matches!(denied, PublishError::Denied { .. }), "{denied}");
        let text = denied.to_string();
        assert!(
            text.contains("access to `s3://b/shop` was denied")
                && text.contains("InvalidAccessKeyId"),
            "{text}"
        );
        let missing = t.error(
            "write",
            "index.html",
            object_store::Error::NotFound { path: "x".into(), source: "404".into() },
        );
        assert_eq!(
            missing.to_string(),
            "bucket `b` does not exist (destination `s3://b/shop`); create it first"
        );
        let other = t.error(
            "write",
            "index.html",
            generic("Server returned non-2xx status code: 500 Internal Server Error"),
        );
        assert!(
            other.to_string().starts_with("cannot write `shop/index.html` at `s3://b/shop`"),
            "{other}"
        );
    }

    #[test]
    fn the_budget_stops_after_n_writes() {
        let b = Budget::default();
        assert!(b.spend().is_ok(), "unlimited by default");
        b.set(Some(2));
        assert!(b.spend().is_ok());
        assert!(b.spend().is_ok());
        assert!(matches!(b.spend(), Err(PublishError::Interrupted(2))));
        b.set(Some(0));
        assert!(b.spend().is_err());
    }
}
