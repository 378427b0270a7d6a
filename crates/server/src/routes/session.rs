//! Logging in and out with a password, and `GET /api/v1/me`.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, LoginRequest, Me};
use model::{now_millis, Outcome, ScopeSet};
use store::{NewAudit, StoreError};

use crate::auth::{self, Ctx, SESSION_COOKIE};
use crate::convert;
use crate::error::{ApiError, ApiResult, Code};
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
    let (cookie, user, csrf) = log_in(&st, &meta, &req.username, req.password).await?;
    let groups = st.store.groups_of(&user.id).await?;
    let scopes = ScopeSet::for_role(user.is_admin);
    let me = Me {
        user: convert::user(&user, groups),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        via: "session".into(),
        csrf_token: Some(csrf),
    };
    Ok((jar.add(cookie), axum::Json(me)).into_response())
}

/// Checks a password (throttled, audited) and opens a session: its cookie, the
/// user, and the session's CSRF token. The portal's login form shares it.
pub(crate) async fn log_in(
    st: &AppState,
    meta: &Meta,
    username: &str,
    password: String,
) -> ApiResult<(Cookie<'static>, model::User, String)> {
    let ip = meta.source.as_deref().and_then(|s| s.parse().ok());
    // As recorded and throttled: bounded, and without control characters (PostgreSQL
    // refuses NUL in text).
    let attempted = username
        .chars()
        .take(64)
        .map(|c| {
            if c.is_control() {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect::<String>();
    let record = |outcome, detail: &str| NewAudit {
        actor_id: None,
        actor: None,
        action: model::AuditAction::AuthLogin,
        target_type: "user",
        target: attempted.clone(),
        outcome,
        source: meta.source.clone(),
        request_id: Some(meta.request_id.clone()),
        detail: Some(detail.to_owned()),
    };
    if let Some(wait) = st.throttle.check(&attempted, ip) {
        st.metrics.login("throttled");
        st.store
            .audit_alone(&record(Outcome::Denied, "throttled"))
            .await?;
        let mut e = ApiError::new(
            Code::TooManyRequests,
            format!("too many failed logins; try again in {wait} seconds"),
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    // Every user name is a valid name; any other string names no one.
    let found = if model::Name::parse(username).is_ok() {
        match st.store.user_credentials(username).await {
            Ok(found) => Some(found),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, None),
    };
    let hash_missing = hash.is_none();
    let ok = auth::verify_password(password, hash).await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        // Said plainly: user names are no secret (they are in every URL).
        Some(u) if hash_missing && !u.disabled => {
            st.throttle.failed(&attempted, ip);
            st.metrics.login("failure");
            st.store
                .audit_alone(&record(Outcome::Failure, "the account has no password"))
                .await?;
            return Err(ApiError::new(
                Code::NoPassword,
                format!(
                    "{} has no password: an administrator can set one, or use an API token",
                    u.name
                ),
            ));
        }
        _ => {
            st.throttle.failed(&attempted, ip);
            st.metrics.login("failure");
            st.store
                .audit_alone(&record(Outcome::Failure, "wrong user name or password"))
                .await?;
            return Err(ApiError::new(
                Code::InvalidCredentials,
                "wrong user name or password",
            ));
        }
    };
    st.throttle.succeeded(&attempted);
    st.metrics.login("success");
    let mut tx = st.store.begin().await?;
    let (cookie, csrf) = open_session(st, &mut tx, &user.id).await?;
    let mut ok_record = record(Outcome::Success, "password");
    ok_record.actor_id = Some(user.id.clone());
    ok_record.actor = Some(user.name.to_string());
    tx.audit(&ok_record).await?;
    tx.commit().await?;
    Ok((cookie, user, csrf))
}

/// Opens a session for `user_id` in `tx`: its cookie and its CSRF token.
pub(crate) async fn open_session(
    st: &AppState,
    tx: &mut store::Tx,
    user_id: &str,
) -> ApiResult<(Cookie<'static>, String)> {
    let secret = auth::random_secret();
    let csrf = auth::random_secret();
    let ttl = st.config.session_ttl;
    tx.insert_session(
        &auth::sha256_hex(&secret),
        user_id,
        &csrf,
        now_millis() + ttl.as_millis() as i64,
    )
    .await?;
    let cookie = Cookie::build((SESSION_COOKIE, secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(st.config.secure_cookies)
        .max_age(time::Duration::seconds(ttl.as_secs() as i64))
        .build();
    Ok((cookie, csrf))
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
    let mut tx = st.store.begin().await?;
    if let Some(c) = jar.get(SESSION_COOKIE) {
        tx.delete_session(&auth::sha256_hex(c.value())).await?;
    }
    tx.audit(&ctx.audit(
        model::AuditAction::AuthLogout,
        "user",
        ctx.principal.name.as_str(),
    ))
    .await?;
    tx.commit().await?;
    Ok(jar.remove(Cookie::build(SESSION_COOKIE).path("/")))
}

/// Who the caller is, with the effective scopes.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = "4XX", body = ErrorBody)))]
async fn me(State(st): State<AppState>, ctx: Ctx) -> ApiResult<axum::Json<Me>> {
    let user = st.store.user(&ctx.principal.user_id).await?;
    let groups = st.store.groups_of(&user.id).await?;
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
