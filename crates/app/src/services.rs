//! JupyterHub's services: non-human identities with tokens of their own (an
//! idle culler, other tools). A service is a row of `users` of kind
//! `service`; an admin service's principal is an admin's.

use model::secret::sha256_hex;
use model::{AuditAction, Name, Scope, ScopeSet, User};
use store::{NewToken, StoreError};

use crate::{taken, App, AppError, Caller, Result};

/// The shortest token a service may be given: one chosen by hand must
/// still be hard to guess.
pub const MIN_SERVICE_TOKEN_LEN: usize = 16;

/// A new service; `api_token`, if given, becomes its token (a tool
/// configured with it keeps working, as with JupyterHub's `api_token`).
#[derive(Debug, Clone)]
pub struct CreateService {
    pub name: Name,
    pub admin: bool,
    pub api_token: Option<String>,
}

impl App {
    /// Every service (`list:services`).
    pub async fn services(&self, caller: Caller<'_>) -> Result<Vec<User>> {
        caller.require_any(Scope::ListServices)?;
        Ok(self.store.services().await?)
    }

    /// The service `name`; reading its model is the caller's to check.
    pub async fn service(&self, name: &Name) -> Result<User> {
        Ok(self.store.service(name).await?)
    }

    pub async fn create_service(&self, caller: Caller<'_>, cmd: CreateService) -> Result<User> {
        caller.require_any(Scope::AdminServices)?;
        let name = &cmd.name;
        match self.store.service(name).await {
            Ok(_) => {
                return Err(AppError::AlreadyExists {
                    field: "name",
                    message: format!("service {name} exists already"),
                })
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if cmd.admin && !caller.principal.is_admin {
            return Err(AppError::Forbidden {
                scope: Scope::AdminUsers,
            });
        }
        if let Some(t) = &cmd.api_token {
            if t.len() < MIN_SERVICE_TOKEN_LEN
                || t.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(AppError::invalid(
                    "api_token",
                    format!("{MIN_SERVICE_TOKEN_LEN} characters at least, and no spaces"),
                ));
            }
        }
        let mut tx = self.store.begin().await?;
        let service = tx.insert_service(name, cmd.admin).await.map_err(taken(
            "name",
            format!("{name} is a user's name: a service needs its own"),
        ))?;
        if let Some(t) = &cmd.api_token {
            let token = NewToken {
                user_id: service.id.clone(),
                hash: sha256_hex(t),
                prefix: t.chars().take(6).collect(),
                note: format!("service {name}"),
                // What the service's role allows: everything for an admin.
                scopes: ScopeSet::new(Scope::ALL.iter().copied()),
                expires_at: None,
            };
            tx.insert_token(&token).await.map_err(|e| match e {
                StoreError::Conflict { .. } => AppError::invalid("api_token", "already in use"),
                e => e.into(),
            })?;
        }
        let mut a = caller.audit(AuditAction::ServiceCreate, "service", name.as_str());
        a.detail = Some(
            serde_json::json!({"admin": cmd.admin, "token": cmd.api_token.is_some()}).to_string(),
        );
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(service)
    }

    /// Deletes a service with its tokens.
    pub async fn delete_service(&self, caller: Caller<'_>, name: &Name) -> Result<()> {
        caller.require_any(Scope::AdminServices)?;
        let s = self.store.service(name).await?;
        let mut tx = self.store.begin().await?;
        tx.delete_user(&s.id).await?;
        tx.audit(&caller.audit(AuditAction::ServiceDelete, "service", s.name.as_str()))
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
