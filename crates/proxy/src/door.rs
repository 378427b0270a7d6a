//! A request's way through the proxy, in one place: who asks, which
//! workspace the path names, whether they may open it, and then the app's
//! answer or a page instead. What berth knows beyond the route table (its
//! users and credentials, its pages, its metrics) comes from a [`Door`], so
//! another runtime's upstreams or another way in plug in without touching
//! the lifecycle.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Request, Response, StatusCode};
use model::route::Route;
use model::WorkspaceState;

use crate::path::Resolved;
use crate::{BoxError, Origin, Proxy, ProxyBody, ProxyError};

/// A workspace as the path names it: shared with the route table, so that
/// finding it copies nothing.
#[derive(Debug, Clone)]
pub struct Target {
    /// `owner/name`.
    key: Arc<str>,
    pub route: Arc<Route>,
}

impl Target {
    /// The workspace `name` of `owner`, with its `route`.
    pub fn new(owner: &str, name: &str, route: Route) -> Target {
        Target {
            key: model::route::key(owner, name).into(),
            route: Arc::new(route),
        }
    }

    pub fn owner(&self) -> &str {
        self.key
            .split_once('/')
            .map_or(&self.key, |(owner, _)| owner)
    }

    pub fn name(&self) -> &str {
        self.key.split_once('/').map_or("", |(_, name)| name)
    }

    /// `owner/name`, for titles and metrics.
    pub fn title(&self) -> &Arc<str> {
        &self.key
    }
}

/// What the proxy answers with instead of the app.
#[derive(Debug)]
pub enum Page<'a> {
    /// No such user or workspace.
    NotFound,
    /// A path with dot segments, or one that cannot be redirected to.
    BadPath,
    /// The caller may not open this workspace.
    Forbidden,
    /// The workspace is not running (or not ready): its state, followed live.
    NotRunning { target: &'a Target, here: &'a str },
    /// The app did not answer.
    Unreachable { target: &'a Target },
    /// The app took longer than the response timeout.
    Timeout { target: &'a Target },
}

/// What the proxy needs of berth for each request.
pub trait Door: Send + Sync {
    /// Who is asking, once known.
    type Caller: Send + Sync;

    /// Who asks, before anything about the path is looked at; without valid
    /// credentials, the answer (the way to log in).
    fn authenticate(
        &self,
        parts: &Parts,
    ) -> impl Future<Output = Result<Self::Caller, Response<ProxyBody>>> + Send;

    /// The workspace at `path` that the route table does not hold yet (one
    /// created a moment ago); `None` if there is none.
    fn not_routed(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Target>, Response<ProxyBody>>> + Send;

    /// Whether `who` may open `target`.
    fn may_open(&self, who: &Self::Caller, target: &Target) -> bool;

    /// The page that answers instead of the app. After the request went to
    /// the app (`Unreachable`, `Timeout`), `parts` has only its request line
    /// (method, URI, version): the headers and extensions went with it.
    fn page(&self, who: &Self::Caller, parts: &Parts, page: Page<'_>) -> Response<ProxyBody>;

    /// One answer for `target`: the app's status class (`2xx`, …), or
    /// `timeout` or `unreachable`.
    fn answered(&self, target: &Target, outcome: &'static str);
}

impl Proxy {
    /// Serves one request under `/user/`: authenticates it through `door`,
    /// resolves its path, authorizes it, and forwards it to a running app,
    /// else answers with `door`'s page.
    pub async fn serve<D, B>(
        &self,
        door: &D,
        req: Request<B>,
        origin: Origin,
        now: i64,
    ) -> Response<ProxyBody>
    where
        D: Door,
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        // Who asks comes first: without credentials, every path gets the same
        // answer, whether or not its user or workspace exists.
        let who = match door.authenticate(&parts).await {
            Ok(who) => who,
            Err(answer) => return answer,
        };
        let path = parts.uri.path();
        let target = match self.resolve(path) {
            Resolved::Workspace { key, route } => Target { key, route },
            Resolved::Redirect(to) => {
                let to = match parts.uri.query() {
                    Some(q) => format!("{to}?{q}"),
                    None => to,
                };
                return match HeaderValue::from_str(&to) {
                    Ok(to) => redirect(to),
                    Err(_) => door.page(&who, &parts, Page::BadPath),
                };
            }
            Resolved::NotFound => match door.not_routed(path).await {
                Ok(Some(target)) => target,
                Ok(None) => return door.page(&who, &parts, Page::NotFound),
                Err(answer) => return answer,
            },
            Resolved::BadPath => return door.page(&who, &parts, Page::BadPath),
        };
        if !door.may_open(&who, &target) {
            return door.page(&who, &parts, Page::Forbidden);
        }
        let upstream = match (target.route.state, &target.route.upstream) {
            (WorkspaceState::Running, Some(upstream)) => upstream,
            _ => {
                // Where the client asked to go, query and all.
                let here = match parts.uri.query() {
                    Some(q) => format!("{path}?{q}"),
                    None => path.to_owned(),
                };
                let page = Page::NotRunning {
                    target: &target,
                    here: &here,
                };
                return door.page(&who, &parts, page);
            }
        };
        let base = (target.route.strip_prefix)
            .then(|| model::hub::base_url_of(target.owner(), target.name()));
        let strip = base.as_deref().map(|b| b.trim_end_matches('/'));
        // The head goes to the app; a page after it (the app did not answer)
        // has the request line.
        let mut head = Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = parts.uri.clone();
        *head.version_mut() = parts.version;
        let (head, ()) = head.into_parts();
        let req = Request::from_parts(parts, body);
        let id = &target.route.workspace_id;
        match self.forward(req, upstream, id, origin, strip, now).await {
            Ok(response) => {
                door.answered(&target, status_class(response.status()));
                response
            }
            Err(e) => {
                tracing::warn!(workspace.id = %id, "proxy: {e}");
                let (outcome, page) = match e {
                    ProxyError::Timeout(_) => ("timeout", Page::Timeout { target: &target }),
                    _ => ("unreachable", Page::Unreachable { target: &target }),
                };
                door.answered(&target, outcome);
                door.page(&who, &head, page)
            }
        }
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

fn redirect(to: HeaderValue) -> Response<ProxyBody> {
    let mut r = Response::new(crate::empty());
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut().insert(header::LOCATION, to);
    r
}
