//! `aurelio domain add|verify|status|primary|remove`: custom domains of a shop, through the
//! HTTP API of a running server (`--api`, default `http://127.0.0.1:8080`) with a shop's secret
//! key (`--key` or `AURELIO_API_KEY`, an `sk_...` key with the admin role). Going through
//! the API keeps one code path: the server does the DNS checks with its own nameservers
//! and the background re-checks keep running there.
//!
//! Also here: the `serve` flags of custom domains (`ServeArgs`).

use anyhow::{Context, bail};
use aurelio_api::domains::DomainConfig;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Arguments of `aurelio domain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    /// URL of the running Aurelio API.
    #[arg(long, global = true, env = "AURELIO_API_URL", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// The shop's secret key (`sk_...`, role admin or owner); required.
    #[arg(long, global = true, env = "AURELIO_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Print the API's JSON instead of a summary.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Claim a hostname for the shop and print the DNS records to create.
    Add {
        /// The hostname, e.g. shop.example.com.
        hostname: String,
    },
    /// Check the DNS records now; with --wait, keep checking until the domain is active.
    Verify {
        /// The hostname.
        hostname: String,
        /// Keep checking for up to this many seconds until the status is active.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Show a domain's status, what was seen in DNS and what to fix.
    Status {
        /// The hostname; every domain of the shop when absent.
        hostname: Option<String>,
    },
    /// Make a verified hostname the primary one (the others redirect to it).
    Primary {
        /// The hostname.
        hostname: String,
    },
    /// Remove a hostname from the shop.
    Remove {
        /// The hostname.
        hostname: String,
    },
}

/// Runs `aurelio domain`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let Some(key) = args.key.as_deref() else {
        bail!(
            "give the shop's secret key with --key or AURELIO_API_KEY (an sk_... key, role admin)"
        );
    };
    let client = Client { api: args.api.trim_end_matches('/').to_owned(), key: key.to_owned() };
    crate::cmd::serve::runtime()?.block_on(async {
        match &args.command {
            Sub::Add { hostname } => {
                let d = client
                    .call(
                        "POST",
                        "/api/v1/domains",
                        Some(serde_json::json!({ "hostname": hostname })),
                    )
                    .await?;
                show(&d, args.json, true);
            }
            Sub::Verify { hostname, wait } => {
                let path = format!("/api/v1/domains/{}/verify", encode(hostname));
                let deadline = Instant::now() + Duration::from_secs(*wait);
                loop {
                    let d = client.call("POST", &path, None).await?;
                    let status = d["status"].as_str().unwrap_or_default();
                    if status == "active" || status == "failed" || Instant::now() >= deadline {
                        show(&d, args.json, status != "active");
                        if status == "failed" || (*wait > 0 && status != "active") {
                            bail!(
                                "{hostname} is not active: {}",
                                d["reason"].as_str().unwrap_or_default()
                            );
                        }
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
            }
            Sub::Status { hostname: Some(hostname) } => {
                let d = client
                    .call("GET", &format!("/api/v1/domains/{}", encode(hostname)), None)
                    .await?;
                show(&d, args.json, true);
            }
            Sub::Status { hostname: None } => {
                let list = client.call("GET", "/api/v1/domains", None).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
                } else {
                    let domains = list["domains"].as_array().cloned().unwrap_or_default();
                    if domains.is_empty() {
                        println!("no domains yet: `aurelio domain add shop.example.com`");
                    }
                    for d in domains {
                        println!(
                            "{:<40} {:<14} {}{}",
                            d["hostname"].as_str().unwrap_or_default(),
                            d["status"].as_str().unwrap_or_default(),
                            if d["primary"].as_bool() == Some(true) { "(primary) " } else { "" },
                            d["reason"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            Sub::Primary { hostname } => {
                let d = client
                    .call("POST", &format!("/api/v1/domains/{}/primary", encode(hostname)), None)
                    .await?;
                show(&d, args.json, false);
            }
            Sub::Remove { hostname } => {
                client
                    .call("DELETE", &format!("/api/v1/domains/{}", encode(hostname)), None)
                    .await?;
                println!("removed {hostname}");
            }
        }
        Ok(())
    })
}

fn encode(host: &str) -> String {
    host.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Client {
    api: String,
    key: String,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let url = format!("{}{path}", self.api);
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the Aurelio API at {}", self.api))?;
        let status = resp.status();
        let text = resp.text().await?;
        if status.as_u16() == 204 {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{url} answered {status} with something that is not JSON"))?;
        if !status.is_success() {
            let e = &value["error"];
            bail!(
                "{} ({}): {}",
                status,
                e["code"].as_str().unwrap_or("error"),
                e["message"].as_str().unwrap_or(&text)
            );
        }
        Ok(value)
    }
}

fn show(d: &Value, json: bool, with_records: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(d).unwrap_or_default());
        return;
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    println!("{}  {}", s(&d["hostname"]), s(&d["status"]).to_uppercase().replace('_', " "));
    println!("  {}", s(&d["reason"]));
    println!(
        "  ownership: {}   routing: {}   certificate: {}{}",
        s(&d["ownership"]["state"]),
        s(&d["routing"]["state"]),
        s(&d["certificate"]["state"]),
        d["certificate"]["not_after"].as_str().map(|t| format!(" (until {t})")).unwrap_or_default()
    );
    for part in ["ownership", "routing"] {
        for seen in d[part]["check"]["seen"].as_array().into_iter().flatten() {
            println!("  seen: {}", s(seen));
        }
    }
    if let Some(t) = d["last_checked_at"].as_str() {
        println!("  last checked: {t}");
    }
    if with_records {
        println!(
            "\n  Create these records at your DNS provider (name relative to the zone, then in full):"
        );
        for r in d["records"].as_array().into_iter().flatten() {
            println!(
                "    {:<6} {:<28} {}   ({} in zone {})",
                s(&r["type"]),
                s(&r["relative_name"]),
                s(&r["value"]),
                s(&r["name"]),
                s(&r["zone"])
            );
        }
    }
}

/// The `aurelio serve` flags of custom domains.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Nameservers for domain checks, `ip:port` separated by commas
    /// [default: the system's resolvers].
    #[arg(long, env = "AURELIO_DNS_NAMESERVERS")]
    pub dns_nameservers: Option<String>,
    /// The hostname merchants point subdomains at with a CNAME
    /// [default: edge.aurelio.localhost].
    #[arg(long, env = "AURELIO_DOMAIN_CNAME_TARGET")]
    pub domain_cname_target: Option<String>,
    /// The addresses merchants point apex domains at, separated by commas
    /// [default: 127.0.0.1].
    #[arg(long, env = "AURELIO_DOMAIN_ADDRESSES")]
    pub domain_addresses: Option<String>,
    /// ACME directory URL for certificates (e.g. Let's Encrypt's)
    /// [default: none: no certificates are issued].
    #[arg(long, env = "AURELIO_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,
    /// PEM root that signed the ACME server's HTTPS certificate (test authorities)
    /// [default: the standard public roots].
    #[arg(long, env = "AURELIO_ACME_ROOT_CA")]
    pub acme_root_ca: Option<std::path::PathBuf>,
    /// Contact e-mail for the ACME account [default: none].
    #[arg(long, env = "AURELIO_ACME_CONTACT")]
    pub acme_contact: Option<String>,
}

impl ServeArgs {
    /// Applies the flags over `c`.
    pub fn apply(&self, c: &mut DomainConfig) -> anyhow::Result<()> {
        if let Some(list) = &self.dns_nameservers {
            c.nameservers = DomainConfig::parse_nameservers(list)
                .map_err(|e| anyhow::anyhow!("AURELIO_DNS_NAMESERVERS: {e}"))?;
        }
        if let Some(v) = &self.domain_cname_target {
            c.cname_target.clone_from(v);
        }
        if let Some(list) = &self.domain_addresses {
            c.addresses = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().with_context(|| {
                        format!("AURELIO_DOMAIN_ADDRESSES: `{s}` is not an IP address")
                    })
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if self.acme_directory.is_some() {
            c.acme_directory.clone_from(&self.acme_directory);
        }
        if self.acme_root_ca.is_some() {
            c.acme_root_ca.clone_from(&self.acme_root_ca);
        }
        if self.acme_contact.is_some() {
            c.acme_contact.clone_from(&self.acme_contact);
        }
        Ok(())
    }
}
