//! What a workspace's door answers besides the app: who is asking (or the
//! way to log in), whether they may open it, and the pages of a workspace
//! that is not running. The proxy (`/user/…`) and the OAuth provider share
//! them.

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{Scope, WorkspaceState};
use serde::Serialize;
use web::{auth, AppState};

/// Who is asking, if they may open the workspace `name` of `owner_id`
/// (`access:servers` on it); else the page that says why not (log in, or 403).
pub async fn may_open(
    parts: &axum::http::request::Parts,
    st: &AppState,
    owner_id: &str,
    name: &str,
) -> Result<auth::Authenticated, Response> {
    let who = caller(parts, st).await?;
    if may_access(&who, owner_id, name) {
        Ok(who)
    } else {
        let viewer = crate::Viewer::of(who.clone(), parts, st);
        Err(crate::message_page(
            Some(&viewer),
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("You ({}) may not open this workspace.", who.principal.name),
        ))
    }
}

/// Who is asking; without credentials, a browser's page load goes to the
/// login page and comes back, and other requests (scripts, WebSockets) are
/// told to log in.
pub async fn caller(
    parts: &axum::http::request::Parts,
    st: &AppState,
) -> Result<auth::Authenticated, Response> {
    match auth::authenticate(parts, st).await {
        Ok(who) => Ok(who),
        Err(e) if e.code == web::error::Code::Unauthenticated => {
            let browser = matches!(parts.method, Method::GET | Method::HEAD)
                && !parts.headers.contains_key(header::UPGRADE)
                && parts
                    .headers
                    .get(header::ACCEPT)
                    .and_then(|a| a.to_str().ok())
                    .is_some_and(|a| a.contains("text/html"));
            Err(if browser {
                crate::login_redirect(parts)
            } else {
                page(
                    StatusCode::UNAUTHORIZED,
                    "Log in",
                    "Log in to berth to open this workspace.",
                )
            })
        }
        Err(e) => Err(e.into_response()),
    }
}

/// Whether `who` holds `access:servers` on the workspace `name` of `owner_id`.
pub fn may_access(who: &auth::Authenticated, owner_id: &str, name: &str) -> bool {
    who.principal
        .may_server(Scope::AccessServers, owner_id, name)
}

/// `starting.html`: a workspace that is not running, its state and start
/// progress; the layout's `me` only for a session (whose CSRF token the start
/// button posts).
#[derive(Debug, Serialize)]
struct StartingPage<'a> {
    title: &'a str,
    id: &'a str,
    state: &'static str,
    retrying: bool,
    progress: &'a str,
    message: &'a str,
    /// Whether the page follows a start under way (and opens the workspace).
    follow: bool,
    /// Where the start button comes back to.
    here: &'a str,
    csrf: Option<&'a str>,
    me: Option<crate::Me<'a>>,
}

/// The page a workspace that is not running shows: a starting one follows its
/// state and reloads when it is running; a stopped (paused, failed) one offers
/// to start it.
pub fn state_page(
    title: &str,
    here: &str,
    route: &model::route::Route,
    progress: &str,
    who: &auth::Authenticated,
) -> Response {
    let follow = route.retrying
        || matches!(
            route.state,
            WorkspaceState::Pending | WorkspaceState::Starting | WorkspaceState::Running
        );
    let page = StartingPage {
        title,
        id: &route.workspace_id,
        state: route.state.as_str(),
        retrying: route.retrying,
        progress,
        message: &route.message,
        follow,
        here: crate::safe_next(Some(here), "/hub/home"),
        csrf: who.csrf.as_deref(),
        me: who.csrf.is_some().then(|| crate::Me::of(&who.principal)),
    };
    crate::render("starting.html", StatusCode::SERVICE_UNAVAILABLE, &page)
}

/// A page that says one thing, in berth's layout.
pub fn page(status: StatusCode, title: &str, text: &str) -> Response {
    crate::message_page(None, status, title, text)
}
