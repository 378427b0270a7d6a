//! Logging in with a password and out: the session and its cookie.

use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::auth::{self, Ctx, SESSION_COOKIE};
use crate::error::ApiResult;
use crate::AppState;

/// Request metadata for handlers that run before anyone is authenticated.
#[derive(Debug)]
pub struct Meta {
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

/// Checks a password (throttled, audited: [`app::App::log_in`]) and opens a
/// session: its cookie, the user, and the session's CSRF token. The portal's
/// login form shares it.
pub async fn log_in(
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
pub fn session_cookie(st: &AppState, session: app::NewSession) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, session.secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(st.config.secure_cookies)
        .max_age(time::Duration::seconds(session.ttl.as_secs() as i64))
        .build()
}

/// Ends the session whose cookie `jar` holds (audited) and removes the cookie.
pub async fn log_out(st: &AppState, ctx: &Ctx, jar: CookieJar) -> ApiResult<CookieJar> {
    let session = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned());
    st.app.log_out(ctx.caller(), session.as_deref()).await?;
    Ok(jar.remove(Cookie::build(SESSION_COOKIE).path("/")))
}
