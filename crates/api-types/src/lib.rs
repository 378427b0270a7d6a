//! The wire types of berth's REST API (`/api/v1`), and only those.
//!
//! Every request body denies unknown fields, so a typo is an error, not a silently
//! ignored setting. Times are RFC 3339 strings in UTC. Domain types in `model`
//! convert to and from these by hand, in the `server` crate; nothing here knows
//! the domain.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status again, as JupyterHub's error bodies carry it.
    #[serde(default)]
    pub status: u16,
    /// A stable, machine-readable code; see `docs/http-errors.md`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The id of the request, also in the `x-request-id` header and the server's log.
    pub request_id: String,
}

/// A page of a list; pass `next` back as the cursor to get the following page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page, or null on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// The logged-in principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user: User,
    /// The effective scopes of this session or token.
    pub scopes: Vec<String>,
    /// `session` or `token`.
    pub via: String,
    /// For sessions: send it back as the `x-csrf-token` header on every mutation.
    pub csrf_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub groups: Vec<String>,
    pub created: String,
    pub last_activity: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub name: String,
    /// At least 8 characters; omit for an account that cannot log in with a password.
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// A new name: the user's workspaces, files, tokens, groups and shares
    /// follow. Their workspaces must be stopped (their URLs hold the name).
    pub name: Option<String>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
    /// Another user's new password (admins; one's own is changed with
    /// `PUT /api/v1/users/{name}/password`, which asks for the old one).
    pub password: Option<String>,
}

/// A new password. For one's own account the current one must come with it;
/// an admin setting another user's password gives only the new one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password (required for one's own account).
    #[serde(default)]
    pub old_password: Option<String>,
    /// 8 to 1024 characters.
    pub password: String,
}

/// Quota limits: workspaces held, and the CPUs and memory of those asked to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaLimits {
    pub max_workspaces: u64,
    /// CPUs (fractions allowed).
    pub max_cpu: f64,
    pub max_memory_bytes: u64,
}

/// What counts against a quota: every workspace, and the CPUs and memory of
/// those not stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaUse {
    pub workspaces: u64,
    pub cpu: f64,
    pub memory_bytes: u64,
}

/// A user's quota: the limits in force, where they come from, and the use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserQuota {
    pub user: String,
    /// The limits in force: the user's own where an admin set them, else the default's.
    pub limits: QuotaLimits,
    /// The limits an admin set for this user; `null` ones are the default's.
    pub custom: QuotaUpdate,
    /// The configured default (`[quota]` in berth.toml).
    pub default: QuotaLimits,
    pub used: QuotaUse,
}

/// A user's own limits, replacing any set before; an omitted or `null` limit
/// is the default's, and all omitted is the default quota. Zero is a limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    pub max_workspaces: Option<u64>,
    /// CPUs (fractions allowed).
    pub max_cpu: Option<f64>,
    pub max_memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub name: String,
    pub members: Vec<String>,
    pub created: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCreate {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMembers {
    pub users: Vec<String>,
}

/// A token's metadata; the token itself is shown once, at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub note: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub expires_at: Option<String>,
    pub last_used: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    #[serde(default)]
    pub note: String,
    /// Defaults to every scope the caller holds for that user.
    pub scopes: Option<Vec<String>>,
    /// Lifetime in seconds; omit for a token that does not expire.
    pub expires_in: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The token. It is not stored and cannot be shown again.
    pub token: String,
    #[serde(flatten)]
    pub info: Token,
}

/// What a workspace of this profile launches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum App {
    /// JupyterLab through `jupyterhub-singleuser`.
    Jupyterlab,
    /// Any command that serves HTTP under `$JUPYTERHUB_SERVICE_PREFIX`, or at
    /// `/` with `strip_prefix`. Its arguments may hold `{port}`, `{base_url}`,
    /// `{username}`, `{servername}` and `{home}`, filled in at each start.
    Command {
        argv: Vec<String>,
        /// The proxy removes the workspace's URL prefix from request paths
        /// (and adds it to redirects), for apps that serve at `/`.
        #[serde(default)]
        strip_prefix: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    pub name: String,
    pub display_name: String,
    /// CPUs (fractions allowed, e.g. 0.5).
    pub cpu: f64,
    pub memory_bytes: u64,
    pub max_processes: u64,
    pub disk_quota_bytes: u64,
    pub idle_timeout_secs: Option<u64>,
    /// `stop` or `pause`: what happens to a workspace idle past the timeout.
    pub idle_action: String,
    pub max_lifetime_secs: Option<u64>,
    pub cost_per_hour: f64,
    pub start_timeout_secs: u64,
    pub app: App,
    /// Whether workspaces may reach the network beyond berth's API.
    pub egress: bool,
    pub created: String,
    pub updated: String,
}

/// A new profile; omitted fields take the Standard profile's values.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileCreate {
    pub name: String,
    pub display_name: String,
    pub cpu: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub max_processes: Option<u64>,
    pub disk_quota_bytes: Option<u64>,
    /// Seconds; 0 means never.
    pub idle_timeout_secs: Option<u64>,
    /// `stop` (the default) or `pause`.
    pub idle_action: Option<String>,
    /// Seconds; 0 means never.
    pub max_lifetime_secs: Option<u64>,
    pub cost_per_hour: Option<f64>,
    pub start_timeout_secs: Option<u64>,
    pub app: Option<App>,
    /// Whether workspaces may reach the network beyond berth's API.
    pub egress: Option<bool>,
}

/// Changes to a profile; omitted fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub cpu: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub max_processes: Option<u64>,
    pub disk_quota_bytes: Option<u64>,
    /// Seconds; 0 means never.
    pub idle_timeout_secs: Option<u64>,
    /// `stop` (the default) or `pause`.
    pub idle_action: Option<String>,
    /// Seconds; 0 means never.
    pub max_lifetime_secs: Option<u64>,
    pub cost_per_hour: Option<f64>,
    pub start_timeout_secs: Option<u64>,
    pub app: Option<App>,
    /// Whether workspaces may reach the network beyond berth's API.
    pub egress: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Condition {
    pub kind: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub profile: String,
    /// `running`, `paused` or `stopped`: what was asked for.
    pub desired_state: String,
    /// `pending`, `starting`, `running`, `paused`, `stopping`, `stopped`, `failed` or
    /// `deleting`: what was last observed.
    pub state: String,
    pub message: Option<String>,
    pub conditions: Vec<Condition>,
    /// Bumped on every change of the desired state.
    pub generation: i64,
    /// The generation the controller last acted on.
    pub observed_generation: i64,
    /// Where the workspace's app is served, through berth's proxy.
    pub url: String,
    pub created: String,
    pub updated: String,
    pub last_activity: Option<String>,
    pub deletion_requested_at: Option<String>,
    /// Whether the deletion keeps the workspace's files.
    pub keep_files: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceCreate {
    pub name: String,
    /// Defaults to `standard`.
    pub profile: Option<String>,
    /// Create it for another user (admins only); defaults to the caller.
    pub owner: Option<String>,
    /// Ask for it to run right away.
    #[serde(default)]
    pub start: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceUpdate {
    pub profile: Option<String>,
}

/// A workspace shared with a user or with a group's members: they may use its
/// app (JupyterHub's `access:servers` on that one workspace), nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Share {
    pub workspace_id: String,
    pub owner: String,
    pub workspace: String,
    /// The user it is shared with, if with a user.
    pub user: Option<String>,
    /// The group it is shared with, if with a group.
    pub group: Option<String>,
    /// Where the workspace's app is served, through berth's proxy.
    pub url: String,
    /// Whether the workspace runs and its app answers.
    pub ready: bool,
    pub created: String,
}

/// Whom to share a workspace with: exactly one of `user` and `group`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareCreate {
    pub user: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub id: String,
    pub at: String,
    pub actor: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    pub source: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

/// One server-sent event of `GET /api/v1/workspaces/{id}/events`, as an SSE
/// client parses the `text/event-stream` framing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerSentEvent {
    /// A JSON `WorkspaceStateEvent` (see the schemas).
    #[schema(content_media_type = "application/json")]
    pub data: String,
    pub event: Option<String>,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

/// What each event of a workspace's stream says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceStateEvent {
    /// The workspace's state; `deleted` in the last event when it is gone.
    pub state: String,
    pub message: String,
    /// Whether the app is running and ready: time to open it.
    pub ready: bool,
}
