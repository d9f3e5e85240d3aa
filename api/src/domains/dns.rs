//! DNS lookups and what they mean for a domain.
//!
//! `Lookup` is the one seam: production asks hickory-resolver, pointed at the configured
//! nameservers (`AURELIO_DNS_NAMESERVERS`, ideally the zones' authoritative servers) or the
//! system's resolvers, with no cache kept between checks; unit tests use a map. A lookup
//! ends in records, in "no such records", or in `Unknown`: a timeout, SERVFAIL or refused
//! connection means "could not ask", which never fails a domain.

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

/// The record types domain checks ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Text records (ownership).
    Txt,
    /// Canonical name (routing of a subdomain).
    Cname,
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Certification Authority Authorization.
    Caa,
}

impl Kind {
    fn record_type(self) -> RecordType {
        match self {
            Self::Txt => RecordType::TXT,
            Self::Cname => RecordType::CNAME,
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Caa => RecordType::CAA,
        }
    }

    /// The type's name, as in zone files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Txt => "TXT",
            Self::Cname => "CNAME",
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Caa => "CAA",
        }
    }
}

/// The outcome of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records of the asked type, as text: TXT strings joined, names without the final
    /// dot, addresses, CAA as `tag value`.
    Found(Vec<String>),
    /// The server answered: there are none (NXDOMAIN or an empty answer).
    NoRecords,
    /// The server could not be asked or could not answer (timeout, SERVFAIL, refused).
    Unknown(String),
}

/// A boxed lookup future.
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// Something that answers DNS questions.
pub trait Lookup: Send + Sync {
    /// Records of `kind` at `name` (a hostname without the final dot).
    fn lookup<'a>(&'a self, name: &'a str, kind: Kind) -> LookupFuture<'a>;
}

/// hickory-resolver against fixed nameservers, or the system's when none are given.
pub struct Dns {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dns")
    }
}

impl Dns {
    /// A resolver asking `nameservers` (UDP, then TCP for truncated answers), or the
    /// system's resolvers when the list is empty. Each query waits `timeout` at most.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if nameservers.is_empty() {
            Resolver::builder(provider).map_err(|e| format!("system DNS configuration: {e}"))?
        } else {
            let mut config = ResolverConfig::from_name_servers(Vec::new());
            for ns in nameservers {
                let mut udp = ConnectionConfig::udp();
                udp.port = ns.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = ns.port();
                config.add_name_server(NameServerConfig::new(ns.ip(), true, vec![udp, tcp]));
            }
            Resolver::builder_with_config(config, provider)
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.try_tcp_on_error = false;
        let resolver = builder.build().map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }
}

impl Lookup for Dns {
    fn lookup<'a>(&'a self, name: &'a str, kind: Kind) -> LookupFuture<'a> {
        Box::pin(async move {
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            match self.resolver.lookup(fqdn.as_str(), kind.record_type()).await {
                Ok(lookup) => {
                    let values: Vec<String> =
                        lookup.answers().iter().filter_map(|r| rdata_text(&r.data, kind)).collect();
                    if values.is_empty() { Answer::NoRecords } else { Answer::Found(values) }
                }
                Err(e) if e.is_no_records_found() => Answer::NoRecords,
                Err(e) => Answer::Unknown(describe(&e)),
            }
        })
    }
}

fn describe(e: &NetError) -> String {
    match e {
        NetError::Timeout => "the DNS server did not answer in time".into(),
        NetError::Dns(hickory_resolver::net::DnsError::ResponseCode(code)) => {
            format!("the DNS server answered {code}")
        }
        other => format!("the DNS server could not be asked: {other}"),
    }
}

fn rdata_text(data: &RData, kind: Kind) -> Option<String> {
    match (data, kind) {
        (RData::TXT(txt), Kind::Txt) => Some(
            txt.txt_data.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect(),
        ),
        (RData::CNAME(name), Kind::Cname) => {
            Some(name.0.to_ascii().trim_end_matches('.').to_ascii_lowercase())
        }
        (RData::A(a), Kind::A) => Some(a.0.to_string()),
        (RData::AAAA(a), Kind::Aaaa) => Some(a.0.to_string()),
        (RData::CAA(caa), Kind::Caa) => Some(format!(
            "{} {}",
            caa.tag.to_ascii_lowercase(),
            String::from_utf8_lossy(&caa.value)
        )),
        _ => None,
    }
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The records are right.
    Ok,
    /// The records are not there (yet).
    Missing,
    /// Records are there with the wrong values.
    Wrong,
    /// DNS could not be asked; nothing is concluded.
    Unknown,
}

/// One check's outcome, why, and what DNS answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    /// The outcome.
    pub outcome: Outcome,
    /// A sentence for people: what is wrong and what to do.
    pub reason: String,
    /// What DNS answered, as `TYPE name value` lines.
    pub seen: Vec<String>,
}

impl Check {
    fn new(outcome: Outcome, reason: impl Into<String>, seen: Vec<String>) -> Self {
        Self { outcome, reason: reason.into(), seen }
    }
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"').trim()
}

/// Whether the TXT record at `_aurelio-verify.<host>` carries `expected`.
pub async fn check_ownership(dns: &dyn Lookup, txt_name: &str, expected: &str) -> Check {
    match dns.lookup(txt_name, Kind::Txt).await {
        Answer::Found(values) => {
            let seen = values.iter().map(|v| format!("TXT {txt_name} {v}")).collect();
            if values.iter().any(|v| unquote(v) == expected) {
                Check::new(Outcome::Ok, format!("TXT record at {txt_name} found"), seen)
            } else {
                let shown: Vec<&str> = values.iter().map(|v| unquote(v)).collect();
                Check::new(
                    Outcome::Wrong,
                    format!(
                        "TXT found at {txt_name} with a different value: `{}`; set it to `{expected}`",
                        shown.join("`, `")
                    ),
                    seen,
                )
            }
        }
        Answer::NoRecords => Check::new(
            Outcome::Missing,
            format!(
                "no TXT record at {txt_name} yet: create it with the value `{expected}` (changes can \
                 take a while to reach every DNS server)"
            ),
            Vec::new(),
        ),
        Answer::Unknown(why) => Check::new(
            Outcome::Unknown,
            format!("could not check the TXT record at {txt_name}: {why}; checking again later"),
            Vec::new(),
        ),
    }
}

/// Whether `host` sends visitors here: a CNAME to `target` (subdomains), or A/AAAA
/// records that are all among `addresses` (apexes; also accepted for subdomains, as
/// providers that flatten CNAMEs publish).
pub async fn check_routing(
    dns: &dyn Lookup,
    host: &str,
    apex: bool,
    target: &str,
    addresses: &[IpAddr],
) -> Check {
    let target = target.trim_end_matches('.').to_ascii_lowercase();
    if !apex {
        match dns.lookup(host, Kind::Cname).await {
            Answer::Found(names) => {
                let seen: Vec<String> = names.iter().map(|n| format!("CNAME {host} {n}")).collect();
                return if names.contains(&target) {
                    Check::new(Outcome::Ok, format!("CNAME points to {target}"), seen)
                } else {
                    Check::new(
                        Outcome::Wrong,
                        format!(
                            "CNAME points to {}, not to {target}: change the CNAME record of {host}",
                            names.join(", ")
                        ),
                        seen,
                    )
                };
            }
            Answer::Unknown(why) => {
                return Check::new(
                    Outcome::Unknown,
                    format!("could not check the CNAME of {host}: {why}; checking again later"),
                    Vec::new(),
                );
            }
            Answer::NoRecords => {}
        }
    }
    let mut seen = Vec::new();
    let mut found: Vec<(Kind, IpAddr)> = Vec::new();
    for kind in [Kind::A, Kind::Aaaa] {
        match dns.lookup(host, kind).await {
            Answer::Found(values) => {
                for v in values {
                    seen.push(format!("{} {host} {v}", kind.as_str()));
                    if let Ok(ip) = v.parse() {
                        found.push((kind, ip));
                    }
                }
            }
            Answer::NoRecords => {}
            Answer::Unknown(why) => {
                return Check::new(
                    Outcome::Unknown,
                    format!(
                        "could not check the {} records of {host}: {why}; checking again later",
                        kind.as_str()
                    ),
                    seen,
                );
            }
        }
    }
    let ours: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    if found.is_empty() {
        let what = if apex {
            format!("no A record at {host} yet: add A/AAAA records with {}", ours.join(", "))
        } else {
            format!("no CNAME record at {host} yet: add a CNAME to {target}")
        };
        return Check::new(Outcome::Missing, what, seen);
    }
    let foreign: Vec<String> = found
        .iter()
        .filter(|(_, ip)| !addresses.contains(ip))
        .map(|(k, ip)| format!("{} {ip}", k.as_str()))
        .collect();
    if foreign.is_empty() {
        return Check::new(Outcome::Ok, format!("{host} points to this platform"), seen);
    }
    let stale_v6 = found.iter().any(|(k, ip)| *k == Kind::Aaaa && !addresses.contains(ip));
    let fix = if apex {
        format!("point {host} at {} only", ours.join(", "))
    } else {
        format!("replace them with a CNAME to {target}")
    };
    let mut reason = format!(
        "{host} has {} which {} not this platform: {fix}",
        foreign.join(", "),
        if foreign.len() == 1 { "is" } else { "are" }
    );
    if stale_v6 {
        reason.push_str(" (remove stale AAAA records: certificate authorities try IPv6 first)");
    }
    Check::new(Outcome::Wrong, reason, seen)
}

/// Whether CAA records allow one of `issuers` to issue for `host` (RFC 8659): the
/// closest name, walking up from `host`, that has CAA records decides; none anywhere
/// allows every CA.
pub async fn check_caa(dns: &dyn Lookup, host: &str, issuers: &[String]) -> Check {
    let labels: Vec<&str> = host.split('.').collect();
    for start in 0..labels.len().saturating_sub(1) {
        let name = labels[start..].join(".");
        match dns.lookup(&name, Kind::Caa).await {
            Answer::NoRecords => {}
            Answer::Unknown(why) => {
                return Check::new(
                    Outcome::Unknown,
                    format!("could not check CAA records at {name}: {why}; checking again later"),
                    Vec::new(),
                );
            }
            Answer::Found(records) => {
                let seen: Vec<String> = records.iter().map(|r| format!("CAA {name} {r}")).collect();
                let issue: Vec<String> = records
                    .iter()
                    .filter_map(|r| r.strip_prefix("issue "))
                    .map(|v| {
                        v.split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .trim_matches('"')
                            .to_ascii_lowercase()
                    })
                    .collect();
                if issue.is_empty() {
                    return Check::new(
                        Outcome::Ok,
                        format!("CAA at {name} does not restrict issuance"),
                        seen,
                    );
                }
                if issue.iter().any(|i| issuers.iter().any(|ours| ours.eq_ignore_ascii_case(i))) {
                    return Check::new(
                        Outcome::Ok,
                        format!("CAA at {name} allows our certificate authority"),
                        seen,
                    );
                }
                let allowed: Vec<&str> =
                    issue.iter().filter(|i| !i.is_empty()).map(String::as_str).collect();
                let who = if allowed.is_empty() {
                    "no certificate authority".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Check::new(
                    Outcome::Wrong,
                    format!(
                        "CAA records at {name} allow only {who} to issue certificates: add a CAA record \
                         `0 issue \"{}\"` at {name}",
                        issuers.first().map_or("letsencrypt.org", String::as_str)
                    ),
                    seen,
                );
            }
        }
    }
    Check::new(Outcome::Ok, "no CAA records: any certificate authority may issue", Vec::new())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Answers from a map; names absent answer `NoRecords`.
    #[derive(Default)]
    pub struct Fake(pub HashMap<(String, Kind), Answer>);

    impl Fake {
        pub fn with(mut self, name: &str, kind: Kind, answer: Answer) -> Self {
            self.0.insert((name.to_owned(), kind), answer);
            self
        }
    }

    impl Lookup for Fake {
        fn lookup<'a>(&'a self, name: &'a str, kind: Kind) -> LookupFuture<'a> {
            let a = self.0.get(&(name.to_owned(), kind)).cloned().unwrap_or(Answer::NoRecords);
            Box::pin(async move { a })
        }
    }

    fn found(v: &[&str]) -> Answer {
        Answer::Found(v.iter().map(|s| (*s).to_owned()).collect())
    }

    fn block<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn ownership_outcomes() {
        let name = "_aurelio-verify.shop.example.com";
        let ok = Fake::default().with(name, Kind::Txt, found(&["other", "\"aurelio-verify=t\""]));
        assert_eq!(block(check_ownership(&ok, name, "aurelio-verify=t")).outcome, Outcome::Ok);
        let wrong = Fake::default().with(name, Kind::Txt, found(&["aurelio-verify=x"]));
        let c = block(check_ownership(&wrong, name, "aurelio-verify=t"));
        assert_eq!(c.outcome, Outcome::Wrong);
        assert!(c.reason.contains("different value: `aurelio-verify=x`"), "{}", c.reason);
        assert_eq!(c.seen, ["TXT _aurelio-verify.shop.example.com aurelio-verify=x"]);
        let c = block(check_ownership(&Fake::default(), name, "aurelio-verify=t"));
        assert_eq!(c.outcome, Outcome::Missing);
        let down = Fake::default().with(name, Kind::Txt, Answer::Unknown("SERVFAIL".into()));
        assert_eq!(block(check_ownership(&down, name, "v")).outcome, Outcome::Unknown);
    }

    #[test]
    fn routing_outcomes() {
        let ips: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap()];
        let h = "shop.example.com";
        let good = Fake::default().with(h, Kind::Cname, found(&["edge.aurelio.test"]));
        assert_eq!(
            block(check_routing(&good, h, false, "edge.aurelio.test.", &ips)).outcome,
            Outcome::Ok
        );
        let elsewhere = Fake::default().with(h, Kind::Cname, found(&["shops.myshopify.com"]));
        let c = block(check_routing(&elsewhere, h, false, "edge.aurelio.test", &ips));
        assert_eq!(c.outcome, Outcome::Wrong);
        assert!(c.reason.contains("CNAME points to shops.myshopify.com"), "{}", c.reason);
        let c = block(check_routing(&Fake::default(), h, false, "edge.aurelio.test", &ips));
        assert_eq!(c.outcome, Outcome::Missing);
        let flat = Fake::default().with(h, Kind::A, found(&["192.0.2.10"]));
        assert_eq!(
            block(check_routing(&flat, h, false, "edge.aurelio.test", &ips)).outcome,
            Outcome::Ok
        );
        let stale = Fake::default().with("example.com", Kind::A, found(&["192.0.2.10"])).with(
            "example.com",
            Kind::Aaaa,
            found(&["2001:db8::99"]),
        );
        let c = block(check_routing(&stale, "example.com", true, "edge", &ips));
        assert_eq!(c.outcome, Outcome::Wrong);
        assert!(
            c.reason.contains("AAAA 2001:db8::99") && c.reason.contains("stale AAAA"),
            "{}",
            c.reason
        );
        let down =
            Fake::default().with("example.com", Kind::Aaaa, Answer::Unknown("timeout".into()));
        assert_eq!(
            block(check_routing(&down, "example.com", true, "edge", &ips)).outcome,
            Outcome::Unknown
        );
    }

    #[test]
    fn caa_walks_up_and_matches_issuers() {
        let le = vec!["letsencrypt.org".to_owned()];
        assert_eq!(block(check_caa(&Fake::default(), "a.b.example.com", &le)).outcome, Outcome::Ok);
        let other = Fake::default().with(
            "example.com",
            Kind::Caa,
            found(&["issue digicert.com", "iodef mailto:x@y"]),
        );
        let c = block(check_caa(&other, "shop.example.com", &le));
        assert_eq!(c.outcome, Outcome::Wrong);
        assert!(c.reason.contains("allow only digicert.com"), "{}", c.reason);
        let ours = Fake::default().with(
            "example.com",
            Kind::Caa,
            found(&["issue letsencrypt.org; accounturi=x"]),
        );
        assert_eq!(block(check_caa(&ours, "shop.example.com", &le)).outcome, Outcome::Ok);
        // The closest CAA set decides.
        let closer =
            other.with("shop.example.com", Kind::Caa, found(&["issue \"letsencrypt.org\""]));
        assert_eq!(block(check_caa(&closer, "shop.example.com", &le)).outcome, Outcome::Ok);
        let nobody = Fake::default().with("example.com", Kind::Caa, found(&["issue ;"]));
        assert!(
            block(check_caa(&nobody, "example.com", &le))
                .reason
                .contains("no certificate authority")
        );
        let wild_only =
            Fake::default().with("example.com", Kind::Caa, found(&["issuewild digicert.com"]));
        assert_eq!(block(check_caa(&wild_only, "example.com", &le)).outcome, Outcome::Ok);
    }
}
