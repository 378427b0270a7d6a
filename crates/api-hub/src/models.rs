//! The bodies berth answers under `/hub/api`, named as JupyterHub's REST API
//! spec names them (`docs/source/_static/rest-api.yml` in jupyterhub/jupyterhub).
//!
//! Fields are in alphabetical order, the order these bodies' keys had when
//! they were built as `serde_json::Value`s (whose maps sort their keys). A key
//! that is absent for some callers is an `Option` skipped when `None`; one
//! that is `null` is a plain `Option`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// `GET /hub/api`: the hub's version.
#[derive(Debug, Serialize)]
pub struct Root {
    pub version: &'static str,
}

/// `GET /hub/api/info`: the hub's version and what it is made of.
#[derive(Debug, Serialize)]
pub struct Info {
    pub authenticator: Component,
    /// JupyterHub's Python version: none, for berth.
    pub python: &'static str,
    pub spawner: Component,
    /// JupyterHub's Python executable: none, for berth.
    pub sys_executable: &'static str,
    pub version: &'static str,
}

/// A pluggable part of the hub (its spawner, its authenticator).
#[derive(Debug, Serialize)]
pub struct Component {
    pub class: &'static str,
    pub version: &'static str,
}

/// A user.
#[derive(Debug, Serialize)]
pub struct User {
    pub admin: bool,
    /// Only for who may administer the user's auth state; berth keeps none,
    /// so it is `null` then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_state: Option<Option<Value>>,
    pub created: String,
    /// The names of the user's groups.
    pub groups: Vec<String>,
    /// Always `user`.
    pub kind: &'static str,
    pub last_activity: Option<String>,
    pub name: String,
    /// What the default server is doing (`spawn`, `stop`), if anything.
    pub pending: Option<&'static str>,
    pub roles: Vec<&'static str>,
    /// The default server's URL, while it runs.
    pub server: Option<String>,
    /// The user's servers by name (the default one is `""`), only for who
    /// may read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers: Option<BTreeMap<String, Server>>,
    /// What the authenticator knows of the user: nothing, for berth.
    pub user_info: Option<Value>,
}

/// A server: one of a user's workspaces.
#[derive(Debug, Serialize)]
pub struct Server {
    pub display_name: String,
    /// `owner/name`.
    pub full_name: String,
    /// The absolute progress URL, which berth leaves to the client.
    pub full_progress_url: Option<String>,
    /// The absolute URL, which berth leaves to the client.
    pub full_url: Option<String>,
    pub last_activity: Option<String>,
    pub name: String,
    /// What the server is doing (`spawn`, `stop`), if anything.
    pub pending: Option<&'static str>,
    pub progress_url: String,
    pub ready: bool,
    pub started: Option<String>,
    /// The spawner's state, only for who holds `admin:server_state` on the
    /// owner; berth's runtime keeps it, so it is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Map<String, Value>>,
    pub stopped: bool,
    pub url: String,
    pub user_options: UserOptions,
}

/// The options a server runs with: berth's are its profile.
#[derive(Debug, Default, Serialize)]
pub struct UserOptions {
    /// None for a default server that never ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// One event of a server's start, as `…/progress` streams them.
#[derive(Debug, Default, Serialize)]
pub struct Event {
    /// The start failed or was cancelled: the last event.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_message: Option<String>,
    /// The message is a line of the app's own output.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub log: bool,
    pub message: String,
    /// Percent done.
    pub progress: u8,
    /// The server is ready: the last event.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ready: bool,
    /// The ready server's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Event {
    /// An event with only its progress and message.
    pub fn new(progress: u8, message: impl Into<String>) -> Event {
        Event {
            message: message.into(),
            progress,
            ..Event::default()
        }
    }
}

/// An API token.
#[derive(Debug, Serialize)]
pub struct Token {
    pub created: String,
    pub expires_at: Option<String>,
    pub id: String,
    /// Always `api_token`.
    pub kind: &'static str,
    pub last_activity: Option<String>,
    pub note: String,
    /// The client the token came through: a workspace's app, or `JupyterHub`.
    pub oauth_client: String,
    /// berth has no roles: always empty.
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// The login session the token belongs to: berth's belong to none.
    pub session_id: Option<String>,
    /// The token itself, only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The owner's name.
    pub user: String,
}

/// `GET /hub/api/users/{name}/tokens`: a user's tokens.
#[derive(Debug, Serialize)]
pub struct TokenList {
    pub api_tokens: Vec<Token>,
}

/// A group.
#[derive(Debug, Serialize)]
pub struct Group {
    /// Always `group`.
    pub kind: &'static str,
    pub name: String,
    /// Whatever JSON object was set, kept as given.
    pub properties: Map<String, Value>,
    /// berth has no roles: always empty.
    pub roles: Vec<String>,
    /// The members' names.
    pub users: Vec<String>,
}

/// A service: a non-human identity with its own tokens.
#[derive(Debug, Serialize)]
pub struct Service {
    pub admin: bool,
    /// Only for who holds `read:services`.
    #[serde(flatten)]
    pub details: Option<ServiceDetails>,
    /// Always `service`.
    pub kind: &'static str,
    pub name: String,
    /// Only for who holds `read:roles:services`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<&'static str>>,
}

/// What `read:services` shows of a service. berth runs and proxies to none,
/// so the command, pid and prefix are empty; a service reading its own model
/// gets `null` for `display`, `info` and `url`, as from JupyterHub's database.
#[derive(Debug, Serialize)]
pub struct ServiceDetails {
    pub command: Vec<String>,
    pub display: Option<bool>,
    pub info: Option<Map<String, Value>>,
    pub pid: u32,
    pub prefix: String,
    pub url: Option<String>,
}

/// `GET /hub/api/user`: who the caller is (a [`User`] or a [`Service`]) and
/// what its credential holds.
#[derive(Debug, Serialize)]
pub struct RequestIdentity<T> {
    #[serde(flatten)]
    pub model: T,
    pub scopes: Vec<String>,
    /// The login session: berth tells none.
    pub session_id: Option<String>,
    /// The id of the token the request came with, if it came with one.
    pub token_id: Option<String>,
}

/// A share: a user's or a group's access to another user's server.
#[derive(Debug, Serialize)]
pub struct Share {
    pub created_at: String,
    /// The group shared with, if it is a group.
    pub group: Option<Named>,
    /// `user` or `group`.
    pub kind: &'static str,
    pub scopes: Vec<String>,
    pub server: SharedServer,
    /// The user shared with, if it is a user.
    pub user: Option<Named>,
}

/// The server a [`Share`] is of.
#[derive(Debug, Serialize)]
pub struct SharedServer {
    /// The absolute URL, which berth leaves to the client.
    pub full_url: Option<String>,
    pub name: String,
    pub ready: bool,
    pub url: String,
    /// The owner.
    pub user: Named,
}

/// A user or a group, by name.
#[derive(Debug, Serialize)]
pub struct Named {
    pub name: String,
}

/// An empty object: what is left of a share whose access was revoked.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// One page of a list, for a client that accepts JupyterHub's pagination
/// media type: `items` is the page (an array, or an object for the proxy's
/// routes).
#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    #[serde(rename = "_pagination")]
    pub pagination: Pagination,
    pub items: T,
}

/// Where a page is in its list.
#[derive(Debug, Serialize)]
pub struct Pagination {
    pub limit: usize,
    /// The next page, unless this is the last.
    pub next: Option<NextPage>,
    pub offset: usize,
    /// The length of the whole list.
    pub total: usize,
}

/// The page after one, and its URL.
#[derive(Debug, Serialize)]
pub struct NextPage {
    pub limit: usize,
    pub offset: usize,
    pub url: String,
}

/// A route of the proxy's table, as configurable-http-proxy answers it.
#[derive(Debug, Serialize)]
pub struct ProxyRoute {
    pub data: RouteData,
    /// The URL prefix routed.
    pub routespec: String,
    /// Where it goes.
    pub target: String,
}

/// What the hub notes on a route.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum RouteData {
    /// The hub's own route; `hub` is always true.
    Hub { hub: bool, last_activity: String },
    /// A server's.
    Server {
        last_activity: String,
        server_name: String,
        user: String,
    },
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct AccessToken {
    pub access_token: String,
    /// Seconds.
    pub expires_in: i64,
    /// The token's scopes, space-separated.
    pub scope: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
}

/// The token endpoint's error (RFC 6749 §5.2).
#[derive(Debug, Serialize)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
}
