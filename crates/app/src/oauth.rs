//! berth as an OAuth 2 provider to workspaces' apps (JupyterHub's): every
//! workspace is a client (`berth-ws-<id>`) whose secret is the server token
//! its app got at start. The authorization-code grant, with PKCE (S256).

use model::hub::{access_scopes, client_id, oauth_callback_url, CLIENT_ID_PREFIX};
use model::secret::{random_secret, sha256_hex, MintedToken};
use model::AuditEntry;
use model::{now_millis, AuditAction, Outcome, Principal, ScopeSet, TokenKind, Workspace};
use store::{NewToken, OAuthCode, StoreError};

use crate::{App, AppError, Result};

/// How long a code may wait for its exchange.
const CODE_TTL_MS: i64 = 5 * 60 * 1000;
/// How long an issued token lasts (JupyterHub's default cookie lifetime).
pub const OAUTH_TOKEN_TTL_SECS: i64 = 14 * 24 * 3600;

/// A code's exchange for a token, as the client sent it.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// A token issued for a code.
#[derive(Debug, Clone)]
pub struct Issued {
    pub secret: String,
    pub scopes: ScopeSet,
}

/// Why an exchange failed, as RFC 6749 §5.2 names it.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("unknown client or wrong client secret")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for ExchangeError {
    fn from(e: StoreError) -> Self {
        ExchangeError::App(e.into())
    }
}

impl App {
    /// The workspace behind a client id, if there is one (not being deleted).
    pub async fn oauth_client(&self, client_id: &str) -> Result<Option<Workspace>> {
        let Some(id) = client_id.strip_prefix(CLIENT_ID_PREFIX) else {
            return Ok(None);
        };
        Ok(self
            .workspace_unchecked(id)
            .await?
            .filter(|ws| ws.deletion_requested_at.is_none()))
    }

    /// A code for `who` (already allowed to open `ws`) to give `ws`'s app:
    /// it reaches that workspace and `who`'s name, for five minutes.
    pub async fn issue_oauth_code(
        &self,
        who: &Principal,
        ws: &Workspace,
        code_challenge: Option<String>,
    ) -> Result<String> {
        let scopes = format!("{} read:users:name!user={}", access_scopes(ws)[0], who.name);
        let code = random_secret();
        let stored = OAuthCode {
            hash: sha256_hex(&code),
            workspace_id: ws.id.to_string(),
            user_id: who.user_id.to_string(),
            redirect_uri: oauth_callback_url(ws),
            code_challenge,
            scopes: ScopeSet::parse(&scopes).expect("names make valid filters"),
            expires_at: now_millis() + CODE_TTL_MS,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_oauth_code(&stored).await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Exchanges a code for a token. A code that fails any check is spent all
    /// the same.
    pub async fn exchange_oauth_code(&self, x: Exchange<'_>) -> Result<Issued, ExchangeError> {
        let ws = self
            .oauth_client(x.client_id)
            .await?
            .ok_or(ExchangeError::InvalidClient)?;
        match self.store.token_by_hash(&sha256_hex(x.client_secret)).await {
            Ok((t, _))
                if t.kind == TokenKind::Server && t.workspace_id.as_ref() == Some(&ws.id) => {}
            Ok(_) | Err(StoreError::NotFound { .. }) => return Err(ExchangeError::InvalidClient),
            Err(e) => return Err(e.into()),
        }
        let code = x.code.ok_or(ExchangeError::InvalidGrant("no code"))?;
        let now = now_millis();
        let mut tx = self.store.begin().await?;
        let grant = match tx.take_oauth_code(&sha256_hex(code), now).await {
            Ok(g) => g,
            Err(StoreError::NotFound { .. }) => {
                return Err(ExchangeError::InvalidGrant(
                    "the code is unknown, used or expired",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let checked = if grant.workspace_id != ws.id {
            Err("the code was issued to another client")
        } else if x.redirect_uri.is_some_and(|r| r != grant.redirect_uri) {
            Err("redirect_uri differs from the authorization request's")
        } else {
            match (&grant.code_challenge, x.code_verifier) {
                (None, _) => Ok(()),
                (Some(challenge), Some(verifier)) if auth::pkce_s256(verifier) == *challenge => {
                    Ok(())
                }
                (Some(_), _) => Err("the code_verifier does not match the code_challenge"),
            }
        };
        if let Err(why) = checked {
            tx.commit().await?;
            return Err(ExchangeError::InvalidGrant(why));
        }
        let minted = MintedToken::new();
        let user = self.store.user(&grant.user_id).await?;
        let issued = tx
            .insert_token_of(
                &NewToken {
                    user_id: grant.user_id.clone().into(),
                    hash: minted.hash,
                    prefix: minted.prefix,
                    note: format!("oauth {}/{}", ws.owner, ws.name),
                    scopes: grant.scopes.clone(),
                    expires_at: Some(now + OAUTH_TOKEN_TTL_SECS * 1000),
                },
                TokenKind::OAuth,
                Some(&ws.id),
            )
            .await?;
        tx.audit(&AuditEntry {
            actor_id: Some(user.id.to_string()),
            actor: Some(user.name.to_string()),
            action: AuditAction::TokenCreate,
            target_type: "token".into(),
            target: issued.id.to_string(),
            outcome: Outcome::Success,
            source: None,
            request_id: None,
            detail: Some(format!(
                "oauth client={} scopes={}",
                client_id(&ws.id),
                issued.scopes
            )),
        })
        .await?;
        tx.commit().await?;
        Ok(Issued {
            secret: minted.secret.expose().to_owned(),
            scopes: issued.scopes,
        })
    }
}
