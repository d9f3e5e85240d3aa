//! The configuration of `aurelio serve`: flags, `AURELIO_*` variables and an optional TOML
//! file, in that order of precedence (the command line builds it). Settings of every
//! feature live here as plain data, so the core reads them without importing a feature.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `serve` needs to know. Built from flags, the environment and an optional
/// TOML file (in that order of precedence) by the command line.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: SQLite files, build work, published sites, media, caches.
    pub data_dir: PathBuf,
    /// PostgreSQL URL for the registry and the shops' databases; SQLite when absent.
    pub database_url: Option<String>,
    /// Token of the platform admin (`AURELIO_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Public URL of this API, written into storefronts for their script.
    pub public_url: String,
    /// Storefront URL of a shop; `{shop}` is replaced by its handle.
    pub storefront_url: String,
    /// Where storefronts are published; `{shop}` is replaced by the shop id. Default:
    /// `file://<data>/published/{shop}`, which this server also serves.
    pub publish_url: Option<String>,
    /// Where uploaded images are kept (an object store URL); default `<data>/media`.
    pub media_url: Option<String>,
    /// Handle of the shop served for hosts that name none (`aurelio demo`).
    pub default_shop: Option<String>,
    /// The demo catalog loaded by provisioning with `"demo": true`.
    pub demo_catalog: PathBuf,
    /// Custom domains: nameservers for checks, routing targets, the ACME authority.
    pub domains: DomainConfig,
    /// How long writes coalesce: the first catalog write after this long without one
    /// builds at once, later ones wait this long after the last (`builds::enqueue`).
    #[serde(with = "millis")]
    pub build_debounce: Duration,
    /// Jobs this process runs at once, of every kind (0: none, another process runs them).
    pub workers: usize,
    /// How long a running job's lease lasts (renewed at a third of it): a process that dies
    /// loses its jobs to another after this long.
    #[serde(with = "millis")]
    pub job_lease: Duration,
    /// Database connections this process holds at most, whatever the number of shops: the
    /// registry's pool and every shop's pool together (`pools::Budget`; at least 3).
    pub db_connections: u32,
    /// Connections one shop's pool borrows from `db_connections` at most.
    pub pool_size: u32,
    /// Shop pools kept open at most (each also holds at least one connection's share).
    pub max_open_pools: usize,
    /// Shop pools unused this long are closed.
    #[serde(with = "millis")]
    pub pool_idle: Duration,
    /// Key that seals secrets at rest (payment credentials, certificates): 64 hex digits
    /// (`AURELIO_SECRET_KEY`). Without it such secrets cannot be stored.
    pub secret_key: Option<String>,
    /// Stripe's API base URL (`AURELIO_STRIPE_API_BASE`); `https://api.stripe.com` when
    /// absent. Platform configuration, for tests against a stand-in: never set by a shop.
    pub stripe_api_base: Option<String>,
    /// Lets outgoing requests (webhooks, payment providers) reach loopback, private and
    /// link-local addresses (`AURELIO_ALLOW_PRIVATE_EGRESS`): local development and tests
    /// only, never in production.
    pub allow_private_egress: bool,
    /// Rate limits, requests in flight, request time, connections (`limits`).
    pub limits: crate::limits::LimitsConfig,
    /// How long an unpaid `manual` order holds its stock before it expires (0: forever).
    #[serde(with = "millis")]
    pub order_hold: Duration,
    /// Open carts without an order untouched this long are deleted.
    #[serde(with = "millis")]
    pub cart_ttl: Duration,
    /// Bytes of uploaded images a shop may keep (all its images together); an upload past
    /// it is refused with 413 `media_quota_exceeded`. Default 2 GiB.
    pub media_quota_bytes: u64,
}

mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".aurelio/data"),
            database_url: None,
            admin_token: None,
            public_url: "http://127.0.0.1:8080".into(),
            storefront_url: "http://{shop}.localhost:8080".into(),
            publish_url: None,
            media_url: None,
            default_shop: None,
            demo_catalog: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../fixtures/demo-store"
            )),
            domains: DomainConfig::default(),
            build_debounce: Duration::from_millis(250),
            workers: 4,
            job_lease: Duration::from_secs(30),
            db_connections: 64,
            pool_size: 4,
            max_open_pools: 200,
            pool_idle: Duration::from_secs(300),
            secret_key: None,
            stripe_api_base: None,
            allow_private_egress: false,
            limits: crate::limits::LimitsConfig::default(),
            order_hold: Duration::from_secs(30 * 60),
            cart_ttl: Duration::from_secs(30 * 24 * 3600),
            media_quota_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Reads a TOML configuration file (keys as the fields of `Config`).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))
    }
}

/// Settings of custom domains (the `[domains]` table of the configuration file; flags and
/// `AURELIO_*` variables of `aurelio serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainConfig {
    /// Nameservers asked for domain checks (`AURELIO_DNS_NAMESERVERS`); the system's
    /// resolvers when empty. In production, the zones' authoritative servers or a resolver
    /// without a long negative cache.
    pub nameservers: Vec<SocketAddr>,
    /// How long one DNS query may take, in milliseconds.
    pub dns_timeout_ms: u64,
    /// The CNAME target merchants point subdomains at.
    pub cname_target: String,
    /// The addresses merchants point apex domains at (A and AAAA records).
    pub addresses: Vec<IpAddr>,
    /// ACME directory URL; certificates are not managed when absent.
    pub acme_directory: Option<String>,
    /// A PEM file with the root that signed the ACME server's own HTTPS certificate (for
    /// test authorities such as pebble).
    pub acme_root_ca: Option<PathBuf>,
    /// Contact e-mail of the ACME account.
    pub acme_contact: Option<String>,
    /// CAA issuer domains of the authority in use (`letsencrypt.org`).
    pub caa_issuers: Vec<String>,
    /// Renew certificates this many days before they expire.
    pub renew_before_days: u64,
    /// How often the background checker looks for due work, in milliseconds.
    pub poll_ms: u64,
    /// Certificate orders one shop may start per hour (new, renewals and retries).
    pub orders_per_shop_hour: u32,
    /// Certificate orders started in one round of the worker (at most one per shop).
    pub orders_per_round: u32,
    /// How long one certificate order may take in all, in milliseconds.
    pub order_timeout_ms: u64,
}

impl Default for DomainConfig {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            dns_timeout_ms: 3000,
            cname_target: "edge.aurelio.localhost".into(),
            addresses: vec![IpAddr::from([127, 0, 0, 1])],
            acme_directory: None,
            acme_root_ca: None,
            acme_contact: None,
            caa_issuers: vec!["letsencrypt.org".into()],
            renew_before_days: 30,
            poll_ms: 10_000,
            orders_per_shop_hour: 10,
            orders_per_round: 10,
            order_timeout_ms: 120_000,
        }
    }
}

impl DomainConfig {
    /// The per-query DNS timeout.
    pub fn dns_timeout(&self) -> Duration {
        Duration::from_millis(self.dns_timeout_ms.max(1))
    }

    /// The limit on one certificate order, start to finish.
    pub fn order_timeout(&self) -> Duration {
        Duration::from_millis(self.order_timeout_ms.max(1))
    }

    /// Whether certificates are managed (an ACME directory is configured).
    pub fn certificates_managed(&self) -> bool {
        self.acme_directory.is_some()
    }

    /// A configuration problem that stops the server from starting: a certificate
    /// authority without a usable `AURELIO_SECRET_KEY` (`secret_key`).
    pub fn problem(&self, secret_key: Option<&str>) -> Option<String> {
        if self.certificates_managed() {
            crate::crypto::Sealer::from_secret(secret_key)
                .err()
                .map(|e| format!("certificates are enabled (ACME directory set), but {e}"))
        } else {
            None
        }
    }

    /// Parses `ip:port` (or `ip`, port 53) separated by commas.
    pub fn parse_nameservers(list: &str) -> Result<Vec<SocketAddr>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| format!("`{s}` is not a nameserver address (ip:port)"))
            })
            .collect()
    }
}
