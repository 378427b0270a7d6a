//! JupyterHub's shares under `/hub/api`: a workspace's owner lets another user,
//! or a group's members, use it (`access:servers` on that one workspace: its
//! app, through berth's proxy and OAuth), without any other power over it.
//!
//! - `GET /hub/api/shares/{owner}` and `GET/POST/PATCH/DELETE
//!   /hub/api/shares/{owner}/{server}` (`read:shares` to list, `shares` to grant
//!   and revoke, on the owner's servers: the owner or an admin);
//! - `GET /hub/api/users/{name}/shared`: what is shared with a user (directly or
//!   through a group).
//!
//! A share grants `access:servers` only (JupyterHub's default); asking for other
//! scopes is refused. The default server is `/hub/api/shares/{owner}/`. Share
//! codes are not served.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use model::hub::{server_name, workspace_name};
use model::{Scope, Share, ShareWith, Workspace, WorkspaceState};

use crate::models::{self, Empty, Named, Paginated, Pagination, SharedServer};
use crate::options;
use web::auth::Ctx;
use web::convert::time;
use web::error::{ApiError, ApiResult, Code};
use web::extract::Path;
use web::ops::users::visible_user;
use web::ops::workspaces::find;
use web::shares;
use web::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/api/shares/{owner}", get(list_owner))
        .route(
            "/hub/api/shares/{owner}/",
            get(list).post(grant).patch(revoke).delete(revoke_all),
        )
        .route(
            "/hub/api/shares/{owner}/{server}",
            get(list).post(grant).patch(revoke).delete(revoke_all),
        )
        .route("/hub/api/users/{name}/shared", get(shared_with))
}

/// JupyterHub's share model.
fn share_model(s: &Share, ws: Option<&Workspace>) -> models::Share {
    let server = ws.map_or_else(|| s.workspace.to_string(), |w| server_name(w).to_owned());
    let named = |name: &model::Name| Named {
        name: name.to_string(),
    };
    let (user, group, kind) = match &s.with {
        ShareWith::User(u) => (Some(named(u)), None, "user"),
        ShareWith::Group(g) => (None, Some(named(g)), "group"),
    };
    models::Share {
        created_at: time(s.created_at),
        group,
        kind,
        scopes: vec![format!("access:servers!server={}/{server}", s.owner)],
        server: SharedServer {
            full_url: None,
            name: server,
            ready: ws.is_some_and(|w| w.status.state == WorkspaceState::Running),
            url: model::hub::base_url(&s.owner, &s.workspace),
            user: named(&s.owner),
        },
        user,
    }
}

/// `/hub/api/shares/{owner}/{server}`; `/hub/api/shares/{owner}/` is the
/// default server.
#[derive(Debug, Deserialize)]
struct ServerPath {
    owner: String,
    #[serde(default)]
    server: String,
}

/// The answer to a list of shares.
type Page = axum::Json<Paginated<Vec<models::Share>>>;

/// A list as JupyterHub pages it (all of it in one page).
fn page(items: Vec<models::Share>) -> Page {
    let total = items.len();
    axum::Json(Paginated {
        pagination: Pagination {
            limit: total.max(1),
            next: None,
            offset: 0,
            total,
        },
        items,
    })
}

/// The owner's workspace behind `server`, if the caller may see the owner's
/// shares; 404 otherwise.
async fn server(st: &AppState, ctx: &Ctx, p: &ServerPath, scope: Scope) -> ApiResult<Workspace> {
    let owner = visible_user(st, ctx, &p.owner, Scope::ReadShares).await?;
    let ws = find(st, &owner, workspace_name(&p.server))
        .await?
        .ok_or_else(|| ApiError::not_found("server"))?;
    ctx.require_server(scope, &ws.owner_id, ws.name.as_str())?;
    Ok(ws)
}

/// The models of `shares` of `owner_id`'s workspaces, each with its workspace.
async fn share_models(
    st: &AppState,
    owner_id: &str,
    shares: &[Share],
) -> ApiResult<Vec<models::Share>> {
    let spaces: HashMap<model::WorkspaceId, Workspace> = st
        .app
        .all_workspaces_unchecked(Some(owner_id))
        .await?
        .into_iter()
        .map(|w| (w.id.clone(), w))
        .collect();
    Ok(shares
        .iter()
        .map(|s| share_model(s, spaces.get(&s.workspace_id)))
        .collect())
}

async fn list_owner(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(owner): Path<String>,
) -> ApiResult<Page> {
    let owner = visible_user(&st, &ctx, &owner, Scope::ReadShares).await?;
    let shares = st.app.shares_of(ctx.caller(), &owner).await?;
    Ok(page(share_models(&st, &owner.id, &shares).await?))
}

async fn list(State(st): State<AppState>, ctx: Ctx, Path(p): Path<ServerPath>) -> ApiResult<Page> {
    let ws = server(&st, &ctx, &p, Scope::ReadShares).await?;
    let shares = st.app.shares(ctx.caller(), &ws).await?;
    Ok(page(
        shares.iter().map(|s| share_model(s, Some(&ws))).collect(),
    ))
}

/// A grant's or revocation's body: exactly one of `user` and `group`.
#[derive(Debug, Default, Deserialize)]
struct ShareBody {
    user: Option<String>,
    group: Option<String>,
    scopes: Option<Vec<String>>,
}

impl ShareBody {
    fn with(&self) -> ApiResult<ShareWith> {
        shares::with_of(self.user.as_deref(), self.group.as_deref())
    }
}

/// Whether a scope names `access:servers` on `ws` (filtered to it or not).
fn is_access(scope: &str, ws: &Workspace) -> bool {
    scope == "access:servers"
        || scope == format!("access:servers!server={}/{}", ws.owner, server_name(ws))
}

async fn grant(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<ServerPath>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<models::Share>> {
    let ws = server(&st, &ctx, &p, Scope::Shares).await?;
    let body: ShareBody = options(&body)?;
    // No scopes (or none listed) means JupyterHub's default: access.
    let only_access = body
        .scopes
        .iter()
        .flatten()
        .all(|scope| is_access(scope, &ws));
    if !only_access {
        return Err(ApiError::new(
            Code::InvalidValue,
            "scopes: berth shares access:servers on the server only",
        ));
    }
    let share = st.app.share(ctx.caller(), &ws, &body.with()?).await?;
    Ok(axum::Json(share_model(&share, Some(&ws))))
}

/// Revokes one share (`PATCH`): `{}` when nothing remains of it, as JupyterHub.
async fn revoke(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<ServerPath>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let ws = server(&st, &ctx, &p, Scope::Shares).await?;
    let body: ShareBody = options(&body)?;
    let with = body.with()?;
    let revokes_access = body
        .scopes
        .as_ref()
        .is_none_or(|list| list.iter().any(|scope| is_access(scope, &ws)));
    if !revokes_access {
        // Revoking scopes a share does not hold leaves it as it is.
        let kept = st
            .app
            .shares(ctx.caller(), &ws)
            .await?
            .into_iter()
            .find(|s| s.with == with);
        return Ok(match kept {
            Some(s) => axum::Json(share_model(&s, Some(&ws))).into_response(),
            None => axum::Json(Empty {}).into_response(),
        });
    }
    st.app.unshare(ctx.caller(), &ws, Some(&with)).await?;
    Ok(axum::Json(Empty {}).into_response())
}

async fn revoke_all(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<ServerPath>,
) -> ApiResult<StatusCode> {
    let ws = server(&st, &ctx, &p, Scope::Shares).await?;
    st.app.unshare(ctx.caller(), &ws, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What is shared with a user, directly or through their groups.
async fn shared_with(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<Page> {
    let user = visible_user(&st, &ctx, &name, Scope::ReadUsers).await?;
    let items = st
        .app
        .shared_with(&user.id)
        .await?
        .iter()
        .map(|(s, ws)| share_model(s, ws.as_ref()))
        .collect();
    Ok(page(items))
}
