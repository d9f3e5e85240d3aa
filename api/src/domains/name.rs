//! Hostnames as merchants type them, made canonical: lowercase ASCII (IDNA to punycode),
//! no trailing dot, checked against IP addresses, bare TLDs and public suffixes (the
//! Public Suffix List compiled into the `psl` crate: nothing is downloaded at run time).

use serde::Serialize;

/// Why a hostname was refused; the message says what to type instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A canonical hostname and the DNS zone it most likely lives in (its registrable domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname {
    /// The hostname, lowercase punycode, no trailing dot: `xn--caf-dma.example.com`.
    pub ascii: String,
    /// The registrable domain (`example.co.uk` for `shop.example.co.uk`).
    pub zone: String,
}

impl Hostname {
    /// Whether the hostname is its zone's apex (needs A/AAAA records, not a CNAME).
    pub fn is_apex(&self) -> bool {
        self.ascii == self.zone
    }

    /// `name` relative to the zone, as most DNS providers' forms want it (`@` for the
    /// apex). Providers append the zone themselves; typing the full name there gives
    /// `_x.example.com.example.com`.
    pub fn relative(&self, name: &str) -> String {
        if name == self.zone {
            "@".to_owned()
        } else {
            name.strip_suffix(&format!(".{}", self.zone)).unwrap_or(name).to_owned()
        }
    }
}

/// Normalizes what a merchant typed into a hostname Aurelio can verify and route.
pub fn normalize(input: &str) -> Result<Hostname, Rejected> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Rejected("give a hostname such as shop.example.com".into()));
    }
    if trimmed.contains("://") || trimmed.contains('/') || trimmed.contains('?') {
        return Err(Rejected(format!(
            "`{trimmed}` is not a bare hostname: give the hostname only, such as shop.example.com, \
             without https:// or a path"
        )));
    }
    if trimmed.contains('*') {
        return Err(Rejected("wildcard hostnames cannot be connected: add each hostname".into()));
    }
    let unbracketed = trimmed.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<std::net::IpAddr>().is_ok() {
        return Err(Rejected(format!(
            "`{trimmed}` is an IP address: connect a domain name such as shop.example.com"
        )));
    }
    let no_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if no_dot.contains(':') {
        return Err(Rejected(format!("`{trimmed}` has a port: give the hostname without `:port`")));
    }
    let ascii = idna::domain_to_ascii(no_dot)
        .map_err(|_| Rejected(format!("`{trimmed}` is not a valid international domain name")))?;
    let ascii = ascii.to_ascii_lowercase();
    check_syntax(&ascii, trimmed)?;
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(Rejected(format!(
            "`{trimmed}` is a top-level domain, not a hostname: give a name such as shop.example.com"
        )));
    }
    if labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err(Rejected(format!("`{trimmed}` looks like an IP address, not a domain name")));
    }
    if ascii == "localhost" || ascii.ends_with(".localhost") {
        return Err(Rejected(
            "`.localhost` names are the built-in shop addresses; connect a domain you own".into(),
        ));
    }
    if psl::suffix(ascii.as_bytes())
        .is_some_and(|s| s.is_known() && s.as_bytes() == ascii.as_bytes())
    {
        return Err(Rejected(format!(
            "`{ascii}` is a public suffix (like com or co.uk) that anyone can register names \
             under: connect a hostname of your own domain, such as shop.example.{ascii}"
        )));
    }
    let zone = psl::domain_str(&ascii).map_or_else(|| ascii.clone(), str::to_owned);
    Ok(Hostname { ascii, zone })
}

fn check_syntax(ascii: &str, shown: &str) -> Result<(), Rejected> {
    if ascii.len() > 253 {
        return Err(Rejected(format!("`{shown}` is longer than the 253 characters DNS allows")));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(Rejected(format!("`{shown}` has an empty label (two dots in a row)")));
        }
        if label.len() > 63 {
            return Err(Rejected(format!(
                "`{label}` in `{shown}` is longer than the 63 characters a DNS label allows"
            )));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Rejected(format!(
                "`{shown}` contains characters a hostname cannot have (letters, digits and `-` only)"
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Rejected(format!("a label of `{shown}` starts or ends with `-`")));
        }
    }
    Ok(())
}

/// A DNS record the merchant creates at their DNS provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Record {
    /// `ownership` (proves the hostname is yours) or `routing` (sends visitors here).
    pub purpose: String,
    /// Record type: `TXT`, `CNAME`, `A` or `AAAA`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fully qualified name: `_aurelio-verify.shop.example.com`.
    pub name: String,
    /// The same name relative to the zone, as most DNS forms want it (`@` for the apex).
    pub relative_name: String,
    /// The zone the record goes in (the registrable domain).
    pub zone: String,
    /// The record's value.
    pub value: String,
}

/// The label the ownership TXT record sits on, in front of the hostname.
pub const VERIFY_LABEL: &str = "_aurelio-verify";

/// The TXT value proving ownership for a token.
pub fn txt_value(token: &str) -> String {
    format!("aurelio-verify={token}")
}

/// The records to create for a hostname: the ownership TXT, then the routing record (a
/// CNAME for a subdomain, A/AAAA for an apex, which cannot hold a CNAME).
pub fn records(
    host: &Hostname,
    token: &str,
    cname_target: &str,
    addresses: &[std::net::IpAddr],
) -> Vec<Record> {
    let txt_name = format!("{VERIFY_LABEL}.{}", host.ascii);
    let mut out = vec![Record {
        purpose: "ownership".into(),
        kind: "TXT".into(),
        relative_name: host.relative(&txt_name),
        name: txt_name,
        zone: host.zone.clone(),
        value: txt_value(token),
    }];
    let routing = |kind: &str, value: String| Record {
        purpose: "routing".into(),
        kind: kind.into(),
        name: host.ascii.clone(),
        relative_name: host.relative(&host.ascii),
        zone: host.zone.clone(),
        value,
    };
    if host.is_apex() {
        for ip in addresses {
            out.push(routing(if ip.is_ipv4() { "A" } else { "AAAA" }, ip.to_string()));
        }
    } else {
        out.push(routing("CNAME", cname_target.trim_end_matches('.').to_owned()));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Hostname {
        normalize(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalizes_case_idna_and_trailing_dot() {
        assert_eq!(ok("Shop.Example.COM.").ascii, "shop.example.com");
        assert_eq!(ok("  shop.example.com ").ascii, "shop.example.com");
        let h = ok("Café.Example.com");
        assert_eq!(h.ascii, "xn--caf-dma.example.com");
        assert_eq!(h.zone, "example.com");
        assert_eq!(ok("bücher.de").ascii, "xn--bcher-kva.de");
        assert_eq!(ok("shop.example.co.uk").zone, "example.co.uk");
        assert_eq!(ok("a.b.shop.example.test").zone, "example.test");
    }

    #[test]
    fn rejects_ips_tlds_and_public_suffixes() {
        for bad in [
            "",
            "192.0.2.1",
            "[2001:db8::1]",
            "2001:db8::1",
            "com",
            "com.",
            "co.uk",
            "github.io",
            "shop.example.com:8080",
            "https://shop.example.com/",
            "*.example.com",
            "shop..example.com",
            "-shop.example.com",
            "shop_1.example.com",
            "demo.localhost",
            "1.2.3.4.5",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(normalize("co.uk").unwrap_err().0.contains("public suffix"));
        assert!(normalize("192.0.2.1").unwrap_err().0.contains("IP address"));
        // A name under a public suffix is fine.
        assert_eq!(ok("me.github.io").zone, "me.github.io");
    }

    #[test]
    fn records_for_subdomain_and_apex() {
        let ips = ["192.0.2.10".parse().unwrap(), "2001:db8::10".parse().unwrap()];
        let sub = records(&ok("shop.example.com"), "abc", "edge.aurelio.test.", &ips);
        assert_eq!(sub.len(), 2);
        assert_eq!(sub[0].kind, "TXT");
        assert_eq!(sub[0].name, "_aurelio-verify.shop.example.com");
        assert_eq!(sub[0].relative_name, "_aurelio-verify.shop");
        assert_eq!(sub[0].value, "aurelio-verify=abc");
        assert_eq!(sub[1].kind, "CNAME");
        assert_eq!(sub[1].relative_name, "shop");
        assert_eq!(sub[1].value, "edge.aurelio.test");
        let apex = records(&ok("example.com"), "abc", "edge.aurelio.test", &ips);
        assert_eq!(apex[0].relative_name, "_aurelio-verify");
        assert_eq!(apex[1].kind, "A");
        assert_eq!(apex[1].relative_name, "@");
        assert_eq!(apex[2].kind, "AAAA");
        assert_eq!(apex[2].value, "2001:db8::10");
    }
}
