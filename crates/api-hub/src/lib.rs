//! JupyterHub's REST API under `/hub/api`, over berth's own model, so that
//! JupyterHub's tools (`jupyterhub-idle-culler`, `jupyterhub-singleuser`, API
//! clients) work unchanged. The contract is JupyterHub's published spec
//! (`docs/source/_static/rest-api.yml` in jupyterhub/jupyterhub).
//!
//! Mapping: a JupyterHub user is a berth user; a server is a workspace. The
//! default server (name `""`) is the workspace named `default`; a named server
//! is the workspace of that name. Starting a server that does not exist creates
//! the workspace (profile from the body's `profile`, else `standard`).
//! Authentication and scopes are berth's (`Authorization: token …` works), and
//! changes go through the same code as `/api/v1`, audit records included.

mod admin;
mod models;
mod oauth;
mod servers;
mod services;
mod shares;

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use app::{Among, UserFilter, UserOrder};
use model::hub::{server_name, workspace_name};
use model::{DesiredState, Scope, WorkspaceState};

use crate::models::{
    Component, Info, NextPage, Paginated, Pagination, ProxyRoute, RequestIdentity, Root, RouteData,
    User,
};
use crate::servers::{never_started, server_model};
use web::auth::Ctx;
use web::convert::{opt_time, time};
use web::error::{ApiError, ApiResult, Code};
use web::extract::{Json, Path, Query};
use web::ops::users::visible_user;
use web::ops::workspaces::{active, find, pending};
use web::AppState;

/// The JupyterHub REST API version berth follows (the pinned JupyterHub).
pub const HUB_VERSION: &str = "6.1.1";
/// The workspace that stands for JupyterHub's default (unnamed) server.
const DEFAULT: &str = model::DEFAULT_WORKSPACE;
/// JupyterHub's media type for paginated lists.
pub(crate) const PAGINATION: &str = "application/jupyterhub-pagination+json";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/api", get(root))
        .route("/hub/api/", get(root))
        .route("/hub/api/info", get(info))
        .route("/hub/api/user", get(whoami))
        .route("/hub/api/users", get(list_users))
        .route("/hub/api/users/{name}", get(get_user))
        .route("/hub/api/users/{name}/activity", post(activity))
        .route("/hub/api/proxy", get(proxy_routes))
        .merge(crate::servers::routes())
        .merge(crate::services::routes())
        .merge(crate::admin::routes())
        .merge(crate::shares::routes())
        .merge(crate::oauth::routes())
        .layer(axum::middleware::map_response(statuses_as_jupyterhub))
        .layer(axum::middleware::map_request(bodies_are_json))
        // Single-user servers check the hub's version by this header.
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("x-jupyterhub-version"),
            header::HeaderValue::from_static(HUB_VERSION),
        ))
}

/// JupyterHub answers every kind of bad input with 400, and a request without
/// valid credentials with 403: so does berth under `/hub/api`, keeping its own
/// error code (415, 422 and 401 elsewhere). OAuth's own errors keep theirs.
async fn statuses_as_jupyterhub(mut r: Response) -> Response {
    if r.extensions().get::<web::error::ErrorInfo>().is_none() {
        return r;
    }
    let status = match r.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => {
            StatusCode::BAD_REQUEST
        }
        StatusCode::UNAUTHORIZED => StatusCode::FORBIDDEN,
        other => other,
    };
    *r.status_mut() = status;
    r
}

/// JupyterHub reads every API body as JSON whatever its content type (`curl
/// -d` sends a form's): so does berth under `/hub/api`, except at OAuth's token
/// endpoint, whose body is a form. (Cookie sessions still need the CSRF
/// header for a change, so the type guards nothing here.)
async fn bodies_are_json(mut req: axum::extract::Request) -> axum::extract::Request {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json && !req.uri().path().starts_with("/hub/api/oauth2/") {
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
    req
}

async fn root() -> axum::Json<Root> {
    axum::Json(Root {
        version: HUB_VERSION,
    })
}

async fn info(ctx: Ctx) -> ApiResult<axum::Json<Info>> {
    if !ctx.principal.is_admin {
        return Err(ApiError::new(
            Code::Forbidden,
            "the hub's info is for admins",
        ));
    }
    let berth = || Component {
        class: "berth",
        version: env!("CARGO_PKG_VERSION"),
    };
    Ok(axum::Json(Info {
        authenticator: berth(),
        python: "",
        spawner: berth(),
        sys_executable: "",
        version: HUB_VERSION,
    }))
}

/// JupyterHub's user model; `servers` only for a caller who may read them.
pub(crate) async fn user_model(
    st: &AppState,
    ctx: &Ctx,
    user: &model::User,
    include_stopped: bool,
) -> ApiResult<User> {
    let groups = st.app.groups_of(user).await?;
    let spaces = st.app.all_workspaces_unchecked(Some(&user.id)).await?;
    let spaces: Vec<_> = spaces.iter().collect();
    Ok(user_model_of(ctx, user, &groups, &spaces, include_stopped))
}

/// [`user_model`] of a user just created: in no group, with no workspace.
pub(crate) fn new_user_model(ctx: &Ctx, user: &model::User) -> User {
    user_model_of(ctx, user, &[], &[], false)
}

/// [`user_model`] of a user whose groups and workspaces are read already.
fn user_model_of(
    ctx: &Ctx,
    user: &model::User,
    groups: &[model::Name],
    spaces: &[&model::Workspace],
    include_stopped: bool,
) -> User {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let default = spaces.iter().copied().find(|w| w.name.as_str() == DEFAULT);
    let servers = ctx.principal.may(Scope::ReadServers, &user.id).then(|| {
        let mut servers: BTreeMap<String, _> = spaces
            .iter()
            .filter(|w| include_stopped || active(w))
            .map(|w| (server_name(w).to_owned(), server_model(w, ctx)))
            .collect();
        // JupyterHub's users all have a default server, if only a stopped one.
        if include_stopped && default.is_none() {
            servers.insert(String::new(), never_started(user, ctx));
        }
        servers
    });
    User {
        admin: user.is_admin,
        // As JupyterHub: the auth state only for who may administer it.
        auth_state: ctx
            .principal
            .may(Scope::AdminAuthState, &user.id)
            .then_some(None),
        created: time(user.created_at),
        groups,
        kind: "user",
        last_activity: opt_time(user.last_activity),
        name: user.name.to_string(),
        pending: default.and_then(pending),
        roles: if user.is_admin {
            vec!["user", "admin"]
        } else {
            vec!["user"]
        },
        server: default
            .filter(|w| w.status.state == WorkspaceState::Running)
            .map(|w| model::hub::base_url(&w.owner, &w.name)),
        servers,
        user_info: None,
    }
}

/// Identifies a token or session. Like JupyterHub, an unknown or missing
/// credential is a 403 here, which single-user servers take for "nobody".
async fn whoami(State(st): State<AppState>, ctx: Result<Ctx, ApiError>) -> ApiResult<Response> {
    let ctx = ctx.map_err(|e| match e.code {
        Code::Unauthenticated => ApiError::new(Code::Forbidden, e.message),
        _ => e,
    })?;
    let user = st.app.me(ctx.caller()).await?;
    Ok(if user.is_service {
        identity(&ctx, crate::services::whoami_model(&ctx, &user)).into_response()
    } else {
        identity(&ctx, user_model(&st, &ctx, &user, false).await?).into_response()
    })
}

/// `model` with what the caller's credential holds.
fn identity<T>(ctx: &Ctx, model: T) -> axum::Json<RequestIdentity<T>> {
    axum::Json(RequestIdentity {
        model,
        scopes: ctx.principal.expanded_scopes(),
        session_id: None,
        token_id: ctx.principal.token_id.as_deref().map(str::to_owned),
    })
}

/// `GET /hub/api/users`'s query. Like JupyterHub, parameters it does not know
/// are ignored.
#[derive(Debug, Deserialize)]
struct UsersQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    /// `active`, `inactive` or `ready`.
    state: Option<String>,
    include_stopped_servers: Option<String>,
    name_filter: Option<String>,
    /// `id`, `name` or `last_activity`, `-` first for descending.
    sort: Option<String>,
}

/// JupyterHub's reading of `include_stopped_servers`: anything but `0` or `false`.
fn include_stopped(flag: Option<&str>) -> bool {
    flag.is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false"))
}

/// Filtered and paged in the store: one query for the page, one for the
/// total, one for the page's groups and one for its workspaces (and, with a
/// `state`, one first for the workspaces that may be in use).
async fn list_users(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<UsersQuery>,
) -> ApiResult<Response> {
    if !ctx.principal.has(Scope::ListUsers) {
        return Err(ApiError::new(Code::Forbidden, "list:users is needed"));
    }
    let include_stopped = include_stopped(q.include_stopped_servers.as_deref());
    let sort = q.sort.as_deref().unwrap_or("id");
    let (key, descending) = match sort.strip_prefix('-') {
        Some(key) => (key, true),
        None => (sort, false),
    };
    let order = match key {
        "id" => UserOrder::Id,
        "name" => UserOrder::Name,
        "last_activity" => UserOrder::LastActivity,
        _ => {
            return Err(ApiError::new(
                Code::InvalidQuery,
                format!("sort must be 'id', 'name', or 'last_activity', not {sort:?}"),
            ))
        }
    };
    // As JupyterHub: `active` and `ready` are the users with a server in
    // use, `inactive` the others; `ready` then keeps those of the page with a
    // ready server (the total still counts the active).
    let among = match q.state.as_deref() {
        None => None,
        Some("active" | "ready") => Some(Among::In),
        Some("inactive") => Some(Among::NotIn),
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidQuery,
                format!("state: {other:?} is not active, inactive or ready"),
            ))
        }
    };
    let ids = match among {
        None => None,
        Some(among) => {
            let owner = (!ctx.principal.reaches_everyone(Scope::ListUsers))
                .then(|| ctx.principal.user_id.as_str());
            let spaces = st.app.workspaces_maybe_active_unchecked(owner).await?;
            let mut in_use: Vec<String> = spaces
                .iter()
                .filter(|w| active(w))
                .map(|w| w.owner_id.to_string())
                .collect();
            in_use.sort();
            in_use.dedup();
            Some((among, in_use))
        }
    };
    let window = Window::of(
        &headers,
        &Paging {
            offset: q.offset,
            limit: q.limit,
        },
    );
    let filter = UserFilter {
        only: None,
        name_like: q.name_filter.filter(|f| !f.is_empty()),
        ids,
        order,
        descending,
        offset: i64::try_from(window.offset).unwrap_or(i64::MAX),
        limit: i64::try_from(window.limit).unwrap_or(i64::MAX),
    };
    let (users, total) = st
        .app
        .list_users(ctx.caller(), Scope::ListUsers, filter)
        .await?;
    let groups = st.app.groups_of_users(&users).await?;
    let spaces = st.app.workspaces_of_users_unchecked(&users).await?;
    let mut spaces_of: HashMap<&str, Vec<&model::Workspace>> = HashMap::new();
    for w in &spaces {
        spaces_of.entry(w.owner_id.as_str()).or_default().push(w);
    }
    let models: Vec<User> = users
        .iter()
        .filter_map(|u| {
            let spaces = spaces_of.get(u.id.as_str()).map_or(&[][..], |s| &s[..]);
            let ready = spaces.iter().any(|w| {
                w.status.state == WorkspaceState::Running && w.spec.desired == DesiredState::Running
            });
            if q.state.as_deref() == Some("ready") && !ready {
                return None;
            }
            let groups = groups.get(&u.id).map_or(&[][..], |g| &g[..]);
            Some(user_model_of(&ctx, u, groups, spaces, include_stopped))
        })
        .collect();
    Ok(window.render(&headers, &uri, models, total.try_into().unwrap_or(0)))
}

/// JupyterHub's `offset` and `limit`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Paging {
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

/// One page of `all` as JupyterHub answers a list: a bare array, or (when the
/// client accepts JupyterHub's pagination media type) `{items, _pagination}`.
/// As there, a client that does not ask for pages gets up to the largest page
/// (200), and the next page's URL is the request's own, absolute, with its
/// parameters in their order and `offset` and `limit` set.
pub(crate) fn paginated<T: Serialize>(
    headers: &HeaderMap,
    uri: &Uri,
    all: Vec<T>,
    page: &Paging,
) -> Response {
    pages(headers, uri, all, page, |items| items)
}

/// [`paginated`] for a list JupyterHub answers as an object (the proxy's
/// routes), its entries sorted by key.
pub(crate) fn paginated_object<T: Serialize>(
    headers: &HeaderMap,
    uri: &Uri,
    all: BTreeMap<String, T>,
    page: &Paging,
) -> Response {
    pages(headers, uri, all.into_iter().collect(), page, |items| {
        items.into_iter().collect::<BTreeMap<_, _>>()
    })
}

fn pages<T, Items: Serialize>(
    headers: &HeaderMap,
    uri: &Uri,
    all: Vec<T>,
    page: &Paging,
    render: impl FnOnce(Vec<T>) -> Items,
) -> Response {
    let window = Window::of(headers, page);
    let total = all.len();
    let items = render(
        all.into_iter()
            .skip(window.offset)
            .take(window.limit)
            .collect(),
    );
    window.render(headers, uri, items, total)
}

/// Which part of a list a request asks for, as JupyterHub reads `offset` and
/// `limit`, and whether the client takes JupyterHub's pages.
struct Window {
    offset: usize,
    limit: usize,
    wants_pages: bool,
}

impl Window {
    fn of(headers: &HeaderMap, page: &Paging) -> Window {
        let wants_pages = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains(PAGINATION));
        Window {
            offset: page.offset.unwrap_or(0),
            limit: page
                .limit
                .unwrap_or(if wants_pages { 50 } else { MAX_PAGE })
                .clamp(1, MAX_PAGE),
            wants_pages,
        }
    }

    /// The answer of this window's `items` out of `total`.
    fn render<Items: Serialize>(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        items: Items,
        total: usize,
    ) -> Response {
        let Window {
            offset,
            limit,
            wants_pages,
        } = *self;
        if !wants_pages {
            return axum::Json(items).into_response();
        }
        let end = offset.saturating_add(limit);
        let next = (end < total).then(|| NextPage {
            limit,
            offset: end,
            url: next_url(headers, uri, end, limit),
        });
        let body = Paginated {
            pagination: Pagination {
                limit,
                next,
                offset,
                total,
            },
            items,
        };
        (
            [(header::CONTENT_TYPE, PAGINATION)],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response()
    }
}

/// JupyterHub's largest page.
const MAX_PAGE: usize = 200;

/// The request's URL with `offset` and `limit` set: where they were, else
/// after the other parameters.
fn next_url(headers: &HeaderMap, uri: &Uri, offset: usize, limit: usize) -> String {
    let mut query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    for (key, value) in [("offset", offset), ("limit", limit)] {
        let mut seen = false;
        query.retain_mut(|(k, v)| {
            if k != key {
                return true;
            }
            let first = !seen;
            seen = true;
            *v = value.to_string();
            first
        });
        if !seen {
            query.push((key.to_owned(), value.to_string()));
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("x-forwarded-host")
        .or(header("host"))
        .unwrap_or("localhost");
    let query = serde_urlencoded::to_string(&query).expect("strings encode");
    format!("{scheme}://{host}{}?{query}", uri.path())
}

#[derive(Debug, Deserialize)]
struct UserQuery {
    include_stopped_servers: Option<String>,
}

async fn get_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Query(q): Query<UserQuery>,
) -> ApiResult<axum::Json<User>> {
    // As JupyterHub: with none of the scopes that read a user, 403 first.
    let readers = [
        Scope::ReadUsers,
        Scope::ReadUsersName,
        Scope::ReadServers,
        Scope::ReadUsersGroups,
        Scope::ReadUsersActivity,
        Scope::ReadRolesUsers,
    ];
    if !readers.iter().any(|s| ctx.principal.has(*s)) {
        return Err(ApiError::forbidden(Scope::ReadUsers));
    }
    let user = visible_user(&st, &ctx, &name, Scope::ReadUsers).await?;
    let stopped = include_stopped(q.include_stopped_servers.as_deref());
    Ok(axum::Json(user_model(&st, &ctx, &user, stopped).await?))
}

/// A body that must be a JSON object (`what` names it in the error), as
/// JupyterHub's handlers check theirs.
pub(crate) fn json_object(body: &[u8], what: &str) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::new(
            Code::InvalidBody,
            format!("the body must be {what}, a JSON object"),
        )),
        Err(e) => Err(ApiError::new(
            Code::InvalidJson,
            format!("the body is not JSON: {e}"),
        )),
    }
}

/// An optional JSON body: empty means the defaults.
pub(crate) fn options<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::new(Code::InvalidBody, e.to_string()))
}

/// `POST /hub/api/users/{name}/activity`, as `jupyterhub-singleuser` sends it.
#[derive(Debug, Deserialize)]
struct ActivityBody {
    last_activity: Option<String>,
    #[serde(default)]
    servers: std::collections::HashMap<String, ServerActivity>,
}

#[derive(Debug, Deserialize)]
struct ServerActivity {
    last_activity: String,
}

async fn activity(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(body): Json<ActivityBody>,
) -> ApiResult<StatusCode> {
    let user = visible_user(&st, &ctx, &name, Scope::UsersActivity).await?;
    if body.last_activity.is_none() && body.servers.is_empty() {
        return Err(ApiError::new(
            Code::InvalidValue,
            "the body must hold last_activity or servers",
        ));
    }
    // As JupyterHub: a clock far ahead must not keep servers from the culler.
    let horizon = model::now_millis() + 59 * 60 * 1000;
    let parse = |field: &str, s: &str| {
        let at = web::convert::parse_time(field, s)
            .map_err(|e| ApiError::new(Code::InvalidValue, e.message))?;
        if at > horizon {
            return Err(ApiError::new(
                Code::InvalidValue,
                format!("{field}: {s} is more than an hour in the future"),
            ));
        }
        Ok(at)
    };
    let mut batch = Vec::new();
    let mut latest = body
        .last_activity
        .as_deref()
        .map(|s| parse("last_activity", s))
        .transpose()?;
    for (server, a) in &body.servers {
        let at = parse("servers.last_activity", &a.last_activity)?;
        let Some(ws) = find(&st, &user, workspace_name(server)).await? else {
            // As JupyterHub: a bad body, not a missing resource.
            return Err(ApiError::new(
                Code::InvalidValue,
                format!("servers: {} has no server {server:?}", user.name),
            ));
        };
        batch.push((ws.id.into_string(), at));
        latest = latest.max(Some(at));
    }
    st.app
        .report_activity(ctx.caller(), &user, &batch, latest)
        .await?;
    Ok(StatusCode::OK)
}

/// `GET /hub/api/proxy`: the route table as configurable-http-proxy answers
/// it, a route per ready server and one for the hub, with the `proxy` scope.
async fn proxy_routes(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<Paging>,
) -> ApiResult<Response> {
    ctx.require_any(Scope::Proxy)?;
    let ready: Vec<(String, String)> = st
        .proxy
        .routes()
        .borrow()
        .values()
        .filter(|r| r.state == WorkspaceState::Running)
        .filter_map(|r| Some((r.workspace_id.to_string(), r.upstream.as_ref()?.to_string())))
        .collect();
    let mut all = BTreeMap::new();
    for (id, target) in ready {
        // None: deleted since the table was published.
        let Some(ws) = st.app.workspace_unchecked(&id).await? else {
            continue;
        };
        let spec = model::hub::base_url(&ws.owner, &ws.name);
        let data = RouteData::Server {
            last_activity: time(ws.last_activity.unwrap_or(ws.updated_at)),
            server_name: server_name(&ws).to_owned(),
            user: ws.owner.to_string(),
        };
        let route = ProxyRoute {
            data,
            routespec: spec.clone(),
            target,
        };
        all.insert(spec, route);
    }
    // berth's proxy and hub are one server: the hub's route is where this
    // request came in.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let hub = ProxyRoute {
        data: RouteData::Hub {
            hub: true,
            last_activity: time(model::now_millis()),
        },
        routespec: "/".into(),
        target: format!("http://{host}"),
    };
    all.insert("/".into(), hub);
    Ok(paginated_object(&headers, &uri, all, &q))
}
