//! Custom domains: a merchant claims a hostname, proves they own it with a TXT record,
//! points it here, and gets a certificate.
//!
//! * `name`: normalization (IDNA, public suffixes) and the records to create.
//! * `dns`: lookups (hickory-resolver against the configured nameservers) and what they
//!   mean: ownership, routing, CAA. A timeout or SERVFAIL is `unknown`, never a failure.
//! * `status`: the ownership / routing / certificate states, the one derived status, and
//!   the background re-check schedule.
//! * `acme`: certificates through HTTP-01, sealed at rest (`crypto::Sealer`).
//! * `certs`: which certificate orders the worker places, fairly across shops, with a
//!   per-shop hourly limit and exponential backoff.
//! * `routes`: the request's `Host`, checked, and where it goes (bounded caches).
//! * `api`: the HTTP API.
//!
//! The registry's `domains` table holds one row per hostname: the shop it serves (or
//! claimed it first). Every other shop's claim of the same hostname is a row of
//! `domain_takeovers` (one per hostname and shop), whether the holder verified it or not:
//! a claim never removes another shop's, and a shop takes the hostname over only when its
//! own TXT value is found; until then the holder keeps it.

pub mod acme;
mod api;
mod certs;
pub mod dns;
pub mod name;
mod routes;
pub mod status;

pub use api::{ClaimIn, DomainList, DomainOut, MAX_PER_SHOP, router};
pub use certs::{Candidate, plan_orders};
pub use routes::{
    Domains, MAX_HOST_LEN, MISS_CACHE_MAX, ROUTE_CACHE_MAX, ROUTE_TTL, RequestHost, Route,
    parse_host, primary, route,
};

use crate::db::now_ms;
use crate::platform::Platform;
pub use crate::platform::config::DomainConfig;
use crate::registry;
use dns::{Check, Dns, Lookup, Outcome};
use name::Hostname;
use sqlx::Row;
use status::Detail;
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Stored rows
// ---------------------------------------------------------------------------------------

/// A domain as stored: a `domains` row, or another shop's competing claim of a hostname
/// (`domain_takeovers`).
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
    /// Not before this time is a certificate ordered (backoff after failures; the start
    /// of the order in progress while issuing).
    pub cert_retry_at: Option<i64>,
    /// Certificate orders that failed in a row.
    pub cert_failures: i64,
    /// A takeover of a hostname another shop holds.
    pub takeover: bool,
}

const COLUMNS: &str = "hostname, shop_id, token, is_primary, ownership, routing, certificate, \
    detail, created_at, verified_at, checks, failures, window_start, last_checked_at, \
    next_check_at, cert_not_after";
/// `COLUMNS` and the certificate schedule, which only the certificate worker writes.
const SELECT_COLUMNS: &str = "hostname, shop_id, token, is_primary, ownership, routing, \
    certificate, detail, created_at, verified_at, checks, failures, window_start, \
    last_checked_at, next_check_at, cert_not_after, cert_retry_at, cert_failures";
const TAKEOVER_COLUMNS: &str = "hostname, shop_id, token, 0 AS is_primary, \
    'pending_verification' AS ownership, 'pending_dns' AS routing, 'none' AS certificate, detail, \
    created_at, NULL AS verified_at, checks, 0 AS failures, window_start, last_checked_at, \
    next_check_at, NULL AS cert_not_after, NULL AS cert_retry_at, 0 AS cert_failures";

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
        cert_retry_at: r.try_get("cert_retry_at")?,
        cert_failures: r.try_get("cert_failures")?,
        takeover,
    })
}

async fn holder(platform: &Platform, host: &str) -> Result<Option<DomainRow>, sqlx::Error> {
    let sql = format!("SELECT {SELECT_COLUMNS} FROM domains WHERE hostname = $1");
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
/// merchant's "verify": it reopens a closed window, and shows a failed certificate as
/// pending again once its backoff is over (never sooner: the worker's schedule stands).
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
        if (r.certificate == status::CERT_FAILED || r.certificate == status::CERT_EXPIRED)
            && r.cert_retry_at.is_none_or(|t| t <= now)
        {
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
    platform.state.get::<Domains>().forget();
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
    platform.state.get::<Domains>().forget();
    // Canonical URLs, sitemaps and feeds name the primary hostname: rebuild.
    if let Err(e) =
        crate::platform::jobs::request_build(platform, shop_id, "primary domain changed").await
    {
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
    platform.state.get::<Domains>().forget();
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

/// The kind of the platform job that re-checks due domains and takeovers and orders and
/// renews certificates, every `poll_ms`.
pub const CHECK: &str = "domains.check";

/// Registers `domains.check` and its schedule.
pub async fn install(platform: &Platform) -> crate::error::ApiResult<()> {
    use crate::platform::jobs::{JobError, Kind, Schedule, Timing, set_schedule};
    if let Some(problem) = platform.config.domains.problem(platform.config.secret_key.as_deref()) {
        tracing::error!("{problem}; certificates will not be issued");
    }
    platform.jobs.register(
        Kind::new(CHECK, |platform: Arc<Platform>, job| async move {
            release_stale_orders(&platform).await;
            let mut stopping = job.stopping();
            run_due(&platform, &mut stopping).await.map_err(JobError::from)?;
            Ok(serde_json::json!({}))
        })
        .attempts(1)
        .timeout(platform.config.domains.order_timeout() * 3),
    );
    let every = Duration::from_millis(platform.config.domains.poll_ms.max(10));
    set_schedule(platform, &Schedule::platform(CHECK, Timing::Every(every))).await
}

/// Orders a crashed process left in progress are retried (renewals keep the certificate
/// they had). Every order ends within `order_timeout_ms`.
async fn release_stale_orders(platform: &Platform) {
    let stale = now_ms() - 600_000;
    for sql in [
        "UPDATE domains SET certificate = 'pending' WHERE certificate = 'issuing' AND cert_retry_at < $1",
        "UPDATE domains SET certificate = 'active' WHERE certificate = 'renewing' AND cert_retry_at < $1",
    ] {
        let _ = sqlx::query(sql).bind(stale).execute(&platform.registry).await;
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
        [("domains", SELECT_COLUMNS, false), ("domain_takeovers", TAKEOVER_COLUMNS, true)]
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
        certs::certificates(platform, shutdown).await?;
    }
    Ok(())
}
