//! A user's API tokens: listed, created, revoked.

use api_types::TokenCreate;
use model::ScopeSet;

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, Code};
use crate::{extract, AppState};

use super::text;

/// The user `name` and their tokens, for a caller who may read them; `/hub/api`
/// shares it.
pub async fn list(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
) -> ApiResult<(model::User, Vec<model::Token>)> {
    let name = extract::path_name("user", name)?;
    Ok(st.app.tokens(ctx.caller(), &name).await?)
}

/// Creates a token of the user `name` with its audit record, returning it and
/// its secret; `/hub/api` and the portal share it.
pub async fn create(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    req: TokenCreate,
) -> ApiResult<(model::Token, String)> {
    let name = extract::path_name("user", name)?;
    text("note", &req.note, 1000)?;
    let scopes = req
        .scopes
        .map(|list| {
            ScopeSet::parse(&list.join(" "))
                .map_err(|e| ApiError::new(Code::UnknownScope, e.to_string()))
        })
        .transpose()?;
    let cmd = app::CreateToken {
        note: req.note,
        scopes,
        expires_in: req.expires_in,
    };
    Ok(st.app.create_token(ctx.caller(), &name, cmd).await?)
}

/// Revokes the token `id` of the user `name` with its audit record; `/hub/api`
/// and the portal share it.
pub async fn delete(st: &AppState, ctx: &Ctx, name: &str, id: &str) -> ApiResult<()> {
    let name = extract::path_name("user", name)?;
    let id = extract::path_id("token", id)?;
    Ok(st.app.delete_token(ctx.caller(), &name, id).await?)
}
