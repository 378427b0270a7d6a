//! API tokens: minted here, shown once, stored as hashes.

use model::{now_millis, AuditAction, Name, Scope, ScopeSet, Token, User};
use store::NewToken;

use crate::{App, AppError, Caller, Result};

/// The longest lifetime a token may be given.
const MAX_LIFETIME_SECS: u64 = 10 * 366 * 24 * 3600;

/// A new token of a user. Its scopes (all the caller may give, if `None`)
/// may exceed neither the caller's nor the owner's role.
#[derive(Debug, Clone)]
pub struct CreateToken {
    pub note: String,
    pub scopes: Option<ScopeSet>,
    /// Seconds until it expires; never, if `None`.
    pub expires_in: Option<u64>,
}

impl App {
    /// The user `name` and their tokens, for a caller who may read them.
    pub async fn tokens(&self, caller: Caller<'_>, name: &Name) -> Result<(User, Vec<Token>)> {
        let user = self.user(caller, name, Scope::ReadTokens).await?;
        let tokens = self.store.tokens(&user.id).await?;
        Ok((user, tokens))
    }

    /// Creates a token of the user `name`: it and its secret.
    pub async fn create_token(
        &self,
        caller: Caller<'_>,
        name: &Name,
        cmd: CreateToken,
    ) -> Result<(Token, String)> {
        let user = self.user(caller, name, Scope::ReadUsers).await?;
        caller.require(Scope::Tokens, &user.id)?;
        let allowed = caller
            .principal
            .scopes
            .intersection(&ScopeSet::for_role(user.is_admin));
        let scopes = match cmd.scopes {
            None => allowed,
            Some(asked) => {
                if !asked.is_subset(&allowed) {
                    return Err(AppError::Refused {
                        message: "a token cannot hold scopes that you or its owner do not have"
                            .into(),
                    });
                }
                // A filter reaching past the owner's role would be dead at every use.
                if !user.is_admin && asked.all_filters().any(|f| !f.within_user(&user.name)) {
                    return Err(AppError::Refused {
                        message: "a non-admin's token can be filtered only to their own user \
                                  and servers"
                            .into(),
                    });
                }
                asked
            }
        };
        let expires_at = match cmd.expires_in {
            None => None,
            Some(s) if (1..=MAX_LIFETIME_SECS).contains(&s) => Some(now_millis() + s as i64 * 1000),
            Some(_) => {
                return Err(AppError::invalid(
                    "expires_in",
                    "must be 1 second to 10 years",
                ))
            }
        };
        let minted = model::secret::MintedToken::new();
        let mut tx = self.store.begin().await?;
        let token = tx
            .insert_token(&NewToken {
                user_id: user.id.clone(),
                hash: minted.hash,
                prefix: minted.prefix,
                note: cmd.note,
                scopes,
                expires_at,
            })
            .await?;
        let mut a = caller.audit(AuditAction::TokenCreate, "token", &token.id);
        a.detail = Some(format!("owner={} scopes={}", user.name, token.scopes));
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok((token, minted.secret.expose().to_owned()))
    }

    /// Revokes the token `id` of the user `name`.
    pub async fn delete_token(&self, caller: Caller<'_>, name: &Name, id: &str) -> Result<()> {
        let user = self.user(caller, name, Scope::ReadTokens).await?;
        caller.require(Scope::Tokens, &user.id)?;
        let mut tx = self.store.begin().await?;
        tx.delete_token(&user.id, id).await?;
        let mut a = caller.audit(AuditAction::TokenDelete, "token", id);
        a.detail = Some(format!("owner={}", user.name));
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(())
    }
}
