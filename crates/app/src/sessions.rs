//! Logging in with a password (throttled, audited) and out.

use model::secret::{random_secret, sha256_hex};
use model::AuditEntry;
use model::{now_millis, AuditAction, Name, Outcome, User};
use store::{StoreError, Tx};

use crate::{App, AppError, Caller, Result};

/// A session just opened: the secret for the cookie (stored only as its
/// hash) and the CSRF token that mutations must echo.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub csrf: String,
    /// How long it lasts.
    pub ttl: std::time::Duration,
}

/// A login attempt, before anyone is authenticated.
#[derive(Debug, Clone, Copy)]
pub struct LogIn<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// The client's address (throttled, audited) and the request id.
    pub source: Option<&'a str>,
    pub request_id: &'a str,
}

impl App {
    /// Opens a session for `user_id` in `tx`.
    pub(crate) async fn open_session(&self, tx: &mut Tx, user_id: &str) -> Result<NewSession> {
        let secret = random_secret();
        let csrf = random_secret();
        let ttl = self.config.session_ttl;
        tx.insert_session(
            &sha256_hex(&secret),
            user_id,
            &csrf,
            now_millis() + ttl.as_millis() as i64,
        )
        .await?;
        Ok(NewSession { secret, csrf, ttl })
    }

    /// Checks a password and opens a session. Failures are throttled by user
    /// name and by address, and every attempt is audited.
    pub async fn log_in(&self, attempt: LogIn<'_>) -> Result<(User, NewSession)> {
        let ip = attempt.source.and_then(|s| s.parse().ok());
        // As recorded and throttled: bounded, and without control characters
        // (PostgreSQL refuses NUL in text).
        let attempted = attempt
            .username
            .chars()
            .take(64)
            .map(|c| {
                if c.is_control() {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect::<String>();
        let record = |outcome, detail: &str| AuditEntry {
            actor_id: None,
            actor: None,
            action: AuditAction::AuthLogin,
            target_type: "user".into(),
            target: attempted.clone(),
            outcome,
            source: attempt.source.map(str::to_owned),
            request_id: Some(attempt.request_id.to_owned()),
            detail: Some(detail.to_owned()),
        };
        if let Some(retry_after) = self.throttle.check(&attempted, ip) {
            self.store
                .audit_alone(&record(Outcome::Denied, "throttled"))
                .await?;
            return Err(AppError::TooManyRequests { retry_after });
        }
        // Every user name is a valid name; any other string names no one.
        let found = if Name::parse(attempt.username).is_ok() {
            match self.store.user_credentials(attempt.username).await {
                Ok(found) => Some(found),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let (user, hash) = match found {
            Some((u, h)) => (Some(u), h),
            None => (None, None),
        };
        let hash_missing = hash.is_none();
        let ok = auth::verify_password(attempt.password.to_owned(), hash).await;
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            // Said plainly: user names are no secret (they are in every URL).
            Some(u) if hash_missing && !u.disabled => {
                self.throttle.failed(&attempted, ip);
                self.store
                    .audit_alone(&record(Outcome::Failure, "the account has no password"))
                    .await?;
                return Err(AppError::NoPassword { user: u.name });
            }
            _ => {
                self.throttle.failed(&attempted, ip);
                self.store
                    .audit_alone(&record(Outcome::Failure, "wrong user name or password"))
                    .await?;
                return Err(AppError::InvalidCredentials);
            }
        };
        self.throttle.succeeded(&attempted);
        let mut tx = self.store.begin().await?;
        let session = self.open_session(&mut tx, &user.id).await?;
        let mut ok_record = record(Outcome::Success, "password");
        ok_record.actor_id = Some(user.id.to_string());
        ok_record.actor = Some(user.name.to_string());
        tx.audit(&ok_record).await?;
        tx.commit().await?;
        Ok((user, session))
    }

    /// Ends the session whose secret is `session` (if any), audited.
    pub async fn log_out(&self, caller: Caller<'_>, session: Option<&str>) -> Result<()> {
        let mut tx = self.store.begin().await?;
        if let Some(secret) = session {
            tx.delete_session(&sha256_hex(secret)).await?;
        }
        tx.audit(&caller.audit(
            AuditAction::AuthLogout,
            "user",
            caller.principal.name.as_str(),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
