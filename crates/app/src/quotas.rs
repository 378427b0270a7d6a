//! A user's limits and use. Everyone has the configured default; an admin may
//! give one user limits of their own, which replace the default's one by one
//! and are checked from the next create or start on (workspaces already
//! running are left alone).

use model::{AuditAction, Name, Quota, QuotaOverride, Scope, User};
use store::Usage;

use crate::{App, Caller, Result};

/// A user's quota: the limits in force, their own limits, the default, and
/// the use that counts against them.
#[derive(Debug, Clone)]
pub struct UserQuota {
    pub user: User,
    pub limits: Quota,
    pub own: QuotaOverride,
    pub default: Quota,
    pub used: Usage,
}

impl App {
    /// `user`'s quota (one the caller has already been allowed to see).
    pub async fn quota_of(&self, user: User) -> Result<UserQuota> {
        let own = self.store.quota_override(&user.id).await?;
        let used = self.store.usage(&user.id).await?;
        let default = self.config.quota;
        Ok(UserQuota {
            user,
            limits: default.with(own.as_ref()),
            own: own.unwrap_or_default(),
            default,
            used,
        })
    }

    /// The quota of the user `name` (users see their own, admins everyone's).
    pub async fn quota(&self, caller: Caller<'_>, name: &Name) -> Result<UserQuota> {
        let user = self.user(caller, name, Scope::ReadUsers).await?;
        self.quota_of(user).await
    }

    /// Gives the user `name` the limits `own` (admins only; empty: the
    /// default again), audited as `quota.set` or `quota.reset`.
    pub async fn set_quota(
        &self,
        caller: Caller<'_>,
        name: &Name,
        own: &QuotaOverride,
    ) -> Result<User> {
        let user = self.user(caller, name, Scope::ReadUsers).await?;
        caller.require(Scope::AdminUsers, &user.id)?;
        let mut tx = self.store.begin().await?;
        tx.set_quota_override(&user.id, own).await?;
        let action = if own.is_empty() {
            AuditAction::QuotaReset
        } else {
            AuditAction::QuotaSet
        };
        let mut a = caller.audit(action, "user", user.name.as_str());
        if !own.is_empty() {
            // As the API shows it: CPUs, not millis.
            a.detail = Some(
                serde_json::json!({
                    "max_workspaces": own.max_workspaces,
                    "max_cpu": own.max_cpu_millis.map(|m| m as f64 / 1000.0),
                    "max_memory_bytes": own.max_memory_bytes,
                })
                .to_string(),
            );
        }
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(user)
    }
}
