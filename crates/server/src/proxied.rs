//! `/user/{user}/…` (the default workspace) and `/user/{user}/{workspace}/…`:
//! the [`proxy`] crate's lifecycle ([`proxy::Proxy::serve`]) through berth's
//! [`Door`]. Every request is authenticated (from the auth cache) before
//! anything about the path is looked up, authorized (`access:servers` on the
//! workspace: its owner, an admin, or a token filtered to it), and then
//! forwarded, or answered with a portal page: a stopped workspace offers to
//! start; a starting one follows its state by server-sent events and reloads
//! when it is ready. Nothing here reads the store or calls a runtime, except
//! what the auth cache misses and a path the route table does not know (a
//! workspace created a moment ago, before the controller routes it).

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use model::now_millis;
use proxy::{Door, Page, ProxyBody, Target};

use web::auth::Authenticated;
use web::error::ApiError;
use web::AppState;

pub(crate) async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let client = req
        .extensions()
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
    st.proxy
        .serve(&Berth(&st), req, origin, now_millis())
        .await
        .map(Body::new)
}

/// berth's side of the proxy: its credentials, its store for what the route
/// table does not hold yet, the portal's pages and the metrics.
struct Berth<'a>(&'a AppState);

impl Door for Berth<'_> {
    type Caller = Authenticated;

    async fn authenticate(&self, parts: &Parts) -> Result<Authenticated, Response<ProxyBody>> {
        portal::door::caller(parts, self.0).await.map_err(boxed)
    }

    async fn not_routed(&self, path: &str) -> Result<Option<Target>, Response<ProxyBody>> {
        not_routed_yet(self.0, path)
            .await
            .map_err(|e| boxed(e.into_response()))
    }

    fn may_open(&self, who: &Authenticated, target: &Target) -> bool {
        portal::door::may_access(who, &target.route.owner_id, &target.name)
    }

    fn page(&self, who: &Authenticated, parts: &Parts, page: Page<'_>) -> Response<ProxyBody> {
        let viewer = portal::Viewer::of(who.clone(), parts, self.0);
        let message = |status, title: &str, text: &str| {
            portal::message_page(Some(&viewer), status, title, text)
        };
        boxed(match page {
            Page::NotFound => message(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such workspace.",
            ),
            Page::BadPath => message(
                StatusCode::BAD_REQUEST,
                "Bad path",
                "Paths with . or .. segments are not served.",
            ),
            Page::Forbidden => message(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!("You ({}) may not open this workspace.", who.principal.name),
            ),
            Page::NotRunning { target, here } => {
                let server = match target.name.as_str() {
                    model::DEFAULT_WORKSPACE => "",
                    name => name,
                };
                let progress = model::hub::progress_url(&target.owner, server);
                portal::door::state_page(&target.title(), here, &target.route, &progress, who)
            }
            Page::Unreachable { target } => message(
                StatusCode::BAD_GATEWAY,
                &target.title(),
                "The workspace's app did not answer. It may be restarting; try again in a moment.",
            ),
            Page::Timeout { target } => message(
                StatusCode::GATEWAY_TIMEOUT,
                &target.title(),
                "The workspace's app took too long to answer. It may be busy; try again in a moment.",
            ),
        })
    }

    fn answered(&self, target: &Target, outcome: &str) {
        self.0.metrics.proxied(&target.title(), outcome);
    }
}

/// An axum response as the proxy's.
fn boxed(r: Response) -> Response<ProxyBody> {
    r.map(|b| b.map_err(Into::into).boxed_unsync())
}

/// The workspace at `path` from the store, for one that exists but has no route
/// yet: it is answered as the state page of a workspace that is not running.
/// The path is read as [`proxy::path::resolve`] reads it: a named workspace if
/// the user has one of that name, else the default one.
async fn not_routed_yet(st: &AppState, path: &str) -> Result<Option<Target>, ApiError> {
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
        return Ok(Some(Target {
            owner: owner.to_string(),
            name: ws.name.to_string(),
            route,
        }));
    }
    Ok(None)
}
