//! Groups and their members.

use model::Scope;

use crate::auth::Ctx;
use crate::error::ApiResult;
use crate::{extract, AppState};

pub async fn visible_group(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<model::Group> {
    let name = extract::path_name("group", name)?;
    Ok(st.app.group(ctx.caller(), &name).await?)
}

/// Parses user names from a body's `users`.
pub fn user_names(names: &[String]) -> ApiResult<Vec<model::Name>> {
    names.iter().map(|n| extract::name("users", n)).collect()
}

/// The groups the caller may see; `/hub/api` shares it.
pub async fn list(st: &AppState, ctx: &Ctx) -> ApiResult<Vec<model::Group>> {
    Ok(st.app.groups(ctx.caller()).await?)
}

/// Creates the group `name` with the members `members` (names as a request
/// gave them) and its audit record; `/hub/api` and the portal share it.
pub async fn create(
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

/// Deletes a group with its audit record; `/hub/api` shares it.
pub async fn delete(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<()> {
    ctx.require_any(Scope::AdminGroups)?;
    let name = extract::path_name("group", name)?;
    Ok(st.app.delete_group(ctx.caller(), &name).await?)
}

/// Replaces a group's properties (JupyterHub's; only `/hub/api` has them),
/// with its audit record.
pub async fn set_properties(
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
pub async fn add(
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

/// Removes the user `user` from a group with its audit record; `/hub/api`
/// shares it.
pub async fn remove(st: &AppState, ctx: &Ctx, name: &str, user: &str) -> ApiResult<()> {
    ctx.require_any(Scope::AdminGroups)?;
    let name = extract::path_name("group", name)?;
    let user = extract::path_name("user", user)?;
    Ok(st.app.remove_member(ctx.caller(), &name, &user).await?)
}
