//! `/api/v1/users`: accounts. Admins manage everyone; a user sees only themself.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Page, PasswordChange, User, UserCreate, UserUpdate};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use model::Scope;

use super::created;
use web::auth::Ctx;
use web::convert;
use web::error::ApiResult;
use web::extract::{self, Json, Path, Query};
use web::ops::page;
use web::ops::users::{delete, set_password, update, visible_user};
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password_route))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// The cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<i64>,
}

async fn wire(st: &AppState, u: &model::User) -> ApiResult<User> {
    Ok(convert::user(u, st.app.groups_of(u).await?))
}

/// Lists users (admins: all; others: themselves).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery),
    responses((status = 200, body = Page<User>), (status = "4XX", body = ErrorBody)))]
async fn list_users(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<User>>> {
    ctx.require_any(Scope::ReadUsers)?;
    let limit = extract::limit(q.limit)?;
    let after = match ctx.principal.reaches_everyone(Scope::ReadUsers) {
        true => extract::cursor("after", q.after)?,
        // Only themself: any cursor is past the one page.
        false => q.after,
    };
    let users = st
        .app
        .users(ctx.caller(), Scope::ReadUsers, after.as_deref(), limit + 1)
        .await?;
    let Page { items, next } = page(users, limit, |u| u.name.to_string(), Clone::clone);
    // The page's groups in one query.
    let mut groups = st.app.groups_of_users(&items).await?;
    let wired = items
        .iter()
        .map(|u| convert::user(u, groups.remove(&u.id).unwrap_or_default()))
        .collect();
    Ok(axum::Json(Page { items: wired, next }))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserCreate,
    responses((status = 201, body = User), (status = 409, body = ErrorBody, description = "already_exists"),
        (status = "4XX", body = ErrorBody)))]
async fn create_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<UserCreate>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let cmd = app::CreateUser {
        name: extract::name("name", &req.name)?,
        password: req.password,
        admin: req.admin,
    };
    let user = st.app.create_user(ctx.caller(), cmd).await?;
    Ok(created(wire(&st, &user).await?))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 200, body = User), (status = "4XX", body = ErrorBody)))]
async fn get_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<User>> {
    let user = visible_user(&st, &ctx, &name, Scope::ReadUsers).await?;
    Ok(axum::Json(wire(&st, &user).await?))
}

/// Changes a user (admins): anything but their own admin flag and disabled
/// state. One's own password is changed with `PUT …/password`.
#[utoipa::path(patch, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = "4XX", body = ErrorBody)))]
async fn update_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<UserUpdate>,
) -> ApiResult<axum::Json<User>> {
    let cmd = app::UpdateUser {
        rename: req.name.map(|n| extract::name("name", &n)).transpose()?,
        admin: req.admin,
        disabled: req.disabled,
        password: req.password,
    };
    let updated = update(&st, &ctx, &name, cmd).await?;
    Ok(axum::Json(wire(&st, &updated).await?))
}

/// Sets a password. One's own needs `old_password` (failures count as failed
/// logins) and a session or a token with `tokens`; the caller's session is
/// renewed (a new cookie) and every other session of the account ends. Admins
/// set other users' passwords without the old one.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", tag = "users",
    params(("name" = String, Path)), request_body = PasswordChange,
    responses((status = 204, description = "Changed; other sessions ended"),
        (status = 403, body = ErrorBody, description = "wrong_password, or forbidden"),
        (status = 429, body = ErrorBody, description = "too_many_requests"),
        (status = "4XX", body = ErrorBody)))]
async fn set_password_route(
    State(st): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(name): Path<String>,
    Json(req): Json<PasswordChange>,
) -> ApiResult<Response> {
    let renewed = set_password(&st, &ctx, &name, req.old_password, req.password).await?;
    let jar = match renewed {
        Some((cookie, _)) => jar.add(cookie),
        None => jar,
    };
    Ok((StatusCode::NO_CONTENT, jar).into_response())
}

/// Deletes a user who owns no workspace.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody,
        description = "conflict: their workspaces are still being deleted (try again)"),
        (status = "4XX", body = ErrorBody)))]
async fn delete_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&st, &ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
