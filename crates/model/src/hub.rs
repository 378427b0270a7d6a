//! JupyterHub's names for berth's things: a workspace is a server, and each
//! workspace's app is an OAuth client of berth.

use crate::{Name, Workspace, DEFAULT_WORKSPACE};

/// The URL prefix a workspace is served under, as JupyterHub's: the default
/// server at `/user/{user}/`, a named one at `/user/{user}/{server}/`. Its app
/// runs with it as its base URL (`JUPYTERHUB_SERVICE_PREFIX`).
pub fn base_url(owner: &Name, workspace: &Name) -> String {
    base_url_of(owner.as_str(), workspace.as_str())
}

/// [`base_url`] of names already known to be valid.
pub fn base_url_of(owner: &str, workspace: &str) -> String {
    match workspace {
        DEFAULT_WORKSPACE => format!("/user/{owner}/"),
        name => format!("/user/{owner}/{name}/"),
    }
}

/// The one redirect URI of a workspace's OAuth client.
pub fn oauth_callback_url(ws: &Workspace) -> String {
    format!("{}oauth_callback", base_url(&ws.owner, &ws.name))
}

/// The OAuth client id of a workspace's app.
pub fn client_id(workspace_id: &str) -> String {
    format!("{CLIENT_ID_PREFIX}{workspace_id}")
}

/// What every workspace's OAuth client id starts with.
pub const CLIENT_ID_PREFIX: &str = "berth-ws-";

/// JupyterHub's name of a workspace's server: `""` for the default one.
pub fn server_name(ws: &Workspace) -> &str {
    match ws.name.as_str() {
        DEFAULT_WORKSPACE => "",
        name => name,
    }
}

/// The scopes a browser needs to use a workspace's app (JupyterHub's
/// `Spawner.oauth_access_scopes`).
pub fn access_scopes(ws: &Workspace) -> [String; 2] {
    [
        format!("access:servers!server={}/{}", ws.owner, server_name(ws)),
        format!("access:servers!user={}", ws.owner),
    ]
}

/// The workspace a server name stands for: `""` is the default one.
pub fn workspace_name(server: &str) -> &str {
    if server.is_empty() {
        DEFAULT_WORKSPACE
    } else {
        server
    }
}

/// Where a server's progress events are, as JupyterHub's `User.progress_url`.
pub fn progress_url(owner: &str, server: &str) -> String {
    match server {
        "" => format!("/hub/api/users/{owner}/server/progress"),
        name => format!("/hub/api/users/{owner}/servers/{name}/progress"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_jupyterhubs() {
        let alice = Name::parse("alice").unwrap();
        let at = |ws: &str| base_url(&alice, &Name::parse(ws).unwrap());
        assert_eq!(at(DEFAULT_WORKSPACE), "/user/alice/");
        assert_eq!(at("lab"), "/user/alice/lab/");
        assert_eq!(workspace_name(""), DEFAULT_WORKSPACE);
        assert_eq!(workspace_name("lab"), "lab");
    }
}
