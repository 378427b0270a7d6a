//! `/hub/password` (one's own password, with the current one) and
//! `/hub/admin/users/{name}/password` (an admin sets another user's): both call
//! the API's `set_password`, so the rules, the throttle and the audit record are
//! the same.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::{by_the_user, done, settle, FormErrors, Posted, Viewer};
use web::error::{ApiError, Code};
use web::ops::users;
use web::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/password", get(own_page).post(change_own))
        .route(
            "/hub/admin/users/{name}/password",
            get(admin_page).post(set_theirs),
        )
}

#[derive(Debug, Default, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `password.html`: the form that sets a password.
#[derive(Debug, Serialize)]
struct PasswordPage<'a> {
    title: String,
    nav: &'static str,
    /// The user whose password it sets (`None`: the viewer's own).
    whose: Option<&'a str>,
    errors: FormErrors,
}

/// The form for `whose` (`None`: the viewer's own).
fn render(
    viewer: &Viewer,
    whose: Option<&str>,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let title = match whose {
        Some(name) => format!("Password of {name}"),
        None => "Change your password".to_owned(),
    };
    viewer.page(
        "password.html",
        status,
        &PasswordPage {
            title,
            nav: if whose.is_some() { "admin" } else { "password" },
            whose,
            errors,
        },
    )
}

async fn own_page(viewer: Viewer) -> Response {
    render(&viewer, None, FormErrors::default(), StatusCode::OK)
}

async fn admin_page(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Response {
    if let Some(refused) = viewer.unless_admin() {
        return refused;
    }
    match users::visible_user(&st, &viewer.ctx, &name, model::Scope::ReadUsers).await {
        Ok(u) if u.id == viewer.ctx.principal.user_id => super::see_other("/hub/password"),
        Ok(u) => render(
            &viewer,
            Some(u.name.as_str()),
            FormErrors::default(),
            StatusCode::OK,
        ),
        Err(e) => viewer.error(e),
    }
}

/// What the browser can be told before asking the server: every field's
/// problem at once.
fn check(form: &PasswordForm, own: bool) -> FormErrors {
    let mut errors = FormErrors::default();
    if own && form.old_password.is_empty() {
        errors
            .fields
            .insert("old_password".into(), "enter your current password".into());
    }
    if let Err(e) = web::auth::check_password(&form.password) {
        errors.fields.insert("password".into(), e.to_string());
    }
    if form.confirm != form.password {
        errors
            .fields
            .insert("confirm".into(), "does not match the new password".into());
    }
    errors
}

async fn change_own(State(st): State<AppState>, posted: Posted<PasswordForm>) -> Response {
    let Posted { viewer, form } = posted;
    let errors = check(&form, true);
    if !errors.fields.is_empty() {
        return render(&viewer, None, errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let me = viewer.ctx.principal.name.to_string();
    let old = Some(form.old_password);
    let changed = users::set_password(&st, &viewer.ctx, &me, old, form.password).await;
    let ok = |renewed: Option<(axum_extra::extract::cookie::Cookie<'static>, String)>| {
        let mut res = done(
            "/hub/home",
            "Your password was changed. Your other sessions were logged out.",
        );
        if let Some((cookie, _)) = renewed {
            if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    };
    // A missing scope is not the form's to fix.
    let fixable = |e: &ApiError| by_the_user(e) && e.code != Code::Forbidden;
    let viewer = &viewer;
    settle(changed, fixable, ok, |e| async move {
        let errors = FormErrors::from_api(&e, &["old_password", "password"]);
        Ok(render(viewer, None, errors, e.code.status()))
    })
    .await
    .unwrap_or_else(|e| viewer.error(e))
}

async fn set_theirs(
    State(st): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<PasswordForm>,
) -> Response {
    let Posted { viewer, form } = posted;
    if let Some(refused) = viewer.unless_admin() {
        return refused;
    }
    let errors = check(&form, false);
    if !errors.fields.is_empty() {
        return render(
            &viewer,
            Some(&name),
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let set = users::set_password(&st, &viewer.ctx, &name, None, form.password).await;
    let (viewer, name) = (&viewer, &name);
    let ok = |_| {
        let said = format!("Set the password of {name}; their sessions were logged out.");
        done("/hub/admin/users", &said)
    };
    let fixable = |e: &ApiError| e.code == Code::InvalidValue;
    settle(set, fixable, ok, |e| async move {
        let errors = FormErrors::from_api(&e, &["password"]);
        Ok(render(viewer, Some(name), errors, e.code.status()))
    })
    .await
    .unwrap_or_else(|e| viewer.error(e))
}
