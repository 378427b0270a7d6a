//! Users: one seen by the caller, changed, given a password, deleted.

use axum_extra::extract::cookie::Cookie;
use model::Scope;

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, Code};
use crate::{extract, AppState};

/// Finds a user the caller may see with `scope`; others are 404, like missing ones.
pub async fn visible_user(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    scope: Scope,
) -> ApiResult<model::User> {
    let name = extract::path_name("user", name)?;
    let user = st.app.user(ctx.caller(), &name, scope).await?;
    Ok(user)
}

/// Changes the user `name` (as the path gives it) with its audit record:
/// [`app::App::update_user`].
pub async fn update(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    cmd: app::UpdateUser,
) -> ApiResult<model::User> {
    let name = extract::path_name("user", name)?;
    Ok(st.app.update_user(ctx.caller(), &name, cmd).await?)
}

/// Sets the user `name`'s password (`PUT /api/v1/users/{name}/password`) with its audit
/// record; the portal shares it. Returns the caller's new session cookie and
/// CSRF token when they changed their own password in a session.
pub async fn set_password(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    old_password: Option<String>,
    password: String,
) -> ApiResult<Option<(Cookie<'static>, String)>> {
    let name = extract::path_name("user", name)?;
    let cmd = app::SetPassword {
        old_password,
        password,
        renew_session: ctx.csrf.is_some(),
    };
    let renewed = st.app.set_password(ctx.caller(), &name, cmd).await?;
    Ok(renewed.map(|session| {
        let csrf = session.csrf.clone();
        (super::session::session_cookie(st, session), csrf)
    }))
}

/// Deletes the user `name` (admins only, not oneself) with its audit record;
/// `/hub/api` shares it. As JupyterHub, their workspaces are stopped and
/// deleted first, their files kept for an admin to restore
/// (`<data_dir>/workspaces/kept/<id>`); if the controller has not removed
/// them within the wait, nothing more is done and the answer is a conflict
/// to try again (the deletions go on).
pub async fn delete(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<()> {
    let name = extract::path_name("user", name)?;
    let still_there = || {
        ApiError::new(
            Code::Conflict,
            format!(
                "{name}'s workspaces are being deleted (their files kept): try again when they are gone"
            ),
        )
    };
    let app::UserDeletion::Waiting(ids) = st.app.delete_user(ctx.caller(), &name).await? else {
        return Ok(());
    };
    for id in &ids {
        if !super::workspaces::settled(st, id, true).await? {
            return Err(still_there());
        }
    }
    match st.app.delete_user(ctx.caller(), &name).await? {
        app::UserDeletion::Deleted => Ok(()),
        app::UserDeletion::Waiting(_) => Err(still_there()),
    }
}
