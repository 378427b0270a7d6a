//! `/api/v1/users/{name}/tokens`: API tokens, shown once, stored as hashes.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Token, TokenCreate, TokenCreated};
use model::ScopeSet;

use super::{created, text};
use crate::auth::Ctx;
use crate::convert;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{self, Json, Path};
use crate::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(delete_token))
}

/// A user's tokens.
#[utoipa::path(get, path = "/api/v1/users/{name}/tokens", tag = "tokens",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<Token>), (status = "4XX", body = ErrorBody)))]
async fn list_tokens(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<Token>>> {
    let (_, tokens) = list(&st, &ctx, &name).await?;
    Ok(axum::Json(tokens.iter().map(convert::token).collect()))
}

/// The user `name` and their tokens, for a caller who may read them; `/hub/api`
/// shares it.
pub(crate) async fn list(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
) -> ApiResult<(model::User, Vec<model::Token>)> {
    let name = extract::path_name("user", name)?;
    Ok(st.app.tokens(ctx.caller(), &name).await?)
}

/// Creates a token; its scopes may not exceed the caller's nor the owner's role.
#[utoipa::path(post, path = "/api/v1/users/{name}/tokens", tag = "tokens",
    params(("name" = String, Path)), request_body = TokenCreate,
    responses((status = 201, body = TokenCreated), (status = "4XX", body = ErrorBody)))]
async fn create_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<TokenCreate>,
) -> ApiResult<(StatusCode, axum::Json<TokenCreated>)> {
    let (token, secret) = create(&st, &ctx, &name, req).await?;
    Ok(created(TokenCreated {
        token: secret,
        info: convert::token(&token),
    }))
}

/// Creates a token of the user `name` with its audit record, returning it and
/// its secret; `/hub/api` and the portal share it.
pub(crate) async fn create(
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

/// Revokes a token.
#[utoipa::path(delete, path = "/api/v1/users/{name}/tokens/{id}", tag = "tokens",
    params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(&st, &ctx, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the token `id` of the user `name` with its audit record; `/hub/api`
/// and the portal share it.
pub(crate) async fn delete(st: &AppState, ctx: &Ctx, name: &str, id: &str) -> ApiResult<()> {
    let name = extract::path_name("user", name)?;
    let id = extract::path_id("token", id)?;
    Ok(st.app.delete_token(ctx.caller(), &name, id).await?)
}
