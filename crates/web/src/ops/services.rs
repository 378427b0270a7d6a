//! JupyterHub's services: created and deleted by admins.

use crate::auth::Ctx;
use crate::error::ApiResult;
use crate::{extract, AppState};

/// Creates a service, with `api_token` as its token if given, and its audit
/// record; the portal shares it.
pub async fn create(
    st: &AppState,
    ctx: &Ctx,
    name: &model::Name,
    admin: bool,
    api_token: Option<&str>,
) -> ApiResult<model::User> {
    let cmd = app::CreateService {
        name: name.clone(),
        admin,
        api_token: api_token.map(str::to_owned),
    };
    Ok(st.app.create_service(ctx.caller(), cmd).await?)
}

/// Deletes a service with its tokens and its audit record; the portal
/// shares it.
pub async fn delete(st: &AppState, ctx: &Ctx, name: &str) -> ApiResult<()> {
    let name = extract::path_name("service", name)?;
    Ok(st.app.delete_service(ctx.caller(), &name).await?)
}
