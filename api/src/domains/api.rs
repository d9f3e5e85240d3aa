//! The custom domains API (`/api/v1/domains`): claim, list, show, verify, make primary,
//! remove. A claim of a hostname another shop holds (verified or not) is kept beside it
//! as a claim of its own (`domain_takeovers`, one per hostname and shop): no claim ever
//! removes another shop's, and the first shop to prove ownership with its own TXT value
//! gets the hostname.

use super::dns::Check;
use super::status::{self, Detail, States, Status};
use super::{
    DomainRow, SELECT_COLUMNS, TAKEOVER_COLUMNS, boxed_resolver, check, from_row, holder, insert,
    name, set_primary, shop_domain, takeover,
};
use crate::auth::{Permission, Tenant};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, is_unique_violation};
use crate::extract::Body;
use crate::platform::Platform;
use crate::registry;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use name::{Hostname, Record};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Domain routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(claim, list))
        .routes(routes!(get_domain, remove))
        .routes(routes!(verify))
        .routes(routes!(make_primary))
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
    /// Orders that failed in a row (each one doubles the wait before the next).
    pub failed_orders: i64,
    /// When the next order may be placed after failed ones (RFC 3339); a verify does not
    /// bring it forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
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
    /// Claimed while another shop holds the hostname (verified or only claimed): it moves
    /// here once the TXT record with this claim's value is found.
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
            "this hostname is claimed by or connected to another shop: create the TXT record \
             below (it replaces theirs, if any) to prove it is yours; {reason}"
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
            failed_orders: r.cert_failures,
            next_attempt_at: r.cert_retry_at.filter(|_| r.cert_failures > 0).map(rfc3339),
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
    responses((status = 201, body = DomainOut, description = "claimed (a takeover when another shop holds or has claimed the hostname)"),
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
    // Claims of hostnames another shop holds count too: they are rows, checks and
    // certificate orders like any other.
    let count: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM domains WHERE shop_id = $1) \
         + (SELECT COUNT(*) FROM domain_takeovers WHERE shop_id = $1)",
    )
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
    let raced = |e: sqlx::Error| {
        if is_unique_violation(&e) {
            ApiError::conflict("hostname", "claimed at the same time; try again")
        } else {
            e.into()
        }
    };
    // Another shop holds the hostname (verified or not): this claim is kept beside its
    // own, never in its place. Whichever shop's TXT value is found first gets it.
    let row = if holder(platform, &host.ascii).await?.is_some() {
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
        .map_err(raced)?;
        takeover(platform, &host.ascii, shop_id)
            .await?
            .ok_or_else(|| ApiError::not_found("domain"))?
    } else {
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
            cert_retry_at: None,
            cert_failures: 0,
            takeover: false,
        };
        let mut tx = platform.registry.begin().await?;
        insert(&mut tx, &r).await.map_err(raced)?;
        tx.commit().await?;
        r
    };
    tenant
        .audit(
            "domain.claimed",
            serde_json::json!({ "hostname": row.hostname, "takeover": row.takeover }),
        )
        .await;
    platform.state.get::<crate::domains::Domains>().forget();
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
        (format!("SELECT {SELECT_COLUMNS} FROM domains WHERE shop_id = $1"), false),
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
/// stopped. A failed certificate is retried when its backoff is over, not sooner.
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
    // The certificate's schedule is the worker's: a verify never brings an order forward
    // (failed orders back off, and a verify must not undo that).
    let lookup = boxed_resolver(&platform.config.domains);
    let r = check(platform, lookup.as_ref(), r, true).await?;
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
    platform.state.get::<crate::domains::Domains>().forget();
    Ok(StatusCode::NO_CONTENT)
}
