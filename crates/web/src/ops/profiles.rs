//! Resource profiles, created and changed by admins.

use api_types::ProfileUpdate;
use model::{ProfileSpec, Scope};

use crate::auth::Ctx;
use crate::convert;
use crate::error::ApiResult;
use crate::{extract, AppState};

/// Creates the profile `name` from `req` over the Standard profile's values,
/// with its audit record; the portal shares it.
pub async fn create(
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

/// Applies `req` to the profile `name` with its audit record; the portal shares it.
pub async fn update(
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
