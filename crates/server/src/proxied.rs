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

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use model::now_millis;
use proxy::{Door, Page, ProxyBody, Target};

use web::auth::Authenticated;
use web::error::ApiError;
use web::AppState;

/// The route's handler, for a request that came through the router (whose
/// middleware then finishes berth's own answers).
pub(crate) async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let door = Berth { st: &st, own: None };
    door.serve(req, client).await.map(Body::new)
}

/// Whether [`serve`] answers `path` (what the route `/user/{*rest}` matches).
pub fn is_proxied(path: &str) -> bool {
    path.strip_prefix(proxy::path::PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

/// A request for `/user/…` from the listener, ahead of the router: no route
/// matching, no middleware, no clone of the state. Berth's own answers (pages,
/// errors) are finished as the router's middleware finishes every answer;
/// the app's are the app's. The client's address goes to the proxy (for
/// `X-Forwarded-For`), not into the request's extensions: nothing on this path
/// records where a request came from.
pub async fn serve<B>(
    st: &AppState,
    req: axum::http::Request<B>,
    client: SocketAddr,
) -> Response<ProxyBody>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<proxy::BoxError>,
{
    let own = Own {
        method: req.method().clone(),
        started: Instant::now(),
    };
    let door = Berth { st, own: Some(own) };
    door.serve(req, Some(client)).await
}

/// berth's side of the proxy: its credentials, its store for what the route
/// table does not hold yet, the portal's pages and the metrics.
struct Berth<'a> {
    st: &'a AppState,
    /// Outside the router: what finishing berth's own answers needs.
    own: Option<Own>,
}

struct Own {
    method: Method,
    started: Instant,
}

impl Berth<'_> {
    async fn serve<B>(
        &self,
        req: axum::http::Request<B>,
        client: Option<SocketAddr>,
    ) -> Response<ProxyBody>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<proxy::BoxError>,
    {
        let origin = proxy::Origin {
            client,
            https: self.st.config.secure_cookies,
        };
        self.st.proxy.serve(self, req, origin, now_millis()).await
    }

    /// One of berth's own answers, as the proxy's.
    fn boxed(&self, r: Response) -> Response<ProxyBody> {
        let r = match &self.own {
            Some(own) => {
                let id = crate::observe::request_id();
                crate::observe::finish(self.st, r, &id, &own.method, ROUTE, own.started)
            }
            None => r,
        };
        r.map(|b| b.map_err(Into::into).boxed_unsync())
    }
}

/// The route's name in metrics and logs.
const ROUTE: &str = "/user/{*rest}";

impl Door for Berth<'_> {
    type Caller = Authenticated;

    async fn authenticate(&self, parts: &Parts) -> Result<Authenticated, Response<ProxyBody>> {
        portal::door::caller(parts, self.st)
            .await
            .map_err(|r| self.boxed(r))
    }

    async fn not_routed(&self, path: &str) -> Result<Option<Target>, Response<ProxyBody>> {
        not_routed_yet(self.st, path)
            .await
            .map_err(|e| self.boxed(e.into_response()))
    }

    fn may_open(&self, who: &Authenticated, target: &Target) -> bool {
        portal::door::may_access(who, &target.route.owner_id, target.name())
    }

    fn page(&self, who: &Authenticated, parts: &Parts, page: Page<'_>) -> Response<ProxyBody> {
        let viewer = portal::Viewer::of(who.clone(), parts, self.st);
        let message = |status, title: &str, text: &str| {
            portal::message_page(Some(&viewer), status, title, text)
        };
        self.boxed(match page {
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
                let server = match target.name() {
                    model::DEFAULT_WORKSPACE => "",
                    name => name,
                };
                let progress = model::hub::progress_url(target.owner(), server);
                portal::door::state_page(target.title(), here, &target.route, &progress, who)
            }
            Page::Unreachable { target } => message(
                StatusCode::BAD_GATEWAY,
                target.title(),
                "The workspace's app did not answer. It may be restarting; try again in a moment.",
            ),
            Page::Timeout { target } => message(
                StatusCode::GATEWAY_TIMEOUT,
                target.title(),
                "The workspace's app took too long to answer. It may be busy; try again in a moment.",
            ),
        })
    }

    fn answered(&self, target: &Target, outcome: &'static str) {
        self.st.metrics.proxied(target.title(), outcome);
    }
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
        return Ok(Some(Target::new(owner.as_str(), ws.name.as_str(), route)));
    }
    Ok(None)
}
