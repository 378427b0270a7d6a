//! berth's operations. Each one is a typed command (`CreateWorkspace`, …) that
//! an [`App`] runs for a [`Caller`]: it is authorized by the caller's scopes,
//! writes its change and its audit record in one transaction, and fails with
//! an [`AppError`] that names the offending field. What follows a commit (the
//! controller wakes, caches of authentication drop what a change revoked) is
//! the store's change feed, on every replica, so no operation can forget it.
//!
//! The REST API, the JupyterHub API and the portal are adapters over this
//! crate: they parse input into commands and render results and errors.

mod credentials;
mod shares;
mod workspaces;

pub use credentials::{Authenticated, Presented};
pub use workspaces::{ChangeWorkspace, CreateWorkspace, DeleteWorkspace, WorkspaceChange};

use model::{AuditAction, Outcome, Principal, Quota, Scope};
use store::{NewAudit, Store, StoreError};

/// What every operation runs against; cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    store: Store,
    /// What each user may hold at most, unless an admin gave them limits of
    /// their own.
    quota: Quota,
    credentials: credentials::Credentials,
}

impl App {
    pub fn new(store: Store, quota: Quota) -> App {
        App {
            store,
            quota,
            credentials: credentials::Credentials::default(),
        }
    }

    pub fn quota(&self) -> &Quota {
        &self.quota
    }
}

/// Who asks for an operation: an authenticated principal, and where the
/// request came from (for the audit record).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub principal: &'a Principal,
    pub request_id: &'a str,
    pub source: Option<&'a str>,
}

impl Caller<'_> {
    /// An audit record of a successful action by this caller.
    pub fn audit(&self, action: AuditAction, target_type: &'static str, target: &str) -> NewAudit {
        NewAudit {
            actor_id: Some(self.principal.user_id.clone()),
            actor: Some(self.principal.name.to_string()),
            action,
            target_type,
            target: target.to_owned(),
            outcome: Outcome::Success,
            source: self.source.map(str::to_owned),
            request_id: Some(self.request_id.to_owned()),
            detail: None,
        }
    }

    /// An audit record of an action on a workspace (target `owner/name`).
    pub fn audit_workspace(
        &self,
        action: AuditAction,
        ws: &model::Workspace,
        detail: String,
    ) -> NewAudit {
        let mut a = self.audit(action, "workspace", &format!("{}/{}", ws.owner, ws.name));
        a.detail = Some(detail);
        a
    }

    /// Fails unless the caller holds `scope` for `owner_id`'s resources.
    pub fn require(&self, scope: Scope, owner_id: &str) -> Result<()> {
        if self.principal.may(scope, owner_id) {
            Ok(())
        } else {
            Err(AppError::Forbidden { scope })
        }
    }

    /// Fails unless the caller holds `scope` for `owner_id`'s workspace
    /// `workspace` (the owner's reach, or a filter naming the server).
    pub fn require_server(&self, scope: Scope, owner_id: &str, workspace: &str) -> Result<()> {
        if self.principal.may_server(scope, owner_id, workspace) {
            Ok(())
        } else {
            Err(AppError::Forbidden { scope })
        }
    }

    /// Fails unless the caller holds `scope` at all.
    pub fn require_any(&self, scope: Scope) -> Result<()> {
        if self.principal.has(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden { scope })
        }
    }
}

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such thing, or one the caller may not see.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("this request needs the scope {scope}")]
    Forbidden { scope: Scope },
    /// A field's value is not acceptable (it names a profile that does not
    /// exist, say).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// What `field` names exists already.
    #[error("{message}")]
    AlreadyExists {
        field: &'static str,
        message: String,
    },
    /// The thing's state forbids the change.
    #[error("{message}")]
    Conflict { message: String },
    #[error("{message}")]
    QuotaExceeded { message: String },
    /// No credential, or one that is unknown, expired or revoked, or whose
    /// user is disabled.
    #[error("log in or send an API token")]
    Unauthenticated,
    #[error("store")]
    Store(#[source] StoreError),
}

impl AppError {
    /// The field of the command the error is about, if it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            AppError::Invalid { field, .. } | AppError::AlreadyExists { field, .. } => Some(field),
            _ => None,
        }
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => AppError::NotFound { what },
            StoreError::Conflict { what } => AppError::Conflict {
                message: what.to_owned(),
            },
            other => AppError::Store(other),
        }
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Maps a record that a command names but that does not exist (a profile,
/// an owner) to [`AppError::Invalid`] of `field`.
fn missing_as_invalid(field: &'static str, message: String) -> impl FnOnce(StoreError) -> AppError {
    move |e| match e {
        StoreError::NotFound { .. } => AppError::invalid(field, message),
        e => e.into(),
    }
}
