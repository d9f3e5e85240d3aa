//! The core every feature builds on: configuration, the shared `Platform`, databases, the
//! registry, auth, errors, secrets, caches, limits, the guarded HTTP client and jobs.
//!
//! Invariant: nothing under `platform/` imports a feature module (`catalog`, `commerce`,
//! `domains`, `feeds`, `builds`, `tenants`, `origin`, `preview`); `tests/layers.rs`
//! checks it. A feature keeps its own state in `Platform::state`, registers its job kinds
//! with `jobs`, and its routes are merged in `server::router`.

pub mod auth;
pub mod cache;
pub mod config;
pub mod conn;
pub mod cors;
pub mod crypto;
pub mod db;
pub mod egress;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod limits;
pub mod pools;
pub mod registry;
pub mod schema;
pub mod sqlite_writer;
mod state;

pub use config::{Config, DomainConfig};
pub use state::State;

use crate::db::{Backend, Pools, ShopPools};
use crate::error::{ApiError, ApiResult};
use crate::registry::Shop;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use object_store::ObjectStore;
use sqlx::AnyPool;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What every request and job shares: configuration, databases, stores, caches.
pub struct Platform {
    /// The configuration.
    pub config: Config,
    /// The registry database.
    pub registry: AnyPool,
    /// Shop database pools.
    pub pools: Pools,
    /// Uploaded images.
    pub media: Arc<dyn ObjectStore>,
    /// The job system: registered kinds, the dispatcher's wake-up, finished jobs.
    pub jobs: jobs::Jobs,
    /// What each feature keeps in memory (its caches), by type (`state`).
    pub state: State,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Outgoing HTTP: payment providers, webhooks (public addresses only, `egress`).
    pub http: egress::Egress,
    /// Seals secrets at rest (`AURELIO_SECRET_KEY`); `None` when no key is set.
    pub sealer: Option<crypto::Sealer>,
    /// Key hash → shop and access, for a few seconds (cleared on revoke and suspend).
    pub keys: cache::TtlCache<String, auth::KeyHit>,
    /// Rate limits and the requests in flight (`limits`).
    pub limits: Arc<limits::Limits>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

impl Platform {
    /// Opens the databases (migrating the registry) and stores.
    pub async fn open(mut config: Config) -> anyhow::Result<Arc<Self>> {
        aurelio_engine::publish::install_crypto_provider();
        std::fs::create_dir_all(&config.data_dir)?;
        config.data_dir = std::fs::canonicalize(&config.data_dir)?;
        let backend = Backend::new(config.database_url.as_deref(), &config.data_dir)?;
        let budget = db::Budget::new(config.db_connections, config.pool_size)?;
        let registry = backend.open_registry(budget.registry).await?;
        db::migrate(&backend, &registry, schema::REGISTRY).await?;
        let media: Arc<dyn ObjectStore> = match &config.media_url {
            None => {
                let dir = config.data_dir.join("media");
                std::fs::create_dir_all(&dir)?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?)
            }
            Some(url) => {
                let url = url::Url::parse(url)?;
                let (store, _) = object_store::parse_url_opts(
                    &url,
                    std::env::vars()
                        .filter(|(k, _)| k.starts_with("AWS_"))
                        .map(|(k, v)| (k.to_ascii_lowercase(), v)),
                )?;
                Arc::from(store)
            }
        };
        let sealer = config
            .secret_key
            .as_deref()
            .map(|k| crypto::Sealer::from_secret(Some(k)))
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?;
        let http = egress::Egress::new(config.allow_private_egress)?;
        let pools =
            Arc::new(ShopPools::new(backend, budget, config.max_open_pools, config.pool_idle));
        let limits = Arc::new(limits::Limits::new(config.limits.clone()));
        let job_lease = config.job_lease;
        Ok(Arc::new(Self {
            limits,
            config,
            registry,
            pools,
            media,
            jobs: jobs::Jobs::new(job_lease),
            state: State::default(),
            metrics: metrics_handle(),
            http,
            sealer,
            keys: cache::TtlCache::new(Duration::from_secs(5), 100_000),
        }))
    }

    /// The pool of a shop's database (opened and migrated on first use).
    pub async fn shop_db(&self, shop: &Shop) -> ApiResult<AnyPool> {
        self.pools.get(&shop.db_name, schema::SHOP).await.map_err(|e| {
            tracing::error!(shop = %shop.id, error = %e, "shop database unavailable");
            ApiError::unavailable("the shop's database is unavailable, try again")
        })
    }

    /// Drops every cache of a shop (its settings, its published site or its status
    /// changed): each feature registered what that means with `State::on_forget`.
    pub fn forget(&self, shop_id: &str) {
        for f in self.state.forgetters() {
            f(self, shop_id);
        }
    }

    /// The storefront URL of a shop (no trailing slash).
    pub fn storefront_url(&self, handle: &str) -> String {
        self.config.storefront_url.replace("{shop}", handle).trim_end_matches('/').to_owned()
    }

    /// Where a shop's builds happen: its exported catalog and built site.
    pub fn work_dir(&self, shop_id: &str) -> PathBuf {
        self.config.data_dir.join("work").join(shop_id)
    }

    /// The local directory a shop is published to (the default publish target).
    pub fn published_dir(&self, shop_id: &str) -> PathBuf {
        self.config.data_dir.join("published").join(shop_id)
    }

    /// The publish target URL of a shop.
    pub fn publish_url(&self, shop_id: &str) -> String {
        match &self.config.publish_url {
            Some(url) => url.replace("{shop}", shop_id),
            None => format!("file://{}", self.published_dir(shop_id).display()),
        }
    }
}

/// The process-wide Prometheus recorder (installed once; every server in the process
/// renders the same registry).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ])
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
