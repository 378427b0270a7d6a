//! `/api/v1/users/{name}/quota`: a user's limits and use. Everyone has the
//! configured default; an admin may give one user limits of their own, which
//! replace the default's one by one and are checked from the next create or
//! start on (workspaces already running are left alone).

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, QuotaUpdate, UserQuota};
use model::QuotaOverride;

use web::auth::Ctx;
use web::error::ApiResult;
use web::extract::{self, Json, Path};
use web::ops::quotas::{parse, set, shown};
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_quota, set_quota, reset_quota))
}

/// A user's quota: the limits in force, which of them are the user's own, and
/// the use that counts against them (users see their own, admins everyone's).
#[utoipa::path(get, path = "/api/v1/users/{name}/quota", tag = "users",
    params(("name" = String, Path)),
    responses((status = 200, body = UserQuota), (status = "4XX", body = ErrorBody)))]
async fn get_quota(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<UserQuota>> {
    let name = extract::path_name("user", &name)?;
    Ok(axum::Json(shown(&st.app.quota(ctx.caller(), &name).await?)))
}

/// Gives a user limits of their own (admins), replacing any set before. A
/// limit below the current use refuses new workspaces and starts; it stops none.
#[utoipa::path(put, path = "/api/v1/users/{name}/quota", tag = "users",
    params(("name" = String, Path)), request_body = QuotaUpdate,
    responses((status = 200, body = UserQuota), (status = "4XX", body = ErrorBody)))]
async fn set_quota(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<QuotaUpdate>,
) -> ApiResult<axum::Json<UserQuota>> {
    let user = set(&st, &ctx, &name, &parse(&req)?).await?;
    Ok(axum::Json(shown(&st.app.quota_of(user).await?)))
}

/// Gives a user back the default quota (admins).
#[utoipa::path(delete, path = "/api/v1/users/{name}/quota", tag = "users",
    params(("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn reset_quota(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    set(&st, &ctx, &name, &QuotaOverride::default()).await?;
    Ok(StatusCode::NO_CONTENT)
}
