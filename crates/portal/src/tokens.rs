//! `/hub/token`: my API tokens: make one (its secret shown once), list them with
//! scopes, last use and expiry, and revoke them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use api_types::TokenCreate;
use model::{Millis, TokenKind};

use super::{done, FormErrors, Posted, Viewer};
use web::error::{ApiError, ApiResult, Code};
use web::ops::tokens;
use web::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/token", get(page).post(create))
        .route("/hub/token/{id}/revoke", post(revoke))
        .route("/hub/token/apps/{workspace}/revoke", post(revoke_app))
}

/// The lifetimes the form offers, in seconds (`0`: never expires).
const LIFETIMES: [(u64, &str); 6] = [
    (3600, "1 hour"),
    (86_400, "1 day"),
    (7 * 86_400, "7 days"),
    (30 * 86_400, "30 days"),
    (90 * 86_400, "90 days"),
    (0, "Never"),
];

/// The new-token form, as posted or empty.
#[derive(Debug, Default, Deserialize, Serialize)]
struct TokenForm {
    #[serde(default)]
    note: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires_in: String,
}

impl TokenForm {
    /// An empty form; a token lasts 30 days unless asked otherwise.
    fn new() -> Self {
        TokenForm {
            expires_in: (30 * 86_400).to_string(),
            ..TokenForm::default()
        }
    }
}

/// `tokens.html`: the viewer's tokens and app logins, and the new-token form.
#[derive(Debug, Serialize)]
struct TokensPage<'a> {
    title: &'static str,
    nav: &'static str,
    tokens: Vec<TokenRow<'a>>,
    apps: Vec<AppLogin<'a>>,
    form: &'a TokenForm,
    errors: FormErrors,
    lifetimes: Vec<Lifetime>,
    created: Option<NewToken>,
}

/// One token, without its secret.
#[derive(Debug, Serialize)]
struct TokenRow<'a> {
    id: &'a str,
    prefix: &'a str,
    note: &'a str,
    /// What made it, in words.
    kind: &'static str,
    scopes: Vec<String>,
    created_at: Millis,
    last_used_at: Option<Millis>,
    expires_at: Option<Millis>,
}

/// The app of one workspace logged in to through berth, over all its logins.
#[derive(Debug, Serialize)]
struct AppLogin<'a> {
    workspace: &'a str,
    name: &'a str,
    logins: usize,
    scopes: Vec<String>,
    first_at: Option<Millis>,
    last_used_at: Option<Millis>,
    expires_at: Option<Millis>,
}

/// A lifetime the form offers.
#[derive(Debug, Serialize)]
struct Lifetime {
    /// Seconds, as the form posts them.
    secs: String,
    label: &'static str,
}

/// A token just made, with its secret, shown this once.
#[derive(Debug, Serialize)]
struct NewToken {
    note: String,
    secret: String,
}

async fn page(State(st): State<AppState>, viewer: Viewer) -> Response {
    render(
        &st,
        &viewer,
        &TokenForm::new(),
        FormErrors::default(),
        None,
        StatusCode::OK,
    )
    .await
    .unwrap_or_else(|e| viewer.error(e))
}

async fn render(
    st: &AppState,
    viewer: &Viewer,
    form: &TokenForm,
    errors: FormErrors,
    created: Option<(String, String)>,
    status: StatusCode,
) -> ApiResult<Response> {
    let me = viewer.ctx.principal.name.as_str();
    let (_, all) = tokens::list(st, &viewer.ctx, me).await?;
    let (logins, list): (Vec<_>, Vec<_>) = all.iter().partition(|t| t.kind == TokenKind::OAuth);
    let apps = app_logins(&logins);
    let tokens = list
        .iter()
        .map(|t| TokenRow {
            id: &t.id,
            prefix: &t.prefix,
            note: &t.note,
            kind: match t.kind {
                TokenKind::Api => "API",
                TokenKind::Server => "workspace app",
                TokenKind::OAuth => "app login (OAuth)",
            },
            scopes: t.scopes.to_strings(),
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
        })
        .collect();
    let lifetimes = LIFETIMES
        .iter()
        .map(|&(secs, label)| Lifetime {
            secs: secs.to_string(),
            label,
        })
        .collect();
    let page = TokensPage {
        title: "API tokens",
        nav: "tokens",
        tokens,
        apps,
        form,
        errors,
        lifetimes,
        created: created.map(|(note, secret)| NewToken { note, secret }),
    };
    Ok(viewer.page("tokens.html", status, &page))
}

/// The apps one logged in to through berth (OAuth), one row per workspace
/// however many logins: JupyterHub's "Authorized Applications". Newest use
/// first.
fn app_logins<'a>(logins: &[&'a model::Token]) -> Vec<AppLogin<'a>> {
    let mut by_workspace: Vec<(&str, Vec<&model::Token>)> = Vec::new();
    for &t in logins {
        let key = t.workspace_id.as_deref().unwrap_or_default();
        match by_workspace.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ts)) => ts.push(t),
            None => by_workspace.push((key, vec![t])),
        }
    }
    let last_used = |ts: &[&model::Token]| ts.iter().filter_map(|t| t.last_used_at).max();
    by_workspace.sort_by_key(|(_, ts)| std::cmp::Reverse(last_used(ts)));
    by_workspace
        .into_iter()
        .map(|(workspace, ts)| {
            let name = ts[0].note.strip_prefix("oauth ").unwrap_or(&ts[0].note);
            AppLogin {
                workspace,
                name,
                logins: ts.len(),
                scopes: ts[0].scopes.to_strings(),
                first_at: ts.iter().map(|t| t.created_at).min(),
                last_used_at: last_used(&ts),
                expires_at: ts.iter().filter_map(|t| t.expires_at).max(),
            }
        })
        .collect()
}

/// Revokes every app login of one workspace: its app asks to log in again.
async fn revoke_app(
    State(st): State<AppState>,
    Path(workspace): Path<String>,
    posted: Posted<super::NoFields>,
) -> Response {
    let viewer = &posted.viewer;
    let me = viewer.ctx.principal.name.as_str();
    let revoked = async {
        let (_, all) = tokens::list(&st, &viewer.ctx, me).await?;
        let logins = all.iter().filter(|t| {
            t.kind == TokenKind::OAuth && t.workspace_id.as_deref() == Some(workspace.as_str())
        });
        for t in logins {
            tokens::delete(&st, &viewer.ctx, me, &t.id).await?;
        }
        Ok::<_, ApiError>(())
    };
    match revoked.await {
        Ok(()) => done("/hub/token", "Logged out of the app."),
        Err(e) => viewer.error(e),
    }
}

async fn create(State(st): State<AppState>, posted: Posted<TokenForm>) -> Response {
    let Posted { viewer, form } = posted;
    let made = async {
        let expires_in = match form.expires_in.trim() {
            "" | "0" => None,
            s => Some(s.parse::<u64>().map_err(|_| {
                ApiError::new(
                    Code::InvalidValue,
                    "expires_in: choose a lifetime from the list",
                )
            })?),
        };
        let scopes: Vec<String> = form.scopes.split_whitespace().map(str::to_owned).collect();
        let req = TokenCreate {
            note: form.note.trim().to_owned(),
            scopes: (!scopes.is_empty()).then_some(scopes),
            expires_in,
        };
        tokens::create(&st, &viewer.ctx, viewer.ctx.principal.name.as_str(), req).await
    }
    .await;
    match made {
        // Not `settle`'s redirect: the secret is shown once, in this answer,
        // and no redirect may carry it.
        Ok((token, secret)) => {
            let shown = (token.note.clone(), secret);
            render(
                &st,
                &viewer,
                &TokenForm::new(),
                FormErrors::default(),
                Some(shown),
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) if e.code.status().is_client_error() => {
            // An unknown or forbidden scope is the scopes field's fault.
            let errors = match e.code {
                Code::UnknownScope | Code::Forbidden => FormErrors {
                    fields: [("scopes".to_owned(), e.message.clone())].into(),
                    form: None,
                },
                _ => FormErrors::from_api(&e, &["note", "expires_in"]),
            };
            render(&st, &viewer, &form, errors, None, e.code.status()).await
        }
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| viewer.error(e))
}

async fn revoke(
    State(st): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<super::NoFields>,
) -> Response {
    let viewer = &posted.viewer;
    match tokens::delete(&st, &viewer.ctx, viewer.ctx.principal.name.as_str(), &id).await {
        Ok(()) => done("/hub/token", "Token revoked."),
        Err(e) => viewer.error(e),
    }
}
