//! Which workspace a request path names. Only the raw, still percent-encoded
//! path is looked at, and the user and workspace segments must be valid berth
//! names exactly as sent: an encoded slash, a dot segment, an empty segment, an
//! upper-case letter or an overlong name never resolves to someone else's
//! workspace (at most to a path inside the user's own default workspace).

use std::io::Write as _;
use std::sync::Arc;

use model::route::{Route, RouteTable};
use model::Name;

/// The URL prefix the proxy owns.
pub const PREFIX: &str = "/user/";
pub use model::DEFAULT_WORKSPACE;

/// What a path under [`PREFIX`] resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Forward to this workspace (whatever its state); `key` is its
    /// `owner/name`.
    Workspace { key: Arc<str>, route: Arc<Route> },
    /// Send the client here instead (the bare `/user/{user}` or
    /// `/user/{user}/{server}`, without its trailing slash); the query is
    /// appended by the caller.
    Redirect(String),
    /// No such user or workspace, or not a path of the proxy at all.
    NotFound,
    /// A dot segment: never normalised, refused.
    BadPath,
}

/// Resolves `path` (no query) against the route table as
/// configurable-http-proxy matches JupyterHub's routes, by longest prefix:
/// `/user/{user}/{x}/…` is the user's workspace `x` if they have one, else
/// the default workspace (served at `/user/{user}/`), whole path and all.
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
    if Name::check(user).is_err() {
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
    // The workspace named `default` is the default server: its URL has no
    // segment of its own, so `/user/alice/default/…` is a path inside it.
    if first != DEFAULT_WORKSPACE && Name::check(first).is_ok() {
        // `user/first`, as the path spells it.
        let named = &after[..user.len() + 1 + first.len()];
        if let Some((key, route)) = routes.get_key_value(named) {
            if tail.is_none() {
                return Resolved::Redirect(format!("{PREFIX}{named}/"));
            }
            return Resolved::Workspace {
                key: key.clone(),
                route: route.clone(),
            };
        }
    }
    // `user/default`, written on the stack: a checked name is at most 32 bytes.
    let mut buf = [0u8; 64];
    let mut rest = &mut buf[..];
    let _ = write!(rest, "{user}/{DEFAULT_WORKSPACE}");
    let len = 64 - rest.len();
    let default_key = std::str::from_utf8(&buf[..len]).unwrap_or_default();
    match routes.get_key_value(default_key) {
        Some((key, route)) => Resolved::Workspace {
            key: key.clone(),
            route: route.clone(),
        },
        None => Resolved::NotFound,
    }
}

/// `.` or `..`, literally or percent-encoded in any case (without
/// allocating: this runs for every segment of every proxied request).
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return false,
        };
        dots += 1;
    }
    dots == 1 || dots == 2
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
                    workspace_id: format!("id-{k}").into(),
                    owner_id: format!("owner-{}", k.split('/').next().unwrap()).into(),
                    state: WorkspaceState::Running,
                    message: String::new(),
                    upstream: Some("10.213.0.2:8888".parse().unwrap()),
                    retrying: false,
                    strip_prefix: false,
                };
                (Arc::from(*k), Arc::new(route))
            })
            .collect()
    }

    fn target(r: Resolved) -> Option<String> {
        match r {
            Resolved::Workspace { key, .. } => Some(key.to_string()),
            _ => None,
        }
    }

    #[test]
    fn longest_prefix_as_configurable_http_proxy() {
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
        // The default server is served at the user's own prefix, no redirect.
        for default in [
            "/user/alice/",
            "/user/alice/tree/notes.ipynb",
            "/user/alice/api/kernels",
            "/user/alice/api",
            "/user/alice/other/x",
            // `default` names no segment of its own.
            "/user/alice/default/",
            "/user/alice/default",
            // Not a workspace name: a path inside the default server.
            "/user/alice/Lab/x",
            "/user/alice//lab/",
        ] {
            assert_eq!(
                target(at(default)).as_deref(),
                Some("alice/default"),
                "{default}"
            );
        }
        // bob has no default workspace.
        assert_eq!(at("/user/bob/"), Resolved::NotFound);
        assert_eq!(at("/user/bob/other/"), Resolved::NotFound);
        assert_eq!(at("/user/carol/lab/"), Resolved::NotFound);
        assert_eq!(at("/hub/api/"), Resolved::NotFound);
    }

    #[test]
    fn dot_segments_are_found_in_any_spelling() {
        for dot in [".", "..", "%2e", "%2E", "%2e%2E", ".%2e", "%2E."] {
            assert!(is_dot_segment(dot), "{dot}");
        }
        for not in [
            "",
            "...",
            "%2e%2e%2e",
            "a.",
            ".a",
            "%2",
            "%2f",
            "%252e",
            "%2e%2",
            ". ",
        ] {
            assert!(!is_dot_segment(not), "{not}");
        }
    }

    proptest! {
        /// As the definition reads: what decodes (`%2e` in either case) to `.` or `..`.
        #[test]
        fn dot_segments_are_what_decodes_to_dots(segment in "[.%2eEa]{0,7}") {
            let decoded = segment.replace("%2e", ".").replace("%2E", ".");
            prop_assert_eq!(is_dot_segment(&segment), decoded == "." || decoded == "..");
        }
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
        // Without a default workspace, nothing else of the user's resolves.
        assert_eq!(at("/user/bob/LAB/x"), Resolved::NotFound);
    }

    proptest! {
        /// Whatever the path, it resolves to a workspace only when its user
        /// segment is exactly the table's owner, and to a named workspace only
        /// when its next segment is exactly that workspace's name.
        #[test]
        fn only_exact_segments_resolve(path in "/user/[a-zA-Z0-9%./-]{0,12}/[a-zA-Z0-9%./-]{0,12}/[a-z./]{0,6}") {
            let t = table(&["alice/lab", "bob/lab", "bob/default"]);
            if let Some(k) = target(resolve(&path, &t)) {
                let segs: Vec<&str> = path.split('/').collect();
                let (owner, name) = k.split_once('/').unwrap();
                prop_assert_eq!(segs[2], owner);
                if name != DEFAULT_WORKSPACE {
                    prop_assert_eq!(segs[3], name);
                }
            }
        }
    }
}
