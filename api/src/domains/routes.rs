//! Where a request goes by its `Host`: the header checked and normalized once (lowercase,
//! no final dot, a port apart), then, for custom hostnames, the verified shop or a
//! redirect to the shop's primary hostname, through short-lived caches whose sizes are
//! bounded (a `Host` no shop has never grows the main map, and the misses' own map is
//! small).

use super::Platform;
use crate::cache::TtlCache;
use sqlx::Row;
use std::net::Ipv6Addr;
use std::time::Duration;

/// Longest hostname DNS allows (and the longest `Host` name accepted).
pub const MAX_HOST_LEN: usize = 253;
/// Routes of verified hostnames kept at most.
pub const ROUTE_CACHE_MAX: usize = 10_000;
/// Hostnames known to route nowhere kept at most (random `Host` headers land here).
pub const MISS_CACHE_MAX: usize = 1_000;
/// How long a cached route (or miss) is trusted; another process's change shows after it.
pub const ROUTE_TTL: Duration = Duration::from_secs(5);

/// A checked `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    /// The name: lowercase ASCII letters, digits, `-` and `.` (no final dot), or an IPv6
    /// literal in brackets.
    pub name: String,
    /// The port, when the header names one.
    pub port: Option<u16>,
}

/// Checks and normalizes a `Host` header: at most 253 characters of valid hostname labels
/// (letters, digits, `-`; each label 1 to 63 long) or an IP literal, optionally a port.
/// The message says what is wrong.
pub fn parse_host(raw: &str) -> Result<RequestHost, &'static str> {
    if raw.is_empty() {
        return Err("the request has no Host header");
    }
    if raw.len() > MAX_HOST_LEN + 7 {
        return Err("the Host header is longer than a hostname can be");
    }
    let (name, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (literal, after) =
            rest.split_once(']').ok_or("the Host header's IPv6 literal is not closed")?;
        literal.parse::<Ipv6Addr>().map_err(|_| "the Host header's IPv6 literal is invalid")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("the Host header has text after its address")?),
        };
        (format!("[{}]", literal.to_ascii_lowercase()), port)
    } else {
        match raw.split_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (raw.to_owned(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| "the Host header's port is out of range")?)
        }
        Some(_) => return Err("the Host header's port is not a number"),
    };
    if name.starts_with('[') {
        return Ok(RequestHost { name, port });
    }
    let name = name.strip_suffix('.').unwrap_or(&name).to_ascii_lowercase();
    if name.is_empty() || name.len() > MAX_HOST_LEN {
        return Err("the Host header's name is empty or longer than 253 characters");
    }
    let valid_label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.split('.').all(valid_label) {
        return Err("the Host header is not a valid hostname");
    }
    Ok(RequestHost { name, port })
}

/// Where a custom hostname sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Serve this shop (id, handle).
    Shop(String, String),
    /// Redirect to the shop's primary hostname.
    Redirect(String),
}

/// The domains' in-process state: short-lived, bounded caches of routes for the origin.
pub struct Domains {
    routes: TtlCache<String, Route>,
    misses: TtlCache<String, ()>,
}

impl Default for Domains {
    fn default() -> Self {
        Self {
            routes: TtlCache::new(ROUTE_TTL, ROUTE_CACHE_MAX),
            misses: TtlCache::new(ROUTE_TTL, MISS_CACHE_MAX),
        }
    }
}

impl std::fmt::Debug for Domains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Domains")
    }
}

impl Domains {
    /// Forgets cached routes (after any change to domains).
    pub fn forget(&self) {
        self.routes.clear();
        self.misses.clear();
    }

    /// Hostnames cached, routes and misses together (never more than
    /// `ROUTE_CACHE_MAX + MISS_CACHE_MAX`).
    pub fn cached(&self) -> usize {
        self.routes.len() + self.misses.len()
    }
}

/// Where a request for `host` (a name from `parse_host`) goes: the verified shop, a
/// redirect to the shop's primary hostname (other hostnames of the shop, and the
/// `www`/apex counterpart of a verified one), or `None` for hostnames no shop has
/// verified.
pub async fn route(platform: &Platform, host: &str) -> Option<Route> {
    let cache = platform.state.get::<Domains>();
    if let Some(hit) = cache.routes.get(&host.to_owned()) {
        return Some(hit);
    }
    if cache.misses.get(&host.to_owned()).is_some() {
        return None;
    }
    let found = lookup_route(platform, host).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "domain route lookup failed");
        None
    });
    match &found {
        Some(r) => cache.routes.insert(host.to_owned(), r.clone()),
        None => cache.misses.insert(host.to_owned(), ()),
    }
    found
}

/// One query for the hostname and its `www`/apex counterpart, a second one (the primary
/// hostname) only when a shop has either.
async fn lookup_route(platform: &Platform, host: &str) -> Result<Option<Route>, sqlx::Error> {
    let counterpart = match host.strip_prefix("www.") {
        Some(apex) => apex.to_owned(),
        None => format!("www.{host}"),
    };
    let rows = sqlx::query(
        "SELECT d.hostname, d.shop_id, s.handle FROM domains d JOIN shops s ON s.id = d.shop_id \
         WHERE d.hostname IN ($1, $2) AND d.ownership = 'verified' AND s.status = 'active'",
    )
    .bind(host)
    .bind(&counterpart)
    .fetch_all(&platform.registry)
    .await?;
    let pick = |name: &str| {
        rows.iter().find(|r| r.try_get::<String, _>("hostname").ok().as_deref() == Some(name))
    };
    let (row, direct) = match (pick(host), pick(&counterpart)) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        (None, None) => return Ok(None),
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
    crate::registry::primary_domain(&platform.registry, shop_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked_and_normalized() {
        let ok = |raw: &str| parse_host(raw).expect(raw);
        assert_eq!(ok("ACME.LOCALHOST"), RequestHost { name: "acme.localhost".into(), port: None });
        assert_eq!(
            ok("Shop.Example.com.:8080"),
            RequestHost { name: "shop.example.com".into(), port: Some(8080) }
        );
        assert_eq!(ok("127.0.0.1:3000").name, "127.0.0.1");
        assert_eq!(ok("[::1]:8080"), RequestHost { name: "[::1]".into(), port: Some(8080) });
        assert_eq!(ok("xn--caf-dma.example").name, "xn--caf-dma.example");
        let long_label = "a".repeat(64);
        let too_long = format!("{}.com", ["abcdefghij"; 25].join("."));
        for bad in [
            "",
            "a..b",
            ".",
            "-a.com",
            "a-.com",
            "shop.example.com:",
            "shop.example.com:99999",
            "shop.example.com:80:80",
            "shop example.com",
            "shop/x.com",
            "shop_x.com",
            "[::1",
            "[zz]:80",
            "[::1]x",
            long_label.as_str(),
            too_long.as_str(),
            "caf\u{e9}.example",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_host(&"a".repeat(60_000)).is_err());
        let max = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(max.len(), MAX_HOST_LEN);
        assert!(parse_host(&format!("{max}:65535")).is_ok());
    }
}
