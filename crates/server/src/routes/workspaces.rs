//! `/api/v1/workspaces`: the desired state of workspaces. Every action here only
//! records what is wanted (bumping `generation`); the controller makes it so.
//! A workspace the caller may not read is reported as missing (404).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{
    ErrorBody, Page, Workspace, WorkspaceCreate, WorkspaceStateEvent, WorkspaceUpdate,
};
use model::{Scope, WorkspaceState};

use super::created;
use web::auth::Ctx;
use web::convert;
use web::error::{ApiError, ApiResult, Code};
use web::extract::{self, Json, Path, Query};
use web::ops::page;
use web::ops::workspaces::{change, request_delete, visible};
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace, update_workspace, delete_workspace))
        .routes(routes!(start_workspace))
        .routes(routes!(stop_workspace))
        .routes(routes!(workspace_events))
        .routes(routes!(workspace_logs))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this user's workspaces (admins; others see only their own).
    owner: Option<String>,
    /// Only workspaces in this observed state.
    state: Option<String>,
    profile: Option<String>,
    name: Option<String>,
    /// The cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<i64>,
}

fn query_name(field: &str, s: Option<String>) -> ApiResult<Option<model::Name>> {
    s.map(|s| {
        model::Name::parse(&s)
            .map_err(|e| ApiError::new(Code::InvalidQuery, format!("{field}: {e}")))
    })
    .transpose()
}

/// Lists workspaces, oldest first.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", params(ListQuery),
    responses((status = 200, body = Page<Workspace>), (status = "4XX", body = ErrorBody)))]
async fn list_workspaces(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<Workspace>>> {
    ctx.require_any(Scope::ReadServers)?;
    let limit = extract::limit(q.limit)?;
    let state = q
        .state
        .map(|s| {
            WorkspaceState::parse(&s).ok_or_else(|| {
                ApiError::new(Code::InvalidQuery, format!("state: unknown state {s:?}"))
            })
        })
        .transpose()?;
    let query = app::WorkspaceQuery {
        owner: query_name("owner", q.owner)?,
        state,
        profile: query_name("profile", q.profile)?,
        name: query_name("name", q.name)?,
        after: extract::cursor("after", q.after)?,
        limit: limit + 1,
    };
    let items = st.app.workspaces(ctx.caller(), query).await?;
    Ok(axum::Json(page(
        items,
        limit,
        |w| w.id.to_string(),
        convert::workspace,
    )))
}

/// Creates a workspace (stopped, or asked to run with `start: true`).
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", request_body = WorkspaceCreate,
    responses((status = 201, body = Workspace), (status = 409, body = ErrorBody, description = "already_exists"),
        (status = "4XX", body = ErrorBody)))]
async fn create_workspace(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<WorkspaceCreate>,
) -> ApiResult<(StatusCode, axum::Json<Workspace>)> {
    let cmd = app::CreateWorkspace {
        name: extract::name("name", &req.name)?,
        owner: req.owner.map(|o| extract::name("owner", &o)).transpose()?,
        profile: extract::name("profile", req.profile.as_deref().unwrap_or("standard"))?,
        start: req.start,
    };
    let ws = st.app.create_workspace(ctx.caller(), cmd).await?;
    Ok(created(convert::workspace(&ws)))
}

/// One workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{id}", tag = "workspaces", params(("id" = String, Path)),
    responses((status = 200, body = Workspace), (status = "4XX", body = ErrorBody)))]
async fn get_workspace(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Workspace>> {
    Ok(axum::Json(convert::workspace(
        &visible(&st, &ctx, &id).await?,
    )))
}

/// Changes a workspace's profile (applied at its next start).
#[utoipa::path(patch, path = "/api/v1/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path)), request_body = WorkspaceUpdate,
    responses((status = 200, body = Workspace), (status = "4XX", body = ErrorBody)))]
async fn update_workspace(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(req): Json<WorkspaceUpdate>,
) -> ApiResult<axum::Json<Workspace>> {
    let ws = match req.profile {
        Some(p) => {
            let profile = extract::name("profile", &p)?;
            change(&st, &ctx, &id, app::WorkspaceChange::Profile(profile)).await?
        }
        // Nothing to change, for one who may change it.
        None => {
            let ws = visible(&st, &ctx, &id).await?;
            ctx.require_server(Scope::Servers, &ws.owner_id, ws.name.as_str())?;
            ws
        }
    };
    Ok(axum::Json(convert::workspace(&ws)))
}

/// Asks for the workspace to run.
#[utoipa::path(post, path = "/api/v1/workspaces/{id}/start", tag = "workspaces",
    params(("id" = String, Path)),
    responses((status = 202, body = Workspace), (status = "4XX", body = ErrorBody)))]
async fn start_workspace(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Workspace>)> {
    let ws = change(&st, &ctx, &id, app::WorkspaceChange::Start).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(convert::workspace(&ws))))
}

/// Asks for the workspace to stop; its files stay.
#[utoipa::path(post, path = "/api/v1/workspaces/{id}/stop", tag = "workspaces",
    params(("id" = String, Path)),
    responses((status = 202, body = Workspace), (status = "4XX", body = ErrorBody)))]
async fn stop_workspace(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Workspace>)> {
    let ws = change(&st, &ctx, &id, app::WorkspaceChange::Stop).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(convert::workspace(&ws))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Keep the workspace's files (the runtime sets them aside) instead of
    /// deleting them with it.
    keep_files: Option<bool>,
}

/// Asks for the workspace to be deleted, with its files unless `keep_files`;
/// the controller finishes it.
#[utoipa::path(delete, path = "/api/v1/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path), DeleteQuery),
    responses((status = 202, body = Workspace), (status = "4XX", body = ErrorBody)))]
async fn delete_workspace(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<(StatusCode, axum::Json<Workspace>)> {
    let ws = request_delete(&st, &ctx, &id, q.keep_files.unwrap_or(false)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(convert::workspace(&ws))))
}

/// Follows a workspace's state as server-sent events: a `data:` line holding
/// `{"state", "message", "ready"}` at once and after every change, and
/// `{"state": "deleted"}` before the stream ends when the workspace is gone.
#[utoipa::path(get, path = "/api/v1/workspaces/{id}/events", tag = "workspaces",
    params(("id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = api_types::ServerSentEvent,
        description = "Server-sent events, each one's data a JSON `WorkspaceStateEvent`"),
        (status = "4XX", body = ErrorBody)))]
async fn workspace_events(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<impl axum::response::IntoResponse> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    let ws = visible(&st, &ctx, &id).await?;
    let key = model::route::key(ws.owner.as_str(), ws.name.as_str());
    let first = WorkspaceStateEvent {
        state: ws.status.state.as_str().to_owned(),
        message: ws.status.message.clone().unwrap_or_default(),
        ready: ws.status.state == WorkspaceState::Running,
    };
    let mut routes = st.proxy.routes();
    routes.mark_unchanged();
    let view = move |table: &model::route::RouteTable| {
        table
            .get(key.as_str())
            .map(|r| {
                let event = WorkspaceStateEvent {
                    state: r.state.as_str().to_owned(),
                    message: r.message.clone(),
                    ready: r.upstream.is_some(),
                };
                (r.workspace_id.to_string(), event)
            })
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    };
    // Changes against what was sent first; a workspace the table does not
    // hold yet (a moment after its creation) is waited for.
    let last = view(&routes.borrow())
        .into_keys()
        .map(|id| (id, first.clone()))
        .collect();
    let changes = Box::pin(web::live::changes(routes, view, last));
    let gone = WorkspaceStateEvent {
        state: "deleted".into(),
        message: String::new(),
        ready: false,
    };
    // Each change of this one workspace, then `deleted` (which ends it).
    let updates = futures::stream::unfold(Some(changes), move |changes| {
        let gone = gone.clone();
        async move {
            let mut changes = changes?;
            let (_, now) = changes.next().await?.into_iter().next()?;
            Some(match now {
                Some(event) => (event, Some(changes)),
                None => (gone, None),
            })
        }
    });
    let events = futures::stream::once(async move { first })
        .chain(updates)
        .map(|e| Event::default().json_data(&e).map_err(|e| e.to_string()));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogsQuery {
    /// Only the last this many lines, 1 to 10000 (default: the last 1 MiB).
    tail: Option<u32>,
    /// Keep the response open and send what the app writes next, until the
    /// workspace is deleted or the client goes.
    follow: Option<bool>,
}

/// How much of a log one read returns.
const LOG_CHUNK: usize = 1 << 20;
/// How often a followed log is read again.
const LOG_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The last `n` lines of `bytes` (a partial last line counts as one).
fn last_lines(bytes: &[u8], n: u32) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n as usize - 1)
        .map_or(0, |(i, _)| i + 1);
    &bytes[start..]
}

/// The app's log, as text: its output and berth's lines about each start and
/// exit (owners and admins). With `follow`, what the app writes next follows,
/// as it comes.
#[utoipa::path(get, path = "/api/v1/workspaces/{id}/logs", tag = "workspaces",
    params(("id" = String, Path), LogsQuery),
    responses((status = 200, content_type = "text/plain", body = String,
        description = "The log's bytes as the app wrote them"),
        (status = "4XX", body = ErrorBody)))]
async fn workspace_logs(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let ws = visible(&st, &ctx, &id).await?;
    ctx.require_server(Scope::Servers, &ws.owner_id, ws.name.as_str())?;
    if q.tail.is_some_and(|t| !(1..=10_000).contains(&t)) {
        return Err(ApiError::new(
            Code::InvalidQuery,
            "tail: must be between 1 and 10000 lines",
        ));
    }
    let text = [(
        axum::http::header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    )];
    let Some(rt) = st.runtime.clone() else {
        return Ok((text, Vec::new()).into_response());
    };
    let unavailable = |e: runtime::RuntimeError| {
        tracing::warn!(error = %model::error_chain(&e), "reading a workspace's log");
        ApiError::new(Code::Internal, "the log could not be read")
    };
    let first = rt
        .log_read(&ws.id, None, LOG_CHUNK)
        .await
        .map_err(unavailable)?;
    let head = match q.tail {
        Some(n) => last_lines(&first.bytes, n).to_vec(),
        None => first.bytes,
    };
    if !q.follow.unwrap_or(false) {
        return Ok((text, head).into_response());
    }
    // Then every LOG_POLL what was added, until the workspace is gone.
    let start = (Some(head), first.end);
    let chunks = futures::stream::unfold(start, move |(head, offset)| {
        let (rt, st, id) = (rt.clone(), st.clone(), ws.id.clone());
        async move {
            if let Some(head) = head {
                return Some((Ok::<_, std::convert::Infallible>(head), (None, offset)));
            }
            loop {
                tokio::time::sleep(LOG_POLL).await;
                match st.app.workspace_unchecked(&id).await {
                    Ok(None) => return None,
                    Ok(Some(w)) if w.deletion_requested_at.is_some() => return None,
                    _ => {}
                }
                let read = rt.log_read(&id, Some(offset), LOG_CHUNK).await.ok()?;
                if !read.bytes.is_empty() {
                    return Some((Ok(read.bytes), (None, read.end)));
                }
            }
        }
    });
    Ok((text, axum::body::Body::from_stream(chunks)).into_response())
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn the_last_lines_of_a_log() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"", 1), b"");
        assert_eq!(last_lines(b"\n\n", 1), b"\n");
    }
}
