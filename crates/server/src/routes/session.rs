//! Logging in and out with a password, and `GET /api/v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, LoginRequest, Me};
use model::ScopeSet;

use web::auth::Ctx;
use web::convert;
use web::error::ApiResult;
use web::extract::Json;
use web::ops::session::{log_in, log_out, Meta};
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Logs in with a password; sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(),
    request_body = LoginRequest,
    responses(
        (status = 200, body = Me, description = "Logged in; the session cookie is set"),
        (status = 401, body = ErrorBody, description = "invalid_credentials"),
        (status = 429, body = ErrorBody, description = "too_many_requests"),
        (status = "4XX", body = ErrorBody),
    ))]
async fn login(
    State(st): State<AppState>,
    meta: Meta,
    jar: CookieJar,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let (cookie, user, csrf) = log_in(&st, &meta, &req.username, &req.password).await?;
    let groups = st.app.groups_of(&user).await?;
    let scopes = ScopeSet::for_role(user.is_admin);
    let me = Me {
        user: convert::user(&user, groups),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        via: "session".into(),
        csrf_token: Some(csrf),
    };
    Ok((jar.add(cookie), axum::Json(me)).into_response())
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out"), (status = "4XX", body = ErrorBody)))]
async fn logout(State(st): State<AppState>, ctx: Ctx, jar: CookieJar) -> ApiResult<Response> {
    let jar = log_out(&st, &ctx, jar).await?;
    Ok((StatusCode::NO_CONTENT, jar).into_response())
}

/// Who the caller is, with the effective scopes.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = "4XX", body = ErrorBody)))]
async fn me(State(st): State<AppState>, ctx: Ctx) -> ApiResult<axum::Json<Me>> {
    let user = st.app.me(ctx.caller()).await?;
    let groups = st.app.groups_of(&user).await?;
    Ok(axum::Json(Me {
        user: convert::user(&user, groups),
        scopes: ctx.principal.scopes.to_strings(),
        via: if ctx.principal.token_id.is_some() {
            "token"
        } else {
            "session"
        }
        .into(),
        csrf_token: ctx.csrf,
    }))
}
