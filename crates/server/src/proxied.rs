//! `/user/{user}/…` (the default workspace) and `/user/{user}/{workspace}/…`:
//! every request is authenticated (from the auth cache) before anything about
//! the path is looked up, authorized (`access:servers` on the workspace: its
//! owner, an admin, or a token filtered to it), and
//! then forwarded by the [`proxy`] crate, or answered with a page: a stopped
//! workspace offers to start; a starting one follows its state by server-sent
//! events and reloads when it is ready. Nothing here reads the store or calls a
//! runtime, except what the auth cache misses and a path the route table does
//! not know (a workspace created a moment ago, before the controller routes it).

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{now_millis, WorkspaceState};
use proxy::path::Resolved;

use portal::door::{caller, may_access, page, state_page};
use web::error::ApiError;
use web::AppState;

pub(crate) async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // Who asks comes first: without credentials, every path gets the same
    // answer, whether or not its user or workspace exists.
    let who = match caller(&parts, &st).await {
        Ok(who) => who,
        Err(page) => return page,
    };
    let path = parts.uri.path().to_owned();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    // Pages the proxy answers with carry the portal's navigation.
    let viewer = portal::Viewer::of(who.clone(), &parts, &st);
    let page =
        |status, title: &str, text: &str| portal::message_page(Some(&viewer), status, title, text);
    let (owner, name, route) = match st.proxy.resolve(&path) {
        Resolved::Workspace { owner, name, route } => (owner, name, route),
        Resolved::Redirect(to) => return redirect(&format!("{to}{query}")),
        Resolved::NotFound => match not_routed_yet(&st, &path).await {
            Ok(Some(found)) => found,
            Err(e) => return e.into_response(),
            Ok(None) => {
                return page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no such workspace.",
                )
            }
        },
        Resolved::BadPath => {
            return page(
                StatusCode::BAD_REQUEST,
                "Bad path",
                "Paths with . or .. segments are not served.",
            )
        }
    };
    if !may_access(&who, &route.owner_id, &name) {
        return page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("You ({}) may not open this workspace.", who.principal.name),
        );
    }
    let title = format!("{owner}/{name}");
    match (route.state, route.upstream.as_ref()) {
        (WorkspaceState::Running, Some(upstream)) => {
            let client = parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0);
            let origin = proxy::Origin {
                client,
                proto: if st.config.secure_cookies {
                    "https"
                } else {
                    "http"
                },
            };
            let req = Request::from_parts(parts, body);
            let base = model::hub::base_url_of(&owner, &name);
            let strip = route.strip_prefix.then(|| base.trim_end_matches('/'));
            match st
                .proxy
                .forward(
                    req,
                    upstream,
                    &route.workspace_id,
                    origin,
                    strip,
                    now_millis(),
                )
                .await
            {
                Ok(response) => {
                    let class = match response.status().as_u16() / 100 {
                        1 => "1xx",
                        2 => "2xx",
                        3 => "3xx",
                        4 => "4xx",
                        _ => "5xx",
                    };
                    st.metrics.proxied(&title, class);
                    response.map(Body::new)
                }
                Err(e) => {
                    tracing::warn!(workspace.id = %route.workspace_id, "proxy: {e}");
                    let (status, outcome, text) = match e {
                        proxy::ProxyError::Timeout(_) => (
                            StatusCode::GATEWAY_TIMEOUT,
                            "timeout",
                            "The workspace's app took too long to answer. It may be busy; try again in a moment.",
                        ),
                        _ => (
                            StatusCode::BAD_GATEWAY,
                            "unreachable",
                            "The workspace's app did not answer. It may be restarting; try again in a moment.",
                        ),
                    };
                    st.metrics.proxied(&title, outcome);
                    page(status, &title, text)
                }
            }
        }
        _ => {
            let server = if name == model::DEFAULT_WORKSPACE {
                ""
            } else {
                name.as_str()
            };
            let progress = model::hub::progress_url(&owner, server);
            state_page(&title, &format!("{path}{query}"), &route, &progress, &who)
        }
    }
}

/// The workspace at `path` from the store, for one that exists but has no route
/// yet: it is answered as the state page of a workspace that is not running.
/// The path is read as [`proxy::path::resolve`] reads it: a named workspace if
/// the user has one of that name, else the default one.
async fn not_routed_yet(
    st: &AppState,
    path: &str,
) -> Result<Option<(String, String, model::route::Route)>, ApiError> {
    let mut segments = path
        .strip_prefix(proxy::path::PREFIX)
        .unwrap_or_default()
        .split('/');
    let parse = |s: Option<&str>| s.and_then(|s| model::Name::parse(s).ok());
    let Some(owner) = parse(segments.next()) else {
        return Ok(None);
    };
    let Some(user) = st.app.user_unchecked(&owner).await? else {
        return Ok(None);
    };
    let mut candidates = vec![model::DEFAULT_WORKSPACE.to_owned()];
    if let Some(name) = parse(segments.next()).filter(|n| n.as_str() != model::DEFAULT_WORKSPACE) {
        candidates.insert(0, name.to_string());
    }
    for name in candidates {
        let Some(ws) = web::ops::workspaces::find(st, &user, &name).await? else {
            continue;
        };
        if ws.deletion_requested_at.is_some() {
            continue;
        }
        let route = model::route::Route {
            workspace_id: ws.id,
            owner_id: ws.owner_id,
            state: ws.status.state,
            retrying: ws.status.retrying(),
            strip_prefix: false,
            message: ws.status.message.unwrap_or_default(),
            upstream: None,
        };
        return Ok(Some((owner.to_string(), ws.name.to_string(), route)));
    }
    Ok(None)
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => page(
            StatusCode::BAD_REQUEST,
            "Bad path",
            "This path cannot be served.",
        ),
    }
}
