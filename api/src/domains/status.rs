//! The three states a domain moves through (ownership, routing, certificate), the one
//! status people see, and when the background checker looks again.

use super::dns::{Check, Outcome};
use serde::{Deserialize, Serialize};

/// Ownership: not proven yet.
pub const PENDING_VERIFICATION: &str = "pending_verification";
/// Ownership: the TXT record was found.
pub const VERIFIED: &str = "verified";
/// Ownership: not proven within the checking window; the merchant retries.
pub const FAILED: &str = "failed";
/// Routing: no record seen yet.
pub const PENDING_DNS: &str = "pending_dns";
/// Routing: the hostname points here.
pub const CONFIGURED: &str = "configured";
/// Routing: records point elsewhere.
pub const MISCONFIGURED: &str = "misconfigured";
/// Certificate: none (not yet eligible, or certificates are not managed here).
pub const CERT_NONE: &str = "none";
/// Certificate: eligible, waiting for the issuer.
pub const CERT_PENDING: &str = "pending";
/// Certificate: an order is in progress.
pub const CERT_ISSUING: &str = "issuing";
/// Certificate: valid.
pub const CERT_ACTIVE: &str = "active";
/// Certificate: valid, a renewal is in progress.
pub const CERT_RENEWING: &str = "renewing";
/// Certificate: the stored certificate expired.
pub const CERT_EXPIRED: &str = "expired";
/// Certificate: the last order failed (the reason says why); retried later.
pub const CERT_FAILED: &str = "failed";

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Delays between background checks of a domain that is not active yet: 1 min, 5 min,
/// 15 min, 1 h, then every 6 h until the window closes.
pub const BACKOFF_MS: [i64; 4] = [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR];
/// The delay once the backoff list is used up.
pub const SLOW_MS: i64 = 6 * HOUR;
/// How long a domain that is not active yet is checked in the background.
pub const WINDOW_MS: i64 = 7 * DAY;
/// How often an active domain is re-checked.
pub const ACTIVE_MS: i64 = DAY;
/// After a failed re-check of an active domain, the next one comes sooner.
pub const CONFIRM_MS: i64 = HOUR;
/// Consecutive failed re-checks of an active domain before it is flagged.
pub const FLAG_AFTER: i64 = 3;

/// When to check a domain that is not active yet, after `checks` background checks in
/// the window that opened at `window_start`; `None` once the window has closed.
pub fn next_pending_check(window_start: i64, checks: i64, now: i64) -> Option<i64> {
    let end = window_start + WINDOW_MS;
    if now >= end {
        return None;
    }
    let delay =
        usize::try_from(checks).ok().and_then(|i| BACKOFF_MS.get(i)).copied().unwrap_or(SLOW_MS);
    Some((now + delay).min(end))
}

/// The status shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting on DNS or the certificate authority; nothing to do but wait.
    Pending,
    /// Something must be fixed: the reason says what.
    ActionNeeded,
    /// The hostname serves the shop.
    Active,
    /// Checking stopped without success; fix the records and verify again.
    Failed,
}

/// What the last checks found, kept with the domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// The last ownership check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Check>,
    /// The last routing check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Check>,
    /// The last CAA check before ordering a certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caa: Option<Check>,
    /// Why the certificate is in its state (the certificate authority's problem, the
    /// CAA record that forbids it, a missing secret key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// The states of one domain, as stored.
#[derive(Debug, Clone, Copy)]
pub struct States<'a> {
    /// Ownership state.
    pub ownership: &'a str,
    /// Routing state.
    pub routing: &'a str,
    /// Certificate state.
    pub certificate: &'a str,
    /// Whether this server manages certificates (an ACME directory is configured).
    pub certificates_managed: bool,
    /// Consecutive failed re-checks while active.
    pub failures: i64,
}

/// The one status people see, and the sentence that explains it.
pub fn derive(s: States<'_>, d: &Detail) -> (Status, String) {
    let said = |c: &Option<Check>, default: &str| {
        c.as_ref().map_or_else(|| default.to_owned(), |c| c.reason.clone())
    };
    if s.ownership == FAILED {
        return (
            Status::Failed,
            format!(
                "ownership was not proven within 7 days ({}); fix the TXT record, then verify again",
                said(&d.ownership, "no TXT record was found")
            ),
        );
    }
    if s.ownership != VERIFIED {
        let waiting = "waiting for the first DNS check; create the records below";
        return match d.ownership.as_ref().map(|c| c.outcome) {
            Some(Outcome::Wrong) => (Status::ActionNeeded, said(&d.ownership, waiting)),
            _ => (Status::Pending, said(&d.ownership, waiting)),
        };
    }
    if s.routing != CONFIGURED {
        let waiting = "waiting for the routing record";
        return match (s.routing, d.routing.as_ref().map(|c| c.outcome)) {
            (MISCONFIGURED, _) | (_, Some(Outcome::Wrong)) => {
                (Status::ActionNeeded, said(&d.routing, waiting))
            }
            _ => (Status::Pending, said(&d.routing, waiting)),
        };
    }
    let warning = match d.routing.as_ref() {
        Some(c) if s.failures > 0 && c.outcome != Outcome::Ok => format!(
            "; the last check saw a problem ({}), flagged after {FLAG_AFTER} in a row",
            c.reason
        ),
        _ => String::new(),
    };
    if !s.certificates_managed {
        return (
            Status::Active,
            format!("serving the shop (certificates are not managed by this server){warning}"),
        );
    }
    let cert_reason = d.certificate.clone().unwrap_or_default();
    match s.certificate {
        CERT_ACTIVE => (Status::Active, format!("serving the shop over HTTPS{warning}")),
        CERT_RENEWING => {
            (Status::Active, format!("serving the shop; renewing the certificate{warning}"))
        }
        CERT_FAILED => {
            (Status::ActionNeeded, format!("the certificate could not be issued: {cert_reason}"))
        }
        CERT_EXPIRED => (
            Status::ActionNeeded,
            format!("the certificate expired and could not be renewed: {cert_reason}"),
        ),
        _ => (
            Status::Pending,
            if cert_reason.is_empty() {
                "DNS is set up; the certificate is being issued".to_owned()
            } else {
                format!("DNS is set up; the certificate is being issued ({cert_reason})")
            },
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(outcome: Outcome, reason: &str) -> Option<Check> {
        Some(Check { outcome, reason: reason.into(), seen: vec![] })
    }

    fn st<'a>(o: &'a str, r: &'a str, c: &'a str, managed: bool) -> States<'a> {
        States {
            ownership: o,
            routing: r,
            certificate: c,
            certificates_managed: managed,
            failures: 0,
        }
    }

    #[test]
    fn backoff_schedule() {
        let t0 = 1_000_000;
        assert_eq!(next_pending_check(t0, 0, t0), Some(t0 + MINUTE));
        assert_eq!(next_pending_check(t0, 1, t0 + MINUTE), Some(t0 + 6 * MINUTE));
        assert_eq!(next_pending_check(t0, 2, t0), Some(t0 + 15 * MINUTE));
        assert_eq!(next_pending_check(t0, 3, t0), Some(t0 + HOUR));
        assert_eq!(next_pending_check(t0, 4, t0 + DAY), Some(t0 + DAY + 6 * HOUR));
        assert_eq!(next_pending_check(t0, 40, t0 + WINDOW_MS - HOUR), Some(t0 + WINDOW_MS));
        assert_eq!(next_pending_check(t0, 41, t0 + WINDOW_MS), None);
    }

    #[test]
    fn derived_status() {
        let none = Detail::default();
        assert_eq!(
            derive(st(PENDING_VERIFICATION, PENDING_DNS, CERT_NONE, true), &none).0,
            Status::Pending
        );
        let wrong = Detail {
            ownership: check(Outcome::Wrong, "TXT found with a different value"),
            ..Detail::default()
        };
        let (s, why) = derive(st(PENDING_VERIFICATION, PENDING_DNS, CERT_NONE, true), &wrong);
        assert_eq!(s, Status::ActionNeeded);
        assert!(why.contains("different value"));
        let down =
            Detail { ownership: check(Outcome::Unknown, "could not check"), ..Detail::default() };
        assert_eq!(
            derive(st(PENDING_VERIFICATION, PENDING_DNS, CERT_NONE, true), &down).0,
            Status::Pending
        );
        assert_eq!(derive(st(FAILED, PENDING_DNS, CERT_NONE, true), &none).0, Status::Failed);
        let cname =
            Detail { routing: check(Outcome::Wrong, "CNAME points to x"), ..Detail::default() };
        assert_eq!(
            derive(st(VERIFIED, MISCONFIGURED, CERT_NONE, true), &cname).0,
            Status::ActionNeeded
        );
        assert_eq!(derive(st(VERIFIED, PENDING_DNS, CERT_NONE, true), &none).0, Status::Pending);
        assert_eq!(derive(st(VERIFIED, CONFIGURED, CERT_NONE, false), &none).0, Status::Active);
        assert_eq!(derive(st(VERIFIED, CONFIGURED, CERT_PENDING, true), &none).0, Status::Pending);
        assert_eq!(derive(st(VERIFIED, CONFIGURED, CERT_ACTIVE, true), &none).0, Status::Active);
        let caa = Detail { certificate: Some("CAA forbids".into()), ..Detail::default() };
        let (s, why) = derive(st(VERIFIED, CONFIGURED, CERT_FAILED, true), &caa);
        assert_eq!(s, Status::ActionNeeded);
        assert!(why.contains("CAA forbids"));
        // One failed re-check of an active domain does not flag it.
        let mut one = st(VERIFIED, CONFIGURED, CERT_ACTIVE, true);
        one.failures = 1;
        let (s, why) = derive(one, &cname);
        assert_eq!(s, Status::Active);
        assert!(why.contains("CNAME points to x"));
    }
}
