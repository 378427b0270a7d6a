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

use web::error::{ApiError, ApiResult, Code};
use web::AppState;

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
    let viewer = web::auth::authenticate(&parts, &st)
        .await
        .ok()
        .map(|who| portal::Viewer::of(who, &parts, &st));
    portal::message_page(
        viewer.as_ref(),
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
    )
}

/// A mutation's success status with a JSON body.
pub(crate) fn created<T: serde::Serialize>(body: T) -> (StatusCode, axum::Json<T>) {
    (StatusCode::CREATED, axum::Json(body))
}
