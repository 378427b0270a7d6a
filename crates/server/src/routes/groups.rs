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
use crate::error::{missing_as_invalid, on_conflict, ApiError, ApiResult, Code};
use crate::extract::{self, Json, Path};
use crate::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, delete_group))
        .routes(routes!(add_members))
        .routes(routes!(remove_member))
}

fn can_see(ctx: &Ctx, g: &model::Group) -> bool {
    ctx.principal.reaches_everyone(Scope::ReadGroups)
        || (ctx.principal.has(Scope::ReadGroups) && g.members.contains(&ctx.principal.name))
}

pub(crate) async fn visible_group(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<model::Group> {
    let g = st.store.group(&extract::path_name("group", name)?).await?;
    if !can_see(ctx, &g) {
        return Err(ApiError::not_found("group"));
    }
    Ok(g)
}

/// Resolves user names to ids; an unknown user is an invalid value.
pub(crate) async fn user_ids(st: &AppState, names: &[String]) -> ApiResult<Vec<String>> {
    if names.len() > 1000 {
        return Err(ApiError::new(
            Code::InvalidValue,
            "users: at most 1000 at once",
        ));
    }
    let mut ids = Vec::with_capacity(names.len());
    for n in names {
        let name = extract::name("users", n)?;
        let user = st.store.user_by_name(&name).await;
        ids.push(
            user.map_err(missing_as_invalid("users", format!("no user {name}")))?
                .id,
        );
    }
    Ok(ids)
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
    ctx.require_any(Scope::ReadGroups)?;
    let mut groups = st.store.groups().await?;
    groups.retain(|g| can_see(ctx, g));
    Ok(groups)
}

/// Creates a group, optionally with members.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupCreate,
    responses((status = 201, body = Group), (status = "4XX", body = ErrorBody)))]
async fn create_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<GroupCreate>,
) -> ApiResult<(StatusCode, axum::Json<Group>)> {
    Ok(created(convert::group(&create(&st, &ctx, req).await?)))
}

/// Creates a group with its members and audit record; `/hub/api` shares it.
pub(crate) async fn create(st: &AppState, ctx: &Ctx, req: GroupCreate) -> ApiResult<model::Group> {
    ctx.require_any(Scope::AdminGroups)?;
    let name = extract::name("name", &req.name)?;
    let members = user_ids(st, &req.members).await?;
    let mut tx = st.store.begin().await?;
    let g = tx.insert_group(&name).await.map_err(on_conflict(
        Code::AlreadyExists,
        format!("group {name} exists already"),
    ))?;
    for m in &members {
        tx.add_member(&g.id, m).await?;
    }
    let mut a = ctx.audit(model::AuditAction::GroupCreate, "group", name.as_str());
    a.detail = Some(format!("members={}", req.members.join(",")));
    tx.audit(&a).await?;
    tx.commit().await?;
    Ok(st.store.group(&name).await?)
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
    let g = visible_group(st, ctx, name).await?;
    let mut tx = st.store.begin().await?;
    tx.delete_group(&g.id).await?;
    tx.audit(&ctx.audit(model::AuditAction::GroupDelete, "group", g.name.as_str()))
        .await?;
    tx.commit().await?;
    // Group filters and group shares reach other users now.
    Ok(())
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
        &add(&st, &ctx, &name, req).await?,
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
    let g = visible_group(st, ctx, name).await?;
    let mut tx = st.store.begin().await?;
    tx.set_group_properties(&g.id, &properties).await?;
    tx.audit(&ctx.audit(
        model::AuditAction::GroupSetProperties,
        "group",
        g.name.as_str(),
    ))
    .await?;
    tx.commit().await?;
    Ok(st.store.group(&g.name).await?)
}

/// Adds users to a group with its audit record; `/hub/api` shares it.
pub(crate) async fn add(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    req: GroupMembers,
) -> ApiResult<model::Group> {
    ctx.require_any(Scope::AdminGroups)?;
    let g = visible_group(st, ctx, name).await?;
    let ids = user_ids(st, &req.users).await?;
    let mut tx = st.store.begin().await?;
    for id in &ids {
        tx.add_member(&g.id, id).await?;
    }
    let mut a = ctx.audit(
        model::AuditAction::GroupAddMembers,
        "group",
        g.name.as_str(),
    );
    a.detail = Some(format!("users={}", req.users.join(",")));
    tx.audit(&a).await?;
    tx.commit().await?;
    // Group filters and group shares reach other users now.
    Ok(st.store.group(&g.name).await?)
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
    let g = visible_group(st, ctx, name).await?;
    let user = st
        .store
        .user_by_name(&extract::path_name("user", user)?)
        .await?;
    let mut tx = st.store.begin().await?;
    tx.remove_member(&g.id, &user.id).await?;
    let mut a = ctx.audit(
        model::AuditAction::GroupRemoveMember,
        "group",
        g.name.as_str(),
    );
    a.detail = Some(format!("user={}", user.name));
    tx.audit(&a).await?;
    tx.commit().await?;
    // Group filters and group shares reach other users now.
    Ok(())
}
