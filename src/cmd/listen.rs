//! The `--listen` flag of the serving commands (`serve`, `demo`, `watch`): an address, or a
//! bare port meaning that port on 127.0.0.1, so the older `--port N` spelling (kept as a
//! hidden alias) parses to the same thing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Parses `ADDR:PORT` (`127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080`) or a bare `PORT`.
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().map_err(|_| {
        format!("`{text}` is neither an address such as 127.0.0.1:8080 nor a port number")
    })
}

/// The URL a browser on this machine opens to reach a server listening on `addr`: an
/// unspecified address (`0.0.0.0`, `[::]`) is reached through loopback.
pub fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_is_loopback_and_an_address_is_taken_as_is() {
        assert_eq!(parse("4000"), Ok(SocketAddr::from(([127, 0, 0, 1], 4000))));
        assert_eq!(parse("0.0.0.0:8080"), Ok(SocketAddr::from(([0, 0, 0, 0], 8080))));
        assert_eq!(parse("[::1]:9"), Ok(SocketAddr::from((Ipv6Addr::LOCALHOST, 9))));
        assert!(parse("70000").is_err());
        assert!(parse("localhost").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn urls_reach_unspecified_addresses_through_loopback() {
        assert_eq!(local_url(SocketAddr::from(([0, 0, 0, 0], 80))), "http://127.0.0.1:80");
        assert_eq!(local_url(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 80))), "http://[::1]:80");
        assert_eq!(local_url(SocketAddr::from(([10, 0, 0, 2], 8))), "http://10.0.0.2:8");
    }
}
