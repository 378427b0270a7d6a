//! berth's domain model: the vocabulary every other crate speaks.
//!
//! Names and their validation, scopes and how they are checked, users, profiles,
//! workspaces with their desired spec and observed status, and the workspace
//! state machine. Nothing here knows HTTP or SQL; wire types live in
//! `api-types`, persistence in `store`, the runtimes' trait in `runtime`.

pub mod activity;
pub mod hub;
mod id;
mod name;
mod profile;
mod quota;
pub mod route;
mod scope;
pub mod secret;
mod workspace;

pub use id::{TokenId, UserId, WorkspaceId};
pub use name::{Name, NameError, NAME_PATTERN};
pub use route::Upstream;

/// The workspace that stands for JupyterHub's default (unnamed) server, and
/// that `/user/{user}/` leads to.
pub const DEFAULT_WORKSPACE: &str = "default";
pub use profile::{
    App, CommandVars, IdleAction, Profile, ProfileSpec, ProfileSpecError, PLACEHOLDERS,
};
pub use quota::{Quota, QuotaOverride, QUOTA_CEILING};
pub use scope::{Filter, Principal, Scope, ScopeSet, Targets, UnknownScope};
pub use secret::Secret;
pub use workspace::{
    Condition, ConditionKind, DesiredState, StateChange, Transition, Workspace, WorkspaceSpec,
    WorkspaceState, WorkspaceStatus,
};

/// Milliseconds since the Unix epoch: the one time representation stored and sent.
pub type Millis = i64;

/// The current time as [`Millis`].
pub fn now_millis() -> Millis {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An error and its sources, `outer: inner: innermost`, for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The last line of an app's log worth showing as a reason: not empty and not
/// one of berth's own (`berth: …`), cut to 200 characters.
pub fn last_line(log: &str) -> Option<String> {
    let line = log
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("berth: "))?;
    let mut cut: String = line.chars().take(200).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    Some(cut)
}

/// A fresh, time-ordered identifier (UUID v7), so that ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
#[test]
fn last_line_skips_berth_lines_and_blanks() {
    assert_eq!(
        last_line("a\nsh: 1: nosuch: not found\n\nberth: the app exited with code 127\n"),
        Some("sh: 1: nosuch: not found".into())
    );
    assert_eq!(last_line("berth: starting\n"), None);
    assert_eq!(last_line(&"x".repeat(300)).unwrap().chars().count(), 201);
}

#[cfg(test)]
#[test]
fn audit_actions_are_family_dot_verb_each_once() {
    let mut seen = std::collections::HashSet::new();
    for a in AuditAction::ALL {
        let (family, verb) = a.as_str().split_once('.').expect("family.verb");
        assert!(!family.is_empty() && !verb.is_empty(), "{a}");
        assert!(seen.insert(a.as_str()), "{a} twice");
    }
    assert!(is_audit_action("workspace") && is_audit_action("quota.set"));
    assert!(!is_audit_action("work") && !is_audit_action("workspace.%"));
}

/// A user as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: Name,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: Millis,
    pub last_activity: Option<Millis>,
    /// A JupyterHub service (a tool's identity, e.g. the idle culler), not a
    /// person: it has tokens, and neither a password, groups nor workspaces.
    pub is_service: bool,
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: Name,
    pub members: Vec<Name>,
    pub created_at: Millis,
    /// JupyterHub's group properties: any JSON object, kept as given.
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// An API token's metadata; the token itself is never kept, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: TokenId,
    pub user_id: UserId,
    /// The first characters of the token, enough to recognise it in a list.
    pub prefix: String,
    pub note: String,
    pub scopes: ScopeSet,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub kind: TokenKind,
    /// The workspace a `Server` or `OAuth` token belongs to.
    pub workspace_id: Option<WorkspaceId>,
}

/// A workspace shared with a user or with a group's members: they may use it
/// (`access:servers` on it), as its owner does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub workspace_id: WorkspaceId,
    pub owner_id: UserId,
    pub owner: Name,
    pub workspace: Name,
    pub with: ShareWith,
    pub created_at: Millis,
}

/// Who a workspace is shared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareWith {
    User(Name),
    Group(Name),
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Made by a user (or an admin for them) through the API.
    Api,
    /// A workspace app's own token, made at each start (`JUPYTERHUB_API_TOKEN`).
    Server,
    /// Issued to a browser by the OAuth flow of a workspace's app.
    OAuth,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Server => "server",
            TokenKind::OAuth => "oauth",
        }
    }

    pub fn parse(s: &str) -> Option<TokenKind> {
        [TokenKind::Api, TokenKind::Server, TokenKind::OAuth]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

macro_rules! audit_actions {
    ($($variant:ident => $text:literal,)*) => {
        /// Every action the audit log records, `family.verb`; a filter on the
        /// log names one of them or a family.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($variant,)*
        }

        impl AuditAction {
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<AuditAction> {
                AuditAction::ALL.iter().copied().find(|a| a.as_str() == s)
            }
        }
    };
}

audit_actions! {
    AuthLogin => "auth.login",
    AuthLogout => "auth.logout",
    GroupAddMembers => "group.add_members",
    GroupCreate => "group.create",
    GroupDelete => "group.delete",
    GroupRemoveMember => "group.remove_member",
    GroupSetProperties => "group.set_properties",
    ProfileCreate => "profile.create",
    ProfileDelete => "profile.delete",
    ProfileUpdate => "profile.update",
    QuotaReset => "quota.reset",
    QuotaSet => "quota.set",
    ServiceCreate => "service.create",
    ServiceDelete => "service.delete",
    SystemBootstrap => "system.bootstrap",
    TokenCreate => "token.create",
    TokenDelete => "token.delete",
    UserCreate => "user.create",
    UserDelete => "user.delete",
    UserPassword => "user.password",
    UserUpdate => "user.update",
    WorkspaceCreate => "workspace.create",
    WorkspaceCull => "workspace.cull",
    WorkspaceDelete => "workspace.delete",
    WorkspaceExpire => "workspace.expire",
    WorkspaceRemove => "workspace.remove",
    WorkspaceShare => "workspace.share",
    WorkspaceStart => "workspace.start",
    WorkspaceStop => "workspace.stop",
    WorkspaceUnshare => "workspace.unshare",
    WorkspaceUpdate => "workspace.update",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The families of [`AuditAction`]s (`workspace` for `workspace.create`), in
/// order, each once.
pub fn audit_families() -> Vec<&'static str> {
    let mut families: Vec<_> = AuditAction::ALL
        .iter()
        .filter_map(|a| a.as_str().split_once('.').map(|(f, _)| f))
        .collect();
    families.dedup();
    families
}

/// Whether `s` is an audited action or a family of them.
pub fn is_audit_action(s: &str) -> bool {
    AuditAction::ALL.iter().any(|a| a.as_str() == s) || audit_families().contains(&s)
}

/// What the audit log records of one action: who did what to what, and how
/// it ended. Written with the change it records, in its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub actor_id: Option<String>,
    pub actor: Option<String>,
    pub action: AuditAction,
    /// What kind of thing `target` names: `workspace`, `user`, `group`, …
    pub target_type: String,
    pub target: String,
    pub outcome: Outcome,
    pub source: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

/// An entry as the append-only audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: String,
    pub at: Millis,
    pub entry: AuditEntry,
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub const ALL: &'static [Outcome] = &[Outcome::Success, Outcome::Denied, Outcome::Failure];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "denied" => Some(Outcome::Denied),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// Bytes as people read them: `8 GiB`, `512 MiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() < 0.05 || v >= 100.0 {
        format!("{} {}", v.round(), UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
