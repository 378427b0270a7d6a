//! `/api/v1/profiles`: resource and policy templates. Everyone reads; admins write.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Profile, ProfileCreate, ProfileUpdate};

use super::created;
use web::auth::Ctx;
use web::convert;
use web::error::ApiResult;
use web::extract::{self, Json, Path};
use web::ops::profiles::{create, update};
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(get_profile, update_profile, delete_profile))
}

/// Lists profiles.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "profiles",
    responses((status = 200, body = Vec<Profile>), (status = "4XX", body = ErrorBody)))]
async fn list_profiles(
    State(st): State<AppState>,
    ctx: Ctx,
) -> ApiResult<axum::Json<Vec<Profile>>> {
    let profiles = st.app.profiles(ctx.caller()).await?;
    Ok(axum::Json(profiles.iter().map(convert::profile).collect()))
}

/// Creates a profile; omitted fields take the Standard profile's values.
#[utoipa::path(post, path = "/api/v1/profiles", tag = "profiles", request_body = ProfileCreate,
    responses((status = 201, body = Profile), (status = "4XX", body = ErrorBody)))]
async fn create_profile(
    State(st): State<AppState>,
    ctx: Ctx,
    Json(req): Json<ProfileCreate>,
) -> ApiResult<(StatusCode, axum::Json<Profile>)> {
    let p = create(&st, &ctx, &req.name.clone(), convert::create_to_update(req)).await?;
    Ok(created(convert::profile(&p)))
}

/// One profile.
#[utoipa::path(get, path = "/api/v1/profiles/{name}", tag = "profiles", params(("name" = String, Path)),
    responses((status = 200, body = Profile), (status = "4XX", body = ErrorBody)))]
async fn get_profile(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Profile>> {
    let name = extract::path_name("profile", &name)?;
    let p = st.app.profile(ctx.caller(), &name).await?;
    Ok(axum::Json(convert::profile(&p)))
}

/// Changes a profile; workspaces pick the change up at their next start.
#[utoipa::path(patch, path = "/api/v1/profiles/{name}", tag = "profiles",
    params(("name" = String, Path)), request_body = ProfileUpdate,
    responses((status = 200, body = Profile), (status = "4XX", body = ErrorBody)))]
async fn update_profile(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(req): Json<ProfileUpdate>,
) -> ApiResult<axum::Json<Profile>> {
    Ok(axum::Json(convert::profile(
        &update(&st, &ctx, &name, req).await?,
    )))
}

/// Deletes a profile that no workspace uses.
#[utoipa::path(delete, path = "/api/v1/profiles/{name}", tag = "profiles", params(("name" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody, description = "conflict: in use"),
        (status = "4XX", body = ErrorBody)))]
async fn delete_profile(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let name = extract::path_name("profile", &name)?;
    st.app.delete_profile(ctx.caller(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
