//! `/api/v1/users`: accounts. Admins manage everyone; a user sees only themself.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Page, PasswordChange, User, UserCreate, UserUpdate};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use model::{Outcome, Scope};
use store::{NewUser, UserPatch};

use super::{created, page};
use crate::auth::{self, Ctx};
use crate::convert;
use crate::error::{on_conflict, ApiError, ApiResult, Code};
use crate::extract::{self, Json, Path, Query};
use crate::AppState;

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

/// Finds a user the caller may see with `scope`; others are 404, like missing ones.
pub(crate) async fn visible_user(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    scope: Scope,
) -> ApiResult<model::User> {
    let name = extract::path_name("user", name)?;
    let user = st.store.user_by_name(&name).await?;
    if !ctx.principal.may(scope, &user.id) {
        return Err(ApiError::not_found("user"));
    }
    Ok(user)
}

async fn wire(st: &AppState, u: &model::User) -> ApiResult<User> {
    Ok(convert::user(u, st.store.groups_of(&u.id).await?))
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
    let users = if ctx.principal.reaches_everyone(Scope::ReadUsers) {
        let after = extract::cursor("after", q.after)?;
        st.store.users(after.as_deref(), limit + 1).await?
    } else {
        let me = st.store.user(&ctx.principal.user_id).await?;
        if q.after.is_some() {
            vec![]
        } else {
            vec![me]
        }
    };
    let Page { items, next } = page(users, limit, |u| u.name.to_string(), Clone::clone);
    let mut wired = Vec::with_capacity(items.len());
    for u in &items {
        wired.push(wire(&st, u).await?);
    }
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
    let user = create(&st, &ctx, req).await?;
    Ok(created(wire(&st, &user).await?))
}

/// Creates a user (admins only) with its audit record; `/hub/api` shares it.
pub(crate) async fn create(st: &AppState, ctx: &Ctx, req: UserCreate) -> ApiResult<model::User> {
    ctx.require_any(Scope::AdminUsers)?;
    let name = extract::name("name", &req.name)?;
    let password_hash = match req.password {
        Some(p) => {
            auth::check_password(&p)?;
            Some(auth::hash_password(p).await?)
        }
        None => None,
    };
    let mut tx = st.store.begin().await?;
    let user = tx
        .insert_user(&NewUser {
            name: name.clone(),
            password_hash,
            is_admin: req.admin,
        })
        .await
        .map_err(on_conflict(
            Code::AlreadyExists,
            format!("user {name} exists already"),
        ))?;
    let mut a = ctx.audit(model::AuditAction::UserCreate, "user", name.as_str());
    a.detail = Some(format!("{{\"admin\":{}}}", req.admin));
    tx.audit(&a).await?;
    tx.commit().await?;
    Ok(user)
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
    let updated = update(&st, &ctx, &name, req).await?;
    Ok(axum::Json(wire(&st, &updated).await?))
}

/// Changes the user `name` (admins: anything but their own admin flag and
/// disabled state, and their own password) with its audit record; `/hub/api`
/// shares it.
pub(crate) async fn update(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    req: UserUpdate,
) -> ApiResult<model::User> {
    let user = visible_user(st, ctx, name, Scope::ReadUsers).await?;
    if user.id == ctx.principal.user_id && req.password.is_some() {
        return Err(ApiError::new(
            Code::InvalidValue,
            format!(
                "password: change your own with PUT /api/v1/users/{}/password, \
                 which asks for the current one",
                user.name
            ),
        ));
    }
    ctx.require(Scope::AdminUsers, &user.id)?;
    if user.id == ctx.principal.user_id && (req.admin == Some(false) || req.disabled == Some(true))
    {
        return Err(ApiError::new(
            Code::Conflict,
            "you cannot demote or disable yourself",
        ));
    }
    let password_hash = match &req.password {
        Some(p) => {
            auth::check_password(p)?;
            Some(auth::hash_password(p.clone()).await?)
        }
        None => None,
    };
    let new_name = match &req.name {
        Some(n) if n != user.name.as_str() => Some(extract::name("name", n)?),
        _ => None,
    };
    let mut tx = st.store.begin().await?;
    if let Some(new_name) = &new_name {
        tx.rename_user(&user.id, &user.name, new_name)
            .await
            .map_err(|e| match e {
                store::StoreError::Conflict {
                    what: "user with workspaces not stopped",
                } => ApiError::new(
                    Code::Conflict,
                    format!("{} has workspaces not stopped: stop them first", user.name),
                ),
                store::StoreError::Conflict { .. } => {
                    ApiError::new(Code::AlreadyExists, format!("name: {new_name} is taken"))
                }
                e => e.into(),
            })?;
    }
    let updated = tx
        .update_user(
            &user.id,
            &UserPatch {
                is_admin: req.admin,
                disabled: req.disabled,
                password_hash,
            },
        )
        .await?;
    let mut a = ctx.audit(model::AuditAction::UserUpdate, "user", user.name.as_str());
    a.detail = Some(
        serde_json::json!({
            "name": new_name.as_ref().map(|n| n.as_str()),
            "admin": req.admin,
            "disabled": req.disabled,
            "password": req.password.as_ref().map(|_| "changed"),
        })
        .to_string(),
    );
    tx.audit(&a).await?;
    tx.commit().await?;
    Ok(updated)
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
    let renewed = set_password(&st, &ctx, &name, req).await?;
    let jar = match renewed {
        Some((cookie, _)) => jar.add(cookie),
        None => jar,
    };
    Ok((StatusCode::NO_CONTENT, jar).into_response())
}

/// Sets the user `name`'s password (see [`set_password_route`]) with its audit
/// record; the portal shares it. Returns the caller's new session cookie and
/// CSRF token when they changed their own password in a session.
pub(crate) async fn set_password(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    req: PasswordChange,
) -> ApiResult<Option<(Cookie<'static>, String)>> {
    let own = name == ctx.principal.name.as_str();
    let user = if own {
        st.store.user(&ctx.principal.user_id).await?
    } else {
        visible_user(st, ctx, name, Scope::ReadUsers).await?
    };
    if own {
        ctx.require(Scope::Tokens, &user.id)?;
        let Some(old) = req.old_password.filter(|p| !p.is_empty()) else {
            return Err(ApiError::new(
                Code::InvalidValue,
                "old_password: your current password is required to change it",
            ));
        };
        let ip = ctx.source.as_deref().and_then(|s| s.parse().ok());
        if let Some(wait) = st.throttle.check(user.name.as_str(), ip) {
            let mut e = ApiError::new(
                Code::TooManyRequests,
                format!("too many failed logins; try again in {wait} seconds"),
            );
            e.retry_after = Some(wait);
            return Err(e);
        }
        let (_, hash) = st.store.user_credentials(user.name.as_str()).await?;
        if !auth::verify_password(old, hash).await {
            st.throttle.failed(user.name.as_str(), ip);
            let mut a = ctx.audit(model::AuditAction::UserPassword, "user", user.name.as_str());
            a.outcome = Outcome::Failure;
            a.detail = Some("wrong current password".into());
            st.store.audit_alone(&a).await?;
            return Err(ApiError::new(
                Code::WrongPassword,
                "old_password: that is not your current password",
            ));
        }
    } else {
        ctx.require(Scope::AdminUsers, &user.id)?;
    }
    auth::check_password(&req.password)?;
    let password_hash = Some(auth::hash_password(req.password).await?);
    let mut tx = st.store.begin().await?;
    // A new password ends every session of the account (`update_user`).
    tx.update_user(
        &user.id,
        &UserPatch {
            password_hash,
            ..Default::default()
        },
    )
    .await?;
    let renewed = if own && ctx.csrf.is_some() {
        Some(super::session::open_session(st, &mut tx, &user.id).await?)
    } else {
        None
    };
    let mut a = ctx.audit(model::AuditAction::UserPassword, "user", user.name.as_str());
    a.detail = Some(if own { "own" } else { "set by an admin" }.into());
    tx.audit(&a).await?;
    tx.commit().await?;
    Ok(renewed)
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

/// Deletes the user `name` (admins only, not oneself) with its audit record;
/// `/hub/api` shares it. As JupyterHub, their workspaces are stopped and
/// deleted first, their files kept for an admin to restore
/// (`<data_dir>/workspaces/kept/<id>`); if the controller has not removed
/// them within the wait, nothing more is done and the answer is a conflict
/// to try again (the deletions go on).
pub(crate) async fn delete(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<()> {
    let user = visible_user(st, ctx, name, Scope::ReadUsers).await?;
    ctx.require(Scope::AdminUsers, &user.id)?;
    if user.id == ctx.principal.user_id {
        return Err(ApiError::new(Code::Conflict, "you cannot delete yourself"));
    }
    let owned = st.store.workspaces_of(&user.id).await?;
    for ws in owned.iter().filter(|w| w.deletion_requested_at.is_none()) {
        let cmd = app::DeleteWorkspace {
            id: ws.id.clone(),
            keep_files: true,
        };
        st.app.delete_workspace(ctx.caller(), cmd).await?;
    }
    let still_there = || {
        ApiError::new(
            Code::Conflict,
            format!(
                "{}'s workspaces are being deleted (their files kept): try again when they are gone",
                user.name
            ),
        )
    };
    for ws in &owned {
        if !crate::hub_servers::settled(st, &ws.id, true).await? {
            return Err(still_there());
        }
    }
    let mut tx = st.store.begin().await?;
    tx.delete_user(&user.id).await.map_err(|e| match e {
        store::StoreError::Conflict { .. } => still_there(),
        e => e.into(),
    })?;
    tx.audit(&ctx.audit(model::AuditAction::UserDelete, "user", user.name.as_str()))
        .await?;
    tx.commit().await?;
    Ok(())
}
