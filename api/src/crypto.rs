//! Secrets at rest and message signatures.
//!
//! `Sealer` encrypts small secrets (payment provider credentials, certificates' private
//! keys) with AES-256-GCM under a key from the environment (`AURELIO_SECRET_KEY`, 64 hex
//! digits); each value gets a fresh random nonce and is stored as `v1:<nonce hex>:<ciphertext
//! hex>`. `sign` and `verify` are the HMAC-SHA256 scheme of outgoing and incoming webhooks
//! (`t=<unix seconds>,v1=<hex of HMAC(secret, "<t>.<body>")>`).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable holding the sealing key.
pub const SECRET_KEY_VAR: &str = "AURELIO_SECRET_KEY";

/// Encrypts and decrypts secrets at rest.
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

    /// From 64 hex digits.
    pub fn from_hex(key: &str) -> Result<Self, String> {
        let bytes =
            unhex(key.trim()).ok_or_else(|| format!("{SECRET_KEY_VAR} must be 64 hex digits"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{SECRET_KEY_VAR} must be 64 hex digits (32 bytes)"))?;
        Ok(Self::new(&key))
    }

    /// Encrypts `plain`.
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("AES-GCM encryption of a small value cannot fail");
        format!("v1:{}:{}", hex(&nonce), hex(&sealed))
    }

    /// Decrypts what `seal` produced; `None` when it was not sealed with this key.
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let mut parts = sealed.split(':');
        if parts.next()? != "v1" {
            return None;
        }
        let nonce = unhex(parts.next()?)?;
        let data = unhex(parts.next()?)?;
        if nonce.len() != 12 {
            return None;
        }
        self.cipher.decrypt(Nonce::from_slice(&nonce), data.as_slice()).ok()
    }
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
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let a = Sealer::new(&[7; 32]);
        let b = Sealer::new(&[8; 32]);
        let sealed = a.seal(b"sk_test_123");
        assert!(!sealed.contains("sk_test"));
        assert_ne!(sealed, a.seal(b"sk_test_123"), "fresh nonce each time");
        assert_eq!(a.open(&sealed).as_deref(), Some(&b"sk_test_123"[..]));
        assert_eq!(b.open(&sealed), None);
        assert_eq!(a.open("v1:zz:00"), None);
        assert!(Sealer::from_hex("abc").is_err());
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
