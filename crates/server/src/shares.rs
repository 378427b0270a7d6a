//! Sharing a workspace with a user or a group's members, as the REST API
//! (`/api/v1/workspaces/{id}/shares`), JupyterHub's API (`/hub/api/shares`) and
//! the portal do it: each checks and records a share the same way here.
//!
//! A share grants `access:servers` on the one workspace (its app, through
//! berth's proxy and OAuth) and nothing else. Listing needs `read:shares` on
//! the owner, granting and revoking `shares` on the workspace: the owner's, or
//! an admin's. A workspace is not shared with its own owner.

use model::{Scope, Share, ShareWith, Workspace};

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract;
use crate::AppState;

/// Whom a body names, from its `user` and `group` fields: exactly one.
pub(crate) fn with_of(user: Option<&str>, group: Option<&str>) -> ApiResult<ShareWith> {
    match (user, group) {
        (Some(u), None) => Ok(ShareWith::User(extract::name("user", u)?)),
        (None, Some(g)) => Ok(ShareWith::Group(extract::name("group", g)?)),
        _ => Err(ApiError::new(
            Code::InvalidValue,
            "name exactly one of user and group",
        )),
    }
}

/// The ids behind whom a share names: (user id, group id); `None` if that user
/// or group does not exist.
async fn ids(
    st: &AppState,
    with: &ShareWith,
) -> ApiResult<Option<(Option<String>, Option<String>)>> {
    let found = match with {
        ShareWith::User(u) => st.store.user_by_name(u).await.map(|u| (Some(u.id), None)),
        ShareWith::Group(g) => st.store.group(g).await.map(|g| (None, Some(g.id))),
    };
    match found {
        Ok(ids) => Ok(Some(ids)),
        Err(store::StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How the audit log names whom a share is with.
fn label(with: &ShareWith) -> String {
    match with {
        ShareWith::User(u) => format!("user={u}"),
        ShareWith::Group(g) => format!("group={g}"),
    }
}

/// The shares of `ws`, oldest first.
pub(crate) async fn list(st: &AppState, ctx: &Ctx, ws: &Workspace) -> ApiResult<Vec<Share>> {
    ctx.require_server(Scope::ReadShares, &ws.owner_id, ws.name.as_str())?;
    Ok(st.store.shares(&ws.owner_id, Some(&ws.id)).await?)
}

/// Shares `ws` with whom `with` names (sharing again changes nothing) and
/// returns the share.
pub(crate) async fn grant(
    st: &AppState,
    ctx: &Ctx,
    ws: &Workspace,
    with: &ShareWith,
) -> ApiResult<Share> {
    ctx.require_server(Scope::Shares, &ws.owner_id, ws.name.as_str())?;
    let field = match with {
        ShareWith::User(_) => "user",
        ShareWith::Group(_) => "group",
    };
    let Some((user_id, group_id)) = ids(st, with).await? else {
        return Err(ApiError::new(
            Code::InvalidValue,
            format!("{field}: no such {field}"),
        ));
    };
    if user_id.as_deref() == Some(ws.owner_id.as_str()) {
        return Err(ApiError::new(
            Code::InvalidValue,
            format!(
                "user: {} owns {}; share it with someone else",
                ws.owner, ws.name
            ),
        ));
    }
    let mut tx = st.store.begin().await?;
    if tx
        .share(&ws.id, user_id.as_deref(), group_id.as_deref())
        .await?
    {
        tx.audit(&ctx.audit_workspace(model::AuditAction::WorkspaceShare, ws, label(with)))
            .await?;
    }
    tx.commit().await?;
    st.store
        .shares(&ws.owner_id, Some(&ws.id))
        .await?
        .into_iter()
        .find(|s| &s.with == with)
        .ok_or_else(|| ApiError::not_found("share"))
}

/// Revokes `ws`'s share with whom `with` names, or all of its shares with
/// `None`; returns how many went (revoking what is not there is no error).
pub(crate) async fn revoke(
    st: &AppState,
    ctx: &Ctx,
    ws: &Workspace,
    with: Option<&ShareWith>,
) -> ApiResult<u64> {
    ctx.require_server(Scope::Shares, &ws.owner_id, ws.name.as_str())?;
    let (user_id, group_id) = match with {
        Some(w) => match ids(st, w).await? {
            Some(ids) => ids,
            None => return Ok(0),
        },
        None => (None, None),
    };
    let mut tx = st.store.begin().await?;
    let gone = tx
        .unshare(&ws.id, user_id.as_deref(), group_id.as_deref())
        .await?;
    if gone > 0 {
        let who = with.map_or_else(|| "all".to_owned(), label);
        tx.audit(&ctx.audit_workspace(model::AuditAction::WorkspaceUnshare, ws, who))
            .await?;
    }
    tx.commit().await?;
    Ok(gone)
}

/// What is shared with `user` (directly or through a group of theirs), each
/// with its workspace.
pub(crate) async fn shared_with(
    st: &AppState,
    user_id: &str,
) -> ApiResult<Vec<(Share, Option<Workspace>)>> {
    let mut out = Vec::new();
    for s in st.store.shared_with(user_id).await? {
        let ws = st.store.workspace(&s.workspace_id).await.ok();
        out.push((s, ws));
    }
    Ok(out)
}
