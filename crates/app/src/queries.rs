//! What callers read: lists and lookups, each authorized as its operation
//! says. A few are marked *unchecked*: berth's own reads for a caller already
//! authorized (the proxy's routing, a wait on a workspace just changed).

use std::collections::HashMap;

use model::{
    AuditRecord, Name, QuotaOverride, Scope, StateChange, User, UserId, Workspace, WorkspaceState,
};
use store::{AuditFilter, StoreError, UserFilter, WorkspaceFilter};

use crate::{App, AppError, Caller, Result};

/// Which workspaces to list; the caller sees their own unless they reach
/// everyone's.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceQuery {
    /// Only this user's (someone else's needs `admin:servers`).
    pub owner: Option<Name>,
    pub state: Option<WorkspaceState>,
    pub profile: Option<Name>,
    pub name: Option<Name>,
    /// Only ids after this cursor.
    pub after: Option<String>,
    pub limit: i64,
}

impl App {
    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// The caller's own account.
    pub async fn me(&self, caller: Caller<'_>) -> Result<User> {
        Ok(self.store.user(&caller.principal.user_id).await?)
    }

    /// The groups `user` is in.
    pub async fn groups_of(&self, user: &User) -> Result<Vec<Name>> {
        Ok(self.store.groups_of(&user.id).await?)
    }

    /// Users by name after `after`, at most `limit`: everyone for a caller who
    /// reaches everyone with `scope` (`read:users`, JupyterHub's
    /// `list:users`), else only themself.
    pub async fn users(
        &self,
        caller: Caller<'_>,
        scope: Scope,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>> {
        caller.require_any(scope)?;
        if caller.principal.reaches_everyone(scope) {
            return Ok(self.store.users(after, limit).await?);
        }
        Ok(match after {
            Some(_) => Vec::new(),
            None => vec![self.me(caller).await?],
        })
    }

    /// One page of the users `filter` asks for, and how many it reaches in
    /// all: everyone for a caller who reaches everyone with `scope`, else at
    /// most themself.
    pub async fn list_users(
        &self,
        caller: Caller<'_>,
        scope: Scope,
        mut filter: UserFilter,
    ) -> Result<(Vec<User>, i64)> {
        caller.require_any(scope)?;
        if !caller.principal.reaches_everyone(scope) {
            filter.only = Some(caller.principal.user_id.to_string());
        }
        Ok(self.store.list_users(&filter).await?)
    }

    /// The groups of each of `users` (users in none are not keys).
    pub async fn groups_of_users(&self, users: &[User]) -> Result<HashMap<UserId, Vec<Name>>> {
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        let mut groups: HashMap<UserId, Vec<Name>> = HashMap::new();
        for (user, group) in self.store.groups_of_users(&ids).await? {
            groups.entry(user).or_default().push(group);
        }
        Ok(groups)
    }

    /// Every workspace of each of `users`, oldest first; unchecked.
    pub async fn workspaces_of_users_unchecked(&self, users: &[User]) -> Result<Vec<Workspace>> {
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        Ok(self.store.workspaces_of_users(&ids).await?)
    }

    /// The workspaces (of `owner_id`, or everyone's) that may be in use: all
    /// but those stopped with nothing asked of them; unchecked.
    pub async fn workspaces_maybe_active_unchecked(
        &self,
        owner_id: Option<&str>,
    ) -> Result<Vec<Workspace>> {
        Ok(self.store.workspaces_maybe_active(owner_id).await?)
    }

    /// The workspaces `q` asks for, as far as the caller may see them, by id.
    pub async fn workspaces(
        &self,
        caller: Caller<'_>,
        q: WorkspaceQuery,
    ) -> Result<Vec<Workspace>> {
        caller.require_any(Scope::ReadServers)?;
        let everyone = caller.principal.reaches_everyone(Scope::ReadServers);
        let owner_id = match q.owner {
            Some(n) if n == caller.principal.name => Some(caller.principal.user_id.clone()),
            Some(n) if everyone => match self.store.user_by_name(&n).await {
                Ok(u) => Some(u.id),
                Err(StoreError::NotFound { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            },
            Some(_) => {
                return Err(AppError::Forbidden {
                    scope: Scope::AdminServers,
                })
            }
            None if everyone => None,
            None => Some(caller.principal.user_id.clone()),
        };
        let filter = WorkspaceFilter {
            owner_id: owner_id.map(model::UserId::into_string),
            state: q.state,
            profile: q.profile,
            name: q.name,
            after: q.after,
            limit: q.limit,
        };
        Ok(self.store.workspaces(&filter).await?)
    }

    /// Every workspace of `owner_id` (or everyone's), for pages that show all
    /// of them; unchecked.
    pub async fn all_workspaces_unchecked(&self, owner_id: Option<&str>) -> Result<Vec<Workspace>> {
        Ok(self.store.all_workspaces(owner_id).await?)
    }

    /// The latest `limit` state changes of a workspace the caller may read.
    pub async fn workspace_events(
        &self,
        caller: Caller<'_>,
        ws: &Workspace,
        limit: i64,
    ) -> Result<Vec<StateChange>> {
        caller.require(Scope::ReadServers, &ws.owner_id)?;
        Ok(self.store.workspace_events(&ws.id, limit).await?)
    }

    /// Audit records, newest first (`read:audit`).
    pub async fn audit(
        &self,
        caller: Caller<'_>,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>> {
        caller.require_any(Scope::ReadAudit)?;
        Ok(self.store.audit(filter).await?)
    }

    /// Every user's own limits, by user id (admins).
    pub async fn quota_overrides(
        &self,
        caller: Caller<'_>,
    ) -> Result<HashMap<String, QuotaOverride>> {
        caller.require_any(Scope::AdminUsers)?;
        Ok(self.store.quota_overrides().await?)
    }

    /// The workspace `id`, if it exists; unchecked.
    pub async fn workspace_unchecked(&self, id: &str) -> Result<Option<Workspace>> {
        match self.store.workspace(id).await {
            Ok(ws) => Ok(Some(ws)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The person named `name`, if there is one; unchecked (the proxy's
    /// routing, before it authorizes).
    pub async fn user_unchecked(&self, name: &Name) -> Result<Option<User>> {
        match self.store.user_by_name(name).await {
            Ok(u) => Ok(Some(u)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The workspace of `user` named `name`, if any (a name no workspace
    /// could have names none); unchecked.
    pub async fn find_workspace_unchecked(
        &self,
        user: &User,
        name: &str,
    ) -> Result<Option<Workspace>> {
        let Ok(name) = Name::parse(name) else {
            return Ok(None);
        };
        let found = self
            .store
            .workspaces(&WorkspaceFilter {
                owner_id: Some(user.id.to_string()),
                name: Some(name),
                limit: 1,
                ..Default::default()
            })
            .await?;
        Ok(found.into_iter().next())
    }

    /// What a user's app reports (`users:activity`): when each of their
    /// workspaces (id, when) and they themselves (`latest`) were last active.
    pub async fn report_activity(
        &self,
        caller: Caller<'_>,
        user: &User,
        batch: &[(String, i64)],
        latest: Option<i64>,
    ) -> Result<()> {
        caller.require(Scope::UsersActivity, &user.id)?;
        let mut tx = self.store.begin().await?;
        tx.record_activity(batch).await?;
        if let Some(at) = latest {
            tx.record_user_activity(&user.id, at).await?;
        }
        Ok(tx.commit().await?)
    }

    /// How long each workspace (of `owner_id`, or just `workspace_id`, or
    /// everyone's) has run so far, in milliseconds, from its history; unchecked.
    pub async fn running_millis_unchecked(
        &self,
        owner_id: Option<&str>,
        workspace_id: Option<&str>,
    ) -> Result<HashMap<String, u64>> {
        Ok(self
            .store
            .running_millis(owner_id, workspace_id, model::now_millis())
            .await?)
    }
}
