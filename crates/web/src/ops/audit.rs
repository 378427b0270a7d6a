//! The audit log's filter, from a query's strings.

use crate::error::{ApiError, ApiResult, Code};
use app::AuditFilter;

use crate::{convert, extract};

/// The store's filter for the query's fields, fetching one more record than
/// the page holds (to tell whether there is a next page); the portal shares it.
pub fn filter(
    user: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
    limit: Option<i64>,
) -> ApiResult<AuditFilter> {
    let limit = extract::limit(limit)?;
    let invalid =
        |field: &str, what: &str| ApiError::new(Code::InvalidQuery, format!("{field}: {what}"));
    let actor = match user {
        Some(u) => Some(
            model::Name::parse(&u)
                .map_err(|e| invalid("user", &e.to_string()))?
                .to_string(),
        ),
        None => None,
    };
    // Only known actions and families (so LIKE's `%` never reaches the store).
    let action = match action {
        Some(a) if !model::is_audit_action(&a) => {
            return Err(invalid(
                "action",
                &format!(
                    "no such action or family of actions; the families are {}, e.g. workspace or workspace.create",
                    model::audit_families().join(", ")
                ),
            ))
        }
        a => a,
    };
    Ok(AuditFilter {
        actor,
        action,
        since: since
            .map(|s| convert::parse_time("since", &s))
            .transpose()?,
        until: until
            .map(|s| convert::parse_time("until", &s))
            .transpose()?,
        before: extract::cursor("before", before)?,
        limit: limit + 1,
    })
}
