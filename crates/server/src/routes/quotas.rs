//! `/api/v1/users/{name}/quota`: a user's limits and use. Everyone has the
//! configured default; an admin may give one user limits of their own, which
//! replace the default's one by one and are checked from the next create or
//! start on (workspaces already running are left alone).

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{ErrorBody, QuotaLimits, QuotaUpdate, QuotaUse, UserQuota};
use model::{Quota, QuotaOverride};

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, Json, Path};
use crate::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_quota, set_quota, reset_quota))
}

fn cpus(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

fn limits(q: Quota) -> QuotaLimits {
    QuotaLimits {
        max_workspaces: q.max_workspaces,
        max_cpu: cpus(q.max_cpu_millis),
        max_memory_bytes: q.max_memory_bytes,
    }
}

/// The wire form of an override, and back: CPUs on the wire, millis inside.
fn wire(o: &QuotaOverride) -> QuotaUpdate {
    QuotaUpdate {
        max_workspaces: o.max_workspaces,
        max_cpu: o.max_cpu_millis.map(cpus),
        max_memory_bytes: o.max_memory_bytes,
    }
}

/// Checks a body: CPUs a non-negative number (kept to the thousandth), every
/// limit at most [`model::QUOTA_CEILING`]; errors name the field.
pub(crate) fn parse(u: &QuotaUpdate) -> ApiResult<QuotaOverride> {
    let mut errors = Vec::new();
    let max_cpu_millis = match u.max_cpu {
        None => None,
        // Past the ceiling, but small enough to convert; the ceiling check names it.
        Some(v) if (0.0..=1e12).contains(&v) => Some((v * 1000.0).round() as u64),
        Some(_) => {
            errors.push((
                "max_cpu".to_owned(),
                "must be a number of CPUs from 0 to 1000000".to_owned(),
            ));
            None
        }
    };
    let o = QuotaOverride {
        max_workspaces: u.max_workspaces,
        max_cpu_millis,
        max_memory_bytes: u.max_memory_bytes,
    };
    for (field, max) in o.over_ceiling() {
        errors.push(match field {
            "max_cpu_millis" => ("max_cpu".to_owned(), format!("at most {} CPUs", cpus(max))),
            "max_memory_bytes" => (field.to_owned(), format!("at most {}", model::bytes(max))),
            _ => (field.to_owned(), format!("at most {max}")),
        });
    }
    if errors.is_empty() {
        Ok(o)
    } else {
        Err(ApiError::invalid_fields(errors))
    }
}

/// A quota as the API shows it: limits in force, own limits, default, use.
pub(crate) fn shown(q: &app::UserQuota) -> UserQuota {
    UserQuota {
        user: q.user.name.to_string(),
        limits: limits(q.limits),
        custom: wire(&q.own),
        default: limits(q.default),
        used: QuotaUse {
            workspaces: q.used.workspaces,
            cpu: cpus(q.used.cpu_millis),
            memory_bytes: q.used.memory_bytes,
        },
    }
}

/// Gives the user `name` (as the path gives it) the limits `o` (admins only;
/// empty: the default) with its audit record; the portal shares it.
pub(crate) async fn set(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    o: &QuotaOverride,
) -> ApiResult<model::User> {
    let name = extract::path_name("user", name)?;
    Ok(st.app.set_quota(ctx.caller(), &name, o).await?)
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
