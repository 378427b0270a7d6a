//! The route table: what the controller publishes (on a watch channel) and the
//! proxy reads on every request, so that the request path touches neither the
//! store nor a runtime.

use std::collections::HashMap;

use crate::WorkspaceState;

/// Where the proxy sends a workspace's traffic, and what state it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub workspace_id: String,
    /// Who may use it (besides admins).
    pub owner_id: String,
    pub state: WorkspaceState,
    /// The status message, shown on the progress page.
    pub message: String,
    /// Set while the app is running and ready.
    pub upstream: Option<String>,
    /// A failed start that the controller tries again after its back-off.
    pub retrying: bool,
    /// The app serves at `/`: the proxy removes the workspace's base URL from
    /// request paths ([`crate::App::strip_prefix`]).
    pub strip_prefix: bool,
}

/// Every workspace by `owner/name`.
pub type RouteTable = HashMap<String, Route>;

/// The key of a workspace in the table.
pub fn key(owner: &str, name: &str) -> String {
    format!("{owner}/{name}")
}

impl Route {
    /// The route of `ws`, whose profile is `profile`, from what the store
    /// holds: traffic goes to its upstream only while it is running.
    pub fn of(ws: &crate::Workspace, profile: &crate::ProfileSpec) -> Route {
        Route {
            workspace_id: ws.id.clone(),
            owner_id: ws.owner_id.clone(),
            state: ws.status.state,
            message: ws.status.message.clone().unwrap_or_default(),
            upstream: ws
                .upstream
                .clone()
                .filter(|_| ws.status.state == WorkspaceState::Running),
            retrying: ws.status.retrying(),
            strip_prefix: profile.app.strip_prefix(),
        }
    }

    /// Its key in the table.
    pub fn key_of(ws: &crate::Workspace) -> String {
        key(ws.owner.as_str(), ws.name.as_str())
    }
}
