//! Sharing a workspace with a user or a group's members.
//!
//! A share grants `access:servers` on the one workspace (its app, through
//! berth's proxy and OAuth) and nothing else. Listing needs `read:shares` on
//! the owner, granting and revoking `shares` on the workspace: the owner's, or
//! an admin's. A workspace is not shared with its own owner.

use model::{AuditAction, Scope, Share, ShareWith, Workspace};
use store::StoreError;

use crate::{App, AppError, Caller, Result};

/// The ids behind whom a share names: (user id, group id); `None` if that
/// user or group does not exist.
type Ids = (Option<String>, Option<String>);

/// How the audit log names whom a share is with.
fn label(with: &ShareWith) -> String {
    match with {
        ShareWith::User(u) => format!("user={u}"),
        ShareWith::Group(g) => format!("group={g}"),
    }
}

impl App {
    async fn share_ids(&self, with: &ShareWith) -> Result<Option<Ids>> {
        let found = match with {
            ShareWith::User(u) => self
                .store
                .user_by_name(u)
                .await
                .map(|u| (Some(u.id.into_string()), None)),
            ShareWith::Group(g) => self.store.group(g).await.map(|g| (None, Some(g.id))),
        };
        match found {
            Ok(ids) => Ok(Some(ids)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The shares of `ws`, oldest first.
    pub async fn shares(&self, caller: Caller<'_>, ws: &Workspace) -> Result<Vec<Share>> {
        caller.require_server(Scope::ReadShares, &ws.owner_id, ws.name.as_str())?;
        Ok(self.store.shares(&ws.owner_id, Some(&ws.id)).await?)
    }

    /// The shares of every workspace of `owner`.
    pub async fn shares_of(&self, caller: Caller<'_>, owner: &model::User) -> Result<Vec<Share>> {
        caller.require(Scope::ReadShares, &owner.id)?;
        Ok(self.store.shares(&owner.id, None).await?)
    }

    /// Shares `ws` with whom `with` names (sharing again changes nothing) and
    /// returns the share.
    pub async fn share(
        &self,
        caller: Caller<'_>,
        ws: &Workspace,
        with: &ShareWith,
    ) -> Result<Share> {
        caller.require_server(Scope::Shares, &ws.owner_id, ws.name.as_str())?;
        let field = match with {
            ShareWith::User(_) => "user",
            ShareWith::Group(_) => "group",
        };
        let Some((user_id, group_id)) = self.share_ids(with).await? else {
            return Err(AppError::invalid(field, format!("no such {field}")));
        };
        if user_id.as_deref() == Some(ws.owner_id.as_str()) {
            return Err(AppError::invalid(
                "user",
                format!("{} owns {}; share it with someone else", ws.owner, ws.name),
            ));
        }
        let mut tx = self.store.begin().await?;
        if tx
            .share(&ws.id, user_id.as_deref(), group_id.as_deref())
            .await?
        {
            tx.audit(&caller.audit_workspace(AuditAction::WorkspaceShare, ws, label(with)))
                .await?;
        }
        tx.commit().await?;
        self.store
            .shares(&ws.owner_id, Some(&ws.id))
            .await?
            .into_iter()
            .find(|s| &s.with == with)
            .ok_or(AppError::NotFound { what: "share" })
    }

    /// Revokes `ws`'s share with whom `with` names, or all of its shares with
    /// `None`; returns how many went (revoking what is not there is no error).
    pub async fn unshare(
        &self,
        caller: Caller<'_>,
        ws: &Workspace,
        with: Option<&ShareWith>,
    ) -> Result<u64> {
        caller.require_server(Scope::Shares, &ws.owner_id, ws.name.as_str())?;
        let (user_id, group_id) = match with {
            Some(w) => match self.share_ids(w).await? {
                Some(ids) => ids,
                None => return Ok(0),
            },
            None => (None, None),
        };
        let mut tx = self.store.begin().await?;
        let gone = tx
            .unshare(&ws.id, user_id.as_deref(), group_id.as_deref())
            .await?;
        if gone > 0 {
            let who = with.map_or_else(|| "all".to_owned(), label);
            tx.audit(&caller.audit_workspace(AuditAction::WorkspaceUnshare, ws, who))
                .await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// What is shared with `user_id` (directly or through a group of theirs),
    /// each with its workspace.
    pub async fn shared_with(&self, user_id: &str) -> Result<Vec<(Share, Option<Workspace>)>> {
        let mut out = Vec::new();
        for s in self.store.shared_with(user_id).await? {
            let ws = self.store.workspace(&s.workspace_id).await.ok();
            out.push((s, ws));
        }
        Ok(out)
    }
}
