//! Per-user quotas: an admin's override, parsed and set, and what a user holds against it.

use api_types::{QuotaLimits, QuotaUpdate, QuotaUse, UserQuota};
use model::{Quota, QuotaOverride};

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::{extract, AppState};

/// Checks a body: CPUs a non-negative number (kept to the thousandth), every
/// limit at most [`model::QUOTA_CEILING`]; errors name the field.
pub fn parse(u: &QuotaUpdate) -> ApiResult<QuotaOverride> {
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
pub fn shown(q: &app::UserQuota) -> UserQuota {
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
pub async fn set(
    st: &AppState,
    ctx: &Ctx,
    name: &str,
    o: &QuotaOverride,
) -> ApiResult<model::User> {
    let name = extract::path_name("user", name)?;
    Ok(st.app.set_quota(ctx.caller(), &name, o).await?)
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
