//! Workspaces' desired state: create, start, stop, move to another profile,
//! delete. Each only records what is wanted (bumping `generation`); the
//! controller makes it so.

use model::{AuditAction, DesiredState, Name, ProfileSpec, Scope, Workspace};
use store::Tx;

use crate::{in_conflict, missing_as_invalid, taken, App, AppError, Caller, Result};

/// A new workspace of `owner` (the caller, if `None`), stopped or asked to run.
#[derive(Debug, Clone)]
pub struct CreateWorkspace {
    pub owner: Option<Name>,
    pub name: Name,
    pub profile: Name,
    pub start: bool,
}

/// A change of what a workspace should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceChange {
    Start,
    /// Its files stay. JupyterHub's `delete:servers` is enough (what an idle
    /// culler holds).
    Stop,
    /// Another profile, applied at its next start.
    Profile(Name),
}

#[derive(Debug, Clone)]
pub struct ChangeWorkspace {
    pub id: model::WorkspaceId,
    pub change: WorkspaceChange,
}

/// A workspace to be deleted, with its files unless `keep_files`; the
/// controller finishes it.
#[derive(Debug, Clone)]
pub struct DeleteWorkspace {
    pub id: model::WorkspaceId,
    pub keep_files: bool,
}

impl App {
    /// The workspace `id`, if the caller may read it; any other is not found.
    pub async fn workspace(&self, caller: Caller<'_>, id: &str) -> Result<Workspace> {
        let ws = self.store.workspace(id).await?;
        if !caller.principal.may(Scope::ReadServers, &ws.owner_id) {
            return Err(AppError::NotFound { what: "workspace" });
        }
        Ok(ws)
    }

    /// Creates a workspace within its owner's quota.
    pub async fn create_workspace(
        &self,
        caller: Caller<'_>,
        cmd: CreateWorkspace,
    ) -> Result<Workspace> {
        let owner = match &cmd.owner {
            // A service owns no workspace: it names whose it makes.
            None if caller.principal.is_service => {
                return Err(AppError::invalid(
                    "owner",
                    "a service must name the user whose workspace it creates",
                ))
            }
            None => self.store.user(&caller.principal.user_id).await?,
            Some(o) => self
                .store
                .user_by_name(o)
                .await
                .map_err(missing_as_invalid("owner", format!("no user {o}")))?,
        };
        caller.require(Scope::Servers, &owner.id)?;
        let profile = self
            .store
            .profile(&cmd.profile)
            .await
            .map_err(missing_as_invalid(
                "profile",
                format!("no profile {}", cmd.profile),
            ))?;
        let desired = if cmd.start {
            DesiredState::Running
        } else {
            DesiredState::Stopped
        };
        let mut tx = self.store.begin().await?;
        let activating = cmd.start.then_some(&profile.spec);
        self.within_quota(&mut tx, &owner.id, true, activating, None)
            .await?;
        let ws = tx
            .insert_workspace(&owner, &cmd.name, &profile, desired)
            .await
            .map_err(taken(
                "name",
                format!("{} already has a workspace {}", owner.name, cmd.name),
            ))?;
        let detail = format!(
            "id={} profile={} desired={}",
            ws.id,
            profile.name,
            desired.as_str()
        );
        tx.audit(&caller.audit_workspace(AuditAction::WorkspaceCreate, &ws, detail))
            .await?;
        tx.commit().await?;
        Ok(ws)
    }

    /// Starts, stops or moves a workspace to another profile, within quota.
    pub async fn change_workspace(
        &self,
        caller: Caller<'_>,
        cmd: ChangeWorkspace,
    ) -> Result<Workspace> {
        let ws = self.workspace(caller, &cmd.id).await?;
        let (action, needed, desired, profile) = match cmd.change {
            WorkspaceChange::Start => (
                AuditAction::WorkspaceStart,
                Scope::Servers,
                Some(DesiredState::Running),
                None,
            ),
            WorkspaceChange::Stop => (
                AuditAction::WorkspaceStop,
                Scope::DeleteServers,
                Some(DesiredState::Stopped),
                None,
            ),
            WorkspaceChange::Profile(name) => (
                AuditAction::WorkspaceUpdate,
                Scope::Servers,
                None,
                Some(name),
            ),
        };
        caller.require_server(needed, &ws.owner_id, ws.name.as_str())?;
        let profile = match profile {
            None => None,
            Some(n) => Some(
                self.store
                    .profile(&n)
                    .await
                    .map_err(missing_as_invalid("profile", format!("no profile {n}")))?,
            ),
        };
        let mut tx = self.store.begin().await?;
        // What becomes active: the workspace's profile if it is asked to run,
        // or the new profile of an active workspace in place of its old one.
        let was_active = ws.spec.desired != DesiredState::Stopped;
        let will_be_active = desired.map_or(was_active, |d| d != DesiredState::Stopped);
        if will_be_active && (!was_active || profile.is_some()) {
            let current = self.store.profile(&ws.spec.profile).await?;
            let next = profile.as_ref().unwrap_or(&current);
            let releasing = was_active.then_some(&current.spec);
            self.within_quota(&mut tx, &ws.owner_id, false, Some(&next.spec), releasing)
                .await?;
        }
        tx.update_workspace_spec(&ws.id, profile.as_ref(), desired)
            .await
            .map_err(in_conflict("the workspace is being deleted"))?;
        tx.audit(&caller.audit_workspace(action, &ws, format!("id={}", ws.id)))
            .await?;
        tx.commit().await?;
        Ok(self.store.workspace(&ws.id).await?)
    }

    /// Records that a workspace is to be deleted.
    pub async fn delete_workspace(
        &self,
        caller: Caller<'_>,
        cmd: DeleteWorkspace,
    ) -> Result<Workspace> {
        let ws = self.workspace(caller, &cmd.id).await?;
        caller.require_server(Scope::DeleteServers, &ws.owner_id, ws.name.as_str())?;
        let mut tx = self.store.begin().await?;
        tx.request_workspace_deletion(&ws.id, cmd.keep_files)
            .await?;
        let detail = format!("id={} keep_files={}", ws.id, cmd.keep_files);
        tx.audit(&caller.audit_workspace(AuditAction::WorkspaceDelete, &ws, detail))
            .await?;
        tx.commit().await?;
        Ok(self.store.workspace(&ws.id).await?)
    }

    /// Fails with [`AppError::QuotaExceeded`] unless the owner stays within
    /// their quota (the default, or the limits an admin gave them) after
    /// `adding` a workspace and `activating` a profile in place of `releasing`.
    async fn within_quota(
        &self,
        tx: &mut Tx,
        owner_id: &str,
        adding: bool,
        activating: Option<&ProfileSpec>,
        releasing: Option<&ProfileSpec>,
    ) -> Result<()> {
        let q = self
            .config
            .quota
            .with(tx.quota_override(owner_id).await?.as_ref());
        let used = tx.usage(owner_id).await?;
        let exceeded = |message: String| Err(AppError::QuotaExceeded { message });
        if adding && used.workspaces >= q.max_workspaces {
            let n = q.max_workspaces;
            let noun = if n == 1 { "workspace" } else { "workspaces" };
            return exceeded(format!("the quota allows at most {n} {noun}"));
        }
        if let Some(p) = activating {
            let (cpu0, mem0) = releasing.map_or((0, 0), |r| (r.cpu_millis, r.memory_bytes));
            let cpu = used.cpu_millis.saturating_sub(cpu0) + p.cpu_millis;
            let mem = used.memory_bytes.saturating_sub(mem0) + p.memory_bytes;
            if cpu > q.max_cpu_millis {
                return exceeded(format!(
                    "{} CPUs would be in use; the quota is {}",
                    cpu as f64 / 1000.0,
                    q.max_cpu_millis as f64 / 1000.0
                ));
            }
            if mem > q.max_memory_bytes {
                return exceeded(format!(
                    "{} GiB of memory would be in use; the quota is {} GiB",
                    mem as f64 / (1u64 << 30) as f64,
                    q.max_memory_bytes as f64 / (1u64 << 30) as f64
                ));
            }
        }
        Ok(())
    }
}
