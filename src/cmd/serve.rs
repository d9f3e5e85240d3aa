//! `aurelio serve`: the API server and the storefront origin.
//!
//! Configuration comes from flags, then the environment (`AURELIO_*`), then an optional
//! TOML file (`--config`), then defaults.

use anyhow::Context;
use aurelio_api::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `aurelio serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A TOML file with any of the settings below (flags and environment win)
    /// [default: none].
    #[arg(long, env = "AURELIO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (a bare port means 127.0.0.1:PORT) [default: 127.0.0.1:8080].
    #[arg(long, alias = "port", env = "AURELIO_LISTEN", value_parser = crate::cmd::listen::parse)]
    pub listen: Option<SocketAddr>,
    /// Data directory: SQLite files (registry and one per shop), builds, published sites
    /// [default: .aurelio/data].
    #[arg(long, env = "AURELIO_DATA")]
    pub data: Option<PathBuf>,
    /// PostgreSQL server for the registry and one database per shop, e.g.
    /// `postgres://user@host/aurelio` [default: SQLite files under --data].
    #[arg(long, env = "AURELIO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The platform admin token that provisions shops [default: none: no provisioning].
    #[arg(long, env = "AURELIO_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Public URL of this API (written into storefronts for their script)
    /// [default: http://127.0.0.1:<port of --listen>].
    #[arg(long, env = "AURELIO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Storefront URL of a shop, `{shop}` standing for its handle
    /// [default: http://{shop}.localhost:<port of --listen>].
    #[arg(long, env = "AURELIO_STOREFRONT_URL")]
    pub storefront_url: Option<String>,
    /// Publish target, `{shop}` standing for the shop id (e.g. `s3://bucket/{shop}`)
    /// [default: <data>/published/{shop}, served by this server].
    #[arg(long, env = "AURELIO_PUBLISH_URL")]
    pub publish_url: Option<String>,
    /// Object store URL for uploaded images [default: <data>/media].
    #[arg(long, env = "AURELIO_MEDIA_URL")]
    pub media_url: Option<String>,
    /// Milliseconds a burst of catalog writes coalesces for: the first write after a quiet
    /// spell builds at once, later ones wait this long after the last [default: 250].
    #[arg(long, env = "AURELIO_BUILD_DEBOUNCE_MS")]
    pub build_debounce_ms: Option<u64>,
    /// Jobs this process runs at once: builds, deliveries, checks (0 leaves them to other
    /// processes) [default: 4].
    #[arg(long, env = "AURELIO_WORKERS")]
    pub workers: Option<usize>,
    /// Key sealing secrets at rest (payment credentials, certificates): 64 hex digits
    /// [default: none: such secrets cannot be stored].
    #[arg(long, env = "AURELIO_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Stripe's API base URL (tests point it at a stand-in) [default: https://api.stripe.com].
    #[arg(long, env = "AURELIO_STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
    /// Let webhooks and payment providers reach loopback and private addresses (local
    /// development only; refused by default, see docs/security.md).
    #[arg(long, env = "AURELIO_ALLOW_PRIVATE_EGRESS")]
    pub allow_private_egress: bool,
    /// Shop database pools kept open at most [default: 200].
    #[arg(long, env = "AURELIO_MAX_OPEN_POOLS")]
    pub max_open_pools: Option<usize>,
    /// Database connections this process holds at most, registry and every shop together,
    /// whatever the number of shops (at least 3) [default: 64].
    #[arg(long, env = "AURELIO_DB_CONNECTIONS")]
    pub db_connections: Option<u32>,
    /// Rate limits on the API (`off` only for load tests; the others are `[limits]` in
    /// the configuration file, see `docs/security.md`) [default: on].
    #[arg(long, env = "AURELIO_RATE_LIMITS", value_parser = ["on", "off"])]
    pub rate_limits: Option<String>,
    /// The header a trusted proxy or CDN in front sets to the client's address
    /// (`x-forwarded-for`: its last value) [default: none: the connection's address].
    #[arg(long, env = "AURELIO_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Seconds an unpaid `manual` order holds its stock before it expires (0: forever)
    /// [default: 1800].
    #[arg(long, env = "AURELIO_ORDER_HOLD_SECS")]
    pub order_hold_secs: Option<u64>,
    /// Days an open cart without an order is kept after its last change [default: 30].
    #[arg(long, env = "AURELIO_CART_TTL_DAYS")]
    pub cart_ttl_days: Option<u64>,
    /// Custom domains: DNS checks, routing targets, certificates.
    #[command(flatten)]
    pub domains: crate::cmd::domain::ServeArgs,
}

impl Args {
    /// The configuration in effect.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let listen_given = self.listen.is_some();
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = &self.data {
            c.data_dir.clone_from(v);
        }
        if self.database_url.is_some() {
            c.database_url.clone_from(&self.database_url);
        }
        if self.admin_token.is_some() {
            c.admin_token.clone_from(&self.admin_token);
        }
        // Without explicit URLs, they follow the port being listened on.
        let port = c.listen.port();
        match &self.public_url {
            Some(v) => c.public_url.clone_from(v),
            None if listen_given => c.public_url = format!("http://127.0.0.1:{port}"),
            None => {}
        }
        match &self.storefront_url {
            Some(v) => c.storefront_url.clone_from(v),
            None if listen_given => c.storefront_url = format!("http://{{shop}}.localhost:{port}"),
            None => {}
        }
        if self.publish_url.is_some() {
            c.publish_url.clone_from(&self.publish_url);
        }
        if self.media_url.is_some() {
            c.media_url.clone_from(&self.media_url);
        }
        if let Some(ms) = self.build_debounce_ms {
            c.build_debounce = Duration::from_millis(ms);
        }
        if let Some(n) = self.workers {
            c.workers = n;
        }
        if let Some(n) = self.max_open_pools {
            c.max_open_pools = n;
        }
        if let Some(n) = self.db_connections {
            c.db_connections = n;
        }
        if let Some(v) = &self.rate_limits {
            c.limits.enabled = v == "on";
        }
        if self.client_ip_header.is_some() {
            c.limits.client_ip_header.clone_from(&self.client_ip_header);
        }
        if let Some(secs) = self.order_hold_secs {
            c.order_hold = Duration::from_secs(secs);
        }
        if let Some(days) = self.cart_ttl_days {
            c.cart_ttl = Duration::from_secs(days.saturating_mul(86_400));
        }
        if self.secret_key.is_some() {
            c.secret_key.clone_from(&self.secret_key);
        }
        self.domains.apply(&mut c.domains)?;
        if self.stripe_api_base.is_some() {
            c.stripe_api_base.clone_from(&self.stripe_api_base);
        }
        if self.allow_private_egress {
            c.allow_private_egress = true;
        }
        Ok(c)
    }
}

/// Serves until Ctrl-C or SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config()?;
    if let Some(problem) = config.domains.problem(config.secret_key.as_deref()) {
        anyhow::bail!("{problem}");
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let platform = aurelio_api::Platform::open(config).await?;
        let running = aurelio_api::start(platform, listener).await?;
        let c = &running.platform.config;
        println!("aurelio serve: listening on http://{}", running.addr);
        println!("  database: {}", running.platform.pools.backend().name());
        println!("  data:     {}", c.data_dir.display());
        if aurelio_api::auth::admin_token(c).is_none() {
            println!("  note: AURELIO_ADMIN_TOKEN is not set, so shops cannot be provisioned");
        }
        running.wait().await.context("the server stopped")
    })
}

/// The runtime of the server commands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    aurelio_engine::publish::install_crypto_provider();
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args as _;

    /// `--help` states the configuration's own defaults. They cannot be clap defaults: a
    /// flag must win over the file only when it is given.
    #[test]
    fn help_states_the_defaults_of_the_configuration() {
        let command = Args::augment_args(clap::Command::new("serve"));
        let help = |id: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == id).expect(id);
            arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default()
        };
        let c = Config::default();
        let d = &c.domains;
        let addresses: Vec<String> = d.addresses.iter().map(ToString::to_string).collect();
        let cases = [
            ("listen", c.listen.to_string()),
            ("data", c.data_dir.display().to_string()),
            ("build_debounce_ms", c.build_debounce.as_millis().to_string()),
            ("workers", c.workers.to_string()),
            ("max_open_pools", c.max_open_pools.to_string()),
            ("rate_limits", if c.limits.enabled { "on" } else { "off" }.to_owned()),
            ("order_hold_secs", c.order_hold.as_secs().to_string()),
            ("cart_ttl_days", (c.cart_ttl.as_secs() / 86_400).to_string()),
            ("domain_cname_target", d.cname_target.clone()),
            ("domain_addresses", addresses.join(",")),
        ];
        for (id, value) in cases {
            let text = help(id);
            assert!(text.contains(&format!("[default: {value}]")), "--{id}: {text}");
        }
    }
}
