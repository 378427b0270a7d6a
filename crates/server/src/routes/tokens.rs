//! `/api/v1/users/{name}/tokens`: API tokens, shown once, stored as hashes.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Token, TokenCreate, TokenCreated};

use super::created;
use web::auth::Ctx;
use web::convert;
use web::error::ApiResult;
use web::extract::{Json, Path};
use web::ops::tokens::{create, delete, list};
use web::AppState;

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
