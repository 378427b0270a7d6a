//! Logging in and out with a password, and `GET /api/v1/me`.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, LoginRequest, Me};
use model::ScopeSet;

use crate::auth::{self, Ctx, SESSION_COOKIE};
use crate::convert;
use crate::error::ApiResult;
use crate::extract::Json;
use crate::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Request metadata for handlers that run before anyone is authenticated.
pub(crate) struct Meta {
    request_id: String,
    source: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta {
            request_id: auth::request_id_of(parts),
            source: auth::source_of(parts),
        })
    }
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

/// Checks a password (throttled, audited: [`app::App::log_in`]) and opens a
/// session: its cookie, the user, and the session's CSRF token. The portal's
/// login form shares it.
pub(crate) async fn log_in(
    st: &AppState,
    meta: &Meta,
    username: &str,
    password: &str,
) -> ApiResult<(Cookie<'static>, model::User, String)> {
    let attempt = app::LogIn {
        username,
        password,
        source: meta.source.as_deref(),
        request_id: &meta.request_id,
    };
    let logged_in = st.app.log_in(attempt).await;
    st.metrics.login(match &logged_in {
        Ok(_) => "success",
        Err(app::AppError::TooManyRequests { .. }) => "throttled",
        Err(_) => "failure",
    });
    let (user, session) = logged_in?;
    let csrf = session.csrf.clone();
    Ok((session_cookie(st, session), user, csrf))
}

/// The cookie that carries `session`.
pub(crate) fn session_cookie(st: &AppState, session: app::NewSession) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, session.secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(st.config.secure_cookies)
        .max_age(time::Duration::seconds(session.ttl.as_secs() as i64))
        .build()
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out"), (status = "4XX", body = ErrorBody)))]
async fn logout(State(st): State<AppState>, ctx: Ctx, jar: CookieJar) -> ApiResult<Response> {
    let jar = log_out(&st, &ctx, jar).await?;
    Ok((StatusCode::NO_CONTENT, jar).into_response())
}

/// Ends the session whose cookie `jar` holds (audited) and removes the cookie.
pub(crate) async fn log_out(st: &AppState, ctx: &Ctx, jar: CookieJar) -> ApiResult<CookieJar> {
    let session = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned());
    st.app.log_out(ctx.caller(), session.as_deref()).await?;
    Ok(jar.remove(Cookie::build(SESSION_COOKIE).path("/")))
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
