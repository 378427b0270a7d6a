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
mod groups;
mod oauth;
mod profiles;
mod queries;
mod quotas;
mod services;
mod sessions;
mod shares;
mod tokens;
mod users;
mod workspaces;

pub use credentials::{Authenticated, Presented};
pub use groups::CreateGroup;
pub use oauth::{Exchange, ExchangeError, Issued, OAUTH_TOKEN_TTL_SECS};
pub use queries::WorkspaceQuery;
pub use quotas::UserQuota;
pub use services::{CreateService, MIN_SERVICE_TOKEN_LEN};
pub use sessions::{LogIn, NewSession};
pub use tokens::CreateToken;
pub use users::{
    bootstrap, configure_profiles, reset_password, CreateUser, SetPassword, UpdateUser,
    UserDeletion,
};
pub use workspaces::{ChangeWorkspace, CreateWorkspace, DeleteWorkspace, WorkspaceChange};

use std::sync::Arc;
use std::time::Duration;

use model::AuditEntry;
use model::{AuditAction, Outcome, Principal, Quota, Scope};
use store::StoreError;
/// The store's handle, which an [`App`] is made from (and the filter and
/// usage types its queries take and give); its methods are this crate's to call.
pub use store::{Among, AuditFilter, Store, Usage, UserFilter, UserOrder};

/// Settings of the operations.
#[derive(Debug, Clone)]
pub struct Config {
    /// What each user may hold at most, unless an admin gave them limits of
    /// their own.
    pub quota: Quota,
    pub session_ttl: Duration,
    /// Failed logins for one user name before attempts are refused for a while.
    pub login_max_failures: u32,
    /// The first refusal period; it doubles with each further failure.
    pub login_lockout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            quota: Quota::default(),
            session_ttl: Duration::from_secs(14 * 24 * 3600),
            login_max_failures: 5,
            login_lockout: Duration::from_secs(30),
        }
    }
}

/// What every operation runs against; cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    store: Store,
    config: Arc<Config>,
    credentials: credentials::Credentials,
    /// Failed logins, by user name and by address.
    throttle: Arc<auth::Throttle>,
    /// Single users' creations, written together.
    creations: Arc<std::sync::Mutex<users::Creations>>,
}

impl App {
    pub fn new(store: Store, config: Config) -> App {
        App {
            store,
            throttle: Arc::new(auth::Throttle::new(
                config.login_max_failures,
                config.login_lockout,
            )),
            config: Arc::new(config),
            credentials: credentials::Credentials::default(),
            creations: Arc::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
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
    pub fn audit(
        &self,
        action: AuditAction,
        target_type: &'static str,
        target: &str,
    ) -> AuditEntry {
        AuditEntry {
            actor_id: Some(self.principal.user_id.to_string()),
            actor: Some(self.principal.name.to_string()),
            action,
            target_type: target_type.to_owned(),
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
    ) -> AuditEntry {
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
    /// Not allowed, for the reason given (not a missing scope).
    #[error("{message}")]
    Refused { message: String },
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
    /// A login with an unknown user name or a wrong password.
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// A login to an account that has no password.
    #[error("{user} has no password: an administrator can set one, or use an API token")]
    NoPassword { user: model::Name },
    /// Changing one's own password: `old_password` is not the current one.
    #[error("old_password: that is not your current password")]
    WrongPassword,
    /// Too many failed logins: try again after this many seconds.
    #[error("too many failed logins; try again in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    /// A fault that is not the caller's.
    #[error("{0}")]
    Internal(String),
    #[error("store")]
    Store(#[source] StoreError),
}

impl AppError {
    /// The field of the command the error is about, if it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            AppError::Invalid { field, .. } | AppError::AlreadyExists { field, .. } => Some(field),
            AppError::WrongPassword => Some("old_password"),
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

/// Maps a store conflict (a unique name taken) to [`AppError::AlreadyExists`]
/// of `field`; other store errors as usual.
fn taken(field: &'static str, message: String) -> impl FnOnce(StoreError) -> AppError {
    move |e| match e {
        StoreError::Conflict { .. } => AppError::AlreadyExists { field, message },
        e => e.into(),
    }
}

/// Maps a store conflict (the record's state forbids the change) to
/// [`AppError::Conflict`] saying `message`; other store errors as usual.
fn in_conflict(message: &str) -> impl FnOnce(StoreError) -> AppError + '_ {
    move |e| match e {
        StoreError::Conflict { .. } => AppError::Conflict {
            message: message.to_owned(),
        },
        e => e.into(),
    }
}

/// Maps a record that a command names but that does not exist (a profile,
/// an owner) to [`AppError::Invalid`] of `field`.
fn missing_as_invalid(field: &'static str, message: String) -> impl FnOnce(StoreError) -> AppError {
    move |e| match e {
        StoreError::NotFound { .. } => AppError::invalid(field, message),
        e => e.into(),
    }
}
