//! Custom domains: a merchant claims a hostname, proves they own it with a TXT record,
//! points it here, and gets a certificate.
//!
//! * `name`: normalization (IDNA, public suffixes) and the records to create.
//! * `dns`: lookups (hickory-resolver against the configured nameservers) and what they
//!   mean: ownership, routing, CAA. A timeout or SERVFAIL is `unknown`, never a failure.
//! * `status`: the ownership / routing / certificate states, the one derived status, and
//!   the background re-check schedule.
//! * `acme`: certificates through HTTP-01, sealed at rest (`crypto::Sealer`).
//!
//! The registry's `domains` table holds one row per hostname: the shop it serves. A
//! hostname verified by one shop can be claimed by another only as a takeover
//! (`domain_takeovers`): the other shop gets its own token and takes the hostname over
//! only when its TXT record is found; until then the first shop keeps serving it.

pub mod acme;
pub mod dns;
pub mod name;
pub mod status;

use crate::auth::{Permission, Tenant};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, is_unique_violation};
use crate::registry;
use crate::server::{Body, Platform};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use dns::{Check, Dns, Lookup, Outcome};
use name::{Hostname, Record};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use status::{Detail, States, Status};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    pub acme_root_ca: Option<std::path::PathBuf>,
    /// Contact e-mail of the ACME account.
    pub acme_contact: Option<String>,
    /// CAA issuer domains of the authority in use (`letsencrypt.org`).
    pub caa_issuers: Vec<String>,
    /// Renew certificates this many days before they expire.
    pub renew_before_days: u64,
    /// How often the background checker looks for due work, in milliseconds.
    pub poll_ms: u64,
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
        }
    }
}

impl DomainConfig {
    /// The per-query DNS timeout.
    pub fn dns_timeout(&self) -> Duration {
        Duration::from_millis(self.dns_timeout_ms.max(1))
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

/// Where a custom hostname sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Serve this shop (id, handle).
    Shop(String, String),
    /// Redirect to the shop's primary hostname.
    Redirect(String),
}

/// The domains' in-process state: a short-lived cache of routes for the origin.
#[derive(Default)]
pub struct Domains {
    routes: Mutex<HashMap<String, (Instant, Option<Route>)>>,
}

impl std::fmt::Debug for Domains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Domains")
    }
}

const ROUTE_TTL: Duration = Duration::from_secs(5);

impl Domains {
    /// Forgets cached routes (after any change to domains).
    pub fn forget(&self) {
        self.routes.lock().expect("domain routes").clear();
    }
}

/// The host of a `Host` header: port and final dot removed, lowercase.
pub fn bare_host(host: &str) -> String {
    let host = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Where a request for `host` goes: the verified shop, a redirect to the shop's primary
/// hostname (other hostnames of the shop, and the `www`/apex counterpart of a verified
/// one), or `None` for hostnames no shop has verified.
pub async fn route(platform: &Platform, host: &str) -> Option<Route> {
    let host = bare_host(host);
    if let Some((at, hit)) = platform.domains.routes.lock().expect("domain routes").get(&host)
        && at.elapsed() < ROUTE_TTL
    {
        return hit.clone();
    }
    let found = lookup_route(platform, &host).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "domain route lookup failed");
        None
    });
    platform
        .domains
        .routes
        .lock()
        .expect("domain routes")
        .insert(host, (Instant::now(), found.clone()));
    found
}

async fn lookup_route(platform: &Platform, host: &str) -> Result<Option<Route>, sqlx::Error> {
    let verified = |h: String| async move {
        sqlx::query(
            "SELECT d.shop_id, s.handle FROM domains d JOIN shops s ON s.id = d.shop_id \
             WHERE d.hostname = $1 AND d.ownership = 'verified' AND s.status = 'active'",
        )
        .bind(h)
        .fetch_optional(&platform.registry)
        .await
    };
    let (row, direct) = match verified(host.to_owned()).await? {
        Some(row) => (row, true),
        None => {
            let counterpart = match host.strip_prefix("www.") {
                Some(apex) => apex.to_owned(),
                None => format!("www.{host}"),
            };
            match verified(counterpart).await? {
                Some(row) => (row, false),
                None => return Ok(None),
            }
        }
    };
    let shop_id: String = row.try_get("shop_id")?;
    let handle: String = row.try_get("handle")?;
    Ok(match primary(platform, &shop_id).await? {
        Some(p) if p != host => Some(Route::Redirect(p)),
        Some(_) => Some(Route::Shop(shop_id, handle)),
        None if direct => Some(Route::Shop(shop_id, handle)),
        None => None,
    })
}

/// The shop's primary hostname, when one is verified: storefronts are built for it.
pub async fn primary(platform: &Platform, shop_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT hostname FROM domains WHERE shop_id = $1 AND is_primary = 1 AND ownership = 'verified'",
    )
    .bind(shop_id)
    .fetch_optional(&platform.registry)
    .await
}

/// Domain routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(claim, list))
        .routes(routes!(get_domain, remove))
        .routes(routes!(verify))
        .routes(routes!(make_primary))
}

// ---------------------------------------------------------------------------------------
// Stored rows
// ---------------------------------------------------------------------------------------

/// A domain as stored: a `domains` row, or a pending takeover of another shop's hostname.
#[derive(Debug, Clone)]
pub struct DomainRow {
    /// Canonical hostname.
    pub hostname: String,
    /// The shop.
    pub shop_id: String,
    /// Ownership token.
    pub token: String,
    /// The shop's primary hostname.
    pub is_primary: bool,
    /// Ownership state.
    pub ownership: String,
    /// Routing state.
    pub routing: String,
    /// Certificate state.
    pub certificate: String,
    /// Last checks.
    pub detail: Detail,
    /// Claimed at.
    pub created_at: i64,
    /// Ownership proven at.
    pub verified_at: Option<i64>,
    /// Background checks in the current window.
    pub checks: i64,
    /// Consecutive failed re-checks while active.
    pub failures: i64,
    /// Start of the current checking window.
    pub window_start: i64,
    /// Last check.
    pub last_checked_at: Option<i64>,
    /// Next background check.
    pub next_check_at: Option<i64>,
    /// Certificate validity end.
    pub cert_not_after: Option<i64>,
    /// A takeover of a hostname another shop holds.
    pub takeover: bool,
}

const COLUMNS: &str = "hostname, shop_id, token, is_primary, ownership, routing, certificate, \
    detail, created_at, verified_at, checks, failures, window_start, last_checked_at, \
    next_check_at, cert_not_after";
const TAKEOVER_COLUMNS: &str = "hostname, shop_id, token, 0 AS is_primary, \
    'pending_verification' AS ownership, 'pending_dns' AS routing, 'none' AS certificate, detail, \
    created_at, NULL AS verified_at, checks, 0 AS failures, window_start, last_checked_at, \
    next_check_at, NULL AS cert_not_after";

fn from_row(r: &sqlx::any::AnyRow, takeover: bool) -> Result<DomainRow, sqlx::Error> {
    let detail: String = r.try_get("detail")?;
    Ok(DomainRow {
        hostname: r.try_get("hostname")?,
        shop_id: r.try_get("shop_id")?,
        token: r.try_get("token")?,
        is_primary: r.try_get::<i64, _>("is_primary")? != 0,
        ownership: r.try_get("ownership")?,
        routing: r.try_get("routing")?,
        certificate: r.try_get("certificate")?,
        detail: serde_json::from_str(&detail).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        verified_at: r.try_get("verified_at")?,
        checks: r.try_get("checks")?,
        failures: r.try_get("failures")?,
        window_start: r.try_get("window_start")?,
        last_checked_at: r.try_get("last_checked_at")?,
        next_check_at: r.try_get("next_check_at")?,
        cert_not_after: r.try_get("cert_not_after")?,
        takeover,
    })
}

async fn holder(platform: &Platform, host: &str) -> Result<Option<DomainRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM domains WHERE hostname = $1");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(host).fetch_optional(&platform.registry).await?;
    row.as_ref().map(|r| from_row(r, false)).transpose()
}

async fn takeover(
    platform: &Platform,
    host: &str,
    shop_id: &str,
) -> Result<Option<DomainRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TAKEOVER_COLUMNS} FROM domain_takeovers WHERE hostname = $1 AND shop_id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(host)
        .bind(shop_id)
        .fetch_optional(&platform.registry)
        .await?;
    row.as_ref().map(|r| from_row(r, true)).transpose()
}

/// The shop's own view of `host`: its row, or its pending takeover.
async fn shop_domain(
    platform: &Platform,
    shop_id: &str,
    host: &str,
) -> Result<Option<DomainRow>, sqlx::Error> {
    match holder(platform, host).await? {
        Some(r) if r.shop_id == shop_id => Ok(Some(r)),
        _ => takeover(platform, host, shop_id).await,
    }
}

async fn save(platform: &Platform, r: &DomainRow) -> Result<(), sqlx::Error> {
    let detail = serde_json::to_string(&r.detail).unwrap_or_default();
    if r.takeover {
        sqlx::query(
            "UPDATE domain_takeovers SET detail = $1, checks = $2, window_start = $3, \
             last_checked_at = $4, next_check_at = $5 WHERE hostname = $6 AND shop_id = $7",
        )
        .bind(detail)
        .bind(r.checks)
        .bind(r.window_start)
        .bind(r.last_checked_at)
        .bind(r.next_check_at)
        .bind(&r.hostname)
        .bind(&r.shop_id)
        .execute(&platform.registry)
        .await?;
    } else {
        sqlx::query(
            "UPDATE domains SET ownership = $1, routing = $2, certificate = $3, detail = $4, \
             verified_at = $5, checks = $6, failures = $7, window_start = $8, last_checked_at = $9, \
             next_check_at = $10, cert_not_after = $11 WHERE hostname = $12 AND shop_id = $13",
        )
        .bind(&r.ownership)
        .bind(&r.routing)
        .bind(&r.certificate)
        .bind(detail)
        .bind(r.verified_at)
        .bind(r.checks)
        .bind(r.failures)
        .bind(r.window_start)
        .bind(r.last_checked_at)
        .bind(r.next_check_at)
        .bind(r.cert_not_after)
        .bind(&r.hostname)
        .bind(&r.shop_id)
        .execute(&platform.registry)
        .await?;
    }
    Ok(())
}

/// Records the CAA check made before an order.
pub(crate) async fn store_caa(platform: &Platform, host: &str, caa: &Check) {
    if let Ok(Some(mut r)) = holder(platform, host).await {
        r.detail.caa = Some(caa.clone());
        let _ = save(platform, &r).await;
    }
}

// ---------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------

/// A resolver for one round of checks (no cache survives it), or why there is none.
pub fn resolver(config: &DomainConfig) -> Result<Dns, String> {
    Dns::new(&config.nameservers, config.dns_timeout())
}

/// The resolver, or one that answers `Unknown` with why there is none.
fn boxed_resolver(config: &DomainConfig) -> Box<dyn Lookup> {
    match resolver(config) {
        Ok(d) => Box::new(d),
        Err(e) => Box::new(Unavailable(e)),
    }
}

struct Unavailable(String);

impl Lookup for Unavailable {
    fn lookup<'a>(&'a self, _: &'a str, _: dns::Kind) -> dns::LookupFuture<'a> {
        let why = self.0.clone();
        Box::pin(async move { dns::Answer::Unknown(why) })
    }
}

/// Checks a domain now and applies the result to its states and schedule. `manual` is a
/// merchant's "verify": it reopens a closed window and retries a failed certificate.
pub async fn check(
    platform: &Platform,
    lookup: &dyn Lookup,
    mut r: DomainRow,
    manual: bool,
) -> Result<DomainRow, sqlx::Error> {
    let cfg = &platform.config.domains;
    let now = now_ms();
    let host = name::normalize(&r.hostname)
        .unwrap_or(Hostname { ascii: r.hostname.clone(), zone: r.hostname.clone() });
    let txt_name = format!("{}.{}", name::VERIFY_LABEL, host.ascii);
    let own = dns::check_ownership(lookup, &txt_name, &name::txt_value(&r.token)).await;
    let routing =
        dns::check_routing(lookup, &host.ascii, host.is_apex(), &cfg.cname_target, &cfg.addresses)
            .await;
    if manual {
        r.window_start = now;
        r.checks = 0;
        if r.ownership == status::FAILED {
            r.ownership = status::PENDING_VERIFICATION.into();
        }
        if r.certificate == status::CERT_FAILED || r.certificate == status::CERT_EXPIRED {
            r.certificate = status::CERT_PENDING.into();
            r.detail.certificate = None;
        }
    } else {
        r.checks += 1;
    }
    r.last_checked_at = Some(now);
    for (part, c) in [("ownership", &own), ("routing", &routing)] {
        let outcome = match c.outcome {
            Outcome::Ok => "ok",
            Outcome::Missing => "missing",
            Outcome::Wrong => "wrong",
            Outcome::Unknown => "unknown",
        };
        metrics::counter!("aurelio_domain_checks_total", "check" => part, "outcome" => outcome)
            .increment(1);
    }
    if r.takeover {
        let proven = own.outcome == Outcome::Ok;
        r.detail.ownership = Some(own);
        r.detail.routing = Some(routing.clone());
        if proven {
            return take_over(platform, r, routing).await;
        }
        r.next_check_at = status::next_pending_check(r.window_start, r.checks, now);
        save(platform, &r).await?;
        return Ok(r);
    }
    let was_active = r.ownership == status::VERIFIED && r.routing == status::CONFIGURED;
    if r.ownership != status::VERIFIED && own.outcome == Outcome::Ok {
        r.ownership = status::VERIFIED.into();
        r.verified_at = Some(now);
    }
    // A verified hostname stays verified without its TXT record: ownership is lost only
    // to a shop that proves it with its own.
    if r.ownership != status::VERIFIED || own.outcome != Outcome::Missing {
        r.detail.ownership = Some(own);
    }
    match routing.outcome {
        Outcome::Ok => {
            r.routing = status::CONFIGURED.into();
            r.failures = 0;
        }
        Outcome::Unknown => {}
        Outcome::Missing | Outcome::Wrong if was_active => {
            r.failures += 1;
            if r.failures >= status::FLAG_AFTER {
                r.routing = status::MISCONFIGURED.into();
                r.window_start = now;
                r.checks = 0;
            }
        }
        Outcome::Wrong => r.routing = status::MISCONFIGURED.into(),
        Outcome::Missing => r.routing = status::PENDING_DNS.into(),
    }
    r.detail.routing = Some(routing);
    let active = r.ownership == status::VERIFIED && r.routing == status::CONFIGURED;
    if active && cfg.certificates_managed() && r.certificate == status::CERT_NONE {
        r.certificate = status::CERT_PENDING.into();
    }
    r.next_check_at = if active {
        Some(now + if r.failures > 0 { status::CONFIRM_MS } else { status::ACTIVE_MS })
    } else {
        let next = status::next_pending_check(r.window_start, r.checks, now);
        if next.is_none() && r.ownership == status::PENDING_VERIFICATION {
            r.ownership = status::FAILED.into();
        }
        next
    };
    save(platform, &r).await?;
    if active && !r.is_primary {
        r.is_primary = make_first_primary(platform, &r).await?;
    }
    platform.domains.forget();
    Ok(r)
}

/// Makes `r` the shop's primary hostname when the shop has none; whether it did.
async fn make_first_primary(platform: &Platform, r: &DomainRow) -> Result<bool, sqlx::Error> {
    let has = primary(platform, &r.shop_id).await?;
    if has.is_none() {
        set_primary(platform, &r.shop_id, &r.hostname).await?;
    }
    Ok(has.is_none())
}

async fn set_primary(platform: &Platform, shop_id: &str, host: &str) -> Result<(), sqlx::Error> {
    let mut tx = platform.registry.begin().await?;
    sqlx::query("UPDATE domains SET is_primary = 0 WHERE shop_id = $1")
        .bind(shop_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE domains SET is_primary = 1 WHERE shop_id = $1 AND hostname = $2")
        .bind(shop_id)
        .bind(host)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    platform.domains.forget();
    // Canonical URLs, sitemaps and feeds name the primary hostname: rebuild.
    if let Err(e) = crate::builds::enqueue(platform, shop_id, "primary domain changed").await {
        tracing::warn!(shop = shop_id, error = %e.message, "cannot queue the rebuild");
    }
    Ok(())
}

/// A takeover whose TXT record was found: the hostname moves to the new shop, starting
/// verified; the old shop's row and certificate go.
async fn take_over(
    platform: &Platform,
    t: DomainRow,
    routing: Check,
) -> Result<DomainRow, sqlx::Error> {
    let now = now_ms();
    let previous = holder(platform, &t.hostname).await?;
    let configured = routing.outcome == Outcome::Ok;
    let managed = platform.config.domains.certificates_managed();
    let mut r = DomainRow {
        takeover: false,
        is_primary: false,
        ownership: status::VERIFIED.into(),
        routing: if configured { status::CONFIGURED } else { status::PENDING_DNS }.into(),
        certificate: if configured && managed { status::CERT_PENDING } else { status::CERT_NONE }
            .into(),
        verified_at: Some(now),
        failures: 0,
        checks: 0,
        window_start: now,
        cert_not_after: None,
        next_check_at: Some(if configured {
            now + status::ACTIVE_MS
        } else {
            now + status::BACKOFF_MS[0]
        }),
        ..t
    };
    r.detail.routing = Some(routing);
    let mut tx = platform.registry.begin().await?;
    for sql in [
        "DELETE FROM domain_certificates WHERE hostname = $1",
        "DELETE FROM acme_challenges WHERE hostname = $1",
        "DELETE FROM domains WHERE hostname = $1",
    ] {
        sqlx::query(sql).bind(&r.hostname).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM domain_takeovers WHERE hostname = $1 AND shop_id = $2")
        .bind(&r.hostname)
        .bind(&r.shop_id)
        .execute(&mut *tx)
        .await?;
    insert(&mut tx, &r).await?;
    tx.commit().await?;
    if configured {
        r.is_primary = make_first_primary(platform, &r).await?;
    }
    let detail = serde_json::json!({ "hostname": r.hostname, "to": r.shop_id });
    if let Some(p) = previous {
        let _ = registry::audit(
            &platform.registry,
            Some(&p.shop_id),
            "system",
            "domain.taken_over",
            &detail,
        )
        .await;
    }
    let _ = registry::audit(
        &platform.registry,
        Some(&r.shop_id),
        "system",
        "domain.took_over",
        &detail,
    )
    .await;
    platform.domains.forget();
    Ok(r)
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    r: &DomainRow,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO domains ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&r.hostname)
        .bind(&r.shop_id)
        .bind(&r.token)
        .bind(i64::from(r.is_primary))
        .bind(&r.ownership)
        .bind(&r.routing)
        .bind(&r.certificate)
        .bind(serde_json::to_string(&r.detail).unwrap_or_default())
        .bind(r.created_at)
        .bind(r.verified_at)
        .bind(r.checks)
        .bind(r.failures)
        .bind(r.window_start)
        .bind(r.last_checked_at)
        .bind(r.next_check_at)
        .bind(r.cert_not_after)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Background work
// ---------------------------------------------------------------------------------------

/// Re-checks due domains and takeovers, orders and renews certificates, until `shutdown`.
pub async fn worker(platform: Arc<Platform>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let poll = Duration::from_millis(platform.config.domains.poll_ms.max(10));
    if let Some(problem) = platform.config.domains.problem(platform.config.secret_key.as_deref()) {
        tracing::error!("{problem}; certificates will not be issued");
    }
    // Orders a crashed process left in progress are retried.
    let _ = sqlx::query("UPDATE domains SET certificate = 'pending' WHERE certificate = 'issuing' AND cert_retry_at < $1")
        .bind(now_ms() - 600_000)
        .execute(&platform.registry)
        .await;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = run_due(&platform, &mut shutdown).await {
            tracing::warn!(error = %e, "domain checks failed");
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One round of due work; returns early when `shutdown` fires.
pub async fn run_due(
    platform: &Platform,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let lease = now + 300_000;
    // Built on the first due domain: an idle round reads no resolver configuration.
    let mut lookup: Option<Box<dyn Lookup>> = None;
    for (table, columns, takeover) in
        [("domains", COLUMNS, false), ("domain_takeovers", TAKEOVER_COLUMNS, true)]
    {
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE next_check_at IS NOT NULL AND next_check_at <= $1 \
             ORDER BY next_check_at LIMIT 50"
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(&platform.registry).await?;
        for row in rows {
            if *shutdown.borrow() {
                return Ok(());
            }
            let r = from_row(&row, takeover)?;
            // Claim it: another process that got here first moved `next_check_at`.
            let claim = format!(
                "UPDATE {table} SET next_check_at = $1 WHERE hostname = $2 AND shop_id = $3 AND next_check_at = $4"
            );
            let claimed = sqlx::query(sqlx::AssertSqlSafe(claim))
                .bind(lease)
                .bind(&r.hostname)
                .bind(&r.shop_id)
                .bind(r.next_check_at)
                .execute(&platform.registry)
                .await?;
            if claimed.rows_affected() == 1 {
                let lookup = lookup.get_or_insert_with(|| boxed_resolver(&platform.config.domains));
                check(platform, lookup.as_ref(), r, false).await?;
            }
        }
    }
    if platform.config.domains.certificates_managed() {
        certificates(platform, shutdown).await?;
    }
    Ok(())
}

/// Orders certificates that are due: new ones, renewals, and failed ones to retry.
async fn certificates(
    platform: &Platform,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let renew_at = now
        + i64::try_from(platform.config.domains.renew_before_days).unwrap_or(30)
            * status::ACTIVE_MS;
    sqlx::query("UPDATE domains SET certificate = 'expired' WHERE certificate IN ('active', 'renewing') AND cert_not_after < $1")
        .bind(now)
        .execute(&platform.registry)
        .await?;
    let due: Vec<(String, String)> = sqlx::query_as(
        "SELECT hostname, certificate FROM domains WHERE ownership = 'verified' AND routing = 'configured' \
         AND ((certificate = 'pending' AND (cert_retry_at IS NULL OR cert_retry_at <= $1)) \
           OR (certificate IN ('active', 'expired') AND cert_not_after < $2 AND (cert_retry_at IS NULL OR cert_retry_at <= $1)) \
           OR (certificate = 'failed' AND cert_retry_at <= $1)) \
         ORDER BY hostname LIMIT 10",
    )
    .bind(now)
    .bind(renew_at)
    .fetch_all(&platform.registry)
    .await?;
    for (host, state) in due {
        if *shutdown.borrow() {
            break;
        }
        let renewing = state == status::CERT_ACTIVE;
        let next = if renewing { status::CERT_RENEWING } else { status::CERT_ISSUING };
        let claimed = sqlx::query(
            "UPDATE domains SET certificate = $1, cert_retry_at = $2 WHERE hostname = $3 AND certificate = $4",
        )
        .bind(next)
        .bind(now_ms())
        .bind(&host)
        .bind(&state)
        .execute(&platform.registry)
        .await?;
        if claimed.rows_affected() != 1 {
            continue;
        }
        let outcome = acme::issue(platform, &host).await;
        let result = if outcome.is_ok() { "issued" } else { "failed" };
        metrics::counter!("aurelio_certificates_total", "result" => result).increment(1);
        let Some(mut r) = holder(platform, &host).await? else { continue };
        let now = now_ms();
        let retry_at = match &outcome {
            Ok(issued) => {
                r.certificate = status::CERT_ACTIVE.into();
                r.cert_not_after = Some(issued.not_after);
                r.detail.certificate = None;
                tracing::info!(host, "certificate issued");
                None
            }
            Err(e) => {
                tracing::warn!(host, error = %e, "certificate not issued");
                let still_valid = r.cert_not_after.is_some_and(|t| t > now);
                let (state, wait) = match e {
                    acme::IssueError::Retry(_) => (status::CERT_PENDING, status::BACKOFF_MS[2]),
                    acme::IssueError::Fatal(_) => (status::CERT_FAILED, status::SLOW_MS),
                };
                r.certificate = if still_valid { status::CERT_ACTIVE } else { state }.into();
                r.detail.certificate = Some(e.to_string());
                Some(now + wait)
            }
        };
        save(platform, &r).await?;
        sqlx::query("UPDATE domains SET cert_retry_at = $1 WHERE hostname = $2")
            .bind(retry_at)
            .bind(&host)
            .execute(&platform.registry)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// HTTP API
// ---------------------------------------------------------------------------------------

/// The body of a claim.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimIn {
    /// The hostname, as typed: `Shop.Example.com`, `café.example.com` and a final dot are
    /// fine; it is normalized.
    pub hostname: String,
}

/// One state and the last check behind it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateOut {
    /// The state: ownership `pending_verification|verified|failed`; routing
    /// `pending_dns|configured|misconfigured`.
    pub state: String,
    /// The last check: its outcome (`ok|missing|wrong|unknown`), reason and what was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
}

/// The certificate of a domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateOut {
    /// `none|pending|issuing|active|renewing|expired|failed`.
    pub state: String,
    /// Why it is in this state (the authority's problem, CAA, configuration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// End of validity (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The last CAA check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caa: Option<Check>,
}

/// A custom domain as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainOut {
    /// Canonical hostname (punycode).
    pub hostname: String,
    /// The same hostname in Unicode, for display.
    pub display_name: String,
    /// `pending`, `action_needed`, `active` or `failed`.
    pub status: Status,
    /// What the status means for this domain, and what to do.
    pub reason: String,
    /// Whether this is the shop's primary hostname (the others redirect to it).
    pub primary: bool,
    /// Claimed while another shop holds the hostname: it moves here once the TXT record
    /// with this claim's value is found.
    pub takeover: bool,
    /// Ownership.
    pub ownership: StateOut,
    /// Routing.
    pub routing: StateOut,
    /// The certificate.
    pub certificate: CertificateOut,
    /// The records to create at the DNS provider.
    pub records: Vec<Record>,
    /// Claimed at (RFC 3339).
    pub created_at: String,
    /// Ownership proven at.
    pub verified_at: Option<String>,
    /// Last checked at.
    pub last_checked_at: Option<String>,
    /// Next background check.
    pub next_check_at: Option<String>,
}

fn out(platform: &Platform, r: &DomainRow) -> DomainOut {
    let cfg = &platform.config.domains;
    let host = name::normalize(&r.hostname)
        .unwrap_or(Hostname { ascii: r.hostname.clone(), zone: r.hostname.clone() });
    let states = States {
        ownership: &r.ownership,
        routing: &r.routing,
        certificate: &r.certificate,
        certificates_managed: cfg.certificates_managed(),
        failures: r.failures,
    };
    let (status, mut reason) = status::derive(states, &r.detail);
    if r.takeover && status != Status::Failed {
        reason = format!(
            "this hostname is connected to another shop: create the TXT record below (it replaces \
             theirs) to prove it is yours; {reason}"
        );
    }
    DomainOut {
        display_name: idna::domain_to_unicode(&r.hostname).0,
        hostname: r.hostname.clone(),
        status,
        reason,
        primary: r.is_primary,
        takeover: r.takeover,
        ownership: StateOut { state: r.ownership.clone(), check: r.detail.ownership.clone() },
        routing: StateOut { state: r.routing.clone(), check: r.detail.routing.clone() },
        certificate: CertificateOut {
            state: r.certificate.clone(),
            reason: r.detail.certificate.clone().or_else(|| {
                (!cfg.certificates_managed()).then(|| {
                    "certificates are not managed by this server (no ACME directory)".to_owned()
                })
            }),
            not_after: r.cert_not_after.map(rfc3339),
            caa: r.detail.caa.clone(),
        },
        records: name::records(&host, &r.token, &cfg.cname_target, &cfg.addresses),
        created_at: rfc3339(r.created_at),
        verified_at: r.verified_at.map(rfc3339),
        last_checked_at: r.last_checked_at.map(rfc3339),
        next_check_at: r.next_check_at.map(rfc3339),
    }
}

/// The shop's domains.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainList {
    /// Domains, by hostname.
    pub domains: Vec<DomainOut>,
}

/// Most hostnames one shop may have.
pub const MAX_PER_SHOP: i64 = 50;

fn path_host(raw: &str) -> ApiResult<String> {
    name::normalize(raw).map(|h| h.ascii).map_err(|e| ApiError::invalid("hostname", e.0))
}

/// Claim a hostname for the shop: answers the DNS records to create.
#[utoipa::path(post, path = "/api/v1/domains", tag = "domains", request_body = ClaimIn,
    security(("secret_key" = [])),
    responses((status = 201, body = DomainOut, description = "claimed (or a takeover of a hostname another shop verified)"),
        (status = 200, body = DomainOut, description = "already claimed by this shop"),
        (status = 422, body = crate::error::ErrorBody)))]
async fn claim(
    tenant: Tenant,
    Body(input): Body<ClaimIn>,
) -> ApiResult<(StatusCode, Json<DomainOut>)> {
    tenant.require(Permission::Settings)?;
    let platform = &tenant.platform;
    let host = name::normalize(&input.hostname).map_err(|e| ApiError::invalid("hostname", e.0))?;
    let shop_id = &tenant.shop.id;
    if let Some(existing) = shop_domain(platform, shop_id, &host.ascii).await? {
        return Ok((StatusCode::OK, Json(out(platform, &existing))));
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM domains WHERE shop_id = $1")
        .bind(shop_id)
        .fetch_one(&platform.registry)
        .await?;
    if count >= MAX_PER_SHOP {
        return Err(ApiError::invalid(
            "hostname",
            format!("a shop can have at most {MAX_PER_SHOP} domains"),
        ));
    }
    let now = now_ms();
    let token = registry::random_hex(16);
    let next = now + status::BACKOFF_MS[0];
    let row = match holder(platform, &host.ascii).await? {
        Some(other) if other.ownership == status::VERIFIED => {
            sqlx::query(
                "INSERT INTO domain_takeovers (hostname, shop_id, token, detail, created_at, window_start, \
                 checks, next_check_at) VALUES ($1, $2, $3, '{}', $4, $4, 0, $5)",
            )
            .bind(&host.ascii)
            .bind(shop_id)
            .bind(&token)
            .bind(now)
            .bind(next)
            .execute(&platform.registry)
            .await
            .map_err(|e| if is_unique_violation(&e) { ApiError::conflict("hostname", "claimed at the same time; try again") } else { e.into() })?;
            takeover(platform, &host.ascii, shop_id)
                .await?
                .ok_or_else(|| ApiError::not_found("domain"))?
        }
        other => {
            let r = DomainRow {
                hostname: host.ascii.clone(),
                shop_id: shop_id.clone(),
                token,
                is_primary: false,
                ownership: status::PENDING_VERIFICATION.into(),
                routing: status::PENDING_DNS.into(),
                certificate: status::CERT_NONE.into(),
                detail: Detail::default(),
                created_at: now,
                verified_at: None,
                checks: 0,
                failures: 0,
                window_start: now,
                last_checked_at: None,
                next_check_at: Some(next),
                cert_not_after: None,
                takeover: false,
            };
            let mut tx = platform.registry.begin().await?;
            // Another shop's unverified claim does not block: only proof does.
            if let Some(o) = &other {
                sqlx::query("DELETE FROM domains WHERE hostname = $1 AND ownership <> 'verified'")
                    .bind(&o.hostname)
                    .execute(&mut *tx)
                    .await?;
            }
            insert(&mut tx, &r).await.map_err(|e| {
                if is_unique_violation(&e) {
                    ApiError::conflict("hostname", "claimed at the same time; try again")
                } else {
                    e.into()
                }
            })?;
            tx.commit().await?;
            r
        }
    };
    tenant
        .audit(
            "domain.claimed",
            serde_json::json!({ "hostname": row.hostname, "takeover": row.takeover }),
        )
        .await;
    platform.domains.forget();
    Ok((StatusCode::CREATED, Json(out(platform, &row))))
}

/// The shop's domains, with their states and records.
#[utoipa::path(get, path = "/api/v1/domains", tag = "domains", security(("secret_key" = [])),
    responses((status = 200, body = DomainList)))]
async fn list(tenant: Tenant) -> ApiResult<Json<DomainList>> {
    tenant.require(Permission::Read)?;
    let platform = &tenant.platform;
    let mut rows = Vec::new();
    for (sql, takeover) in [
        (format!("SELECT {COLUMNS} FROM domains WHERE shop_id = $1"), false),
        (format!("SELECT {TAKEOVER_COLUMNS} FROM domain_takeovers WHERE shop_id = $1"), true),
    ] {
        for r in sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&tenant.shop.id)
            .fetch_all(&platform.registry)
            .await?
        {
            rows.push(from_row(&r, takeover)?);
        }
    }
    rows.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(Json(DomainList { domains: rows.iter().map(|r| out(platform, r)).collect() }))
}

/// One domain of the shop.
#[utoipa::path(get, path = "/api/v1/domains/{hostname}", tag = "domains",
    params(("hostname" = String, Path, description = "the hostname")), security(("secret_key" = [])),
    responses((status = 200, body = DomainOut), (status = 404, body = crate::error::ErrorBody)))]
async fn get_domain(tenant: Tenant, Path(hostname): Path<String>) -> ApiResult<Json<DomainOut>> {
    tenant.require(Permission::Read)?;
    let host = path_host(&hostname)?;
    let r = shop_domain(&tenant.platform, &tenant.shop.id, &host)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))?;
    Ok(Json(out(&tenant.platform, &r)))
}

/// Check the DNS records now (the merchant's "verify"): also reopens checking after it
/// stopped and retries a failed certificate.
#[utoipa::path(post, path = "/api/v1/domains/{hostname}/verify", tag = "domains",
    params(("hostname" = String, Path, description = "the hostname")), security(("secret_key" = [])),
    responses((status = 200, body = DomainOut), (status = 404, body = crate::error::ErrorBody)))]
async fn verify(tenant: Tenant, Path(hostname): Path<String>) -> ApiResult<Json<DomainOut>> {
    tenant.require(Permission::Settings)?;
    let platform = &tenant.platform;
    let host = path_host(&hostname)?;
    let r = shop_domain(platform, &tenant.shop.id, &host)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))?;
    // At most one check per domain every 2 seconds; the last result answers in between.
    if r.last_checked_at.is_some_and(|t| now_ms() - t < 2000) {
        return Ok(Json(out(platform, &r)));
    }
    let lookup = boxed_resolver(&platform.config.domains);
    let r = check(platform, lookup.as_ref(), r, true).await?;
    if r.certificate == status::CERT_PENDING {
        // Wake the background worker soon: the certificate is due now.
        let _ = sqlx::query("UPDATE domains SET cert_retry_at = NULL WHERE hostname = $1")
            .bind(&r.hostname)
            .execute(&platform.registry)
            .await;
    }
    Ok(Json(out(platform, &r)))
}

/// Make a verified hostname the shop's primary one: the shop's other hostnames redirect to it.
#[utoipa::path(post, path = "/api/v1/domains/{hostname}/primary", tag = "domains",
    params(("hostname" = String, Path, description = "the hostname")), security(("secret_key" = [])),
    responses((status = 200, body = DomainOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
async fn make_primary(tenant: Tenant, Path(hostname): Path<String>) -> ApiResult<Json<DomainOut>> {
    tenant.require(Permission::Settings)?;
    let platform = &tenant.platform;
    let host = path_host(&hostname)?;
    let r = shop_domain(platform, &tenant.shop.id, &host)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))?;
    if r.takeover || r.ownership != status::VERIFIED {
        return Err(ApiError::conflict(
            "hostname",
            "only a verified hostname can be the primary one: verify it first",
        ));
    }
    set_primary(platform, &tenant.shop.id, &host).await?;
    tenant.audit("domain.primary", serde_json::json!({ "hostname": host })).await;
    let r = shop_domain(platform, &tenant.shop.id, &host)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))?;
    Ok(Json(out(platform, &r)))
}

/// Remove a hostname from the shop (its certificate goes too).
#[utoipa::path(delete, path = "/api/v1/domains/{hostname}", tag = "domains",
    params(("hostname" = String, Path, description = "the hostname")), security(("secret_key" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn remove(tenant: Tenant, Path(hostname): Path<String>) -> ApiResult<StatusCode> {
    tenant.require(Permission::Settings)?;
    let platform = &tenant.platform;
    let host = path_host(&hostname)?;
    let r = shop_domain(platform, &tenant.shop.id, &host)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))?;
    let mut tx = platform.registry.begin().await?;
    if r.takeover {
        sqlx::query("DELETE FROM domain_takeovers WHERE hostname = $1 AND shop_id = $2")
            .bind(&host)
            .bind(&tenant.shop.id)
            .execute(&mut *tx)
            .await?;
    } else {
        for sql in [
            "DELETE FROM domain_certificates WHERE hostname = $1",
            "DELETE FROM acme_challenges WHERE hostname = $1",
        ] {
            sqlx::query(sql).bind(&host).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM domains WHERE hostname = $1 AND shop_id = $2")
            .bind(&host)
            .bind(&tenant.shop.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tenant.audit("domain.removed", serde_json::json!({ "hostname": host })).await;
    platform.domains.forget();
    Ok(StatusCode::NO_CONTENT)
}
