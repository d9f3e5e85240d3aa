//! Abuse limits on the API: token buckets per client address and per key, stricter ones
//! for creating carts, checking out, trying discount codes and failed authentication; a
//! cap on requests in flight and a time limit per request. A refused request answers `429`
//! (or `503` when the server is full or too slow) with `Retry-After` and the JSON error
//! body. Connection limits (per address, in total, header read time) are `serve`'s.
//!
//! Buckets live in memory per process (several processes each allow their share), keyed
//! by a hash, never the raw key; an IPv6 client is one `/64`. The tables are bounded: idle
//! buckets (full again) are swept, and past the bound new clients share one bucket.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `per_minute` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Requests per minute, refilled continuously.
    pub per_minute: u32,
    /// Requests allowed at once (the bucket's size).
    pub burst: u32,
}

impl Rate {
    const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }
}

/// The limits of `serve` (`[limits]` in the configuration file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Whether rate limits apply (`false` for load tests on one machine).
    pub enabled: bool,
    /// The header a trusted proxy or CDN in front sets to the client's address (e.g.
    /// `x-forwarded-for`, its last value is used; or `cf-connecting-ip`). Unset: the
    /// connection's peer address. Never set it without such a proxy: clients could pick
    /// any address.
    pub client_ip_header: Option<String>,
    /// Every `/api/` request, per client address.
    pub per_ip: Rate,
    /// Every request with a secret key, per key.
    pub per_secret_key: Rate,
    /// Every request with a publishable key, per key (all shoppers of a shop share it).
    pub per_publishable_key: Rate,
    /// `POST /api/v1/carts`, per client address.
    pub carts: Rate,
    /// Checkouts, per client address.
    pub checkout: Rate,
    /// Discount codes tried on carts, per client address.
    pub discount_codes: Rate,
    /// Answers `401`/`403` to a key, per client address; when spent, every request that
    /// carries a key from that address answers `429` until it refills.
    pub auth_failures: Rate,
    /// Requests handled at once in this process; more answer `503` at once.
    pub max_in_flight: usize,
    /// Longest time a request (reading its body included) may take, milliseconds.
    pub request_timeout_ms: u64,
    /// Buckets kept per table (clients tracked at once).
    pub max_tracked: usize,
    /// Open connections in total; more are closed as they arrive. Keep it below the
    /// process's file descriptor limit (`ulimit -n`).
    pub max_connections: usize,
    /// Open connections per client address (IPv6 by `/64`). Behind a proxy every client
    /// shares its address: raise it there.
    pub max_connections_per_ip: usize,
    /// Longest time to receive a request's headers (also an idle keep-alive connection's
    /// next request), milliseconds.
    pub header_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            client_ip_header: None,
            per_ip: Rate::new(1_200, 300),
            per_secret_key: Rate::new(3_000, 600),
            per_publishable_key: Rate::new(60_000, 6_000),
            carts: Rate::new(60, 20),
            checkout: Rate::new(20, 10),
            discount_codes: Rate::new(30, 10),
            auth_failures: Rate::new(30, 20),
            max_in_flight: 1_024,
            request_timeout_ms: 30_000,
            max_tracked: 100_000,
            max_connections: 4_096,
            max_connections_per_ip: 256,
            header_timeout_ms: 30_000,
        }
    }
}

/// What a request is counted as, besides its address and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Ip,
    SecretKey,
    PublishableKey,
    Carts,
    Checkout,
    DiscountCodes,
    AuthFailures,
}

/// One bucket: milli-tokens and when they were last refilled.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: u64,
    at: Instant,
}

/// A 128-bit digest of who is counted (an address prefix or a key), by class.
type Who = (Class, [u8; 16]);

/// The state of the limits in this process.
#[derive(Debug)]
pub struct Limits {
    config: LimitsConfig,
    buckets: Mutex<Table>,
    in_flight: tokio::sync::Semaphore,
}

#[derive(Debug, Default)]
struct Table {
    map: HashMap<Who, Bucket>,
    swept: Option<Instant>,
}

/// Why a request was refused: the seconds after which it may succeed.
struct Limited {
    retry_after: u64,
    what: &'static str,
}

impl Limits {
    /// Limits as configured.
    pub fn new(config: LimitsConfig) -> Self {
        let permits = config.max_in_flight.max(1);
        Self { config, buckets: Mutex::default(), in_flight: tokio::sync::Semaphore::new(permits) }
    }

    /// The configuration.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Buckets held (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map_or(0, |t| t.map.len())
    }

    fn rate(&self, class: Class) -> Rate {
        let c = &self.config;
        match class {
            Class::Ip => c.per_ip,
            Class::SecretKey => c.per_secret_key,
            Class::PublishableKey => c.per_publishable_key,
            Class::Carts => c.carts,
            Class::Checkout => c.checkout,
            Class::DiscountCodes => c.discount_codes,
            Class::AuthFailures => c.auth_failures,
        }
    }

    /// Takes one token from each bucket, all or none; or says when to retry.
    fn take(&self, whos: &[Who], now: Instant, spend: bool) -> Result<(), Limited> {
        let Ok(mut table) = self.buckets.lock() else { return Ok(()) };
        table.sweep(now, self.config.max_tracked, |c| self.rate(c));
        let mut worst: Option<Limited> = None;
        for who in whos {
            let rate = self.rate(who.0);
            let full = u64::from(rate.burst.max(1)) * 1_000;
            let key = table.key_for(*who, self.config.max_tracked);
            let bucket = table.map.get(&key).copied().unwrap_or(Bucket { milli: full, at: now });
            let milli = refill(bucket, rate, now, full);
            if milli < 1_000 {
                let wait = retry_after(1_000 - milli, rate);
                if worst.as_ref().is_none_or(|w| w.retry_after < wait) {
                    worst = Some(Limited { retry_after: wait, what: describe(who.0) });
                }
            }
        }
        if let Some(limited) = worst {
            return Err(limited);
        }
        if spend {
            for who in whos {
                let rate = self.rate(who.0);
                let full = u64::from(rate.burst.max(1)) * 1_000;
                let key = table.key_for(*who, self.config.max_tracked);
                let bucket =
                    table.map.get(&key).copied().unwrap_or(Bucket { milli: full, at: now });
                let milli = refill(bucket, rate, now, full) - 1_000;
                table.map.insert(key, Bucket { milli, at: now });
            }
        }
        Ok(())
    }
}

impl Table {
    /// The key a bucket is kept under: itself, or the shared overflow bucket of its class
    /// when the table is full.
    fn key_for(&self, who: Who, max: usize) -> Who {
        if self.map.len() < max || self.map.contains_key(&who) { who } else { (who.0, [0xff; 16]) }
    }

    /// Drops buckets that are full again (they hold nothing), at most every second, or at
    /// once when the table is full.
    fn sweep(&mut self, now: Instant, max: usize, rate: impl Fn(Class) -> Rate) {
        let due = self.swept.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if !(due || self.map.len() >= max) {
            return;
        }
        self.swept = Some(now);
        self.map.retain(|who, b| {
            let r = rate(who.0);
            let full = u64::from(r.burst.max(1)) * 1_000;
            refill(*b, r, now, full) < full
        });
    }
}

/// The bucket's milli-tokens now.
fn refill(b: Bucket, rate: Rate, now: Instant, full: u64) -> u64 {
    let nanos = now.saturating_duration_since(b.at).as_nanos();
    // per_minute tokens per 60 s = per_minute × 1000 milli-tokens per 6 × 10^10 ns
    let added = nanos * u128::from(rate.per_minute) * 1_000 / 60_000_000_000;
    u64::try_from(u128::from(b.milli) + added).unwrap_or(u64::MAX).min(full)
}

/// Whole seconds until `missing` milli-tokens have refilled (at least 1).
fn retry_after(missing: u64, rate: Rate) -> u64 {
    let per_minute = u64::from(rate.per_minute.max(1));
    (missing * 60).div_ceil(per_minute * 1_000).max(1)
}

fn describe(class: Class) -> &'static str {
    match class {
        Class::Ip => "requests from this address",
        Class::SecretKey | Class::PublishableKey => "requests with this key",
        Class::Carts => "new carts from this address",
        Class::Checkout => "checkouts from this address",
        Class::DiscountCodes => "discount codes tried from this address",
        Class::AuthFailures => "requests with invalid keys from this address",
    }
}

/// A digest of `parts` (so keys and addresses are not held as they are).
fn digest(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p);
    }
    let mut out = [0; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// The client's address as counted: IPv4 whole, IPv6 by its `/64` (one subscriber's).
fn address_key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => digest(&[b"4", &v4.octets()]),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => digest(&[b"4", &v4.octets()]),
            None => digest(&[b"6", &v6.octets()[..8]]),
        },
    }
}

/// The client's address: the configured proxy header's (last) value, else the peer's.
pub fn client_ip(req: &Request, header_name: Option<&str>) -> Option<IpAddr> {
    let from_header = header_name.and_then(|name| {
        let value = req.headers().get_all(name).iter().next_back()?.to_str().ok()?;
        value.rsplit(',').next()?.trim().parse().ok()
    });
    from_header.or_else(|| req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
}

/// The stricter class of a route, by method and path.
fn route_class(method: &Method, path: &str) -> Option<Class> {
    let rest = path.strip_prefix("/api/v1/carts")?;
    if *method != Method::POST {
        return None;
    }
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => Some(Class::Carts),
        [_, "checkout"] => Some(Class::Checkout),
        [_, "discounts"] => Some(Class::DiscountCodes),
        _ => None,
    }
}

/// The middleware: counts `/api/` requests against their buckets, holds a place among
/// the requests in flight, and bounds the time a request takes.
pub async fn limit(
    axum::extract::State(limits): axum::extract::State<std::sync::Arc<Limits>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = limits.in_flight.try_acquire() else {
        metrics::counter!("aurelio_limited_total", "limit" => "in_flight").increment(1);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is handling too many requests; retry in a moment".into(),
            1,
        );
    };
    let path = req.uri().path();
    let counted = limits.config.enabled && path.starts_with("/api/");
    let mut ip_key = None;
    if counted {
        let ip = client_ip(&req, limits.config.client_ip_header.as_deref());
        let ip = ip.map_or([0; 16], address_key);
        ip_key = Some(ip);
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let mut whos = vec![(Class::Ip, ip)];
        if let Some(key) = bearer {
            let class =
                if key.starts_with("pk_") { Class::PublishableKey } else { Class::SecretKey };
            whos.push((class, digest(&[key.as_bytes()])));
        }
        if let Some(class) = route_class(req.method(), path) {
            whos.push((class, ip));
        }
        let now = Instant::now();
        // An address that spent its failed-key allowance is refused anything with a key.
        let checked = if bearer.is_some() {
            limits.take(&[(Class::AuthFailures, ip)], now, false)
        } else {
            Ok(())
        };
        if let Err(l) = checked.and_then(|()| limits.take(&whos, now, true)) {
            metrics::counter!("aurelio_limited_total", "limit" => l.what).increment(1);
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many {}: retry in {} s", l.what, l.retry_after),
                l.retry_after,
            );
        }
    }
    let timeout = Duration::from_millis(limits.config.request_timeout_ms.max(1));
    let Ok(response) = tokio::time::timeout(timeout, next.run(req)).await else {
        metrics::counter!("aurelio_limited_total", "limit" => "timeout").increment(1);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} ms", timeout.as_millis()),
            1,
        );
    };
    if let Some(ip) = ip_key
        && matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
    {
        let _ = limits.take(&[(Class::AuthFailures, ip)], Instant::now(), true);
    }
    response
}

/// The JSON error body with `Retry-After`.
fn refuse(status: StatusCode, code: &'static str, message: String, retry_after: u64) -> Response {
    let mut response = ApiError::new(status, code, message).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: Rate, max_tracked: usize) -> Limits {
        Limits::new(LimitsConfig { per_ip: rate, max_tracked, ..LimitsConfig::default() })
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let l = limits(Rate::new(60, 3), 100);
        let who = [(Class::Ip, [1; 16])];
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(&who, t0, true).is_ok());
        }
        let refused = l.take(&who, t0, true).err().map(|e| e.retry_after);
        assert_eq!(refused, Some(1), "one token a second");
        assert!(l.take(&who, t0 + Duration::from_millis(1_001), true).is_ok());
        assert!(l.take(&who, t0 + Duration::from_millis(1_002), true).is_err());
    }

    #[test]
    fn all_buckets_or_none_are_spent() {
        let l = Limits::new(LimitsConfig {
            per_ip: Rate::new(60, 5),
            checkout: Rate::new(60, 1),
            ..LimitsConfig::default()
        });
        let t0 = Instant::now();
        let both = [(Class::Ip, [2; 16]), (Class::Checkout, [2; 16])];
        assert!(l.take(&both, t0, true).is_ok());
        assert!(l.take(&both, t0, true).is_err(), "checkout spent");
        // The refused request took nothing from the address's own bucket: 4 remain.
        for _ in 0..4 {
            assert!(l.take(&both[..1], t0, true).is_ok());
        }
        assert!(l.take(&both[..1], t0, true).is_err());
    }

    #[test]
    fn the_table_stays_bounded_and_overflow_is_shared() {
        let l = limits(Rate::new(60, 2), 50);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let mut who = [0; 16];
            who[..4].copy_from_slice(&i.to_le_bytes());
            let _ = l.take(&[(Class::Ip, who)], t0, true);
        }
        assert!(l.tracked() <= 51, "{} buckets", l.tracked());
        // Once they refill, the idle ones are swept.
        let _ = l.take(&[(Class::Ip, [9; 16])], t0 + Duration::from_secs(5), true);
        assert!(l.tracked() <= 2, "{} buckets after the sweep", l.tracked());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(address_key(mapped), address_key(IpAddr::from([192, 0, 2, 1])));
    }

    #[test]
    fn stricter_classes_by_route() {
        assert_eq!(route_class(&Method::POST, "/api/v1/carts"), Some(Class::Carts));
        assert_eq!(route_class(&Method::POST, "/api/v1/carts/abc/checkout"), Some(Class::Checkout));
        assert_eq!(
            route_class(&Method::POST, "/api/v1/carts/abc/discounts"),
            Some(Class::DiscountCodes)
        );
        assert_eq!(route_class(&Method::GET, "/api/v1/carts/abc"), None);
        assert_eq!(route_class(&Method::POST, "/api/v1/carts/abc/lines"), None);
    }
}
