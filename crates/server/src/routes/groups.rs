//! `/api/v1/groups`: groups of users. Admins manage them; members see their own.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Group, GroupCreate, GroupMembers};
use model::Scope;

use super::created;
use crate::auth::Ctx;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{self, Json, Path};
use crate::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, delete_group))
        .routes(routes!(add_members))
        .routes(routes!(remove_member))
}

pub(crate) async fn visible_group(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<model::Group> {
    let name = extract::path_name("group", name)?;
    Ok(st.app.group(ctx.caller(), &name).await?)
}

/// Parses user names from a body's `users`.
pub(crate) fn user_names(names: &[String]) -> ApiResult<Vec<model::Name>> {
    names.iter().map(|n| extract::name("users", n)).collect()
}

/// Lists groups (admins: all; others: those they belong to).
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, body = Vec<Group>), (status = "4XX", body = ErrorBody)))]
async fn list_groups(State(st): State<AppState>, ctx: Ctx) -> ApiResult<axum::Json<Vec<Group>>> {
    let groups = list(&st, &ctx).await?;
    Ok(axum::Json(groups.iter().map(convert::group).collect()))
}

/// The groups the caller may see; `/hub/api` shares it.
pub(crate) async fn list(st: &AppState, ctx: &Ctx) -> ApiResult<Vec<model::Group>> {
    Ok(st.app.groups(ctx.caller()).await?)
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

/// Creates the group `name` with the members `members` (names as a request
/// gave them) and its audit record; `/hub/api` and the portal share it.
pub(crate) async fn create(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    members: &[String],
) -> ApiResult<model::Group> {
    ctx.require_any(Scope::AdminGroups)?;
    let cmd = app::CreateGroup {
        name: extract::name("name", name)?,
        members: user_names(members)?,
    };
    Ok(st.app.create_group(ctx.caller(), cmd).await?)
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

/// Deletes a group with its audit record; `/hub/api` shares it.
pub(crate) async fn delete(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<()> {
    ctx.require_any(Scope::AdminGroups)?;
    let name = extract::path_name("group", name)?;
    Ok(st.app.delete_group(ctx.caller(), &name).await?)
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

/// Replaces a group's properties (JupyterHub's; only `/hub/api` has them),
/// with its audit record.
pub(crate) async fn set_properties(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    properties: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<model::Group> {
    let name = extract::path_name("group", name)?;
    Ok(st
        .app
        .set_group_properties(ctx.caller(), &name, &properties)
        .await?)
}

/// Adds the users `users` (names as a request gave them) to a group with its
/// audit record; `/hub/api` and the portal share it.
pub(crate) async fn add(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    users: &[String],
) -> ApiResult<model::Group> {
    ctx.require_any(Scope::AdminGroups)?;
    let name = extract::path_name("group", name)?;
    let users = user_names(users)?;
    Ok(st.app.add_members(ctx.caller(), &name, &users).await?)
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

/// Removes the user `user` from a group with its audit record; `/hub/api`
/// shares it.
pub(crate) async fn remove(st: &AppState, ctx: &Ctx, name: &str, user: &str) -> ApiResult<()> {
    ctx.require_any(Scope::AdminGroups)?;
    let name = extract::path_name("group", name)?;
    let user = extract::path_name("user", user)?;
    Ok(st.app.remove_member(ctx.caller(), &name, &user).await?)
}
