//! Who is asking: sessions, API tokens, passwords, CSRF and login throttling.
//!
//! A request is authenticated by `Authorization: Bearer <token>` (or JupyterHub's
//! `Authorization: token <token>`), else by the `berth_session` cookie. Tokens and
//! session ids are random 256-bit values stored only as SHA-256 hashes; passwords
//! are argon2id hashes. A cookie-authenticated request that is not a read must
//! carry the session's CSRF token in `x-csrf-token`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum_extra::extract::cookie::CookieJar;

use model::Principal;

use crate::error::{ApiError, Code};
use crate::AppState;

/// The id of the request being served, as an extension (set by the
/// outermost middleware).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub const SESSION_COOKIE: &str = "berth_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub use model::secret::{random_secret, sha256_hex, TOKEN_PREFIX};

pub use ::auth::{check_password, constant_time_eq, hash_password, verify_password, Throttle};

/// The context of an authenticated request: who, from where, which request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: std::sync::Arc<Principal>,
    pub request_id: String,
    pub source: Option<String>,
    /// The session's CSRF token when authenticated by cookie.
    pub csrf: Option<String>,
}

impl Ctx {
    /// The caller of an operation of [`app::App`].
    pub fn caller(&self) -> app::Caller<'_> {
        app::Caller {
            principal: &self.principal,
            request_id: &self.request_id,
            source: self.source.as_deref(),
        }
    }

    /// Fails with 403 unless the principal holds `scope` for `owner_id`'s resources.
    pub fn require(&self, scope: model::Scope, owner_id: &str) -> Result<(), ApiError> {
        Ok(self.caller().require(scope, owner_id)?)
    }

    /// Fails with 403 unless the principal holds `scope` for `owner_id`'s
    /// workspace `workspace` (the owner's reach, or a filter naming the server).
    pub fn require_server(
        &self,
        scope: model::Scope,
        owner_id: &str,
        workspace: &str,
    ) -> Result<(), ApiError> {
        Ok(self.caller().require_server(scope, owner_id, workspace)?)
    }

    /// Fails with 403 unless the principal holds `scope` at all.
    pub fn require_any(&self, scope: model::Scope) -> Result<(), ApiError> {
        Ok(self.caller().require_any(scope)?)
    }
}

/// Where a request came from: the peer address.
pub fn source_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

pub fn request_id_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
}

pub use app::Authenticated;

/// Authenticates a request from its headers: a bearer token, else the session
/// cookie. No CSRF check here (the proxy forwards apps' own requests).
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    let cookie;
    let presented = if parts.headers.contains_key(header::AUTHORIZATION) {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::new(
                Code::Unauthenticated,
                "the authorization header must be `Bearer <token>` or `token <token>`",
            )
        })?;
        app::Presented::Token(token)
    } else {
        let jar = CookieJar::from_headers(&parts.headers);
        cookie = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned());
        match &cookie {
            Some(c) => app::Presented::Session(c),
            None => return Err(app::AppError::Unauthenticated.into()),
        }
    };
    Ok(state.app.authenticate(presented).await?)
}

impl Ctx {
    /// The context of a request whose credentials `who` are.
    pub fn of(who: Authenticated, parts: &Parts) -> Ctx {
        Ctx {
            principal: who.principal,
            request_id: request_id_of(parts),
            source: source_of(parts),
            csrf: who.csrf,
        }
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let who = authenticate(parts, state).await?;
        if let Some(expected) = &who.csrf {
            if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                if !constant_time_eq(sent, expected.as_bytes()) {
                    return Err(ApiError::new(
                        Code::CsrfFailed,
                        "missing or wrong x-csrf-token header",
                    ));
                }
            }
        }
        Ok(Ctx::of(who, parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_and_distinct() {
        let a = random_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_secret());
    }
}
