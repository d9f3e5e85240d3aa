//! The certificate worker's orders: which are placed in a round, and placing them.
//!
//! One shop must not hold up another's certificates, nor spend the platform's shared ACME
//! account. So a round takes, per shop, only the domain whose order has been due longest,
//! then the shops by that due time (`plan_orders`); a shop that started
//! `orders_per_shop_hour` orders in the last hour waits; a failed order doubles the wait
//! before the next one for that hostname (`backoff_ms`), and a merchant's verify does not
//! undo it; whatever happens to the domain's row, a hostname whose last order did not
//! issue gets no other for `HOSTNAME_GAP_MS` (from the log of orders). Routing is checked again just before an order (a hostname that stopped
//! pointing here gets none), and every order runs under `order_timeout_ms`. The orders of
//! a round run side by side, a few at a time.

use super::dns::Outcome;
use super::status;
use super::{Platform, acme, boxed_resolver, dns, holder, name, save};
use crate::db::{now_ms, rfc3339};
use futures::StreamExt;
use sqlx::Row;
use std::collections::HashMap;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// The longest wait between two orders of a hostname.
pub const MAX_BACKOFF_MS: i64 = 24 * HOUR;
/// Orders of one round running at once (each for another shop).
const PARALLEL: usize = 4;
/// The least time after an order of a hostname that did not issue before its next one,
/// whatever happened to its row in between (removed and claimed again, moved to another
/// shop): the log decides.
pub const HOSTNAME_GAP_MS: i64 = 15 * MINUTE;
/// How long an order waits after the routing re-check found the hostname elsewhere.
const REROUTE_WAIT_MS: i64 = 15 * MINUTE;

/// A domain whose certificate order is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The hostname.
    pub hostname: String,
    /// Its shop.
    pub shop_id: String,
    /// The certificate state it is in (`pending`, `active`, `expired`, `failed`).
    pub state: String,
    /// Since when the order is due (Unix milliseconds).
    pub due: i64,
}

/// The orders of one round: candidates by due time (then hostname), at most one per shop,
/// none for a shop that started `per_hour` orders in the last hour (`recent`), at most
/// `per_round` in all.
pub fn plan_orders(
    candidates: &[Candidate],
    recent: &HashMap<String, u32>,
    per_hour: u32,
    per_round: usize,
) -> Vec<Candidate> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| a.due.cmp(&b.due).then_with(|| a.hostname.cmp(&b.hostname)));
    let mut taken: HashMap<&str, ()> = HashMap::new();
    let mut out = Vec::new();
    for c in sorted {
        if out.len() >= per_round {
            break;
        }
        if recent.get(&c.shop_id).copied().unwrap_or(0) >= per_hour
            || taken.insert(c.shop_id.as_str(), ()).is_some()
        {
            continue;
        }
        out.push(c.clone());
    }
    out
}

/// The wait before the next order of a hostname after `failures` failed ones in a row:
/// 15 minutes (1 hour after a refusal that needs a change first), doubled with each
/// further failure, at most a day.
pub fn backoff_ms(failures: i64, retryable: bool) -> i64 {
    let base = if retryable { 15 * MINUTE } else { HOUR };
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    base.saturating_mul(1_i64 << doublings).min(MAX_BACKOFF_MS)
}

/// The due time of a domain's order, in SQL (`$2`: the renewal window in milliseconds).
const DUE: &str = "CASE WHEN d.certificate IN ('active', 'expired') \
    THEN COALESCE(d.cert_retry_at, d.cert_not_after - $2) ELSE COALESCE(d.cert_retry_at, 0) END";

/// Orders certificates that are due: new ones, renewals, and failed ones to retry.
pub(super) async fn certificates(
    platform: &Platform,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let cfg = &platform.config.domains;
    let now = now_ms();
    let renew_before =
        i64::try_from(cfg.renew_before_days).unwrap_or(30).saturating_mul(status::ACTIVE_MS);
    sqlx::query("UPDATE domains SET certificate = 'expired' WHERE certificate IN ('active', 'renewing') AND cert_not_after < $1")
        .bind(now)
        .execute(&platform.registry)
        .await?;
    sqlx::query("DELETE FROM certificate_orders WHERE started_at < $1")
        .bind(now - 24 * HOUR)
        .execute(&platform.registry)
        .await?;
    let per_hour = cfg.orders_per_shop_hour;
    let recent: HashMap<String, u32> = sqlx::query(
        "SELECT shop_id, COUNT(*) AS n FROM certificate_orders WHERE started_at > $1 GROUP BY shop_id",
    )
    .bind(now - HOUR)
    .fetch_all(&platform.registry)
    .await?
    .iter()
    .filter_map(|r| {
        let n: i64 = r.try_get("n").ok()?;
        Some((r.try_get("shop_id").ok()?, u32::try_from(n).unwrap_or(u32::MAX)))
    })
    .collect();
    // Each shop's longest-due domain only, shops over their hourly limit left out, so a
    // shop with many due domains cannot fill the round.
    let sql = format!(
        "SELECT hostname, shop_id, certificate, due FROM ( \
           SELECT d.hostname, d.shop_id, d.certificate, {DUE} AS due, \
             ROW_NUMBER() OVER (PARTITION BY d.shop_id ORDER BY {DUE}, d.hostname) AS n \
           FROM domains d JOIN shops s ON s.id = d.shop_id \
           WHERE s.status = 'active' AND d.ownership = 'verified' AND d.routing = 'configured' \
           AND ((d.certificate = 'pending' AND (d.cert_retry_at IS NULL OR d.cert_retry_at <= $1)) \
             OR (d.certificate IN ('active', 'expired') AND d.cert_not_after < $1 + $2 \
                 AND (d.cert_retry_at IS NULL OR d.cert_retry_at <= $1)) \
             OR (d.certificate = 'failed' AND d.cert_retry_at <= $1)) \
           AND d.shop_id NOT IN (SELECT shop_id FROM certificate_orders WHERE started_at > $3 \
             GROUP BY shop_id HAVING COUNT(*) >= $4) \
           AND d.hostname NOT IN (SELECT hostname FROM certificate_orders \
             WHERE started_at > $5 AND issued = 0) \
         ) t WHERE n = 1 ORDER BY due, hostname LIMIT 1000"
    );
    let candidates: Vec<Candidate> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(renew_before)
        .bind(now - HOUR)
        .bind(i64::from(per_hour))
        .bind(now - HOSTNAME_GAP_MS)
        .fetch_all(&platform.registry)
        .await?
        .iter()
        .map(|r| {
            Ok(Candidate {
                hostname: r.try_get("hostname")?,
                shop_id: r.try_get("shop_id")?,
                state: r.try_get("certificate")?,
                due: r.try_get::<Option<i64>, _>("due")?.unwrap_or(0),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let per_round = usize::try_from(cfg.orders_per_round.max(1)).unwrap_or(1);
    let picked = plan_orders(&candidates, &recent, per_hour, per_round);
    let stop = shutdown.clone();
    let results: Vec<Result<(), sqlx::Error>> = futures::stream::iter(picked)
        .map(|c| {
            let stop = stop.clone();
            async move { order_one(platform, c, stop).await }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Claims, re-checks and orders one certificate, then records how it went.
async fn order_one(
    platform: &Platform,
    c: Candidate,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    if *stop.borrow() {
        return Ok(());
    }
    let host = c.hostname.as_str();
    let renewing = c.state == status::CERT_ACTIVE;
    let next = if renewing { status::CERT_RENEWING } else { status::CERT_ISSUING };
    let claimed = sqlx::query(
        "UPDATE domains SET certificate = $1, cert_retry_at = $2 WHERE hostname = $3 AND certificate = $4",
    )
    .bind(next)
    .bind(now_ms())
    .bind(host)
    .bind(&c.state)
    .execute(&platform.registry)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(());
    }
    // Routing again, just before the order: a hostname pointed elsewhere since its last
    // check would only fail validation (and count against the ACME account).
    let cfg = &platform.config.domains;
    let lookup = boxed_resolver(cfg);
    let routing = match name::normalize(host) {
        Ok(h) => {
            dns::check_routing(
                lookup.as_ref(),
                &h.ascii,
                h.is_apex(),
                &cfg.cname_target,
                &cfg.addresses,
            )
            .await
        }
        Err(e) => dns::Check { outcome: Outcome::Wrong, reason: e.0, seen: Vec::new() },
    };
    let Some(mut r) = holder(platform, host).await? else { return Ok(()) };
    if routing.outcome != Outcome::Ok {
        r.certificate = c.state.clone();
        r.detail.certificate = Some(format!(
            "no certificate ordered: {}; ordering waits until the hostname points here",
            routing.reason
        ));
        save(platform, &r).await?;
        sqlx::query("UPDATE domains SET cert_retry_at = $1 WHERE hostname = $2")
            .bind(now_ms() + REROUTE_WAIT_MS)
            .bind(host)
            .execute(&platform.registry)
            .await?;
        return Ok(());
    }
    let started = now_ms();
    sqlx::query(
        "INSERT INTO certificate_orders (hostname, shop_id, started_at) VALUES ($1, $2, $3)",
    )
    .bind(host)
    .bind(&c.shop_id)
    .bind(started)
    .execute(&platform.registry)
    .await?;
    let limit = cfg.order_timeout();
    let outcome = tokio::select! {
        o = tokio::time::timeout(limit, acme::issue(platform, host)) => match o {
            Ok(o) => Some(o),
            Err(_) => Some(Err(acme::IssueError::Retry(format!(
                "the certificate order did not finish within {} s",
                limit.as_secs_f64().ceil()
            )))),
        },
        () = async {
            // A dropped sender is no shutdown.
            if stop.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        } => None,
    };
    if outcome.as_ref().is_none_or(Result::is_err) {
        // An order cut short leaves its challenge answers behind.
        let _ = sqlx::query("DELETE FROM acme_challenges WHERE hostname = $1")
            .bind(host)
            .execute(&platform.registry)
            .await;
    }
    let Some(mut r) = holder(platform, host).await? else { return Ok(()) };
    let Some(outcome) = outcome else {
        // Shutting down: the order is placed again by the next round of some process.
        r.certificate = c.state;
        save(platform, &r).await?;
        sqlx::query("UPDATE domains SET cert_retry_at = NULL WHERE hostname = $1")
            .bind(host)
            .execute(&platform.registry)
            .await?;
        return Ok(());
    };
    let result = if outcome.is_ok() { "issued" } else { "failed" };
    metrics::counter!("aurelio_certificates_total", "result" => result).increment(1);
    let now = now_ms();
    let (retry_at, failures) = match &outcome {
        Ok(issued) => {
            sqlx::query(
                "UPDATE certificate_orders SET issued = 1 WHERE hostname = $1 AND started_at = $2",
            )
            .bind(host)
            .bind(started)
            .execute(&platform.registry)
            .await?;
            r.certificate = status::CERT_ACTIVE.into();
            r.cert_not_after = Some(issued.not_after);
            r.detail.certificate = None;
            tracing::info!(host, "certificate issued");
            (None, 0)
        }
        Err(e) => {
            tracing::warn!(host, error = %e, "certificate not issued");
            let failures = r.cert_failures.saturating_add(1);
            let retryable = matches!(e, acme::IssueError::Retry(_));
            let at = now + backoff_ms(failures, retryable);
            let still_valid = r.cert_not_after.is_some_and(|t| t > now);
            let state = if retryable { status::CERT_PENDING } else { status::CERT_FAILED };
            r.certificate = if still_valid { status::CERT_ACTIVE } else { state }.into();
            r.detail.certificate = Some(format!(
                "{e} (failed orders in a row: {failures}; next order not before {})",
                rfc3339(at)
            ));
            (Some(at), failures)
        }
    };
    save(platform, &r).await?;
    sqlx::query("UPDATE domains SET cert_retry_at = $1, cert_failures = $2 WHERE hostname = $3")
        .bind(retry_at)
        .bind(failures)
        .bind(host)
        .execute(&platform.registry)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(host: &str, shop: &str, due: i64) -> Candidate {
        Candidate { hostname: host.into(), shop_id: shop.into(), state: "pending".into(), due }
    }

    #[test]
    fn one_order_per_shop_by_due_time() {
        // Shop `a` has ten domains that sort first and are due first; `b` and `c` one each.
        let mut all: Vec<Candidate> =
            (0..10).map(|i| cand(&format!("a{i}.example"), "a", i)).collect();
        all.push(cand("zz.example", "b", 50));
        all.push(cand("mm.example", "c", 20));
        let none = HashMap::new();
        let round = plan_orders(&all, &none, 10, 10);
        let hosts: Vec<&str> = round.iter().map(|c| c.hostname.as_str()).collect();
        assert_eq!(hosts, ["a0.example", "mm.example", "zz.example"]);
        // The round's size is bounded.
        assert_eq!(plan_orders(&all, &none, 10, 2).len(), 2);
        // A shop over its hourly limit waits; the others go on.
        let recent = HashMap::from([("a".to_owned(), 10)]);
        let hosts: Vec<String> =
            plan_orders(&all, &recent, 10, 10).into_iter().map(|c| c.hostname).collect();
        assert_eq!(hosts, ["mm.example", "zz.example"]);
        // Same due time: by hostname, still one per shop.
        let tie = [cand("b.example", "x", 5), cand("a.example", "x", 5), cand("c.example", "y", 5)];
        let hosts: Vec<String> =
            plan_orders(&tie, &none, 10, 10).into_iter().map(|c| c.hostname).collect();
        assert_eq!(hosts, ["a.example", "c.example"]);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1, true), 15 * MINUTE);
        assert_eq!(backoff_ms(2, true), 30 * MINUTE);
        assert_eq!(backoff_ms(3, true), HOUR);
        assert_eq!(backoff_ms(1, false), HOUR);
        assert_eq!(backoff_ms(4, false), 8 * HOUR);
        assert_eq!(backoff_ms(9, true), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(i64::MAX, false), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(0, true), 15 * MINUTE);
        // At most four orders of one hostname an hour even when every one fails at once
        // (Let's Encrypt allows five failed validations per hostname an hour).
        assert!(backoff_ms(1, true) >= HOUR / 4);
    }
}
