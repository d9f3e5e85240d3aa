//! Secrets at rest and message signatures.
//!
//! `Sealer` encrypts small secrets (payment provider credentials, webhook signing secrets,
//! certificates and the ACME account key) with AES-256-GCM under the key
//! `AURELIO_SECRET_KEY` (64 hex digits), each bound to what it belongs to: `context`
//! names the shop and the value (`shop:<id>/payments:stripe`), so a sealed value copied
//! into another shop's database, or to another row, does not open. Only the ACME account,
//! which is the platform's, is bound to its directory URL alone. `sign` and `verify` are
//! the HMAC-SHA256 scheme of outgoing and incoming webhooks
//! (`t=<unix seconds>,v1=<hex of HMAC(secret, "<t>.<body>")>`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable holding the sealing key.
pub const SECRET_KEY_VAR: &str = "AURELIO_SECRET_KEY";

/// What `AURELIO_SECRET_KEY` must look like, for error messages.
pub const KEY_HELP: &str = "set AURELIO_SECRET_KEY to 64 random hex digits (for example the \
     output of `openssl rand -hex 32`) and keep it: secrets sealed with one key cannot be \
     read with another";

/// Encrypts and decrypts secrets at rest: AES-256-GCM, a fresh 96-bit nonce per value, and
/// the value bound to what it belongs to (a hostname, `payments:stripe`) as associated
/// data, so a sealed value copied to another row does not open. Stored as hex of
/// `nonce || ciphertext+tag`.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

impl Sealer {
    /// From 32 key bytes.
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// From the configured secret (`AURELIO_SECRET_KEY`); an error saying what to set when
    /// it is missing or malformed.
    pub fn from_secret(secret: Option<&str>) -> Result<Self, String> {
        match secret.map(str::trim) {
            None | Some("") => Err(format!("{SECRET_KEY_VAR} is not set: {KEY_HELP}")),
            Some(s) => {
                let key: [u8; 32] = unhex(s)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| format!("{SECRET_KEY_VAR} is not 64 hex digits: {KEY_HELP}"))?;
                Ok(Self::new(&key))
            }
        }
    }

    /// Seals `plain` for `context`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: context.as_bytes() })
            .expect("AES-GCM encryption of a short value cannot fail");
        format!("{}{}", hex(&nonce), hex(&sealed))
    }

    /// Opens what `seal` made for the first of `contexts` it was made for: the current
    /// context, then ones of values sealed before it (which the caller seals again).
    pub fn open_any(&self, contexts: &[&str], sealed: &str) -> Result<(Vec<u8>, usize), String> {
        let mut last = Err("no context to open with".to_owned());
        for (i, c) in contexts.iter().enumerate() {
            last = self.open(c, sealed).map(|plain| (plain, i));
            if last.is_ok() {
                break;
            }
        }
        last
    }

    /// Opens what `seal` made for the same `context` with the same key.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let bytes = unhex(sealed).ok_or("the sealed value is not hex")?;
        if bytes.len() < 12 + 16 {
            return Err("the sealed value is too short".into());
        }
        let (nonce, body) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: context.as_bytes() })
            .map_err(|_| {
                format!(
                    "cannot decrypt: sealed with another {SECRET_KEY_VAR}, for another shop or \
                     record, or altered"
                )
            })
    }
}

/// What a shop's sealed value is bound to: the shop and what the value is.
pub fn context(shop_id: &str, what: &str) -> String {
    format!("shop:{shop_id}/{what}")
}

/// The context of a custom domain's certificate: the shop holding the hostname, and the
/// hostname (a hostname taken over by another shop needs a certificate of its own).
pub async fn certificate_context(registry: &sqlx::AnyPool, host: &str) -> Result<String, String> {
    let shop: Option<String> =
        sqlx::query_scalar("SELECT shop_id FROM domains WHERE hostname = $1")
            .bind(host)
            .fetch_optional(registry)
            .await
            .map_err(|e| format!("the registry database: {e}"))?;
    let shop = shop.ok_or_else(|| format!("no shop holds `{host}`"))?;
    Ok(context(&shop, &format!("certificate:{host}")))
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret)
        .expect("HMAC takes keys of any length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The signature header value for `body` at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex(&mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is missing or malformed.
    Malformed,
    /// The timestamp is outside the tolerance (a replay or a skewed clock).
    Expired,
    /// No `v1` signature matches.
    Mismatch,
}

/// Checks a `t=...,v1=...` header against `body`, allowing `tolerance_secs` of clock skew.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.extend(unhex(s)),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance_secs {
        return Err(SignatureError::Expired);
    }
    // `verify_slice` compares in constant time.
    if signatures.iter().any(|s| mac(secret, t, body).verify_slice(s).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = Sealer::from_secret(Some(&"0123456789abcdef".repeat(4))).unwrap();
        let sealed = key.seal("shop.example.com", b"-----BEGIN PRIVATE KEY-----");
        assert!(!sealed.contains("PRIVATE"));
        assert_eq!(key.open("shop.example.com", &sealed).unwrap(), b"-----BEGIN PRIVATE KEY-----");
        assert_ne!(sealed, key.seal("shop.example.com", b"-----BEGIN PRIVATE KEY-----"));
        assert!(key.open("other.example.com", &sealed).is_err());
        let other = Sealer::from_secret(Some(&"fedcba9876543210".repeat(4))).unwrap();
        assert!(other.open("shop.example.com", &sealed).unwrap_err().contains(SECRET_KEY_VAR));
        assert!(Sealer::from_secret(None).unwrap_err().contains("AURELIO_SECRET_KEY is not set"));
        assert!(Sealer::from_secret(Some("short")).unwrap_err().contains("64 hex digits"));
        assert!(key.open("x", "zz").is_err());
    }

    #[test]
    fn shop_contexts_keep_values_in_their_shop() {
        let key = Sealer::from_secret(Some(&"0123456789abcdef".repeat(4))).unwrap();
        let a = context("shop_a", "payments:stripe");
        let b = context("shop_b", "payments:stripe");
        let sealed = key.seal(&a, b"sk_live_x");
        assert!(key.open(&b, &sealed).is_err());
        assert_eq!(
            key.open_any(&[&a, "payments:stripe"], &sealed).unwrap(),
            (b"sk_live_x".to_vec(), 0)
        );
        let legacy = key.seal("payments:stripe", b"sk_live_y");
        assert_eq!(key.open_any(&[&a, "payments:stripe"], &legacy).unwrap().1, 1);
        assert!(key.open_any(&[&b], &legacy).is_err());
    }

    #[test]
    fn signatures_check_body_time_and_secret() {
        let header = sign(b"whsec", 1_000, b"{\"a\":1}");
        assert_eq!(verify(b"whsec", &header, b"{\"a\":1}", 1_100, 300), Ok(()));
        assert_eq!(
            verify(b"whsec", &header, b"{\"a\":2}", 1_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, b"{\"a\":1}", 1_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"whsec", &header, b"{\"a\":1}", 2_000, 300),
            Err(SignatureError::Expired)
        );
        assert_eq!(verify(b"whsec", "v1=00", b"", 0, 300), Err(SignatureError::Malformed));
        // Several signatures (secret rotation): one match is enough.
        let two = format!("{header},v1=00ff");
        assert_eq!(verify(b"whsec", &two, b"{\"a\":1}", 1_000, 300), Ok(()));
    }
}
