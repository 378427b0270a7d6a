//! Groups of users. Admins manage them; members see their own.

use model::{AuditAction, Group, Name, Scope};

use crate::{missing_as_invalid, taken, App, AppError, Caller, Result};

/// A new group, with members (every one must exist).
#[derive(Debug, Clone)]
pub struct CreateGroup {
    pub name: Name,
    pub members: Vec<Name>,
}

fn can_see(caller: Caller<'_>, g: &Group) -> bool {
    caller.principal.reaches_everyone(Scope::ReadGroups)
        || (caller.principal.has(Scope::ReadGroups) && g.members.contains(&caller.principal.name))
}

impl App {
    /// The group `name`, if the caller may see it; any other is not found.
    pub async fn group(&self, caller: Caller<'_>, name: &Name) -> Result<Group> {
        let g = self.store.group(name).await?;
        if !can_see(caller, &g) {
            return Err(AppError::NotFound { what: "group" });
        }
        Ok(g)
    }

    /// The groups the caller may see (admins: all; others: their own).
    pub async fn groups(&self, caller: Caller<'_>) -> Result<Vec<Group>> {
        caller.require_any(Scope::ReadGroups)?;
        let mut groups = self.store.groups().await?;
        groups.retain(|g| can_see(caller, g));
        Ok(groups)
    }

    /// The ids of the users `names`; an unknown one is an invalid `users`.
    pub async fn user_ids(&self, names: &[Name]) -> Result<Vec<model::UserId>> {
        if names.len() > 1000 {
            return Err(AppError::invalid("users", "at most 1000 at once"));
        }
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            let user = self.store.user_by_name(name).await;
            ids.push(
                user.map_err(missing_as_invalid("users", format!("no user {name}")))?
                    .id,
            );
        }
        Ok(ids)
    }

    pub async fn create_group(&self, caller: Caller<'_>, cmd: CreateGroup) -> Result<Group> {
        caller.require_any(Scope::AdminGroups)?;
        let members = self.user_ids(&cmd.members).await?;
        let mut tx = self.store.begin().await?;
        let g = tx
            .insert_group(&cmd.name)
            .await
            .map_err(taken("name", format!("group {} exists already", cmd.name)))?;
        for m in &members {
            tx.add_member(&g.id, m).await?;
        }
        let mut a = caller.audit(AuditAction::GroupCreate, "group", cmd.name.as_str());
        let names: Vec<&str> = cmd.members.iter().map(Name::as_str).collect();
        a.detail = Some(format!("members={}", names.join(",")));
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(self.store.group(&cmd.name).await?)
    }

    /// Deletes a group (not its members).
    pub async fn delete_group(&self, caller: Caller<'_>, name: &Name) -> Result<()> {
        caller.require_any(Scope::AdminGroups)?;
        let g = self.group(caller, name).await?;
        let mut tx = self.store.begin().await?;
        tx.delete_group(&g.id).await?;
        tx.audit(&caller.audit(AuditAction::GroupDelete, "group", g.name.as_str()))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds the users `users` to a group (those already in it stay).
    pub async fn add_members(
        &self,
        caller: Caller<'_>,
        name: &Name,
        users: &[Name],
    ) -> Result<Group> {
        caller.require_any(Scope::AdminGroups)?;
        let g = self.group(caller, name).await?;
        let ids = self.user_ids(users).await?;
        let mut tx = self.store.begin().await?;
        for id in &ids {
            tx.add_member(&g.id, id).await?;
        }
        let mut a = caller.audit(AuditAction::GroupAddMembers, "group", g.name.as_str());
        let names: Vec<&str> = users.iter().map(Name::as_str).collect();
        a.detail = Some(format!("users={}", names.join(",")));
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(self.store.group(&g.name).await?)
    }

    /// Removes the user `user` from a group.
    pub async fn remove_member(&self, caller: Caller<'_>, name: &Name, user: &Name) -> Result<()> {
        caller.require_any(Scope::AdminGroups)?;
        let g = self.group(caller, name).await?;
        let user = self.store.user_by_name(user).await?;
        let mut tx = self.store.begin().await?;
        tx.remove_member(&g.id, &user.id).await?;
        let mut a = caller.audit(AuditAction::GroupRemoveMember, "group", g.name.as_str());
        a.detail = Some(format!("user={}", user.name));
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a group's properties (JupyterHub's).
    pub async fn set_group_properties(
        &self,
        caller: Caller<'_>,
        name: &Name,
        properties: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Group> {
        // JupyterHub's scope for this.
        caller.require_any(Scope::Groups)?;
        let g = self.group(caller, name).await?;
        let mut tx = self.store.begin().await?;
        tx.set_group_properties(&g.id, properties).await?;
        tx.audit(&caller.audit(AuditAction::GroupSetProperties, "group", g.name.as_str()))
            .await?;
        tx.commit().await?;
        Ok(self.store.group(&g.name).await?)
    }
}
