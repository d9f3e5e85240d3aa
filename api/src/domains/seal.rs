//! Secrets at rest (certificate keys, the ACME account key) sealed with AES-256-GCM.
//!
//! The key is `AURELIO_SECRET_KEY`: 64 hex digits (32 bytes), the same variable and format
//! the rest of the API seals its secrets with. Each value gets a fresh 96-bit nonce and is bound to what it belongs to (the hostname,
//! the ACME directory) as associated data, so a sealed value copied to another row does
//! not open. Stored as hex: `nonce || ciphertext+tag`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// What `AURELIO_SECRET_KEY` must look like, for error messages.
pub const KEY_HELP: &str = "set AURELIO_SECRET_KEY to 64 random hex digits (for example the \
     output of `openssl rand -hex 32`) and keep it: certificates stored with one key cannot be \
     read with another";

/// A sealing key.
#[derive(Clone)]
pub struct SealKey(Aes256Gcm);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// The key for a secret; an error saying what to set when it is missing or malformed.
    pub fn from_secret(secret: Option<&str>) -> Result<Self, String> {
        match secret.map(str::trim) {
            None | Some("") => Err(format!("AURELIO_SECRET_KEY is not set: {KEY_HELP}")),
            Some(s) => {
                let key: [u8; 32] =
                    from_hex(s).and_then(|b| b.try_into().ok()).ok_or_else(|| {
                        format!("AURELIO_SECRET_KEY is not 64 hex digits: {KEY_HELP}")
                    })?;
                Ok(Self(Aes256Gcm::new(&key.into())))
            }
        }
    }

    /// Seals `plain` for `context`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: context.as_bytes() })
            .expect("AES-GCM encryption of a short value");
        let mut out = String::with_capacity(2 * (12 + sealed.len()));
        for b in nonce.iter().chain(&sealed) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Opens what `seal` made for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let bytes = from_hex(sealed).ok_or("the sealed value is not hex")?;
        if bytes.len() < 12 + 16 {
            return Err("the sealed value is too short".into());
        }
        let (nonce, body) = bytes.split_at(12);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: context.as_bytes() })
            .map_err(|_| {
                "cannot decrypt: sealed with another AURELIO_SECRET_KEY, or altered".to_owned()
            })
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_context_and_key() {
        let key = SealKey::from_secret(Some(&"0123456789abcdef".repeat(4))).unwrap();
        let sealed = key.seal("shop.example.com", b"-----BEGIN PRIVATE KEY-----");
        assert!(!sealed.contains("PRIVATE"));
        assert_eq!(key.open("shop.example.com", &sealed).unwrap(), b"-----BEGIN PRIVATE KEY-----");
        assert_ne!(sealed, key.seal("shop.example.com", b"-----BEGIN PRIVATE KEY-----"));
        assert!(key.open("other.example.com", &sealed).is_err());
        let other = SealKey::from_secret(Some(&"fedcba9876543210".repeat(4))).unwrap();
        assert!(
            other.open("shop.example.com", &sealed).unwrap_err().contains("AURELIO_SECRET_KEY")
        );
        assert!(SealKey::from_secret(None).unwrap_err().contains("AURELIO_SECRET_KEY is not set"));
        assert!(SealKey::from_secret(Some("short")).unwrap_err().contains("64 hex digits"));
    }
}
