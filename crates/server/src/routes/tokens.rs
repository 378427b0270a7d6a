//! `/api/v1/users/{name}/tokens`: API tokens, shown once, stored as hashes.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Token, TokenCreate, TokenCreated};
use model::{now_millis, Scope, ScopeSet};
use store::NewToken;

use super::users::visible_user;
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

const MAX_LIFETIME_SECS: u64 = 10 * 366 * 24 * 3600;

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
    let user = visible_user(st, ctx, name, Scope::ReadTokens).await?;
    let tokens = st.store.tokens(&user.id).await?;
    Ok((user, tokens))
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
/// its secret; `/hub/api` shares it.
pub(crate) async fn create(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    req: TokenCreate,
) -> ApiResult<(model::Token, String)> {
    let user = visible_user(st, ctx, name, Scope::ReadUsers).await?;
    ctx.require(Scope::Tokens, &user.id)?;
    text("note", &req.note, 1000)?;
    let allowed = ctx
        .principal
        .scopes
        .intersection(&ScopeSet::for_role(user.is_admin));
    let scopes = match &req.scopes {
        None => allowed,
        Some(list) => {
            let asked = ScopeSet::parse(&list.join(" "))
                .map_err(|e| ApiError::new(Code::UnknownScope, e.to_string()))?;
            if !asked.is_subset(&allowed) {
                return Err(ApiError::new(
                    Code::Forbidden,
                    "a token cannot hold scopes that you or its owner do not have",
                ));
            }
            // A filter reaching past the owner's role would be dead at every use.
            if !user.is_admin && asked.all_filters().any(|f| !f.within_user(&user.name)) {
                return Err(ApiError::new(
                    Code::Forbidden,
                    "a non-admin's token can be filtered only to their own user and servers",
                ));
            }
            asked
        }
    };
    let expires_at = match req.expires_in {
        None => None,
        Some(s) if (1..=MAX_LIFETIME_SECS).contains(&s) => Some(now_millis() + s as i64 * 1000),
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidValue,
                "expires_in: must be 1 second to 10 years",
            ))
        }
    };
    let minted = model::secret::MintedToken::new();
    let mut tx = st.store.begin().await?;
    let token = tx
        .insert_token(&NewToken {
            user_id: user.id.clone(),
            hash: minted.hash,
            prefix: minted.prefix,
            note: req.note,
            scopes,
            expires_at,
        })
        .await?;
    let mut a = ctx.audit(model::AuditAction::TokenCreate, "token", &token.id);
    a.detail = Some(format!("owner={} scopes={}", user.name, token.scopes));
    tx.audit(&a).await?;
    tx.commit().await?;
    Ok((token, minted.secret.expose().to_owned()))
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
/// shares it.
pub(crate) async fn delete(st: &AppState, ctx: &Ctx, name: &str, id: &str) -> ApiResult<()> {
    let user = visible_user(st, ctx, name, Scope::ReadTokens).await?;
    ctx.require(Scope::Tokens, &user.id)?;
    let mut tx = st.store.begin().await?;
    tx.delete_token(&user.id, extract::path_id("token", id)?)
        .await?;
    let mut a = ctx.audit(model::AuditAction::TokenDelete, "token", id);
    a.detail = Some(format!("owner={}", user.name));
    tx.audit(&a).await?;
    tx.commit().await?;
    Ok(())
}
