//! Outgoing HTTP: the one client through which the service calls addresses that merchants
//! or configuration choose (webhook receivers, the payment provider's API).
//!
//! A merchant choosing a URL must not reach what only the server can reach: the loopback
//! interface, the cloud's metadata service, the private network behind it. So `Egress`
//! resolves host names itself and connects only to the addresses it vetted (reqwest's
//! `dns_resolver`: no second lookup a rebinding DNS server could answer differently),
//! refuses literal addresses of the same kinds before any connection, follows no
//! redirects, ignores proxy variables, and bounds connection time, total time and the size
//! of what it reads back. The platform (never a shop) can switch the address check off
//! (`Config::allow_private_egress`) for local receivers in development and tests.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, StatusCode};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Longest wait for a connection (DNS included).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a whole request may take, unless the caller sets a shorter one.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of an answer read back; the rest is dropped (`Answer::truncated`).
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why an outgoing request did not happen or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The URL is not one the service calls (scheme, credentials, no host).
    #[error("{0}")]
    Invalid(String),
    /// The destination is not a public address.
    #[error("refused: {0}")]
    Refused(String),
    /// No connection or no answer in time.
    #[error("timed out")]
    Timeout,
    /// Anything else on the way (DNS, TLS, connection, protocol).
    #[error("{0}")]
    Transport(String),
}

/// An answer, its body read up to a limit.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body (at most the limit given to `send`).
    pub body: Vec<u8>,
    /// Whether the body was longer than the limit.
    pub truncated: bool,
}

impl Answer {
    /// The body as JSON; an error when it was cut short or is not JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        if self.truncated {
            return Err(format!("the answer is longer than {} bytes", self.body.len()));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("the answer is not JSON: {e}"))
    }

    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The guarded client. Cheap to clone.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress").field("allow_private", &self.allow_private).finish()
    }
}

impl Egress {
    /// A client refusing non-public addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        // reqwest is built without a TLS provider of its own: the engine's (ring).
        aurelio_engine::publish::install_crypto_provider();
        let client = reqwest::Client::builder()
            .dns_resolver(Guarded { allow_private })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .user_agent(concat!("aurelio/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, allow_private })
    }

    /// Whether non-public addresses are allowed (development and tests only).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Checks what can be checked without the network: `http` or `https`, no user name or
    /// password, a host, and (with the guard on) no literal non-public address.
    pub fn check_url(&self, url: &str) -> Result<url::Url, EgressError> {
        let parsed =
            url::Url::parse(url).map_err(|e| EgressError::Invalid(format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(EgressError::Invalid("the URL must start with https:// or http://".into()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressError::Invalid(
                "the URL must not carry a user name or password".into(),
            ));
        }
        let literal = match parsed.host() {
            None => return Err(EgressError::Invalid("the URL has no host".into())),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if !self.allow_private && (name == "localhost" || name.ends_with(".localhost")) {
                    return Err(EgressError::Refused(format!("`{name}` is this machine")));
                }
                None
            }
        };
        if let Some(ip) = literal
            && !self.allow_private
            && let Some(why) = refusal(ip)
        {
            return Err(EgressError::Refused(format!("{ip} is {why}")));
        }
        Ok(parsed)
    }

    /// `check_url`, then, for a host name, a lookup: refused when every address it has is
    /// refused. A name that does not resolve (yet) passes; delivery checks again.
    pub async fn vet_url(&self, url: &str) -> Result<url::Url, EgressError> {
        let parsed = self.check_url(url)?;
        if let (false, Some(url::Host::Domain(name))) = (self.allow_private, parsed.host()) {
            let lookup = tokio::net::lookup_host((name, 0));
            if let Ok(Ok(addrs)) = tokio::time::timeout(CONNECT_TIMEOUT, lookup).await {
                vet(name, addrs.collect(), false).map_err(|r| EgressError::Refused(r.0))?;
            }
        }
        Ok(parsed)
    }

    /// A request to `url` (checked by `check_url`).
    pub fn request(&self, method: Method, url: &str) -> Result<RequestBuilder, EgressError> {
        let parsed = self.check_url(url)?;
        Ok(self.client.request(method, parsed))
    }

    /// `POST url`.
    pub fn post(&self, url: &str) -> Result<RequestBuilder, EgressError> {
        self.request(Method::POST, url)
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> Result<RequestBuilder, EgressError> {
        self.request(Method::GET, url)
    }

    /// Sends the request and reads at most `max_body` bytes of the answer.
    pub async fn send(req: RequestBuilder, max_body: usize) -> Result<Answer, EgressError> {
        let mut response = req.send().await.map_err(|e| classify(&e))?;
        let status = response.status();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            let room = max_body.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body, truncated })
    }
}

/// A refusal by the resolver, found again in reqwest's error chain.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Maps reqwest's error to ours, with the innermost cause in the message.
fn classify(e: &reqwest::Error) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut innermost = e.to_string();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refusal>() {
            return EgressError::Refused(r.0.clone());
        }
        innermost = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        return EgressError::Timeout;
    }
    EgressError::Transport(innermost)
}

/// The resolver of `Egress`: the system's lookup, then only vetted addresses.
struct Guarded {
    allow_private: bool,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let vetted = vet(&host, addrs, allow_private)?;
            Ok(Box::new(vetted.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host` that may be connected to; a refusal naming the first refused
/// one when none may.
fn vet(
    host: &str,
    addrs: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Refusal> {
    if allow_private {
        return Ok(addrs);
    }
    let mut refused = None;
    let public: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match refusal(a.ip()) {
            None => true,
            Some(why) => {
                refused.get_or_insert_with(|| format!("`{host}` resolves to {}, {why}", a.ip()));
                false
            }
        })
        .collect();
    match (public.is_empty(), refused) {
        (true, Some(why)) => Err(Refusal(why)),
        _ => Ok(public),
    }
}

/// Why `ip` is not a public address outgoing requests may reach; `None` when it is.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "an unspecified (\"this network\") address",
        (127, ..) => "a loopback address",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (192, 88, 99) => "a 6to4 relay address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, ..) => "a multicast address",
        (255, 255, 255) if ip.is_broadcast() => "the broadcast address",
        (240..=255, ..) => "a reserved address",
        _ => return None,
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4 inside IPv6 is judged as the IPv4 address it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        // NAT64 (64:ff9b::/96)
        return refusal_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16)
        return refusal_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "a unique local (private) address",
        x if x & 0xffc0 == 0xfe80 => "a link-local address",
        x if x & 0xffc0 == 0xfec0 => "a site-local address",
        x if x & 0xff00 == 0xff00 => "a multicast address",
        0x2001 if s[1] == 0x0db8 => "a documentation address",
        0x2001 if s[1] < 0x0200 => "an IETF protocol address (Teredo, benchmarking, ...)",
        0x3fff if s[1] < 0x1000 => "a documentation address",
        x if x & 0xe000 != 0x2000 => "not a global unicast address",
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(ip: &str, refused: bool) {
        let parsed: IpAddr = ip.parse().unwrap();
        assert_eq!(refusal(parsed).is_some(), refused, "{ip}: {:?}", refusal(parsed));
    }

    #[test]
    fn refuses_every_non_public_range() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
            "100::1",
        ] {
            check(ip, true);
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "169.253.1.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            check(ip, false);
        }
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let guarded = Egress::new(false).unwrap();
        for (url, refused) in [
            ("http://127.0.0.1:9/hook", true),
            ("http://2130706433/hook", true), // 127.0.0.1 as one number
            ("http://0x7f.1/hook", true),
            ("http://[::1]/hook", true),
            ("http://[::ffff:7f00:1]/hook", true),
            ("http://169.254.169.254/latest/meta-data/", true),
            ("http://10.1.2.3/", true),
            ("http://localhost:8080/", true),
            ("http://api.localhost./", true),
            ("https://hooks.example.com/in", false),
            ("https://93.184.216.34/in", false),
        ] {
            let got = guarded.check_url(url);
            assert_eq!(matches!(got, Err(EgressError::Refused(_))), refused, "{url}: {got:?}");
        }
        for url in
            ["ftp://example.com/", "https://user:pw@example.com/", "not a url", "file:///etc"]
        {
            assert!(matches!(guarded.check_url(url), Err(EgressError::Invalid(_))), "{url}");
        }
        let open = Egress::new(true).unwrap();
        assert!(open.check_url("http://127.0.0.1:9/hook").is_ok());
        assert!(open.check_url("https://user@example.com/").is_err());
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let a = |s: &str| SocketAddr::new(s.parse().unwrap(), 0);
        assert!(vet("x", vec![a("127.0.0.1")], false).unwrap_err().0.contains("loopback"));
        assert_eq!(vet("x", vec![a("10.0.0.1"), a("8.8.8.8")], false).unwrap(), vec![a("8.8.8.8")]);
        assert_eq!(vet("x", vec![a("127.0.0.1")], true).unwrap(), vec![a("127.0.0.1")]);
    }

    #[test]
    fn resolver_refuses_names_of_this_machine() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let guarded = Guarded { allow_private: false };
            let name: Name = "localhost".parse().unwrap();
            let err = match guarded.resolve(name).await {
                Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
                Err(e) => e,
            };
            assert!(err.to_string().contains("loopback"), "{err}");
        });
    }
}
