//! Workspaces: one seen by the caller, changed, deleted, waited for.

use std::time::Duration;

use model::{DesiredState, Workspace, WorkspaceState};

use crate::auth::Ctx;
use crate::error::ApiResult;
use crate::{extract, AppState};

/// Finds a workspace the caller may read; any other is a 404.
pub async fn visible(st: &AppState, ctx: &Ctx, id: &str) -> ApiResult<model::Workspace> {
    let id = extract::path_id("workspace", id)?;
    Ok(st.app.workspace(ctx.caller(), id).await?)
}

/// Applies a desired-state change to workspace `id` (as the path gave it).
pub async fn change(
    st: &AppState,
    ctx: &Ctx,
    id: &str,
    change: app::WorkspaceChange,
) -> ApiResult<model::Workspace> {
    let cmd = app::ChangeWorkspace {
        id: extract::path_id("workspace", id)?.into(),
        change,
    };
    Ok(st.app.change_workspace(ctx.caller(), cmd).await?)
}

/// Records that a workspace is to be deleted (keeping its files or not).
pub async fn request_delete(
    st: &AppState,
    ctx: &Ctx,
    id: &str,
    keep_files: bool,
) -> ApiResult<model::Workspace> {
    let cmd = app::DeleteWorkspace {
        id: extract::path_id("workspace", id)?.into(),
        keep_files,
    };
    Ok(st.app.delete_workspace(ctx.caller(), cmd).await?)
}

/// How long a stop waits for the server to stop before it answers 202, as
/// JupyterHub's `slow_stop_timeout`.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// Waits up to [`STOP_WAIT`] until workspace `id` is stopped (or, with
/// `removed`, gone); whether it got there.
pub async fn settled(st: &AppState, id: &str, removed: bool) -> ApiResult<bool> {
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    let mut routes = st.proxy.routes();
    routes.mark_unchanged();
    loop {
        match st.app.workspace_unchecked(id).await? {
            None => return Ok(true),
            Some(ws) if !removed && !active(&ws) => return Ok(true),
            Some(_) => {}
        }
        // Without a runtime (`runtime = "none"`) no controller moves it.
        if st.runtime.is_none() || tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        // A route change is the usual wake-up; the short timeout covers a
        // store change the route table does not show.
        let tick = deadline.min(tokio::time::Instant::now() + Duration::from_millis(250));
        let _ = tokio::time::timeout_at(tick, routes.changed()).await;
    }
}

/// Finds the workspace of `user` named `name`, if any (a name no workspace
/// could have names none).
pub async fn find(st: &AppState, user: &model::User, name: &str) -> ApiResult<Option<Workspace>> {
    Ok(st.app.find_workspace_unchecked(user, name).await?)
}

/// Whether JupyterHub would call the server active (not stopped).
pub fn active(ws: &Workspace) -> bool {
    pending(ws).is_some()
        || matches!(
            ws.status.state,
            WorkspaceState::Running | WorkspaceState::Paused
        )
}

/// JupyterHub's `pending`: what the server is in the middle of, if anything.
pub fn pending(ws: &Workspace) -> Option<&'static str> {
    use WorkspaceState as S;
    match (ws.status.state, ws.spec.desired) {
        (S::Stopping | S::Deleting, _) => Some("stop"),
        _ if ws.deletion_requested_at.is_some() => Some("stop"),
        (S::Pending | S::Starting | S::Stopped, DesiredState::Running) => Some("spawn"),
        // A failed start asked for again (a new generation) starts anew; one
        // the controller tries again after its back-off is still spawning.
        (S::Failed, DesiredState::Running)
            if ws.observed_generation != ws.generation || ws.status.retrying() =>
        {
            Some("spawn")
        }
        (S::Starting | S::Running | S::Paused, DesiredState::Stopped) => Some("stop"),
        _ => None,
    }
}
