//! The routes: `/api/v1` resources, and the system endpoints.

pub(crate) mod audit;
pub(crate) mod groups;
pub(crate) mod profiles;
pub(crate) mod quotas;
pub(crate) mod session;
pub(crate) mod shares;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod workspaces;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ApiResult, Code};
use crate::AppState;

/// Every documented route of `/api/v1`.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(session::routes())
        .merge(users::routes())
        .merge(quotas::routes())
        .merge(groups::routes())
        .merge(tokens::routes())
        .merge(profiles::routes())
        .merge(workspaces::routes())
        .merge(shares::routes())
        .merge(audit::routes())
}

/// Health, readiness, metrics and the OpenAPI document.
pub(crate) fn system(doc: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    let json = Arc::new(
        doc.to_pretty_json()
            .expect("the OpenAPI document serializes"),
    );
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.as_str().to_owned(),
                    )
                }
            }),
        )
}

async fn readyz(State(st): State<AppState>) -> ApiResult<&'static str> {
    st.app.ping().await.map_err(|e| ApiError {
        internal: Some(e.to_string()),
        ..ApiError::new(Code::Unavailable, "database unavailable")
    })?;
    Ok("ready")
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
}

/// No such route: JSON for the API and scripts; an HTML page, with the
/// portal's navigation, for a browser asking for a page under `/hub/`.
pub(crate) async fn not_found(
    State(st): State<AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, _) = req.into_parts();
    let path = parts.uri.path();
    let page = path.starts_with("/hub/")
        && !path.starts_with("/hub/api/")
        && parts
            .headers
            .get(axum::http::header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if !page {
        return ApiError::new(Code::NotFound, "no such route").into_response();
    }
    let viewer = crate::auth::authenticate(&parts, &st)
        .await
        .ok()
        .map(|who| crate::portal::Viewer::of(who, &parts, &st));
    crate::portal::message_page(
        viewer.as_ref(),
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
    )
}

/// Turns `limit + 1` fetched items into a page and its next cursor.
pub(crate) fn page<T, W>(
    mut items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
    wire: impl Fn(&T) -> W,
) -> api_types::Page<W> {
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(&cursor)
    } else {
        None
    };
    api_types::Page {
        items: items.iter().map(wire).collect(),
        next,
    }
}

/// A mutation's success status with a JSON body.
pub(crate) fn created<T: serde::Serialize>(body: T) -> (StatusCode, axum::Json<T>) {
    (StatusCode::CREATED, axum::Json(body))
}

/// Checks free text (notes, display names): bounded and without control characters.
pub(crate) fn text(field: &str, s: &str, max: usize) -> ApiResult<()> {
    if s.len() > max || s.chars().any(char::is_control) {
        return Err(ApiError::new(
            Code::InvalidValue,
            format!("{field}: at most {max} bytes, no control characters"),
        ));
    }
    Ok(())
}
