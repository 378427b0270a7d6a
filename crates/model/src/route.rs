//! The route table: what the controller publishes (on a watch channel) and the
//! proxy reads on every request, so that the request path touches neither the
//! store nor a runtime.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::WorkspaceState;

/// Where a running workspace's app answers: a TCP address (the process
/// runtime's network namespace, a Kubernetes pod) or a Unix socket. It is
/// kept as text (the store's `workspaces.upstream`): `127.0.0.1:8888`,
/// `[::1]:8888`, or `unix:/path/to/socket`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Text that is no [`Upstream`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid upstream {0:?}: want host:port (an IP address) or unix:/absolute/path")]
pub struct BadUpstream(pub String);

impl FromStr for Upstream {
    type Err = BadUpstream;
    fn from_str(s: &str) -> Result<Self, BadUpstream> {
        let bad = || BadUpstream(s.to_owned());
        match s.strip_prefix("unix:") {
            Some(path) if path.starts_with('/') => Ok(Upstream::Unix(path.into())),
            Some(_) => Err(bad()),
            None => s.parse().map(Upstream::Tcp).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Tcp(addr) => write!(f, "{addr}"),
            Upstream::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Where the proxy sends a workspace's traffic, and what state it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub workspace_id: crate::WorkspaceId,
    /// Who may use it (besides admins).
    pub owner_id: crate::UserId,
    pub state: WorkspaceState,
    /// The status message, shown on the progress page.
    pub message: String,
    /// Set while the app is running and ready.
    pub upstream: Option<Upstream>,
    /// A failed start that the controller tries again after its back-off.
    pub retrying: bool,
    /// The app serves at `/`: the proxy removes the workspace's base URL from
    /// request paths ([`crate::App::strip_prefix`]).
    pub strip_prefix: bool,
}

/// Every workspace by `owner/name`. Keys and routes are shared: the proxy's
/// lookup for a request copies neither, and a change copies only the map.
pub type RouteTable = HashMap<Arc<str>, Arc<Route>>;

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
    pub fn key_of(ws: &crate::Workspace) -> Arc<str> {
        key(ws.owner.as_str(), ws.name.as_str()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_reads_back_as_it_is_written() {
        for text in ["127.0.0.1:8888", "[::1]:80", "unix:/run/berth/w1.sock"] {
            let up: Upstream = text.parse().unwrap();
            assert_eq!(up.to_string(), text);
        }
        assert_eq!(
            "unix:/a".parse::<Upstream>(),
            Ok(Upstream::Unix("/a".into()))
        );
        for bad in ["", "localhost:80", "unix:relative", "fake://w1", "1.2.3.4"] {
            assert!(bad.parse::<Upstream>().is_err(), "{bad}");
        }
    }
}
