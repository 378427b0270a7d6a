//! The web portal: server-rendered pages under `/hub/` (JupyterHub's URLs where it
//! has them: `/hub/login`, `/hub/home`, `/hub/token`, `/hub/admin`).
//!
//! Pages are minijinja templates compiled into the binary, with one stylesheet and
//! one small script served from `/hub/static/`; nothing is fetched from elsewhere.
//! Every page needs a session (else it redirects to the login page). Every form
//! posts `application/x-www-form-urlencoded` with the session's CSRF token in a
//! hidden `_csrf` field, and the action runs through the same function as the
//! REST API's, so authorization and audit records are the same. A successful
//! action redirects (303) with a one-time notice; a refused one renders the form
//! again with the error beside its field.

mod admin;
mod details;
pub mod door;
mod format;
mod home;
mod login;
mod password;
mod sharing;
mod tokens;

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use minijinja::Environment;
use serde::de::DeserializeOwned;
use serde::Serialize;

use web::auth::{self, Ctx};
use web::error::{ApiError, Code};
use web::AppState;

/// Carries a one-time notice to the page a form action redirects to.
const FLASH_COOKIE: &str = "berth_flash";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { see_other("/hub/home") }))
        .route("/hub", get(|| async { see_other("/hub/home") }))
        .route("/hub/", get(|| async { see_other("/hub/home") }))
        .route("/hub/static/{file}", get(asset))
        .merge(login::routes())
        .merge(home::routes())
        .merge(tokens::routes())
        .merge(password::routes())
        .merge(sharing::routes())
        .merge(admin::routes())
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    macro_rules! templates {
        ($($name:literal),* $(,)?) => {
            $(env.add_template($name, include_str!(concat!("../templates/", $name)))
                .expect(concat!("template ", $name, " compiles"));)*
        };
    }
    templates!(
        "base.html",
        "macros.html",
        "message.html",
        "login.html",
        "home.html",
        "workspace.html",
        "confirm_delete.html",
        "tokens.html",
        "admin_users.html",
        "admin_profiles.html",
        "admin_profile.html",
        "profile_fields.html",
        "admin_quotas.html",
        "admin_services.html",
        "admin_quota.html",
        "admin_workspaces.html",
        "admin_audit.html",
        "starting.html",
        "password.html",
    );
    format::register(&mut env);
    env
});

/// The stylesheet and the script, compiled in; browsers may keep them an hour.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "berth.css" => (include_str!("../static/berth.css"), "text/css"),
        "berth.js" => (include_str!("../static/berth.js"), "text/javascript"),
        _ => {
            return message_page(
                None,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such file.",
            )
        }
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A 303 to `to`, a path of berth's own.
pub(crate) fn see_other(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/hub/home")]).into_response(),
    }
}

/// `next` if it is a path on this origin, else `fallback`: it must start with one
/// `/` (not `//`, which a browser reads as another host), without backslashes or
/// control characters.
pub(crate) fn safe_next<'a>(next: Option<&'a str>, fallback: &'a str) -> &'a str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2000
                && !n.chars().any(|c| c == '\\' || c.is_control()) =>
        {
            n
        }
        _ => fallback,
    }
}

/// The login page's address that comes back to this request's path.
pub fn login_redirect(parts: &Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/hub/home");
    let next: String = serde_urlencoded::to_string([("next", here)]).unwrap_or_default();
    see_other(&format!("/hub/login?{next}"))
}

/// Someone signed in, looking at a page.
#[derive(Debug)]
pub struct Viewer {
    pub ctx: Ctx,
    /// The notice the previous action left, shown once.
    flash: Option<String>,
    /// What costs are in, for every page's amounts.
    currency: String,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let who = match auth::authenticate(parts, st).await {
            Ok(who) => who,
            Err(e) if e.code == Code::Unauthenticated => return Err(login_redirect(parts)),
            Err(e) => return Err(error_page(None, e)),
        };
        let flash = CookieJar::from_headers(&parts.headers)
            .get(FLASH_COOKIE)
            .and_then(|c| URL_SAFE_NO_PAD.decode(c.value()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|f| !f.is_empty());
        Ok(Viewer {
            ctx: Ctx::of(who, parts),
            flash,
            currency: st.config.currency.clone(),
        })
    }
}

impl Viewer {
    /// The viewer of a request whose credentials were checked elsewhere (the
    /// proxy's pages, which carry the portal's navigation too).
    pub fn of(who: auth::Authenticated, parts: &Parts, st: &AppState) -> Viewer {
        Viewer {
            ctx: Ctx::of(who, parts),
            flash: None,
            currency: st.config.currency.clone(),
        }
    }

    /// Renders `template` with `page` and the layout's parts (who, CSRF token, notice).
    pub(crate) fn page(
        &self,
        template: &str,
        status: StatusCode,
        page: &impl Serialize,
    ) -> Response {
        let layout = Layout {
            me: Me::of(&self.ctx.principal),
            csrf: self.ctx.csrf.as_deref().unwrap_or_default(),
            flash: self.flash.as_deref(),
            currency: &self.currency,
        };
        let mut res = render(template, status, &InLayout { page, layout });
        if self.flash.is_some() {
            // Shown once: the next page has none.
            let gone = Cookie::build((FLASH_COOKIE, ""))
                .path("/hub")
                .max_age(time::Duration::ZERO);
            if let Ok(v) = HeaderValue::from_str(&gone.to_string()) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    }

    /// The 403 page, unless the viewer is an admin.
    pub(crate) fn unless_admin(&self) -> Option<Response> {
        (!self.ctx.principal.is_admin).then(|| {
            self.page(
                "message.html",
                StatusCode::FORBIDDEN,
                &MessagePage {
                    title: "Forbidden",
                    text: "Only administrators may see this page.",
                    action: None,
                },
            )
        })
    }

    /// The error page for a refused action.
    pub(crate) fn error(&self, e: ApiError) -> Response {
        error_page(Some(self), e)
    }
}

/// Who is looking, as the layout names them.
#[derive(Debug, Serialize)]
pub(crate) struct Me<'a> {
    name: &'a str,
    admin: bool,
}

impl<'a> Me<'a> {
    /// `principal` as the layout shows them.
    pub(crate) fn of(principal: &'a model::Principal) -> Self {
        Me {
            name: principal.name.as_str(),
            admin: principal.is_admin,
        }
    }
}

/// What the layout of every signed-in page shows besides the page: who is
/// looking, the CSRF token its forms carry, the notice the previous action
/// left, and what amounts are in.
#[derive(Debug, Serialize)]
struct Layout<'a> {
    me: Me<'a>,
    csrf: &'a str,
    flash: Option<&'a str>,
    currency: &'a str,
}

/// A page's own variables with the layout's, side by side in one context.
#[derive(Debug, Serialize)]
struct InLayout<'a, P> {
    #[serde(flatten)]
    page: &'a P,
    #[serde(flatten)]
    layout: Layout<'a>,
}

/// The end of a form's action: what `ok` makes of its result (a redirect with
/// a notice), or, for an error the user can fix (`fixable`), what `again` makes
/// of it (the form once more, the error beside its field); any other error
/// goes on to the error page.
pub(crate) async fn settle<T, Again>(
    result: web::error::ApiResult<T>,
    fixable: fn(&ApiError) -> bool,
    ok: impl FnOnce(T) -> Response,
    again: impl FnOnce(ApiError) -> Again,
) -> web::error::ApiResult<Response>
where
    Again: std::future::Future<Output = web::error::ApiResult<Response>>,
{
    match result {
        Ok(v) => Ok(ok(v)),
        Err(e) if fixable(&e) => again(e).await,
        Err(e) => Err(e),
    }
}

/// An error the user can fix by changing what they sent.
pub(crate) fn by_the_user(e: &ApiError) -> bool {
    e.code.status().is_client_error()
}

/// A redirect after a successful action, leaving `notice` for the next page.
pub(crate) fn done(to: &str, notice: &str) -> Response {
    let mut res = see_other(to);
    // Encoded: a cookie value holds no spaces or semicolons.
    let c = Cookie::build((FLASH_COOKIE, URL_SAFE_NO_PAD.encode(notice)))
        .path("/hub")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(60));
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Renders a template with `ctx`; a template fault is a logged 500.
pub(crate) fn render(template: &str, status: StatusCode, ctx: &impl Serialize) -> Response {
    let html = TEMPLATES.get_template(template).and_then(|t| t.render(ctx));
    match html {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("render {template}: {e:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "internal server error",
            )
                .into_response()
        }
    }
}

/// `message.html`: a page that says one thing, with a button for an action
/// when it offers one.
#[derive(Debug, Serialize)]
pub(crate) struct MessagePage<'a> {
    pub title: &'a str,
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action<'a>>,
}

/// A one-button form: where it posts, and what its button says.
#[derive(Debug, Serialize)]
pub(crate) struct Action<'a> {
    pub url: &'a str,
    pub label: &'a str,
}

/// A page that says one thing: an error, a refusal, a notice.
pub fn message_page(
    viewer: Option<&Viewer>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let page = MessagePage {
        title,
        text,
        action: None,
    };
    match viewer {
        Some(v) => v.page("message.html", status, &page),
        None => render("message.html", status, &page),
    }
}

/// The page for an error of the API's functions, with its status.
fn error_page(viewer: Option<&Viewer>, e: ApiError) -> Response {
    let title = match e.code.status() {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Forbidden",
        s if s.is_server_error() => {
            tracing::error!(
                code = e.code.as_str(),
                "portal: {}",
                e.internal.as_deref().unwrap_or(&e.message)
            );
            "Something went wrong"
        }
        _ => "Not done",
    };
    message_page(viewer, e.code.status(), title, &e.message)
}

/// Errors beside the fields they concern: the API's messages start with the
/// field's name (`name: must start with a letter`); others go to the form's top.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct FormErrors {
    pub fields: std::collections::BTreeMap<String, String>,
    pub form: Option<String>,
}

impl FormErrors {
    /// Files `e` under the field its message names, if that is one of `fields`.
    pub(crate) fn from_api(e: &ApiError, fields: &[&str]) -> Self {
        let same: Vec<_> = fields.iter().map(|f| (*f, *f)).collect();
        Self::from_api_as(e, &same)
    }

    /// As [`FormErrors::from_api`], for a form whose fields are named apart
    /// from the API's: `(api, form)` pairs.
    pub(crate) fn from_api_as(e: &ApiError, fields: &[(&str, &str)]) -> Self {
        let mut out = FormErrors::default();
        if !e.fields.is_empty() {
            for (api, why) in &e.fields {
                match fields.iter().find(|(f, _)| f == api) {
                    Some((_, form)) => {
                        out.fields.insert((*form).to_owned(), why.clone());
                    }
                    None => out.form = Some(format!("{api}: {why}")),
                }
            }
            return out;
        }
        let field = e.message.split_once(": ").and_then(|(f, rest)| {
            let (_, form) = fields.iter().find(|(api, _)| *api == f)?;
            Some((form, rest))
        });
        match field {
            Some((form, rest)) => {
                out.fields.insert((*form).to_owned(), rest.to_owned());
            }
            None => out.form = Some(e.message.clone()),
        }
        out
    }
}

/// A form post: the viewer, with the `_csrf` field checked against the session,
/// and the fields as `T`. Anything wrong is an error page.
#[derive(Debug)]
pub(crate) struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, st).await?;
        if parts.method != Method::POST {
            return Err(message_page(
                Some(&viewer),
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "Forms are posted.",
            ));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(|_| {
                message_page(
                    Some(&viewer),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too large",
                    "The form is larger than berth accepts.",
                )
            })?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            message_page(
                Some(&viewer),
                StatusCode::BAD_REQUEST,
                "Bad form",
                "The form could not be read.",
            )
        })?;
        let sent = fields
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        // A session must echo its token; a bearer token is not sent by browsers
        // on their own, so it needs none.
        if let Some(expected) = &viewer.ctx.csrf {
            if !auth::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
                return Err(message_page(
                    Some(&viewer),
                    StatusCode::FORBIDDEN,
                    "Form expired",
                    "The form did not carry this session's security token (it may be from an earlier session). Go back, reload the page and try again.",
                ));
            }
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            message_page(
                Some(&viewer),
                StatusCode::BAD_REQUEST,
                "Bad form",
                &format!("The form could not be read: {e}."),
            )
        })?;
        Ok(Posted { viewer, form })
    }
}

/// A form with no fields but its CSRF token (a one-button action).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NoFields {}

/// A checkbox: present (`on`) or absent.
pub(crate) fn checked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty() && v != "off")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_origin() {
        let f = "/hub/home";
        assert_eq!(safe_next(Some("/user/a/b/lab?x=1"), f), "/user/a/b/lab?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil",
            "",
            "javascript:alert(1)",
            "/ok\n",
        ] {
            assert_eq!(safe_next(Some(bad), f), f, "{bad:?}");
        }
        assert_eq!(safe_next(None, f), f);
    }

    #[test]
    fn every_template_compiles() {
        assert!(TEMPLATES.templates().count() >= 15);
    }

    #[test]
    fn api_errors_land_beside_their_field() {
        let e = ApiError::new(
            Code::InvalidName,
            "name: name must start with a lowercase letter",
        );
        let f = FormErrors::from_api(&e, &["name", "profile"]);
        assert_eq!(f.fields["name"], "name must start with a lowercase letter");
        assert!(f.form.is_none());
        let e = ApiError::new(Code::QuotaExceeded, "the quota allows at most 3 workspaces");
        let f = FormErrors::from_api(&e, &["name"]);
        assert_eq!(
            f.form.as_deref(),
            Some("the quota allows at most 3 workspaces")
        );
    }
}
