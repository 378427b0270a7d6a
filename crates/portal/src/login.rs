//! `/hub/login` and `/hub/logout`: the password form (throttled as the API's
//! login is, sharing its code) and ending the session.
//!
//! The login form itself is protected from cross-site posting by a double-submit
//! token: the page sets a random `berth_login_csrf` cookie and puts the same value
//! in the form; a post whose field and cookie differ is refused.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};

use super::{render, safe_next, see_other, Action, MessagePage, NoFields, Posted};
use web::auth;
use web::error::Code;
use web::ops::session::{self, Meta};
use web::AppState;

const LOGIN_CSRF_COOKIE: &str = "berth_login_csrf";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/login", get(login_page).post(login))
        .route("/hub/logout", get(logout_page).post(logout))
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
    logged_out: Option<String>,
}

async fn login_page(
    State(st): State<AppState>,
    Query(q): Query<LoginQuery>,
    req: axum::extract::Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let next = safe_next(q.next.as_deref(), "/hub/home").to_owned();
    if auth::authenticate(&parts, &st).await.is_ok() {
        return see_other(&next);
    }
    let notice = q.logged_out.is_some().then_some("You have logged out.");
    form(&st, StatusCode::OK, &next, "", None, notice)
}

/// `login.html`: the login form, outside the layout of signed-in pages.
#[derive(Debug, Serialize)]
struct LoginPage<'a> {
    title: &'a str,
    /// Where a successful login goes.
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// The double-submit token, also in the cookie.
    login_csrf: &'a str,
}

/// The login form with a fresh double-submit token.
fn form(
    st: &AppState,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let token = auth::random_secret();
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, token.clone()))
        .path("/hub/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(st.config.secure_cookies)
        .build();
    let page = render(
        "login.html",
        status,
        &LoginPage {
            title: "Log in",
            next,
            username,
            error,
            notice,
            login_csrf: &token,
        },
    );
    (CookieJar::new().add(cookie), page).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
    #[serde(default)]
    _csrf: String,
}

async fn login(
    State(st): State<AppState>,
    meta: Meta,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref(), "/hub/home").to_owned();
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| auth::constant_time_eq(e.as_bytes(), f._csrf.as_bytes())) {
        let msg = "The form expired or was sent from another site. Please try again.";
        return form(
            &st,
            StatusCode::FORBIDDEN,
            &next,
            &f.username,
            Some(msg),
            None,
        );
    }
    let username = f.username.trim().to_lowercase();
    if username.is_empty() || f.password.is_empty() {
        let msg = "Enter your user name and password.";
        return form(
            &st,
            StatusCode::UNPROCESSABLE_ENTITY,
            &next,
            &username,
            Some(msg),
            None,
        );
    }
    match session::log_in(&st, &meta, &username, &f.password).await {
        Ok((cookie, _, _)) => {
            let jar = jar
                .add(cookie)
                .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/hub/login"));
            (jar, see_other(&next)).into_response()
        }
        Err(e) if e.code == Code::TooManyRequests => {
            let wait = e.retry_after.unwrap_or(1);
            let msg = format!(
                "Too many failed logins. Wait {wait} second{} before trying again.",
                if wait == 1 { "" } else { "s" }
            );
            let mut res = form(
                &st,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &username,
                Some(&msg),
                None,
            );
            res.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(wait));
            res
        }
        Err(e) if matches!(e.code, Code::NoPassword | Code::InvalidCredentials) => {
            let msg = if e.code == Code::NoPassword {
                "This account has no password. Ask an administrator to set one \
                 (or, on the server, run “berth admin reset-password NAME”)."
            } else {
                "Wrong user name or password."
            };
            form(
                &st,
                StatusCode::UNAUTHORIZED,
                &next,
                &username,
                Some(msg),
                None,
            )
        }
        Err(e) => super::error_page(None, e),
    }
}

async fn logout_page(viewer: super::Viewer) -> Response {
    viewer.page(
        "message.html",
        StatusCode::OK,
        &MessagePage {
            title: "Log out",
            text: "End this session? Running workspaces keep running.",
            action: Some(Action {
                url: "/hub/logout",
                label: "Log out",
            }),
        },
    )
}

async fn logout(State(st): State<AppState>, jar: CookieJar, posted: Posted<NoFields>) -> Response {
    match session::log_out(&st, &posted.viewer.ctx, jar).await {
        Ok(jar) => (jar, see_other("/hub/login?logged_out=1")).into_response(),
        Err(e) => posted.viewer.error(e),
    }
}
