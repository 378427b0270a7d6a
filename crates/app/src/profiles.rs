//! Profiles: resource and policy templates. Everyone with `read:profiles`
//! reads them; admins write them. Workspaces pick a change up at their next start.

use model::{AuditAction, Name, Profile, ProfileSpec, Scope};
use store::NewProfile;

use crate::{in_conflict, taken, App, Caller, Result};

impl App {
    pub async fn profiles(&self, caller: Caller<'_>) -> Result<Vec<Profile>> {
        caller.require_any(Scope::ReadProfiles)?;
        Ok(self.store.profiles().await?)
    }

    /// Every profile, for views of workspaces (each names its profile); unchecked.
    pub async fn all_profiles_unchecked(&self) -> Result<Vec<Profile>> {
        Ok(self.store.profiles().await?)
    }

    pub async fn profile(&self, caller: Caller<'_>, name: &Name) -> Result<Profile> {
        caller.require_any(Scope::ReadProfiles)?;
        Ok(self.store.profile(name).await?)
    }

    pub async fn create_profile(
        &self,
        caller: Caller<'_>,
        name: &Name,
        spec: ProfileSpec,
    ) -> Result<Profile> {
        self.save_profile(caller, name, spec, AuditAction::ProfileCreate)
            .await
    }

    /// Replaces the spec of the profile `name`.
    pub async fn update_profile(
        &self,
        caller: Caller<'_>,
        name: &Name,
        spec: ProfileSpec,
    ) -> Result<Profile> {
        self.save_profile(caller, name, spec, AuditAction::ProfileUpdate)
            .await
    }

    /// Creates (`ProfileCreate`) or replaces (`ProfileUpdate`) a profile.
    async fn save_profile(
        &self,
        caller: Caller<'_>,
        name: &Name,
        spec: ProfileSpec,
        action: AuditAction,
    ) -> Result<Profile> {
        caller.require_any(Scope::AdminProfiles)?;
        let new = NewProfile {
            name: name.clone(),
            spec,
        };
        let mut tx = self.store.begin().await?;
        let p = match action {
            AuditAction::ProfileCreate => tx
                .insert_profile(&new)
                .await
                .map_err(taken("name", format!("profile {name} exists already")))?,
            _ => tx.update_profile(&new).await?,
        };
        tx.audit(&caller.audit(action, "profile", name.as_str()))
            .await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Deletes a profile that no workspace uses.
    pub async fn delete_profile(&self, caller: Caller<'_>, name: &Name) -> Result<()> {
        caller.require_any(Scope::AdminProfiles)?;
        let p = self.store.profile(name).await?;
        let mut tx = self.store.begin().await?;
        tx.delete_profile(&p.id)
            .await
            .map_err(in_conflict("workspaces still use this profile"))?;
        tx.audit(&caller.audit(AuditAction::ProfileDelete, "profile", p.name.as_str()))
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
