//! Passwords: argon2id hashes, computed off the async threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Why a password was not accepted or not hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Breaks the rules for a new password; the message says which.
    #[error("{0}")]
    Rejected(&'static str),
    #[error("hash a password: {0}")]
    Hash(String),
}

/// Rules for a new password.
pub fn check_password(p: &str) -> Result<(), PasswordError> {
    if p.chars().count() < 8 || p.len() > 1024 {
        return Err(PasswordError::Rejected("must be 8 to 1024 characters"));
    }
    Ok(())
}

/// Hashes a password with argon2id.
pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hash(e.to_string()))?
}

/// Checks a password against a stored hash; with no hash it still spends the same
/// time, so that response times do not tell which user names exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1l2mvJ2XrXDJkVHnm2ncRzHpnS9IZw1bOfx9mOaV1fs";
    tokio::task::spawn_blocking(move || {
        let stored = hash.as_deref().unwrap_or(DUMMY);
        let ok = PasswordHash::new(stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && hash.is_some()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_and_unknown_users_fail() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong".into(), Some(h)).await);
        assert!(!verify_password("anything".into(), None).await);
    }

    #[test]
    fn short_and_huge_passwords_are_rejected() {
        assert!(check_password("seven77").is_err());
        assert!(check_password("eight888").is_ok());
        assert!(check_password(&"x".repeat(1025)).is_err());
        // Counted in characters, limited in bytes.
        assert!(check_password("ééééééééé").is_ok());
    }
}
