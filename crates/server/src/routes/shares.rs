//! `/api/v1/workspaces/{id}/shares` and `/api/v1/users/{name}/shared`: who may
//! use a workspace besides its owner, and what others share with a user.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Share, ShareCreate};
use model::{Scope, ShareWith};

use super::created;
use web::auth::Ctx;
use web::convert;
use web::error::ApiResult;
use web::extract::{self, Json, Path};
use web::ops::users::visible_user;
use web::ops::workspaces::visible;
use web::shares;
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shares, create_share, delete_shares))
        .routes(routes!(delete_user_share))
        .routes(routes!(delete_group_share))
        .routes(routes!(shared_with))
}

/// The workspace's shares, oldest first (its owner and admins).
#[utoipa::path(get, path = "/api/v1/workspaces/{id}/shares", tag = "shares",
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Share>), (status = "4XX", body = ErrorBody)))]
async fn list_shares(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Share>>> {
    let ws = visible(&st, &ctx, &id).await?;
    let list = st.app.shares(ctx.caller(), &ws).await?;
    Ok(axum::Json(
        list.iter().map(|s| convert::share(s, Some(&ws))).collect(),
    ))
}

/// Shares the workspace with a user or a group: they may use its app, through
/// berth's proxy, and nothing more. Sharing again changes nothing; sharing with
/// the owner is refused.
#[utoipa::path(post, path = "/api/v1/workspaces/{id}/shares", tag = "shares",
    params(("id" = String, Path)), request_body = ShareCreate,
    responses((status = 201, body = Share), (status = "4XX", body = ErrorBody)))]
async fn create_share(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(req): Json<ShareCreate>,
) -> ApiResult<(StatusCode, axum::Json<Share>)> {
    let ws = visible(&st, &ctx, &id).await?;
    let with = shares::with_of(req.user.as_deref(), req.group.as_deref())?;
    let share = st.app.share(ctx.caller(), &ws, &with).await?;
    Ok(created(convert::share(&share, Some(&ws))))
}

/// Revokes all of the workspace's shares.
#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/shares", tag = "shares",
    params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_shares(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let ws = visible(&st, &ctx, &id).await?;
    st.app.unshare(ctx.caller(), &ws, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(st: &AppState, ctx: &Ctx, id: &str, with: ShareWith) -> ApiResult<StatusCode> {
    let ws = visible(st, ctx, id).await?;
    st.app.unshare(ctx.caller(), &ws, Some(&with)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the workspace's share with a user (no error if there is none).
#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/shares/users/{name}", tag = "shares",
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_user_share(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let with = ShareWith::User(extract::path_name("user", &name)?);
    revoke(&st, &ctx, &id, with).await
}

/// Revokes the workspace's share with a group (no error if there is none).
#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/shares/groups/{name}", tag = "shares",
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_group_share(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let with = ShareWith::Group(extract::path_name("group", &name)?);
    revoke(&st, &ctx, &id, with).await
}

/// What is shared with the user, directly or through a group of theirs.
#[utoipa::path(get, path = "/api/v1/users/{name}/shared", tag = "shares",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<Share>), (status = "4XX", body = ErrorBody)))]
async fn shared_with(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<Share>>> {
    let user = visible_user(&st, &ctx, &name, Scope::ReadUsers).await?;
    let list = st.app.shared_with(&user.id).await?;
    Ok(axum::Json(
        list.iter()
            .map(|(s, ws)| convert::share(s, ws.as_ref()))
            .collect(),
    ))
}
