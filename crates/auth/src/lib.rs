//! Authentication's mechanisms, with no I/O of their own: passwords (argon2id
//! hashes, the rules for a new one), login throttling, and comparing secrets
//! in constant time. Who a credential belongs to is `app`'s question (it reads
//! the store); the HTTP layer only finds the credential in a request.

mod password;
mod throttle;

pub use password::{check_password, hash_password, verify_password, PasswordError};
pub use throttle::Throttle;

/// Whether two secrets are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_secrets_compare_equal() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
        assert!(super::constant_time_eq(b"", b""));
    }
}

/// PKCE's S256 transform of a code verifier (RFC 7636 §4.2).
pub fn pkce_s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod pkce_tests {
    #[test]
    fn the_rfc_example_transforms() {
        // RFC 7636, appendix B.
        assert_eq!(
            super::pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
