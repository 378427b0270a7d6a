//! A string that must never be printed: passwords, tokens, database URLs; and
//! how API tokens are made and recognised.

use std::fmt;

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Tokens start with this, so that secret scanners can recognise them.
pub const TOKEN_PREFIX: &str = "berth_";

/// A random 256-bit secret, URL-safe base64.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The hex SHA-256 of `s`: how tokens, sessions and codes are stored.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A new API token: the secret to hand out once, and what is stored of it.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub secret: Secret,
    pub hash: String,
    /// Enough of the start to recognise it in a list.
    pub prefix: String,
}

impl MintedToken {
    pub fn new() -> Self {
        let secret = format!("{TOKEN_PREFIX}{}", random_secret());
        MintedToken {
            hash: sha256_hex(&secret),
            prefix: secret[..TOKEN_PREFIX.len() + 6].to_owned(),
            secret: Secret(secret),
        }
    }
}

impl Default for MintedToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Holds a secret; `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_printed() {
        let s = super::Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }
}
