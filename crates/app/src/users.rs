//! People's accounts: create, change, rename, set a password, delete; and the
//! system's own operations on them (the first admin, a reset on the server's
//! machine), which no caller asks for.

use model::AuditEntry;
use model::{AuditAction, Name, Outcome, ProfileSpec, Scope, User};
use store::{NewUser, Store, StoreError, UserPatch};

use crate::sessions::NewSession;
use crate::{taken, App, AppError, Caller, Result};

/// Creations of single users waiting to be written, and whether a writer is
/// at work: creations that come while one transaction commits are written
/// together in the next (a group commit), so that many at once do not queue
/// one transaction each behind the store's one writer.
#[derive(Debug, Default)]
pub(crate) struct Creations {
    pending: Vec<Creation>,
    writing: bool,
}

#[derive(Debug)]
struct Creation {
    new: NewUser,
    audit: AuditEntry,
    done: tokio::sync::oneshot::Sender<Result<User>>,
}

/// A new account; with no password, it logs in with API tokens only.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub name: Name,
    pub password: Option<String>,
    pub admin: bool,
}

/// What to change of the user `name`; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateUser {
    pub rename: Option<Name>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
    /// Another's password, set by an admin (one's own: [`SetPassword`]).
    pub password: Option<String>,
}

/// A new password for the user `name`. One's own needs the current one
/// (failures count as failed logins); admins set others' without it.
#[derive(Debug, Clone)]
pub struct SetPassword {
    pub old_password: Option<String>,
    pub password: String,
    /// The caller is in a session (not using a token): a new password ends
    /// every session of the account, so the caller gets a new one.
    pub renew_session: bool,
}

/// How far a deletion of a user got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDeletion {
    Deleted,
    /// Their workspaces (these ids) are being deleted first, their files
    /// kept; ask again when they are gone.
    Waiting(Vec<model::WorkspaceId>),
}

async fn hash(password: String) -> Result<String> {
    auth::check_password(&password).map_err(|e| AppError::invalid("password", e.to_string()))?;
    auth::hash_password(password)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))
}

impl App {
    /// The user `name`, if the caller may see them with `scope`; any other is
    /// not found, as a missing one.
    pub async fn user(&self, caller: Caller<'_>, name: &Name, scope: Scope) -> Result<User> {
        let user = self.store.user_by_name(name).await?;
        if !caller.principal.may(scope, &user.id) {
            return Err(AppError::NotFound { what: "user" });
        }
        Ok(user)
    }

    /// Creates a user (admins only).
    pub async fn create_user(&self, caller: Caller<'_>, cmd: CreateUser) -> Result<User> {
        caller.require_any(Scope::AdminUsers)?;
        let password_hash = match cmd.password {
            Some(p) => Some(hash(p).await?),
            None => None,
        };
        let new = NewUser {
            name: cmd.name.clone(),
            password_hash,
            is_admin: cmd.admin,
        };
        let mut a = caller.audit(AuditAction::UserCreate, "user", cmd.name.as_str());
        a.detail = Some(format!("{{\"admin\":{}}}", cmd.admin));
        let (done, created) = tokio::sync::oneshot::channel();
        let start = {
            let mut q = self.creations.lock().unwrap();
            q.pending.push(Creation {
                new,
                audit: a,
                done,
            });
            !std::mem::replace(&mut q.writing, true)
        };
        if start {
            // In a task of its own, so that a caller that goes away does not
            // take the others' creations with it.
            let app = self.clone();
            tokio::spawn(async move { app.write_creations().await });
        }
        created
            .await
            .map_err(|_| AppError::Internal("the user's creation was dropped".into()))?
    }

    /// Writes the creations waiting, those that came while it wrote next,
    /// until none waits.
    async fn write_creations(&self) {
        loop {
            let batch = {
                let mut q = self.creations.lock().unwrap();
                if q.pending.is_empty() {
                    q.writing = false;
                    return;
                }
                std::mem::take(&mut q.pending)
            };
            self.write_batch(batch).await;
        }
    }

    /// All of `batch` in one transaction; if that fails (a name taken, one
    /// name asked for twice), each in its own, so each gets its own answer.
    async fn write_batch(&self, batch: Vec<Creation>) {
        if batch.len() > 1 {
            let news: Vec<NewUser> = batch.iter().map(|c| c.new.clone()).collect();
            let audit: Vec<AuditEntry> = batch.iter().map(|c| c.audit.clone()).collect();
            if let Ok(users) = self.insert_users(&news, &audit).await {
                for (c, u) in batch.into_iter().zip(users) {
                    let _ = c.done.send(Ok(u));
                }
                return;
            }
        }
        for c in batch {
            let name = &c.new.name;
            let r = self
                .insert_users(std::slice::from_ref(&c.new), std::slice::from_ref(&c.audit))
                .await
                .map_err(taken("name", format!("user {name} exists already")))
                .map(|mut users| users.remove(0));
            let _ = c.done.send(r);
        }
    }

    /// Inserts `news` with their audit records in one transaction.
    async fn insert_users(
        &self,
        news: &[NewUser],
        audit: &[AuditEntry],
    ) -> Result<Vec<User>, StoreError> {
        let mut tx = self.store.begin().await?;
        let users = tx.insert_users(news).await?;
        tx.audit_all(audit).await?;
        tx.commit().await?;
        Ok(users)
    }

    /// Creates the users `names` that do not exist yet (admins only), all in
    /// one transaction, each with its audit record: those created, or
    /// [`AppError::AlreadyExists`] when every one exists.
    pub async fn create_users(
        &self,
        caller: Caller<'_>,
        names: &[Name],
        admin: bool,
    ) -> Result<Vec<User>> {
        caller.require_any(Scope::AdminUsers)?;
        let exist: std::collections::HashSet<Name> =
            self.store.users_named(names).await?.into_iter().collect();
        let new: Vec<NewUser> = names
            .iter()
            .filter(|n| !exist.contains(*n))
            .map(|n| NewUser {
                name: n.clone(),
                password_hash: None,
                is_admin: admin,
            })
            .collect();
        if new.is_empty() {
            return Err(AppError::AlreadyExists {
                field: "usernames",
                message: format!("all {} users exist already", names.len()),
            });
        }
        let mut tx = self.store.begin().await?;
        let users = tx.insert_users(&new).await.map_err(taken(
            "usernames",
            "one of these users exists already".into(),
        ))?;
        let audit: Vec<AuditEntry> = users
            .iter()
            .map(|u| {
                let mut a = caller.audit(AuditAction::UserCreate, "user", u.name.as_str());
                a.detail = Some(format!("{{\"admin\":{admin}}}"));
                a
            })
            .collect();
        tx.audit_all(&audit).await?;
        tx.commit().await?;
        Ok(users)
    }

    /// Changes the user `name` (admins: anything but their own admin flag and
    /// disabled state, and their own password).
    pub async fn update_user(
        &self,
        caller: Caller<'_>,
        name: &Name,
        cmd: UpdateUser,
    ) -> Result<User> {
        let user = self.user(caller, name, Scope::ReadUsers).await?;
        let own = user.id == caller.principal.user_id;
        if own && cmd.password.is_some() {
            return Err(AppError::invalid(
                "password",
                format!(
                    "change your own with PUT /api/v1/users/{}/password, \
                     which asks for the current one",
                    user.name
                ),
            ));
        }
        caller.require(Scope::AdminUsers, &user.id)?;
        if own && (cmd.admin == Some(false) || cmd.disabled == Some(true)) {
            return Err(AppError::Conflict {
                message: "you cannot demote or disable yourself".into(),
            });
        }
        let password_hash = match &cmd.password {
            Some(p) => Some(hash(p.clone()).await?),
            None => None,
        };
        let rename = cmd.rename.as_ref().filter(|n| **n != user.name);
        let mut tx = self.store.begin().await?;
        if let Some(new_name) = rename {
            tx.rename_user(&user.id, &user.name, new_name)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict {
                        what: "user with workspaces not stopped",
                    } => AppError::Conflict {
                        message: format!(
                            "{} has workspaces not stopped: stop them first",
                            user.name
                        ),
                    },
                    StoreError::Conflict { .. } => AppError::AlreadyExists {
                        field: "name",
                        message: format!("name: {new_name} is taken"),
                    },
                    e => e.into(),
                })?;
        }
        let updated = tx
            .update_user(
                &user.id,
                &UserPatch {
                    is_admin: cmd.admin,
                    disabled: cmd.disabled,
                    password_hash,
                },
            )
            .await?;
        let mut a = caller.audit(AuditAction::UserUpdate, "user", user.name.as_str());
        a.detail = Some(
            serde_json::json!({
                "name": rename.map(|n| n.as_str()),
                "admin": cmd.admin,
                "disabled": cmd.disabled,
                "password": cmd.password.as_ref().map(|_| "changed"),
            })
            .to_string(),
        );
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Sets the user `name`'s password. Returns the caller's new session
    /// when they changed their own with `renew_session`.
    pub async fn set_password(
        &self,
        caller: Caller<'_>,
        name: &Name,
        cmd: SetPassword,
    ) -> Result<Option<NewSession>> {
        let own = *name == caller.principal.name;
        let user = if own {
            self.store.user(&caller.principal.user_id).await?
        } else {
            self.user(caller, name, Scope::ReadUsers).await?
        };
        if own {
            caller.require(Scope::Tokens, &user.id)?;
            let Some(old) = cmd.old_password.filter(|p| !p.is_empty()) else {
                return Err(AppError::invalid(
                    "old_password",
                    "your current password is required to change it",
                ));
            };
            let ip = caller.source.and_then(|s| s.parse().ok());
            if let Some(retry_after) = self.throttle.check(user.name.as_str(), ip) {
                return Err(AppError::TooManyRequests { retry_after });
            }
            let (_, stored) = self.store.user_credentials(user.name.as_str()).await?;
            if !auth::verify_password(old, stored).await {
                self.throttle.failed(user.name.as_str(), ip);
                let mut a = caller.audit(AuditAction::UserPassword, "user", user.name.as_str());
                a.outcome = Outcome::Failure;
                a.detail = Some("wrong current password".into());
                self.store.audit_alone(&a).await?;
                return Err(AppError::WrongPassword);
            }
        } else {
            caller.require(Scope::AdminUsers, &user.id)?;
        }
        let password_hash = Some(hash(cmd.password).await?);
        let mut tx = self.store.begin().await?;
        // A new password ends every session of the account (`update_user`).
        tx.update_user(
            &user.id,
            &UserPatch {
                password_hash,
                ..Default::default()
            },
        )
        .await?;
        let renewed = if own && cmd.renew_session {
            Some(self.open_session(&mut tx, &user.id).await?)
        } else {
            None
        };
        let mut a = caller.audit(AuditAction::UserPassword, "user", user.name.as_str());
        a.detail = Some(if own { "own" } else { "set by an admin" }.into());
        tx.audit(&a).await?;
        tx.commit().await?;
        Ok(renewed)
    }

    /// Deletes the user `name` (admins only, not oneself). As JupyterHub,
    /// their workspaces are deleted first, their files kept for an admin to
    /// restore: while any is left, this asks for their deletion and says
    /// [`UserDeletion::Waiting`].
    pub async fn delete_user(&self, caller: Caller<'_>, name: &Name) -> Result<UserDeletion> {
        let user = self.user(caller, name, Scope::ReadUsers).await?;
        caller.require(Scope::AdminUsers, &user.id)?;
        if user.id == caller.principal.user_id {
            return Err(AppError::Conflict {
                message: "you cannot delete yourself".into(),
            });
        }
        let owned = self.store.workspaces_of(&user.id).await?;
        if !owned.is_empty() {
            for ws in owned.iter().filter(|w| w.deletion_requested_at.is_none()) {
                let cmd = crate::DeleteWorkspace {
                    id: ws.id.clone(),
                    keep_files: true,
                };
                self.delete_workspace(caller, cmd).await?;
            }
            return Ok(UserDeletion::Waiting(
                owned.into_iter().map(|w| w.id).collect(),
            ));
        }
        let mut tx = self.store.begin().await?;
        match tx.delete_user(&user.id).await {
            Ok(()) => {}
            // A workspace came meanwhile.
            Err(StoreError::Conflict { .. }) => return Ok(UserDeletion::Waiting(Vec::new())),
            Err(e) => return Err(e.into()),
        }
        tx.audit(&caller.audit(AuditAction::UserDelete, "user", user.name.as_str()))
            .await?;
        tx.commit().await?;
        Ok(UserDeletion::Deleted)
    }
}

/// `password`, else a new random one; and whether it was made here (to be
/// shown once).
fn given_or_random(password: Option<&str>) -> (String, bool) {
    match password {
        Some(p) => (p.to_owned(), false),
        None => (model::secret::random_secret()[..20].to_owned(), true),
    }
}

/// An audit record of what berth itself did (no actor, no request).
fn system_audit(action: AuditAction, target: &Name, detail: &str) -> AuditEntry {
    AuditEntry {
        actor_id: None,
        actor: None,
        action,
        target_type: "user".into(),
        target: target.to_string(),
        outcome: Outcome::Success,
        source: None,
        request_id: None,
        detail: Some(detail.to_owned()),
    }
}

/// First start: with no user at all, creates the admin account (with the
/// given password or a random one, returned so that it can be shown once)
/// and the built-in profiles. Does nothing on a database that has users.
pub async fn bootstrap(store: &Store, admin_password: Option<&str>) -> Result<Option<String>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = given_or_random(admin_password);
    let hash = hash(password.clone()).await?;
    let mut tx = store.begin().await?;
    let admin = tx
        .insert_user(&NewUser {
            name: Name::parse("admin").expect("valid name"),
            password_hash: Some(hash),
            is_admin: true,
        })
        .await?;
    for (name, spec) in builtin_profiles() {
        tx.insert_profile(&store::NewProfile {
            name: Name::parse(name).expect("valid name"),
            spec,
        })
        .await?;
    }
    tx.audit(&system_audit(
        AuditAction::SystemBootstrap,
        &admin.name,
        "created the admin account and the built-in profiles",
    ))
    .await?;
    tx.commit().await?;
    Ok(generated.then_some(password))
}

/// Profiles named in `berth serve`'s configuration (`[profiles.NAME]`, the
/// Helm chart's values): each is created, or changed to what is configured;
/// profiles not named are left alone. Each change leaves an audit record
/// without an actor. Returns the names of the profiles created or changed.
pub async fn configure_profiles(
    store: &Store,
    profiles: &[(Name, ProfileSpec)],
) -> Result<Vec<Name>> {
    let mut changed = Vec::new();
    let mut tx = store.begin().await?;
    for (name, spec) in profiles {
        let new = store::NewProfile {
            name: name.clone(),
            spec: spec.clone(),
        };
        let action = match store.profile(name).await {
            Ok(p) if p.spec == *spec => continue,
            Ok(_) => {
                tx.update_profile(&new).await?;
                AuditAction::ProfileUpdate
            }
            Err(StoreError::NotFound { .. }) => {
                tx.insert_profile(&new).await?;
                AuditAction::ProfileCreate
            }
            Err(e) => return Err(e.into()),
        };
        let mut entry = system_audit(action, name, "from berth serve's configuration");
        entry.target_type = "profile".into();
        tx.audit(&entry).await?;
        changed.push(name.clone());
    }
    tx.commit().await?;
    Ok(changed)
}

/// Sets the password of the user `name` on the server's own machine (`berth
/// admin reset-password`): `password`, else a new random one, which is
/// returned. Every session of the user ends: at once on every replica that
/// hears of it (on PostgreSQL, the change feed), within 30 s on a server of
/// another process on SQLite (its cache's lifetime); the audit record names no
/// actor.
pub async fn reset_password(
    store: &Store,
    name: &Name,
    password: Option<&str>,
) -> Result<Option<String>> {
    let user = store.user_by_name(name).await?;
    let (password, generated) = given_or_random(password);
    let hash = hash(password.clone()).await?;
    let mut tx = store.begin().await?;
    tx.update_user(
        &user.id,
        &UserPatch {
            password_hash: Some(hash),
            ..Default::default()
        },
    )
    .await?;
    tx.audit(&system_audit(
        AuditAction::UserPassword,
        &user.name,
        "reset on the server's machine (berth admin reset-password)",
    ))
    .await?;
    tx.commit().await?;
    Ok(generated.then_some(password))
}

fn builtin_profiles() -> Vec<(&'static str, model::ProfileSpec)> {
    let standard = model::ProfileSpec::standard();
    let high_memory = model::ProfileSpec {
        display_name: "High-Memory (4 CPU, 32 GiB)".into(),
        cpu_millis: 4000,
        memory_bytes: 32 << 30,
        ..standard.clone()
    };
    vec![("standard", standard), ("high-memory", high_memory)]
}
