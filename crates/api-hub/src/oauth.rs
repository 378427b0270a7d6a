//! berth as an OAuth 2 provider for workspace apps, as JupyterHub is for
//! single-user servers: `GET /hub/api/oauth2/authorize` and
//! `POST /hub/api/oauth2/token` (RFC 6749's authorization-code grant, with
//! PKCE S256 when the client sends a challenge).
//!
//! Every workspace is a client: its id is `berth-ws-<workspace id>`, its one
//! redirect URI is `/user/{owner}/{workspace}/oauth_callback`, and its secret is
//! the token its app got at start (`JUPYTERHUB_API_TOKEN`, [`TokenKind::Server`]).
//! A logged-in browser that may use the workspace (`access:servers` on it) is
//! sent back with a code at once (no consent page: berth's clients are its own
//! workspaces); the app exchanges the code for a token scoped to that one
//! workspace (`access:servers!server=…`, plus `read:users:name` on the user),
//! which it keeps in its own cookie and checks with `GET /hub/api/user`.
//!
//! Errors before the client and redirect URI are known are pages (never a
//! redirect to an unchecked URI); after that, the browser goes back to the
//! client with `error=…` (RFC 6749 §4.1.2.1). The token endpoint answers errors
//! as RFC 6749 §5.2 JSON (`{"error", "error_description"}`).

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use model::hub::oauth_callback_url;
use serde::Deserialize;

use crate::models::{AccessToken, OAuthError};
use portal::door::{may_open, page};
use web::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/api/oauth2/authorize", get(authorize))
        .route("/hub/api/oauth2/token", post(token))
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn bad_request(message: &str) -> Response {
    page(StatusCode::BAD_REQUEST, "Bad OAuth request", message)
}

/// `uri` with `params` added to its query.
fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).expect("strings encode");
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, v),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => bad_request("the redirect URI is not usable"),
    }
}

async fn authorize(
    State(st): State<AppState>,
    parts: Parts,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Response {
    // As JupyterHub: who asks comes first; without a session, the login page,
    // which comes back here.
    match web::auth::authenticate(&parts, &st).await {
        Err(e) if e.code == web::error::Code::Unauthenticated => {
            let here = parts.uri.path_and_query().map_or("", |p| p.as_str());
            let next = serde_urlencoded::to_string([("next", here)]).expect("strings encode");
            return found(&format!("/hub/login?{next}"));
        }
        Err(e) => return e.into_response(),
        Ok(_) => {}
    }
    let Ok(Query(q)) = query else {
        return bad_request("the request needs client_id, redirect_uri and response_type");
    };
    let ws = match st.app.oauth_client(&q.client_id).await {
        Ok(Some(ws)) => ws,
        Ok(None) => return bad_request("unknown client_id"),
        Err(e) => return web::error::ApiError::from(e).into_response(),
    };
    let registered = oauth_callback_url(&ws);
    if q.redirect_uri.as_deref().is_some_and(|r| r != registered) {
        return bad_request("redirect_uri is not the one registered for this client");
    }
    let back = |params: &[(&str, &str)]| {
        let mut params = params.to_vec();
        if let Some(state) = q.state.as_deref() {
            params.push(("state", state));
        }
        found(&with_params(&registered, &params))
    };
    if q.response_type.as_deref() != Some("code") {
        return back(&[("error", "unsupported_response_type")]);
    }
    let challenge = match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (None, _) => None,
        // RFC 7636: no method means `plain`, which berth does not take.
        (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => Some(c.to_owned()),
        _ => {
            return back(&[
                ("error", "invalid_request"),
                ("error_description", "PKCE needs an S256 code_challenge"),
            ])
        }
    };
    let who = match may_open(&parts, &st, &ws.owner_id, ws.name.as_str()).await {
        Ok(who) => who,
        Err(page) => return page,
    };
    match st
        .app
        .issue_oauth_code(&who.principal, &ws, challenge)
        .await
    {
        Ok(code) => back(&[("code", &code)]),
        Err(e) => web::error::ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code_verifier: Option<String>,
}

/// An RFC 6749 §5.2 error.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(OAuthError {
            error: error.to_owned(),
            error_description: description.to_owned(),
        }),
    )
        .into_response()
}

/// The client's credentials: form fields, else HTTP Basic (RFC 6749 §2.3.1).
fn client_credentials(form: &TokenForm, headers: &HeaderMap) -> Option<(String, String)> {
    if let (Some(id), Some(secret)) = (&form.client_id, &form.client_secret) {
        return Some((id.clone(), secret.clone()));
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn token(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    match exchange(&st, &headers, form).await {
        Ok(r) | Err(r) => r,
    }
}

async fn exchange(
    st: &AppState,
    headers: &HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, Response> {
    // As JupyterHub (oauthlib): the grant type is checked first, and a body
    // that is not a form has none.
    let form = form.map(|Form(f)| f).ok();
    let Some(form) = form.filter(|f| f.grant_type.as_deref() == Some("authorization_code")) else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "send grant_type=authorization_code, code, redirect_uri and the client's \
             credentials as a form",
        ));
    };
    let bad_client = || {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &app::ExchangeError::InvalidClient.to_string(),
        )
    };
    let bad_grant = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    let (id, secret) = client_credentials(&form, headers).ok_or_else(bad_client)?;
    let exchange = app::Exchange {
        client_id: &id,
        client_secret: &secret,
        code: form.code.as_deref(),
        redirect_uri: form.redirect_uri.as_deref(),
        code_verifier: form.code_verifier.as_deref(),
    };
    let issued = match st.app.exchange_oauth_code(exchange).await {
        Ok(issued) => issued,
        Err(app::ExchangeError::InvalidClient) => return Err(bad_client()),
        Err(app::ExchangeError::InvalidGrant(why)) => return Err(bad_grant(why)),
        Err(app::ExchangeError::App(e)) => {
            return Err(web::error::ApiError::from(e).into_response())
        }
    };
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(AccessToken {
            access_token: issued.secret,
            expires_in: app::OAUTH_TOKEN_TTL_SECS,
            scope: issued.scopes.to_string(),
            token_type: "Bearer",
        }),
    )
        .into_response())
}
