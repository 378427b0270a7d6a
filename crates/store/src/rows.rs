//! Row decoding and the input records of mutations.

use sqlx::any::AnyRow;

use model::{
    App, AuditRecord, DesiredState, Group, IdleAction, Millis, Name, Outcome, Profile, ProfileSpec,
    QuotaOverride, ScopeSet, Share, ShareWith, StateChange, Token, TokenKind, User, Workspace,
    WorkspaceSpec, WorkspaceState, WorkspaceStatus,
};

use crate::{get, get_id, Result, StoreError};

pub(crate) const USER_SELECT: &str = "SELECT id, name, password_hash, is_admin, disabled, \
    created_at, last_activity, kind AS user_kind FROM users";

pub(crate) const TOKEN_SELECT: &str = "SELECT id, user_id, prefix, note, scopes, created_at, \
    expires_at, last_used_at, kind, workspace_id FROM tokens";

pub(crate) const PROFILE_SELECT: &str = "SELECT id, name, display_name, cpu_millis, \
    memory_bytes, max_processes, disk_quota_bytes, idle_timeout_secs, max_lifetime_secs, \
    cost_per_hour_micros, start_timeout_secs, app, idle_action, egress, created_at, \
    updated_at FROM profiles";

pub(crate) const WORKSPACE_SELECT: &str = "SELECT w.id, w.owner_id, u.name AS owner, w.name, \
    p.name AS profile, w.desired, w.generation, w.state, w.status, w.observed_generation, \
    w.created_at, w.updated_at, w.last_activity, w.deletion_requested_at, w.keep_files, w.upstream \
    FROM workspaces w JOIN users u ON u.id = w.owner_id JOIN profiles p ON p.id = w.profile_id";

pub(crate) const QUOTA_SELECT: &str = "SELECT user_id, max_workspaces, max_cpu_millis, \
    max_memory_bytes FROM user_quotas";

/// What counts against one user's quota (`$1`, the user's id).
pub(crate) const USAGE_SELECT: &str = "SELECT COUNT(*) AS n, \
    CAST(COALESCE(SUM(CASE WHEN w.desired <> 'stopped' THEN p.cpu_millis ELSE 0 END), 0) AS BIGINT) AS cpu, \
    CAST(COALESCE(SUM(CASE WHEN w.desired <> 'stopped' THEN p.memory_bytes ELSE 0 END), 0) AS BIGINT) AS mem \
    FROM workspaces w JOIN profiles p ON p.id = w.profile_id WHERE w.owner_id = $1";

pub(crate) fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        message: e.to_string(),
    }
}

pub(crate) fn one<T>(
    row: Option<AnyRow>,
    what: &'static str,
    f: impl FnOnce(&AnyRow) -> Result<T>,
) -> Result<T> {
    match row {
        Some(r) => f(&r),
        None => Err(StoreError::NotFound { what }),
    }
}

pub(crate) fn name(r: &AnyRow, col: &str) -> Result<Name> {
    let s: String = get(r, col, "name")?;
    Name::parse(&s).map_err(|e| corrupt("name", e))
}

fn non_negative(v: i64, what: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|e| corrupt(what, e))
}

pub(crate) fn user(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: get_id(r, "id", "user")?,
        name: name(r, "name")?,
        is_admin: get::<i64>(r, "is_admin", "user")? != 0,
        disabled: get::<i64>(r, "disabled", "user")? != 0,
        created_at: get(r, "created_at", "user")?,
        last_activity: get(r, "last_activity", "user")?,
        is_service: get::<String>(r, "user_kind", "user")? == "service",
    })
}

pub(crate) fn quota_override(r: &AnyRow) -> Result<QuotaOverride> {
    let limit = |col: &str| -> Result<Option<u64>> {
        get::<Option<i64>>(r, col, "user quota")?
            .map(|v| non_negative(v, "user quota"))
            .transpose()
    };
    Ok(QuotaOverride {
        max_workspaces: limit("max_workspaces")?,
        max_cpu_millis: limit("max_cpu_millis")?,
        max_memory_bytes: limit("max_memory_bytes")?,
    })
}

pub(crate) fn usage(r: &AnyRow) -> Result<Usage> {
    let count = |col: &str| non_negative(get(r, col, "usage")?, "usage");
    Ok(Usage {
        workspaces: count("n")?,
        cpu_millis: count("cpu")?,
        memory_bytes: count("mem")?,
    })
}

pub(crate) fn group(r: &AnyRow) -> Result<Group> {
    Ok(Group {
        id: get(r, "id", "group")?,
        name: name(r, "name")?,
        members: Vec::new(),
        created_at: get(r, "created_at", "group")?,
        properties: serde_json::from_str(&get::<String>(r, "properties", "group")?)
            .map_err(|e| corrupt("group properties", e))?,
    })
}

fn token_with(r: &AnyRow, id: &str, user_id: &str, created_at: &str) -> Result<Token> {
    let scopes: String = get(r, "scopes", "token")?;
    let kind: String = get(r, "kind", "token")?;
    Ok(Token {
        id: get_id(r, id, "token")?,
        user_id: get_id(r, user_id, "token")?,
        prefix: get(r, "prefix", "token")?,
        note: get(r, "note", "token")?,
        scopes: ScopeSet::parse(&scopes).map_err(|e| corrupt("token", e))?,
        created_at: get(r, created_at, "token")?,
        expires_at: get(r, "expires_at", "token")?,
        last_used_at: get(r, "last_used_at", "token")?,
        kind: TokenKind::parse(&kind).ok_or_else(|| corrupt("token", format!("kind {kind:?}")))?,
        workspace_id: get::<Option<String>>(r, "workspace_id", "token")?.map(Into::into),
    })
}

pub(crate) fn share(r: &AnyRow) -> Result<Share> {
    let user: Option<String> = get(r, "user_name", "share")?;
    let group: Option<String> = get(r, "group_name", "share")?;
    let parse = |n: &str| Name::parse(n).map_err(|e| corrupt("share", e));
    let with = match (user, group) {
        (Some(u), None) => ShareWith::User(parse(&u)?),
        (None, Some(g)) => ShareWith::Group(parse(&g)?),
        _ => return Err(corrupt("share", "neither or both of user and group")),
    };
    Ok(Share {
        workspace_id: get_id(r, "workspace_id", "share")?,
        owner_id: get_id(r, "owner_id", "share")?,
        owner: name(r, "owner")?,
        workspace: name(r, "workspace")?,
        with,
        created_at: get(r, "created_at", "share")?,
    })
}

pub(crate) fn token(r: &AnyRow) -> Result<Token> {
    token_with(r, "id", "user_id", "created_at")
}

/// A token row joined with its user, whose columns take the plain names.
pub(crate) fn token_prefixed(r: &AnyRow) -> Result<Token> {
    token_with(r, "t_id", "t_user_id", "t_created_at")
}

pub(crate) fn profile(r: &AnyRow) -> Result<Profile> {
    let app: String = get(r, "app", "profile")?;
    let opt = |col: &str| -> Result<Option<u64>> {
        get::<Option<i64>>(r, col, "profile")?
            .map(|v| non_negative(v, "profile"))
            .transpose()
    };
    let req = |col: &str| -> Result<u64> { non_negative(get(r, col, "profile")?, "profile") };
    Ok(Profile {
        id: get(r, "id", "profile")?,
        name: name(r, "name")?,
        spec: ProfileSpec {
            display_name: get(r, "display_name", "profile")?,
            cpu_millis: req("cpu_millis")?,
            memory_bytes: req("memory_bytes")?,
            max_processes: req("max_processes")?,
            disk_quota_bytes: req("disk_quota_bytes")?,
            idle_timeout_secs: opt("idle_timeout_secs")?,
            idle_action: {
                let a: String = get(r, "idle_action", "profile")?;
                IdleAction::parse(&a).ok_or_else(|| corrupt("profile idle action", &a))?
            },
            max_lifetime_secs: opt("max_lifetime_secs")?,
            cost_per_hour_micros: req("cost_per_hour_micros")?,
            start_timeout_secs: req("start_timeout_secs")?,
            app: serde_json::from_str::<App>(&app).map_err(|e| corrupt("profile app", e))?,
            egress: get::<i64>(r, "egress", "profile")? != 0,
        },
        created_at: get(r, "created_at", "profile")?,
        updated_at: get(r, "updated_at", "profile")?,
    })
}

pub(crate) fn workspace(r: &AnyRow) -> Result<Workspace> {
    let desired: String = get(r, "desired", "workspace")?;
    let state: String = get(r, "state", "workspace")?;
    let status: String = get(r, "status", "workspace")?;
    let mut status: WorkspaceStatus =
        serde_json::from_str(&status).map_err(|e| corrupt("workspace status", e))?;
    status.state =
        WorkspaceState::parse(&state).ok_or_else(|| corrupt("workspace state", &state))?;
    Ok(Workspace {
        id: get_id(r, "id", "workspace")?,
        owner_id: get_id(r, "owner_id", "workspace")?,
        owner: name(r, "owner")?,
        name: name(r, "name")?,
        spec: WorkspaceSpec {
            profile: name(r, "profile")?,
            desired: DesiredState::parse(&desired)
                .ok_or_else(|| corrupt("workspace desired state", &desired))?,
        },
        generation: get(r, "generation", "workspace")?,
        status,
        observed_generation: get(r, "observed_generation", "workspace")?,
        created_at: get(r, "created_at", "workspace")?,
        updated_at: get(r, "updated_at", "workspace")?,
        last_activity: get(r, "last_activity", "workspace")?,
        deletion_requested_at: get(r, "deletion_requested_at", "workspace")?,
        keep_files: get::<i64>(r, "keep_files", "workspace")? != 0,
        upstream: get::<Option<String>>(r, "upstream", "workspace")?
            .map(|u| u.parse().map_err(|e| corrupt("workspace upstream", e)))
            .transpose()?,
    })
}

pub(crate) fn state_change(r: &AnyRow) -> Result<StateChange> {
    let state: String = get(r, "state", "workspace event")?;
    Ok(StateChange {
        at: get(r, "at", "workspace event")?,
        state: WorkspaceState::parse(&state)
            .ok_or_else(|| corrupt("workspace event state", &state))?,
        message: get(r, "message", "workspace event")?,
    })
}

pub(crate) fn audit(r: &AnyRow) -> Result<AuditRecord> {
    let outcome: String = get(r, "outcome", "audit record")?;
    let action: String = get(r, "action", "audit record")?;
    Ok(AuditRecord {
        id: get(r, "id", "audit record")?,
        at: get(r, "at", "audit record")?,
        entry: model::AuditEntry {
            actor_id: get(r, "actor_id", "audit record")?,
            actor: get(r, "actor", "audit record")?,
            action: model::AuditAction::parse(&action)
                .ok_or_else(|| corrupt("audit action", &action))?,
            target_type: get(r, "target_type", "audit record")?,
            target: get(r, "target", "audit record")?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("audit outcome", &outcome))?,
            source: get(r, "source", "audit record")?,
            request_id: get(r, "request_id", "audit record")?,
            detail: get(r, "detail", "audit record")?,
        },
    })
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: Name,
    /// An argon2 PHC string; `None` for accounts that log in only through SSO.
    pub password_hash: Option<String>,
    pub is_admin: bool,
}

/// A token to create; `hash` is the SHA-256 of the token, never the token.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: model::UserId,
    pub hash: String,
    pub prefix: String,
    pub note: String,
    pub scopes: ScopeSet,
    pub expires_at: Option<Millis>,
}

/// A profile to create or the new contents of one.
#[derive(Debug, Clone)]
pub struct NewProfile {
    pub name: Name,
    pub spec: ProfileSpec,
}

/// A session as stored: its CSRF token and expiry.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub csrf: String,
    pub expires_at: Millis,
}

/// Which workspaces to list.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceFilter {
    pub owner_id: Option<String>,
    pub state: Option<WorkspaceState>,
    pub profile: Option<Name>,
    pub name: Option<Name>,
    /// Only ids greater than this one (the pagination cursor).
    pub after: Option<String>,
    pub limit: i64,
}

/// Which people to list, in which order, and which page of them.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only this user (a caller who may see only themself).
    pub only: Option<String>,
    /// Names matching SQL's `LIKE` pattern `%this%`, ignoring case (as
    /// JupyterHub's `name_filter`: `%` and `_` are wildcards there too).
    pub name_like: Option<String>,
    /// Only users among these ids, or only users not among them.
    pub ids: Option<(Among, Vec<String>)>,
    pub order: UserOrder,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// Whether [`UserFilter::ids`] keeps the users it names or the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Among {
    In,
    NotIn,
}

/// What users are listed by. Users never active come first ascending and
/// last descending; ties of activity go by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    /// Creation order (ids are UUIDv7).
    #[default]
    Id,
    Name,
    LastActivity,
}

/// Which audit records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// An exact action (`workspace.create`) or a prefix (`workspace`).
    pub action: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Only ids smaller than this one (the pagination cursor; newest first).
    pub before: Option<String>,
    pub limit: i64,
}

/// What one user's workspaces hold: how many, and the CPU and memory of those
/// that are not stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub workspaces: u64,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

/// An OAuth authorization code waiting to be exchanged for a token.
#[derive(Debug, Clone)]
pub struct OAuthCode {
    /// The code's hash; the code itself goes only to the browser.
    pub hash: String,
    pub workspace_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// The PKCE challenge (S256), when the client sent one.
    pub code_challenge: Option<String>,
    pub scopes: ScopeSet,
    pub expires_at: Millis,
}
