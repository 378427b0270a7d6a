//! `/api/v1/profiles`: resource and policy templates. Everyone reads; admins write.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, Profile, ProfileCreate, ProfileUpdate};
use model::{ProfileSpec, Scope};

use super::created;
use crate::auth::Ctx;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{self, Json, Path};
use crate::AppState;

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

/// Creates the profile `name` from `req` over the Standard profile's values,
/// with its audit record; the portal shares it.
pub(crate) async fn create(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    req: ProfileUpdate,
) -> ApiResult<model::Profile> {
    ctx.require_any(Scope::AdminProfiles)?;
    let name = extract::name("name", name)?;
    let spec = convert::apply_profile(ProfileSpec::standard(), req)?;
    Ok(st.app.create_profile(ctx.caller(), &name, spec).await?)
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

/// Applies `req` to the profile `name` with its audit record; the portal shares it.
pub(crate) async fn update(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    req: ProfileUpdate,
) -> ApiResult<model::Profile> {
    ctx.require_any(Scope::AdminProfiles)?;
    let name = extract::path_name("profile", name)?;
    let current = st.app.profile(ctx.caller(), &name).await?;
    let spec = convert::apply_profile(current.spec, req)?;
    Ok(st.app.update_profile(ctx.caller(), &name, spec).await?)
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
