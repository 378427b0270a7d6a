//! `/api/v1/audit`: the audit log, newest first (admins, `read:audit`).

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use api_types::{AuditRecord, ErrorBody, Page};
use model::Scope;

use web::auth::Ctx;
use web::convert;
use web::error::ApiResult;
use web::extract::Query;
use web::ops::audit::filter;
use web::ops::page;
use web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only actions by this user.
    user: Option<String>,
    /// An action (`workspace.create`) or a family of actions (`workspace`);
    /// anything else is refused (400 `invalid_query`, naming the families).
    action: Option<String>,
    /// RFC 3339 time: only records at or after it.
    since: Option<String>,
    /// RFC 3339 time: only records before it.
    until: Option<String>,
    /// The cursor from the previous page's `next`.
    before: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<i64>,
}

/// Lists audit records, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditRecord>), (status = "4XX", body = ErrorBody)))]
async fn list_audit(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Page<AuditRecord>>> {
    ctx.require_any(Scope::ReadAudit)?;
    let filter = filter(q.user, q.action, q.since, q.until, q.before, q.limit)?;
    let limit = filter.limit - 1;
    let records = st.app.audit(ctx.caller(), &filter).await?;
    Ok(axum::Json(page(
        records,
        limit,
        |a| a.id.clone(),
        convert::audit,
    )))
}
