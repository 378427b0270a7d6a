//! Sharing from the workspace page: share with a user or a group, revoke a
//! share. The list, the form and its errors are on the workspace's page
//! (`details`); what is shared with the viewer is on their home page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use model::ShareWith;

use super::details::ShareForm;
use super::home::find;
use super::{by_the_user, done, settle, FormErrors, Posted};
use web::error::{ApiError, ApiResult, Code};
use web::shares;
use web::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hub/workspaces/{id}/share", post(share))
        .route("/hub/workspaces/{id}/unshare", post(unshare))
}

#[derive(Debug, Deserialize)]
struct WithForm {
    /// `user` or `group`.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

impl WithForm {
    fn with(&self) -> ApiResult<ShareWith> {
        let name = self.name.trim();
        match self.kind.as_str() {
            "user" => shares::with_of(Some(name), None),
            "group" => shares::with_of(None, Some(name)),
            _ => Err(ApiError::new(
                Code::InvalidValue,
                "kind: share with a user or a group",
            )),
        }
    }
}

fn back(id: &str) -> String {
    format!("/hub/workspaces/{id}#sharing")
}

async fn share(
    State(st): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<WithForm>,
) -> Response {
    let Posted { viewer, form } = posted;
    let (ws, profiles) = match find(&st, &viewer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let granted = async {
        let with = form.with()?;
        Ok::<_, ApiError>(st.app.share(viewer.ctx.caller(), &ws, &with).await?)
    }
    .await;
    let ok = |s: model::Share| {
        let whom = match &s.with {
            ShareWith::User(u) => format!("{u}"),
            ShareWith::Group(g) => format!("the members of {g}"),
        };
        done(&back(&ws.id), &format!("Shared {} with {whom}.", ws.name))
    };
    // Refused is not the form's to fix.
    let fixable = |e: &ApiError| by_the_user(e) && e.code.status() != StatusCode::FORBIDDEN;
    let (st, viewer, ws) = (&st, &viewer, &ws);
    settle(granted, fixable, ok, |e| async move {
        let errors =
            FormErrors::from_api_as(&e, &[("user", "name"), ("group", "name"), ("kind", "kind")]);
        let form = ShareForm {
            kind: form.kind,
            name: form.name,
            errors,
        };
        super::details::page(st, viewer, ws, &profiles, form, e.code.status()).await
    })
    .await
    .unwrap_or_else(|e| viewer.error(e))
}

async fn unshare(
    State(st): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<WithForm>,
) -> Response {
    let Posted { viewer, form } = posted;
    let (ws, _) = match find(&st, &viewer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let revoked = async {
        let with = form.with()?;
        Ok::<_, ApiError>(
            st.app
                .unshare(viewer.ctx.caller(), &ws, Some(&with))
                .await?,
        )
    }
    .await;
    match revoked {
        Ok(_) => done(
            &back(&ws.id),
            &format!(
                "{} is no longer shared with {} {}.",
                ws.name,
                form.kind,
                form.name.trim()
            ),
        ),
        Err(e) => viewer.error(e),
    }
}
