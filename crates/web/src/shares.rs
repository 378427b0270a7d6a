//! Whom a request shares a workspace with, as the REST API
//! (`/api/v1/workspaces/{id}/shares`), JupyterHub's API (`/hub/api/shares`) and
//! the portal name it; sharing itself is `app`'s ([`app::App::share`]).

use model::ShareWith;

use crate::error::{ApiError, ApiResult, Code};
use crate::extract;

/// Whom a body names, from its `user` and `group` fields: exactly one.
pub fn with_of(user: Option<&str>, group: Option<&str>) -> ApiResult<ShareWith> {
    match (user, group) {
        (Some(u), None) => Ok(ShareWith::User(extract::name("user", u)?)),
        (None, Some(g)) => Ok(ShareWith::Group(extract::name("group", g)?)),
        _ => Err(ApiError::new(
            Code::InvalidValue,
            "name exactly one of user and group",
        )),
    }
}
