//! Which workspace a request path names. Only the raw, still percent-encoded
//! path is looked at, and the user and workspace segments must be valid berth
//! names exactly as sent: an encoded slash, a dot segment, an empty segment, an
//! upper-case letter or an overlong name never resolves to someone's workspace.

use model::route::{key, Route, RouteTable};
use model::Name;

/// The URL prefix the proxy owns.
pub const PREFIX: &str = "/user/";
pub use model::DEFAULT_WORKSPACE;

/// What a path under [`PREFIX`] resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Forward to this workspace (whatever its state).
    Workspace {
        owner: String,
        name: String,
        route: Route,
    },
    /// Send the client here instead (a path without its trailing slash, or the
    /// default workspace's URL); the query is appended by the caller.
    Redirect(String),
    /// No such user or workspace, or not a path of the proxy at all.
    NotFound,
    /// A dot segment: never normalised, refused.
    BadPath,
}

/// Resolves `path` (no query) against the route table.
pub fn resolve(path: &str, routes: &RouteTable) -> Resolved {
    let Some(after) = path.strip_prefix(PREFIX) else {
        return Resolved::NotFound;
    };
    if path.split('/').any(is_dot_segment) {
        return Resolved::BadPath;
    }
    let (user, rest) = match after.split_once('/') {
        Some((user, rest)) => (user, Some(rest)),
        None => (after, None),
    };
    if Name::parse(user).is_err() {
        return Resolved::NotFound;
    }
    let Some(rest) = rest else {
        // `/user/alice`: the directory form is the URL.
        return Resolved::Redirect(format!("{PREFIX}{user}/"));
    };
    let (first, tail) = match rest.split_once('/') {
        Some((first, tail)) => (first, Some(tail)),
        None => (rest, None),
    };
    if Name::parse(first).is_ok() {
        if let Some(route) = routes.get(&key(user, first)) {
            if tail.is_none() {
                return Resolved::Redirect(format!("{PREFIX}{user}/{first}/"));
            }
            return Resolved::Workspace {
                owner: user.to_owned(),
                name: first.to_owned(),
                route: route.clone(),
            };
        }
    }
    if routes.contains_key(&key(user, DEFAULT_WORKSPACE)) {
        return Resolved::Redirect(format!("{PREFIX}{user}/{DEFAULT_WORKSPACE}/{rest}"));
    }
    Resolved::NotFound
}

/// `.` or `..`, literally or percent-encoded in any case.
fn is_dot_segment(segment: &str) -> bool {
    let decoded = segment.replace("%2e", ".").replace("%2E", ".");
    decoded == "." || decoded == ".."
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::WorkspaceState;
    use proptest::prelude::*;

    fn table(keys: &[&str]) -> RouteTable {
        keys.iter()
            .map(|k| {
                let route = Route {
                    workspace_id: format!("id-{k}"),
                    owner_id: format!("owner-{}", k.split('/').next().unwrap()),
                    state: WorkspaceState::Running,
                    message: String::new(),
                    upstream: Some("10.213.0.2:8888".into()),
                };
                ((*k).to_owned(), route)
            })
            .collect()
    }

    fn target(r: Resolved) -> Option<String> {
        match r {
            Resolved::Workspace { owner, name, .. } => Some(format!("{owner}/{name}")),
            _ => None,
        }
    }

    #[test]
    fn names_and_redirects() {
        let t = table(&["alice/lab", "alice/default", "al/lab", "bob/lab"]);
        let at = |p: &str| resolve(p, &t);
        assert_eq!(target(at("/user/alice/lab/")).as_deref(), Some("alice/lab"));
        assert_eq!(
            target(at("/user/alice/lab/api/kernels")).as_deref(),
            Some("alice/lab")
        );
        assert_eq!(target(at("/user/al/lab/x")).as_deref(), Some("al/lab"));
        assert_eq!(
            at("/user/alice/lab"),
            Resolved::Redirect("/user/alice/lab/".into())
        );
        assert_eq!(at("/user/alice"), Resolved::Redirect("/user/alice/".into()));
        // Not a workspace name: the default workspace's URL.
        assert_eq!(
            at("/user/alice/"),
            Resolved::Redirect("/user/alice/default/".into())
        );
        assert_eq!(
            at("/user/alice/tree/notes.ipynb"),
            Resolved::Redirect("/user/alice/default/tree/notes.ipynb".into())
        );
        // bob has no default workspace.
        assert_eq!(at("/user/bob/"), Resolved::NotFound);
        assert_eq!(at("/user/bob/other/"), Resolved::NotFound);
        assert_eq!(at("/user/carol/lab/"), Resolved::NotFound);
        assert_eq!(at("/hub/api/"), Resolved::NotFound);
    }

    #[test]
    fn path_tricks_resolve_to_nobody_else() {
        let t = table(&["alice/lab", "bob/lab"]);
        let at = |p: &str| resolve(p, &t);
        for bad in [
            "/user/bob/lab/../../alice/lab/",
            "/user/bob/lab/%2e%2e/%2E%2E/alice/lab/",
            "/user/bob/lab/./x",
            "/user/bob/..",
        ] {
            assert_eq!(at(bad), Resolved::BadPath, "{bad}");
        }
        for nobody in [
            "/user/alice%2flab/",
            "/user/alice%2Flab/x",
            "/user//alice/lab/",
            "/user/Alice/lab/",
            "/user/ALICE/lab/",
            "/user/alice%00/lab/",
            "/user/alice /lab/",
            "/User/alice/lab/",
            "/user/aliceX/lab/",
            "/user/alic/lab/",
        ] {
            assert_eq!(at(nobody), Resolved::NotFound, "{nobody}");
        }
        let long = format!("/user/{}/lab/", "a".repeat(100));
        assert_eq!(at(&long), Resolved::NotFound);
        // A double slash after the user is not a workspace name either.
        assert_eq!(at("/user/alice//lab/"), Resolved::NotFound);
        // Upper case in a workspace segment never reaches the workspace.
        assert_eq!(target(at("/user/alice/LAB/")), None);
    }

    proptest! {
        /// Whatever the path, it resolves to a workspace only when its user and
        /// workspace segments are exactly the table's key.
        #[test]
        fn only_exact_segments_resolve(path in "/user/[a-zA-Z0-9%./-]{0,12}/[a-zA-Z0-9%./-]{0,12}/[a-z./]{0,6}") {
            let t = table(&["alice/lab", "bob/lab"]);
            if let Some(k) = target(resolve(&path, &t)) {
                let segs: Vec<&str> = path.split('/').collect();
                prop_assert_eq!(format!("{}/{}", segs[2], segs[3]), k);
            }
        }
    }
}
