//! JupyterHub's server endpoints: `/hub/api/users/{name}/server` (the default
//! server) and `/servers/{server}` (named ones), with their `progress` event
//! streams, over berth's workspaces.
//!
//! As JupyterHub 6.1.1 answers them (`apihandlers/users.py`): `GET` a model,
//! the default server's even before it ever ran; `PUT` creates a named server
//! without starting it; `POST` starts (creating if needed), 201 or 202 with an
//! empty body; `DELETE` stops, with `{"remove": true}` also removes, waiting
//! up to ten seconds for it (204) before it answers 202.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{Map, Value};

use model::hub::{base_url, server_name, workspace_name};
use model::route::Route;
use model::{DesiredState, Scope, Workspace, WorkspaceState};

use crate::models::{self, Server, UserOptions};
use crate::options;
use model::hub::progress_url;
use web::auth::Ctx;
use web::convert::opt_time;
use web::error::{ApiError, ApiResult, Code};
use web::extract::{self, Path};
use web::ops::users::visible_user;
use web::ops::workspaces::find;
use web::ops::workspaces::{active, pending, settled};
use web::AppState;

/// The workspace that stands for JupyterHub's default (unnamed) server.
const DEFAULT: &str = model::DEFAULT_WORKSPACE;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/hub/api/users/{name}/server",
            get(get_default)
                .post(start_default)
                .delete(stop_default)
                .put(put_default),
        )
        // JupyterHub's pattern `servers/([^/]*)` takes an empty name too.
        .route(
            "/hub/api/users/{name}/servers/",
            get(get_default)
                .post(start_default)
                .delete(stop_default)
                .put(put_default),
        )
        .route(
            "/hub/api/users/{name}/servers/{server}",
            get(get_named)
                .post(start_named)
                .delete(stop_named)
                .put(put_named),
        )
        .route(
            "/hub/api/users/{name}/server/progress",
            get(progress_default),
        )
        .route(
            "/hub/api/users/{name}/servers/{server}/progress",
            get(progress_named),
        )
}

/// JupyterHub's server model; its `state` only for who holds
/// `admin:server_state` on the owner.
pub(crate) fn server_model(ws: &Workspace, ctx: &Ctx) -> Server {
    let name = server_name(ws);
    let active = active(ws);
    Server {
        display_name: name.to_owned(),
        full_name: format!("{}/{}", ws.owner, name),
        full_progress_url: None,
        full_url: None,
        last_activity: opt_time(ws.last_activity),
        name: name.to_owned(),
        pending: pending(ws),
        progress_url: progress_url(ws.owner.as_str(), name),
        ready: ws.status.state == WorkspaceState::Running
            && ws.spec.desired == DesiredState::Running,
        // As JupyterHub: a stopped server has no start time.
        started: opt_time(ws.status.started_at.filter(|_| active)),
        state: state(ctx, &ws.owner_id),
        stopped: !active,
        url: base_url(&ws.owner, &ws.name),
        user_options: UserOptions {
            profile: Some(ws.spec.profile.to_string()),
        },
    }
}

/// A server's `state`, for who holds `admin:server_state` on its owner:
/// berth keeps a server's state itself, so a spawner's is empty.
fn state(ctx: &Ctx, owner_id: &str) -> Option<Map<String, Value>> {
    ctx.principal
        .may(Scope::AdminServerState, owner_id)
        .then(Map::new)
}

/// The default server of a user who never started one: JupyterHub has it
/// from the start, stopped.
pub(crate) fn never_started(owner: &model::User, ctx: &Ctx) -> Server {
    let owner_name = &owner.name;
    Server {
        display_name: String::new(),
        full_name: format!("{owner_name}/"),
        full_progress_url: None,
        full_url: None,
        last_activity: None,
        name: String::new(),
        pending: None,
        progress_url: progress_url(owner_name.as_str(), ""),
        ready: false,
        started: None,
        state: state(ctx, &owner.id),
        stopped: true,
        url: format!("/user/{owner_name}/"),
        user_options: UserOptions::default(),
    }
}

/// A server name from the path: `""` or a workspace name.
fn server_arg(server: &str) -> ApiResult<&str> {
    if !server.is_empty() {
        extract::name("server_name", server)?;
    }
    Ok(server)
}

async fn get_default(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Server>> {
    get_server(&st, &ctx, &name, "").await
}

async fn get_named(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, server)): Path<(String, String)>,
) -> ApiResult<axum::Json<Server>> {
    get_server(&st, &ctx, &name, &server).await
}

async fn get_server(
    st: &AppState,
    ctx: &Ctx,
    user: &str,
    server: &str,
) -> ApiResult<axum::Json<Server>> {
    let user = visible_user(st, ctx, user, Scope::ReadServers).await?;
    match find(st, &user, workspace_name(server)).await? {
        Some(ws) => Ok(axum::Json(server_model(&ws, ctx))),
        None if server.is_empty() => Ok(axum::Json(never_started(&user, ctx))),
        None => Err(ApiError::not_found("server")),
    }
}

/// The body of a start or create request: JupyterHub's user options.
#[derive(Debug, Default, Deserialize)]
struct StartOptions {
    /// The profile of a workspace created by this request.
    profile: Option<String>,
}

impl StartOptions {
    /// The profile asked for, `standard` if none.
    fn profile(&self) -> ApiResult<model::Name> {
        extract::name("profile", self.profile.as_deref().unwrap_or("standard"))
    }
}

/// Reads a start request's body as JupyterHub 6 does: `{"display_name",
/// "user_options"}`, or (older clients) the whole body as the user options.
/// Options berth does not use are ignored, as a spawner ignores them.
fn start_options(body: &[u8]) -> ApiResult<StartOptions> {
    let body: Value = options(body)?;
    let invalid = |m: &str| ApiError::new(Code::InvalidBody, m);
    let options = match &body {
        Value::Null => return Ok(StartOptions::default()),
        Value::Object(o) if o.contains_key("user_options") || o.contains_key("display_name") => {
            if o.get("display_name").is_some_and(|d| !d.is_string()) {
                return Err(invalid("display_name must be a string"));
            }
            o.get("user_options").cloned().unwrap_or(Value::Null)
        }
        Value::Object(_) => body,
        _ => return Err(invalid("the body must be a JSON object")),
    };
    match options {
        Value::Null => Ok(StartOptions::default()),
        Value::Object(_) => serde_json::from_value(options)
            .map_err(|e| ApiError::new(Code::InvalidBody, format!("user_options: {e}"))),
        _ => Err(invalid("user_options must be an object or null")),
    }
}

async fn start_default(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    start(&st, &ctx, &name, DEFAULT, start_options(&body)?).await
}

async fn start_named(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, server)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let server = extract::name("server_name", &server)?;
    start(&st, &ctx, &name, server.as_str(), start_options(&body)?).await
}

/// Starts (creating if needed) a server: 201 once it is ready, 202 while it
/// starts, 400 if it already runs or is stopping — as JupyterHub answers.
async fn start(
    st: &AppState,
    ctx: &Ctx,
    user: &str,
    server: &str,
    options: StartOptions,
) -> ApiResult<Response> {
    let user = visible_user(st, ctx, user, Scope::ReadServers).await?;
    let ws = match find(st, &user, server).await? {
        Some(ws) => {
            match pending(&ws) {
                Some("spawn") => {
                    ctx.require_server(Scope::Servers, &ws.owner_id, ws.name.as_str())?;
                    return Ok(StatusCode::ACCEPTED.into_response());
                }
                Some(other) => {
                    return Err(ApiError::new(
                        Code::ServerState,
                        format!("{}'s server {server:?} is pending {other}", user.name),
                    ));
                }
                None if ws.status.state == WorkspaceState::Running => {
                    return Err(ApiError::new(
                        Code::AlreadyRunning,
                        format!("{}'s server {server:?} is already running", user.name),
                    ));
                }
                None => {}
            }
            let cmd = app::ChangeWorkspace {
                id: ws.id.clone(),
                change: app::WorkspaceChange::Start,
            };
            st.app.change_workspace(ctx.caller(), cmd).await?
        }
        None => {
            let name = extract::name("server_name", server)?;
            let cmd = app::CreateWorkspace {
                owner: Some(user.name.clone()),
                name,
                profile: options.profile()?,
                start: true,
            };
            st.app.create_workspace(ctx.caller(), cmd).await?
        }
    };
    let status = if ws.status.state == WorkspaceState::Running {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    // As JupyterHub: the status says it all, the body is empty.
    Ok(status.into_response())
}

async fn put_default(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let user = visible_user(&st, &ctx, &name, Scope::ReadServers).await?;
    ctx.require(Scope::Servers, &user.id)?;
    Err(ApiError::new(
        Code::AlreadyExists,
        format!("user {} already has a default server", user.name),
    ))
}

/// Creates a named server without starting it: 201 with its model, 409 if
/// the user has it already.
async fn put_named(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, server)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let user = visible_user(&st, &ctx, &name, Scope::ReadServers).await?;
    let server = extract::name("server_name", &server)?;
    ctx.require(Scope::Servers, &user.id)?;
    if find(&st, &user, server.as_str()).await?.is_some() {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("user {} already has server {server}", user.name),
        ));
    }
    let profile = start_options(&body)?.profile()?;
    let cmd = app::CreateWorkspace {
        owner: Some(user.name.clone()),
        name: server,
        profile,
        start: false,
    };
    let ws = st.app.create_workspace(ctx.caller(), cmd).await?;
    Ok((StatusCode::CREATED, axum::Json(server_model(&ws, &ctx))).into_response())
}

/// The body of a stop request (other keys are ignored, as by JupyterHub).
#[derive(Debug, Default, Deserialize)]
struct StopOptions {
    /// Delete the server (its workspace, files included) after stopping.
    #[serde(default)]
    remove: bool,
}

async fn stop_default(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let o: StopOptions = options(&body)?;
    stop(&st, &ctx, &name, "", o.remove).await
}

async fn stop_named(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, server)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let o: StopOptions = options(&body)?;
    stop(&st, &ctx, &name, &server, o.remove).await
}

/// Stops (or removes) a server, waiting up to [`STOP_WAIT`](web::ops::workspaces::STOP_WAIT) for it: 204 once
/// done, 202 if it is still stopping.
async fn stop(
    st: &AppState,
    ctx: &Ctx,
    user: &str,
    server: &str,
    remove: bool,
) -> ApiResult<StatusCode> {
    let user = visible_user(st, ctx, user, Scope::ReadServers).await?;
    if server.is_empty() && remove {
        ctx.require(Scope::DeleteServers, &user.id)?;
        return Err(ApiError::new(
            Code::InvalidValue,
            "the default server cannot be removed",
        ));
    }
    let Some(ws) = find(st, &user, workspace_name(server)).await? else {
        // The default server always exists for JupyterHub: stopping it when
        // it never ran is done already.
        return match server {
            "" => {
                ctx.require(Scope::DeleteServers, &user.id)?;
                Ok(StatusCode::NO_CONTENT)
            }
            _ => Err(ApiError::not_found("server")),
        };
    };
    let id = ws.id.clone();
    if remove {
        let cmd = app::DeleteWorkspace {
            id,
            keep_files: false,
        };
        st.app.delete_workspace(ctx.caller(), cmd).await?;
    } else {
        let change = app::WorkspaceChange::Stop;
        let cmd = app::ChangeWorkspace { id, change };
        st.app.change_workspace(ctx.caller(), cmd).await?;
    }
    Ok(if settled(st, &ws.id, remove).await? {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}

async fn progress_default(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    progress(&st, &ctx, &name, "").await
}

async fn progress_named(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, server)): Path<(String, String)>,
) -> ApiResult<Response> {
    progress(&st, &ctx, &name, server_arg(&server)?).await
}

/// One step of a start as JupyterHub's progress events show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Requested,
    Sandboxed,
    /// The app exited; the controller tries again after its back-off.
    Retrying,
    Ready,
    Failed,
    Cancelled,
}

impl Step {
    fn of(state: WorkspaceState, ready: bool, retrying: bool) -> Step {
        use WorkspaceState as S;
        match state {
            S::Running if ready => Step::Ready,
            S::Pending => Step::Requested,
            S::Starting | S::Running => Step::Sandboxed,
            S::Failed if retrying => Step::Retrying,
            S::Failed => Step::Failed,
            _ => Step::Cancelled,
        }
    }

    fn last(self) -> bool {
        matches!(self, Step::Ready | Step::Failed | Step::Cancelled)
    }

    fn event(self, url: &str, message: &str) -> models::Event {
        use models::Event;
        match self {
            Step::Requested => Event::new(0, "Server requested"),
            Step::Sandboxed => Event::new(50, "Sandbox up; waiting for the app to answer"),
            Step::Retrying => Event::new(25, format!("Start failed: {message}")),
            Step::Ready => Event {
                html_message: Some(format!("Server ready at <a href=\"{url}\">{url}</a>")),
                ready: true,
                url: Some(url.to_owned()),
                ..Event::new(100, format!("Server ready at {url}"))
            },
            Step::Failed => Event {
                failed: true,
                ..Event::new(100, format!("Spawn failed: {message}"))
            },
            Step::Cancelled => Event {
                failed: true,
                ..Event::new(100, "Spawn cancelled")
            },
        }
    }
}

/// `GET …/progress`: server-sent events of a start, from the controller's
/// route table (the real steps: requested, sandbox up, app answering). A
/// ready server sends its ready event at once; a failed one its failure; one
/// that is not starting is a 400, as in JupyterHub.
async fn progress(st: &AppState, ctx: &Ctx, user: &str, server: &str) -> ApiResult<Response> {
    let user = visible_user(st, ctx, user, Scope::ReadServers).await?;
    let Some(ws) = find(st, &user, workspace_name(server)).await? else {
        return Err(ApiError::not_found("server"));
    };
    let first = match ws.status.state {
        WorkspaceState::Starting | WorkspaceState::Running if pending(&ws) == Some("spawn") => {
            Step::Sandboxed
        }
        WorkspaceState::Failed if ws.status.retrying() => Step::Retrying,
        _ if pending(&ws) == Some("spawn") => Step::Requested,
        WorkspaceState::Failed if ws.spec.desired == DesiredState::Running => Step::Failed,
        WorkspaceState::Running if ws.spec.desired == DesiredState::Running => Step::Ready,
        _ => {
            return Err(ApiError::new(
                Code::ServerState,
                format!("{}/{server} is not starting", user.name),
            ))
        }
    };
    let url = base_url(&ws.owner, &ws.name);
    let key = model::route::key(ws.owner.as_str(), ws.name.as_str());
    let message = ws.status.message.clone().unwrap_or_default();
    let mut routes = st.proxy.routes();
    routes.mark_unchanged();
    // Only a change of this workspace's route is a step: the table changes
    // for every workspace, and may still show the state before the start.
    let mut seen = routes.borrow().get(key.as_str()).cloned();
    // The app's own output, for those who may read it (as on its page): the
    // owner and admins.
    let log = st
        .runtime
        .clone()
        .filter(|_| ctx.principal.may(Scope::Servers, &ws.owner_id))
        .map(|rt| (rt, ws.id.clone()));
    let (tx, rx) = tokio::sync::mpsc::channel::<models::Event>(16);
    tokio::spawn(async move {
        // Each start shows "requested" first, as JupyterHub's do.
        if matches!(first, Step::Sandboxed | Step::Retrying) {
            let _ = tx.send(Step::Requested.event(&url, "")).await;
        }
        if tx.send(first.event(&url, &message)).await.is_err() {
            return;
        }
        let mut last = first;
        let mut lines_sent = 0;
        let mut tick = tokio::time::interval(LOG_POLL);
        while !last.last() {
            tokio::select! {
                changed = routes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = routes.borrow_and_update().get(key.as_str()).cloned();
                    if now == seen {
                        continue;
                    }
                    seen.clone_from(&now);
                    let step = match now.as_deref() {
                        Some(Route { state, upstream, retrying, .. }) => {
                            Step::of(*state, upstream.is_some(), *retrying)
                        }
                        None => Step::Cancelled,
                    };
                    if step == last || step == Step::Requested {
                        continue;
                    }
                    if step == Step::Sandboxed {
                        lines_sent = 0; // A new start: a new log.
                    }
                    last = step;
                    let message = now.map(|r| r.message.clone()).unwrap_or_default();
                    if tx.send(step.event(&url, &message)).await.is_err() {
                        return;
                    }
                }
                _ = tick.tick(), if log.is_some() && last == Step::Sandboxed && lines_sent < LOG_LINES => {
                    let Some((rt, id)) = &log else { continue };
                    let text = rt.start_log(id, 64 << 10).await.unwrap_or_default();
                    for line in text.lines().filter(|l| !l.trim().is_empty()).skip(lines_sent) {
                        if lines_sent == LOG_LINES {
                            break;
                        }
                        lines_sent += 1;
                        let event = models::Event {
                            log: true,
                            ..models::Event::new(50, line)
                        };
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((sse(&event), rx))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// How often a start's progress looks for new log lines, and how many of the
/// first it sends (the log page has the rest).
const LOG_POLL: Duration = Duration::from_millis(250);
const LOG_LINES: usize = 40;

fn sse(event: &models::Event) -> Result<Event, std::convert::Infallible> {
    let data = serde_json::to_string(event).unwrap_or_default();
    Ok(Event::default().data(data))
}
