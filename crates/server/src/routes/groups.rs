//! `/api/v1/groups`: groups of users. Admins manage them; members see their own.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Group, GroupCreate, GroupMembers};

use super::created;
use web::auth::Ctx;
use web::convert;
use web::error::ApiResult;
use web::extract::{Json, Path};
use web::ops::groups::{add, create, delete, list, remove, visible_group};
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, delete_group))
        .routes(routes!(add_members))
        .routes(routes!(remove_member))
}

/// Lists groups (admins: all; others: those they belong to).
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, body = Vec<Group>), (status = "4XX", body = ErrorBody)))]
async fn list_groups(State(st): State<AppState>, ctx: Ctx) -> ApiResult<axum::Json<Vec<Group>>> {
    let groups = list(&st, &ctx).await?;
    Ok(axum::Json(groups.iter().map(convert::group).collect()))
}

/// Creates a group, optionally with members.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupCreate,
    responses((status = 201, body = Group), (status = "4XX", body = ErrorBody)))]
async fn create_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<GroupCreate>,
) -> ApiResult<(StatusCode, axum::Json<Group>)> {
    Ok(created(convert::group(
        &create(&st, &ctx, &req.name, &req.members).await?,
    )))
}

/// One group with its members.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path)),
    responses((status = 200, body = Group), (status = "4XX", body = ErrorBody)))]
async fn get_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Group>> {
    Ok(axum::Json(convert::group(
        &visible_group(&st, &ctx, &name).await?,
    )))
}

/// Deletes a group (not its members).
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&st, &ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds users to a group.
#[utoipa::path(post, path = "/api/v1/groups/{name}/members", tag = "groups",
    params(("name" = String, Path)), request_body = GroupMembers,
    responses((status = 200, body = Group), (status = "4XX", body = ErrorBody)))]
async fn add_members(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<GroupMembers>,
) -> ApiResult<axum::Json<Group>> {
    Ok(axum::Json(convert::group(
        &add(&st, &ctx, &name, &req.users).await?,
    )))
}

/// Removes a user from a group.
#[utoipa::path(delete, path = "/api/v1/groups/{name}/members/{user}", tag = "groups",
    params(("name" = String, Path), ("user" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn remove_member(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    remove(&st, &ctx, &name, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
