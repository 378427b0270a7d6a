//! The operations as the HTTP front doors call them: names and ids as paths
//! and forms give them, parsed and checked the same way for every door, then
//! passed to [`app`]; errors as [`ApiError`]s that place the field. The REST
//! API, JupyterHub's API and the portal share them, so one operation answers
//! alike through each.

pub mod audit;
pub mod groups;
pub mod profiles;
pub mod quotas;
pub mod services;
pub mod session;
pub mod tokens;
pub mod users;
pub mod workspaces;

use crate::error::{ApiError, ApiResult, Code};

/// Turns `limit + 1` fetched items into a page and its next cursor.
pub fn page<T, W>(
    mut items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
    wire: impl Fn(&T) -> W,
) -> api_types::Page<W> {
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(&cursor)
    } else {
        None
    };
    api_types::Page {
        items: items.iter().map(wire).collect(),
        next,
    }
}

/// Checks free text (notes, display names): bounded and without control characters.
pub fn text(field: &str, s: &str, max: usize) -> ApiResult<()> {
    if s.len() > max || s.chars().any(char::is_control) {
        return Err(ApiError::new(
            Code::InvalidValue,
            format!("{field}: at most {max} bytes, no control characters"),
        ));
    }
    Ok(())
}
