//! Certificates from an ACME certificate authority (Let's Encrypt in production, pebble
//! in tests) through HTTP-01, with instant-acme.
//!
//! Only hostnames whose ownership is verified and whose routing is configured get an
//! order, and only after their CAA records allow the authority. The challenge answers are
//! rows of the registry (`acme_challenges`), so whichever API process the authority
//! reaches serves them at `/.well-known/acme-challenge/<token>`. The account credentials
//! and each certificate's private key are sealed with `AURELIO_SECRET_KEY` before they
//! are stored.

use super::DomainConfig;
use super::dns::{Dns, Outcome, check_caa};
use crate::crypto::Sealer;
use crate::db::now_ms;
use crate::platform::Platform;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why no certificate came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueError {
    /// Worth retrying later without a change by the merchant (DNS or the authority could
    /// not be reached).
    Retry(String),
    /// Something must change first (CAA, the secret key, the authority's refusal).
    Fatal(String),
}

impl std::fmt::Display for IssueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry(m) | Self::Fatal(m) => f.write_str(m),
        }
    }
}

/// A certificate and its key, as stored (sealed) and as a TLS terminator loads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certificate {
    /// The chain, leaf first, PEM.
    pub chain_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// An issued certificate's validity end (Unix milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Issued {
    /// `notAfter` of the leaf.
    pub not_after: i64,
}

/// Orders, validates and stores a certificate for `host`.
pub async fn issue(platform: &Platform, host: &str) -> Result<Issued, IssueError> {
    let cfg = &platform.config.domains;
    let Some(directory) = cfg.acme_directory.clone() else {
        return Err(IssueError::Fatal("certificates are not managed by this server".into()));
    };
    let key =
        Sealer::from_secret(platform.config.secret_key.as_deref()).map_err(IssueError::Fatal)?;
    let dns = Dns::new(&cfg.nameservers, cfg.dns_timeout())
        .map_err(|e| IssueError::Retry(format!("DNS: {e}")))?;
    let caa = check_caa(&dns, host, &cfg.caa_issuers).await;
    super::store_caa(platform, host, &caa).await;
    match caa.outcome {
        Outcome::Ok => {}
        Outcome::Unknown => return Err(IssueError::Retry(caa.reason)),
        Outcome::Wrong | Outcome::Missing => return Err(IssueError::Fatal(caa.reason)),
    }
    let account = account(platform, cfg, &directory, &key).await?;
    let result = order(platform, &account, host).await;
    let _ = sqlx::query("DELETE FROM acme_challenges WHERE hostname = $1")
        .bind(host)
        .execute(&platform.registry)
        .await;
    let cert = result?;
    let not_after = not_after(&cert.chain_pem)
        .ok_or_else(|| IssueError::Retry("the issued certificate could not be read".into()))?;
    let context = crate::crypto::certificate_context(&platform.registry, host)
        .await
        .map_err(IssueError::Retry)?;
    let sealed = key.seal(&context, serde_json::to_string(&cert).unwrap_or_default().as_bytes());
    let now = now_ms();
    let mut tx = platform.registry.begin().await.map_err(db_err)?;
    sqlx::query("DELETE FROM domain_certificates WHERE hostname = $1")
        .bind(host)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO domain_certificates (hostname, sealed, not_after, issued_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(host)
    .bind(&sealed)
    .bind(not_after)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(Issued { not_after })
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(db_err)`
fn db_err(e: sqlx::Error) -> IssueError {
    IssueError::Retry(format!("the registry database: {e}"))
}

fn acme_err(stage: &str, e: &instant_acme::Error) -> IssueError {
    let message = format!("{stage}: {e}");
    match e {
        instant_acme::Error::Api(_) => IssueError::Fatal(message),
        _ => IssueError::Retry(message),
    }
}

/// The ACME account for `directory`: restored from the registry, or created and stored.
async fn account(
    platform: &Platform,
    cfg: &DomainConfig,
    directory: &str,
    key: &Sealer,
) -> Result<Account, IssueError> {
    let builder = || match &cfg.acme_root_ca {
        Some(pem) => Account::builder_with_root(pem),
        None => Account::builder(),
    };
    let stored: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(&platform.registry)
            .await
            .map_err(db_err)?;
    if let Some(sealed) = stored {
        let plain = key.open(directory, &sealed).map_err(IssueError::Fatal)?;
        let creds: AccountCredentials = serde_json::from_slice(&plain)
            .map_err(|e| IssueError::Fatal(format!("stored ACME account: {e}")))?;
        return builder()
            .map_err(|e| acme_err("ACME client", &e))?
            .from_credentials(creds)
            .await
            .map_err(|e| acme_err("ACME account", &e));
    }
    let contact: Vec<String> = cfg.acme_contact.iter().map(|c| format!("mailto:{c}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, creds) = builder()
        .map_err(|e| acme_err("ACME client", &e))?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.to_owned(),
            None,
        )
        .await
        .map_err(|e| acme_err("creating the ACME account", &e))?;
    let plain = serde_json::to_vec(&creds).unwrap_or_default();
    // Two processes may create an account at once: the first one stored wins next time.
    let _ = sqlx::query(
        "INSERT INTO acme_accounts (directory, sealed, created_at) VALUES ($1, $2, $3)",
    )
    .bind(directory)
    .bind(key.seal(directory, &plain))
    .bind(now_ms())
    .execute(&platform.registry)
    .await;
    Ok(account)
}

/// One order for `host`: HTTP-01 answers published in the registry, then the CSR and
/// the chain.
async fn order(
    platform: &Platform,
    account: &Account,
    host: &str,
) -> Result<Certificate, IssueError> {
    let ids = [Identifier::Dns(host.to_owned())];
    let mut order =
        account.new_order(&NewOrder::new(&ids)).await.map_err(|e| acme_err("new order", &e))?;
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|e| acme_err("authorization", &e))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(IssueError::Fatal(format!("the authorization is {other:?}")));
            }
        }
        let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
            IssueError::Fatal("the certificate authority offers no HTTP-01 challenge".into())
        })?;
        let key_authorization = challenge.key_authorization().as_str().to_owned();
        sqlx::query(
            "INSERT INTO acme_challenges (token, hostname, key_authorization, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&challenge.token)
        .bind(host)
        .bind(&key_authorization)
        .bind(now_ms())
        .execute(&platform.registry)
        .await
        .map_err(db_err)?;
        challenge.set_ready().await.map_err(|e| acme_err("challenge", &e))?;
    }
    let retry = RetryPolicy::new().timeout(Duration::from_secs(90));
    let status = order.poll_ready(&retry).await.map_err(|e| acme_err("validation", &e))?;
    if status != OrderStatus::Ready {
        let state = order.state();
        let problem =
            state.error.as_ref().map_or_else(|| format!("{status:?}"), ToString::to_string);
        let mut reason = format!("the certificate authority could not validate {host}: {problem}");
        let mut authorizations = order.authorizations();
        while let Some(Ok(authz)) = authorizations.next().await {
            for c in &authz.challenges {
                if let Some(p) = &c.error {
                    reason.push_str(&format!("; {p}"));
                }
            }
        }
        return Err(IssueError::Fatal(reason));
    }
    let key_pem = order.finalize().await.map_err(|e| acme_err("finalize", &e))?;
    let chain_pem =
        order.poll_certificate(&retry).await.map_err(|e| acme_err("certificate", &e))?;
    Ok(Certificate { chain_pem, key_pem })
}

/// `notAfter` of the first certificate of a PEM chain, in Unix milliseconds.
pub fn not_after(chain_pem: &str) -> Option<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp() * 1000)
}

/// The stored certificate of `host`, opened (for a TLS terminator).
pub async fn load(platform: &Platform, host: &str) -> Result<Option<Certificate>, String> {
    let sealed: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM domain_certificates WHERE hostname = $1")
            .bind(host)
            .fetch_optional(&platform.registry)
            .await
            .map_err(|e| e.to_string())?;
    let Some(sealed) = sealed else { return Ok(None) };
    let key = Sealer::from_secret(platform.config.secret_key.as_deref())?;
    let context = crate::crypto::certificate_context(&platform.registry, host).await?;
    let (plain, _) = key.open_any(&[&context, host], &sealed)?; // `host`: sealed before shop-bound contexts
    serde_json::from_slice(&plain).map(Some).map_err(|e| e.to_string())
}

/// The key authorization for an HTTP-01 `token` on `host`, when `host` is verified and
/// routed (so challenges are answered for no other name).
pub async fn challenge_answer(platform: &Platform, host: &str, token: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT c.key_authorization FROM acme_challenges c JOIN domains d ON d.hostname = c.hostname \
         WHERE c.token = $1 AND c.hostname = $2 AND d.ownership = 'verified' AND d.routing = 'configured'",
    )
    .bind(token)
    .bind(host)
    .fetch_optional(&platform.registry)
    .await
    .ok()
    .flatten()
}
