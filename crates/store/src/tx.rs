//! Write transactions: every mutation of berth's state, finished by an audit record
//! and a commit.

use std::sync::Arc;

use sqlx::{Any, Row, Transaction};
use tokio::sync::OwnedMutexGuard;

use model::{
    new_id, now_millis, AuditEntry, DesiredState, Group, Name, Profile, QuotaOverride, ScopeSet,
    Token, TokenKind, Upstream, User, Workspace, WorkspaceState, WorkspaceStatus,
};

use crate::feed::{Change, Feed, NOTIFY};
use crate::rows::{self, NewProfile, NewToken, NewUser, OAuthCode, Usage};
use crate::{query_error, Engine, Result, StoreError};

/// How many state changes the history of one workspace keeps.
pub const EVENTS_KEPT: i64 = 200;

/// An open write transaction. Dropping it without [`Tx::commit`] rolls back.
#[derive(Debug)]
pub struct Tx {
    tx: Transaction<'static, Any>,
    _write: Option<OwnedMutexGuard<()>>,
    engine: Engine,
    /// Told of `changes` once they are committed.
    feed: Arc<Feed>,
    changes: Vec<Change>,
}

/// Which fields of a user to change.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub is_admin: Option<bool>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

impl Tx {
    pub(crate) fn new(
        tx: Transaction<'static, Any>,
        guard: Option<OwnedMutexGuard<()>>,
        engine: Engine,
        feed: Arc<Feed>,
    ) -> Self {
        Tx {
            tx,
            _write: guard,
            engine,
            feed,
            changes: Vec::new(),
        }
    }

    /// Commits, then tells the change feed what changed: this process's
    /// subscribers at once, other replicas by a `NOTIFY` that PostgreSQL
    /// delivers with the commit.
    ///
    /// The commit runs to its end even if the caller stops waiting (a client
    /// that goes away mid-request): a change committed is always told.
    pub async fn commit(self) -> Result<()> {
        tokio::spawn(self.commit_and_tell())
            .await
            .map_err(|e| StoreError::Query {
                op: "commit",
                source: sqlx::Error::Protocol(format!("the commit's task failed: {e}")),
            })?
    }

    async fn commit_and_tell(mut self) -> Result<()> {
        if self.engine == Engine::Postgres {
            for change in &self.changes {
                sqlx::query(NOTIFY)
                    .bind(self.feed.payload(change))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(query_error("notify other replicas", "change"))?;
            }
        }
        self.tx
            .commit()
            .await
            .map_err(query_error("commit", "transaction"))?;
        for change in self.changes {
            self.feed.publish(change);
        }
        Ok(())
    }

    /// Runs one statement; the rows it changed.
    pub(crate) async fn execute<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        op: &'static str,
    ) -> Result<u64> {
        Ok(query
            .execute(&mut *self.tx)
            .await
            .map_err(query_error(op, "record"))?
            .rows_affected())
    }

    /// Records a change for the feed, once.
    fn changed(&mut self, change: Change) {
        if !self.changes.contains(&change) {
            self.changes.push(change);
        }
    }

    /// Marks this transaction as one that changes what credentials reach.
    fn credentials_changed(&mut self) {
        self.changed(Change::Credentials);
    }

    /// Appends an audit record; the log is never updated or deleted from.
    pub async fn audit(&mut self, a: &AuditEntry) -> Result<()> {
        self.audit_all(std::slice::from_ref(a)).await
    }

    /// Appends audit records, many rows to a statement.
    pub async fn audit_all(&mut self, all: &[AuditEntry]) -> Result<()> {
        const COLUMNS: usize = 11;
        let at = now_millis();
        for chunk in all.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO audit_log (id, at, actor_id, actor, action, target_type, target, \
                 outcome, source, request_id, detail) VALUES {}",
                values(chunk.len(), COLUMNS)
            );
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(new_id())
                    .bind(at)
                    .bind(a.actor_id.as_deref())
                    .bind(a.actor.as_deref())
                    .bind(a.action.as_str())
                    .bind(a.target_type.as_str())
                    .bind(a.target.as_str())
                    .bind(a.outcome.as_str())
                    .bind(a.source.as_deref())
                    .bind(a.request_id.as_deref())
                    .bind(a.detail.as_deref());
            }
            q.execute(&mut *self.tx)
                .await
                .map_err(query_error("write audit record", "audit record"))?;
        }
        Ok(())
    }

    // ---- users -------------------------------------------------------------

    pub async fn insert_user(&mut self, u: &NewUser) -> Result<User> {
        self.insert_identity(u, false).await
    }

    /// A service: a tool's identity with tokens (never a password). Its name
    /// may not be a user's, nor a user's its.
    pub async fn insert_service(&mut self, name: &Name, is_admin: bool) -> Result<User> {
        let new = NewUser {
            name: name.clone(),
            password_hash: None,
            is_admin,
        };
        self.insert_identity(&new, true).await
    }

    async fn insert_identity(&mut self, u: &NewUser, is_service: bool) -> Result<User> {
        let mut users = self
            .insert_identities(std::slice::from_ref(u), is_service)
            .await?;
        Ok(users.remove(0))
    }

    /// People, many rows to a statement; a name taken is a conflict, and
    /// nothing is written of the statement it was in.
    pub async fn insert_users(&mut self, all: &[NewUser]) -> Result<Vec<User>> {
        self.insert_identities(all, false).await
    }

    async fn insert_identities(&mut self, all: &[NewUser], is_service: bool) -> Result<Vec<User>> {
        const COLUMNS: usize = 6;
        let now = now_millis();
        let users: Vec<User> = all
            .iter()
            .map(|u| User {
                id: new_id().into(),
                name: u.name.clone(),
                is_admin: u.is_admin,
                disabled: false,
                created_at: now,
                last_activity: None,
                is_service,
            })
            .collect();
        let kind = if is_service { "service" } else { "user" };
        for (chunk, new) in users
            .chunks(ROWS_PER_INSERT)
            .zip(all.chunks(ROWS_PER_INSERT))
        {
            let sql = format!(
                "INSERT INTO users (id, name, password_hash, is_admin, created_at, kind, disabled) \
                 VALUES {}",
                values_with(chunk.len(), COLUMNS, ", 0")
            );
            let mut q = sqlx::query(&sql);
            for (user, u) in chunk.iter().zip(new) {
                q = q
                    .bind(user.id.as_str())
                    .bind(user.name.as_str())
                    .bind(u.password_hash.as_deref())
                    .bind(i64::from(user.is_admin))
                    .bind(user.created_at)
                    .bind(kind);
            }
            q.execute(&mut *self.tx)
                .await
                .map_err(query_error("insert user", "user"))?;
        }
        Ok(users)
    }

    pub async fn update_user(&mut self, id: &str, p: &UserPatch) -> Result<User> {
        self.credentials_changed();
        let row = sqlx::query(&format!(
            "UPDATE users SET is_admin = COALESCE($2, is_admin), \
             disabled = COALESCE($3, disabled), \
             password_hash = COALESCE($4, password_hash) WHERE id = $1 \
             RETURNING {}",
            rows::USER_SELECT
                .trim_start_matches("SELECT ")
                .trim_end_matches(" FROM users")
        ))
        .bind(id)
        .bind(p.is_admin.map(i64::from))
        .bind(p.disabled.map(i64::from))
        .bind(p.password_hash.as_deref())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(query_error("update user", "user"))?;
        let user = rows::one(row, "user", rows::user)?;
        if p.disabled == Some(true) || p.password_hash.is_some() {
            // A disabled account or a new password ends every session at once.
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *self.tx)
                .await
                .map_err(query_error("end sessions", "session"))?;
        }
        Ok(user)
    }

    /// Renames a user: their workspaces, tokens, memberships and shares follow
    /// (they hold the id), and every token's scope filters that name the old
    /// name (`!user=old`, `!server=old/…`) name the new one. A name taken is a
    /// conflict, and so is a workspace that is not stopped (its URL, app and
    /// home path hold the name).
    pub async fn rename_user(&mut self, id: &str, old: &Name, new: &Name) -> Result<User> {
        self.credentials_changed();
        // The user's workspaces' routes are keyed by owner name.
        self.changed(Change::All);
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM workspaces WHERE owner_id = $1 \
             AND (desired <> 'stopped' OR state NOT IN ('pending', 'stopped', 'failed'))",
        )
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(query_error("count live workspaces", "user"))?
        .try_get("n")
        .map_err(|e| rows::corrupt("count", e))?;
        if live > 0 {
            return Err(StoreError::Conflict {
                what: "user with workspaces not stopped",
            });
        }
        let row = sqlx::query(&format!(
            "UPDATE users SET name = $2 WHERE id = $1 RETURNING {}",
            rows::USER_SELECT
                .trim_start_matches("SELECT ")
                .trim_end_matches(" FROM users")
        ))
        .bind(id)
        .bind(new.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(query_error("rename user", "user"))?;
        let user = rows::one(row, "user", rows::user)?;
        let named = sqlx::query("SELECT id, scopes FROM tokens WHERE scopes LIKE $1")
            .bind(format!("%={}%", old.as_str()))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(query_error("find tokens naming a user", "token"))?;
        for r in &named {
            let token_id: String = crate::get(r, "id", "token")?;
            let scopes: String = crate::get(r, "scopes", "token")?;
            let parsed = ScopeSet::parse(&scopes).map_err(|e| rows::corrupt("token", e))?;
            let renamed = parsed.renamed_user(old, new);
            if renamed != parsed {
                sqlx::query("UPDATE tokens SET scopes = $2 WHERE id = $1")
                    .bind(&token_id)
                    .bind(renamed.to_string())
                    .execute(&mut *self.tx)
                    .await
                    .map_err(query_error("rename a token's filters", "token"))?;
            }
        }
        Ok(user)
    }

    /// Deletes a user with their tokens, sessions and memberships; a user who still
    /// owns workspaces is a conflict.
    pub async fn delete_user(&mut self, id: &str) -> Result<()> {
        self.credentials_changed();
        let owned: i64 = sqlx::query("SELECT COUNT(*) AS n FROM workspaces WHERE owner_id = $1")
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(query_error("count workspaces", "user"))?
            .try_get("n")
            .map_err(|e| rows::corrupt("count", e))?;
        if owned > 0 {
            return Err(StoreError::Conflict {
                what: "user with workspaces",
            });
        }
        self.delete_by_id("DELETE FROM users WHERE id = $1", id, "user")
            .await
    }

    async fn delete_by_id(&mut self, sql: &str, id: &str, what: &'static str) -> Result<()> {
        let done = sqlx::query(sql)
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("delete", what))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what });
        }
        Ok(())
    }

    /// The user's uid, allocated (the next after the highest, from `base`) if the user
    /// has none yet. Allocation happens inside the write transaction, so two never
    /// get the same uid; the unique index guards it too.
    pub async fn ensure_uid(&mut self, user_id: &str, base: i64) -> Result<i64> {
        sqlx::query(
            "UPDATE users SET uid = (SELECT COALESCE(MAX(uid) + 1, $2) FROM users) \
             WHERE id = $1 AND uid IS NULL",
        )
        .bind(user_id)
        .bind(base)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("allocate uid", "user uid"))?;
        let row = sqlx::query("SELECT uid FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(query_error("read uid", "user"))?;
        rows::one(row, "user", |r| crate::get::<i64>(r, "uid", "user uid"))
    }

    // ---- groups ------------------------------------------------------------

    pub async fn insert_group(&mut self, name: &Name) -> Result<Group> {
        let g = Group {
            id: new_id(),
            name: name.clone(),
            members: Vec::new(),
            created_at: now_millis(),
            properties: Default::default(),
        };
        sqlx::query("INSERT INTO groups (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&g.id)
            .bind(g.name.as_str())
            .bind(g.created_at)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("insert group", "group"))?;
        Ok(g)
    }

    /// Replaces a group's properties.
    pub async fn set_group_properties(
        &mut self,
        id: &str,
        properties: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        self.credentials_changed();
        let json = serde_json::Value::Object(properties.clone()).to_string();
        let done = sqlx::query("UPDATE groups SET properties = $2 WHERE id = $1")
            .bind(id)
            .bind(json)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("set group properties", "group"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "group" });
        }
        Ok(())
    }

    pub async fn delete_group(&mut self, id: &str) -> Result<()> {
        self.credentials_changed();
        self.delete_by_id("DELETE FROM groups WHERE id = $1", id, "group")
            .await
    }

    /// Adds a member; adding one twice is no error.
    pub async fn add_member(&mut self, group_id: &str, user_id: &str) -> Result<()> {
        self.credentials_changed();
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("add group member", "group member"))?;
        Ok(())
    }

    pub async fn remove_member(&mut self, group_id: &str, user_id: &str) -> Result<()> {
        self.credentials_changed();
        sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("remove group member", "group member"))?;
        Ok(())
    }

    // ---- tokens and sessions ------------------------------------------------

    pub async fn insert_token(&mut self, t: &NewToken) -> Result<Token> {
        self.insert_token_of(t, TokenKind::Api, None).await
    }

    /// Inserts a token of a workspace: its app's own (`Server`) or one issued
    /// through its OAuth client (`OAuth`); either goes with the workspace.
    pub async fn insert_token_of(
        &mut self,
        t: &NewToken,
        kind: TokenKind,
        workspace_id: Option<&str>,
    ) -> Result<Token> {
        let token = Token {
            id: new_id().into(),
            user_id: t.user_id.clone(),
            prefix: t.prefix.clone(),
            note: t.note.clone(),
            scopes: t.scopes.clone(),
            created_at: now_millis(),
            expires_at: t.expires_at,
            last_used_at: None,
            kind,
            workspace_id: workspace_id.map(Into::into),
        };
        sqlx::query(
            "INSERT INTO tokens (id, user_id, hash, prefix, note, scopes, created_at, expires_at, \
             kind, workspace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(token.id.as_str())
        .bind(token.user_id.as_str())
        .bind(&t.hash)
        .bind(&token.prefix)
        .bind(&token.note)
        .bind(token.scopes.to_string())
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(kind.as_str())
        .bind(token.workspace_id.as_deref())
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("insert token", "token"))?;
        Ok(token)
    }

    /// Deletes a workspace's tokens of one kind: its app's old token before it
    /// gets a new one, or when it stops. Returns how many went.
    pub async fn delete_workspace_tokens(
        &mut self,
        workspace_id: &str,
        kind: TokenKind,
    ) -> Result<u64> {
        self.credentials_changed();
        let done = sqlx::query("DELETE FROM tokens WHERE workspace_id = $1 AND kind = $2")
            .bind(workspace_id)
            .bind(kind.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("delete workspace tokens", "token"))?;
        Ok(done.rows_affected())
    }

    pub async fn insert_oauth_code(&mut self, c: &OAuthCode) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_codes (hash, workspace_id, user_id, redirect_uri, code_challenge, \
             scopes, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.hash)
        .bind(&c.workspace_id)
        .bind(&c.user_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(c.scopes.to_string())
        .bind(c.expires_at)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("insert oauth code", "oauth code"))?;
        Ok(())
    }

    /// Takes a code out for good (a code is used once), with codes past their
    /// time cleared on the way; `NotFound` if it is unknown or expired.
    pub async fn take_oauth_code(&mut self, hash: &str, now: i64) -> Result<OAuthCode> {
        sqlx::query("DELETE FROM oauth_codes WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("expire oauth codes", "oauth code"))?;
        let row = sqlx::query(
            "SELECT hash, workspace_id, user_id, redirect_uri, code_challenge, scopes, expires_at \
             FROM oauth_codes WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(query_error("get oauth code", "oauth code"))?;
        let code = rows::one(row, "oauth code", |r| {
            let scopes: String = crate::get(r, "scopes", "oauth code")?;
            Ok(OAuthCode {
                hash: crate::get(r, "hash", "oauth code")?,
                workspace_id: crate::get(r, "workspace_id", "oauth code")?,
                user_id: crate::get(r, "user_id", "oauth code")?,
                redirect_uri: crate::get(r, "redirect_uri", "oauth code")?,
                code_challenge: crate::get(r, "code_challenge", "oauth code")?,
                scopes: ScopeSet::parse(&scopes).map_err(|e| rows::corrupt("oauth code", e))?,
                expires_at: crate::get(r, "expires_at", "oauth code")?,
            })
        })?;
        // Whoever deletes it has it: a concurrent exchange of the same code gets none.
        let done = sqlx::query("DELETE FROM oauth_codes WHERE hash = $1")
            .bind(hash)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("use oauth code", "oauth code"))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound { what: "oauth code" });
        }
        Ok(code)
    }

    /// Shares a workspace with a user or a group (exactly one of them); sharing
    /// again is no change. Returns whether a share was added.
    pub async fn share(
        &mut self,
        workspace_id: &str,
        user_id: Option<&str>,
        group_id: Option<&str>,
    ) -> Result<bool> {
        self.credentials_changed();
        let exists = sqlx::query(
            "SELECT id FROM shares WHERE workspace_id = $1 AND \
             (user_id = $2 OR group_id = $3)",
        )
        .bind(workspace_id)
        .bind(user_id)
        .bind(group_id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(query_error("find share", "share"))?;
        if exists.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO shares (id, workspace_id, user_id, group_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(workspace_id)
        .bind(user_id)
        .bind(group_id)
        .bind(now_millis())
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("insert share", "share"))?;
        Ok(true)
    }

    /// Revokes a workspace's share with a user or group, or (both `None`) all of
    /// its shares; returns how many went.
    pub async fn unshare(
        &mut self,
        workspace_id: &str,
        user_id: Option<&str>,
        group_id: Option<&str>,
    ) -> Result<u64> {
        self.credentials_changed();
        let done = sqlx::query(
            "DELETE FROM shares WHERE workspace_id = $1 AND \
             ((CAST($2 AS TEXT) IS NULL AND CAST($3 AS TEXT) IS NULL) OR user_id = $2 OR group_id = $3)",
        )
        .bind(workspace_id)
        .bind(user_id)
        .bind(group_id)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("delete shares", "share"))?;
        Ok(done.rows_affected())
    }

    pub async fn delete_token(&mut self, user_id: &str, token_id: &str) -> Result<()> {
        self.credentials_changed();
        let done = sqlx::query("DELETE FROM tokens WHERE id = $1 AND user_id = $2")
            .bind(token_id)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("delete token", "token"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "token" });
        }
        Ok(())
    }

    pub async fn insert_session(
        &mut self,
        hash: &str,
        user_id: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        let now = now_millis();
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("expire sessions", "session"))?;
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("insert session", "session"))?;
        Ok(())
    }

    pub async fn delete_session(&mut self, hash: &str) -> Result<()> {
        self.credentials_changed();
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(hash)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("delete session", "session"))?;
        Ok(())
    }

    // ---- profiles ----------------------------------------------------------

    pub async fn insert_profile(&mut self, p: &NewProfile) -> Result<Profile> {
        let now = now_millis();
        let profile = Profile {
            id: new_id(),
            name: p.name.clone(),
            spec: p.spec.clone(),
            created_at: now,
            updated_at: now,
        };
        self.write_profile(
            "INSERT INTO profiles (id, name, display_name, cpu_millis, memory_bytes, \
             max_processes, disk_quota_bytes, idle_timeout_secs, max_lifetime_secs, \
             cost_per_hour_micros, start_timeout_secs, app, created_at, updated_at, idle_action, \
             egress) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
            &profile,
            "insert profile",
        )
        .await?;
        Ok(profile)
    }

    /// Replaces a profile's spec (found by name); it keeps its id and creation time.
    pub async fn update_profile(&mut self, p: &NewProfile) -> Result<Profile> {
        // Its workspaces' routes (and their controller's limits) follow it.
        self.changed(Change::All);
        let row = sqlx::query("SELECT id, created_at FROM profiles WHERE name = $1")
            .bind(p.name.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(query_error("get profile", "profile"))?;
        let (id, created_at) = rows::one(row, "profile", |r| {
            Ok((
                crate::get::<String>(r, "id", "profile")?,
                crate::get::<i64>(r, "created_at", "profile")?,
            ))
        })?;
        let profile = Profile {
            id,
            name: p.name.clone(),
            spec: p.spec.clone(),
            created_at,
            updated_at: now_millis(),
        };
        self.write_profile(
            "UPDATE profiles SET name = $2, display_name = $3, cpu_millis = $4, \
             memory_bytes = $5, max_processes = $6, disk_quota_bytes = $7, \
             idle_timeout_secs = $8, max_lifetime_secs = $9, cost_per_hour_micros = $10, \
             start_timeout_secs = $11, app = $12, created_at = $13, updated_at = $14, \
             idle_action = $15, egress = $16 WHERE id = $1",
            &profile,
            "update profile",
        )
        .await?;
        Ok(profile)
    }

    async fn write_profile(&mut self, sql: &str, p: &Profile, op: &'static str) -> Result<()> {
        let s = &p.spec;
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        sqlx::query(sql)
            .bind(&p.id)
            .bind(p.name.as_str())
            .bind(&s.display_name)
            .bind(int(s.cpu_millis))
            .bind(int(s.memory_bytes))
            .bind(int(s.max_processes))
            .bind(int(s.disk_quota_bytes))
            .bind(s.idle_timeout_secs.map(int))
            .bind(s.max_lifetime_secs.map(int))
            .bind(int(s.cost_per_hour_micros))
            .bind(int(s.start_timeout_secs))
            .bind(serde_json::to_string(&s.app).expect("an App always serializes"))
            .bind(p.created_at)
            .bind(p.updated_at)
            .bind(s.idle_action.as_str())
            .bind(i64::from(s.egress))
            .execute(&mut *self.tx)
            .await
            .map_err(query_error(op, "profile"))?;
        Ok(())
    }

    /// Deletes a profile; one that workspaces still use is a conflict.
    pub async fn delete_profile(&mut self, id: &str) -> Result<()> {
        self.delete_by_id("DELETE FROM profiles WHERE id = $1", id, "profile")
            .await
    }

    pub(crate) async fn touch_token(&mut self, id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE tokens SET last_used_at = $2 WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - 60_000)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("touch token", "token"))?;
        Ok(())
    }

    /// Moves a user's `last_activity` forward to `at`; never backward.
    pub async fn record_user_activity(&mut self, user_id: &str, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE users SET last_activity = $2 \
             WHERE id = $1 AND (last_activity IS NULL OR last_activity < $2)",
        )
        .bind(user_id)
        .bind(at)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("record user activity", "user"))?;
        Ok(())
    }

    // ---- quotas ------------------------------------------------------------

    /// The limits an admin gave `user_id`, if any; read inside the write
    /// transaction with [`Tx::usage`], for the quota check.
    pub async fn quota_override(&mut self, user_id: &str) -> Result<Option<QuotaOverride>> {
        let row = sqlx::query(&format!("{} WHERE user_id = $1", rows::QUOTA_SELECT))
            .bind(user_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(query_error("get user quota", "user quota"))?;
        row.as_ref().map(rows::quota_override).transpose()
    }

    /// Gives `user_id` the limits `o` in place of its current ones; an empty
    /// override gives it back the default quota.
    pub async fn set_quota_override(&mut self, user_id: &str, o: &QuotaOverride) -> Result<()> {
        let limit = |v: Option<u64>| v.map(|v| v as i64);
        let q = if o.is_empty() {
            sqlx::query("DELETE FROM user_quotas WHERE user_id = $1").bind(user_id)
        } else {
            sqlx::query(
                "INSERT INTO user_quotas (user_id, max_workspaces, max_cpu_millis, \
                 max_memory_bytes, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id) DO UPDATE SET max_workspaces = $2, \
                 max_cpu_millis = $3, max_memory_bytes = $4, updated_at = $5",
            )
            .bind(user_id)
            .bind(limit(o.max_workspaces))
            .bind(limit(o.max_cpu_millis))
            .bind(limit(o.max_memory_bytes))
            .bind(now_millis())
        };
        q.execute(&mut *self.tx)
            .await
            .map_err(query_error("set user quota", "user quota"))?;
        Ok(())
    }

    // ---- workspaces --------------------------------------------------------

    /// Moves workspaces' (and their owners') `last_activity` forward to the
    /// given times; never backward.
    pub async fn record_activity(&mut self, batch: &[(String, i64)]) -> Result<()> {
        for (id, at) in batch {
            sqlx::query(
                "UPDATE workspaces SET last_activity = $2 \
                 WHERE id = $1 AND (last_activity IS NULL OR last_activity < $2)",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("record workspace activity", "workspace"))?;
            sqlx::query(
                "UPDATE users SET last_activity = $2 \
                 WHERE id = (SELECT owner_id FROM workspaces WHERE id = $1) \
                 AND (last_activity IS NULL OR last_activity < $2)",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("record user activity", "user"))?;
        }
        Ok(())
    }

    pub async fn insert_workspace(
        &mut self,
        owner: &User,
        name: &Name,
        profile: &Profile,
        desired: DesiredState,
    ) -> Result<Workspace> {
        let now = now_millis();
        let status = WorkspaceStatus::pending();
        let ws = Workspace {
            id: new_id().into(),
            owner_id: owner.id.clone(),
            owner: owner.name.clone(),
            name: name.clone(),
            spec: model::WorkspaceSpec {
                profile: profile.name.clone(),
                desired,
            },
            generation: 1,
            status,
            observed_generation: 0,
            created_at: now,
            updated_at: now,
            last_activity: None,
            deletion_requested_at: None,
            keep_files: false,
            upstream: None,
        };
        sqlx::query(
            "INSERT INTO workspaces (id, owner_id, name, profile_id, desired, generation, state, \
             status, observed_generation, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, 0, $8, $8)",
        )
        .bind(ws.id.as_str())
        .bind(ws.owner_id.as_str())
        .bind(ws.name.as_str())
        .bind(&profile.id)
        .bind(desired.as_str())
        .bind(ws.status.state.as_str())
        .bind(serde_json::to_string(&ws.status).expect("a status always serializes"))
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("insert workspace", "workspace"))?;
        self.record_state_change(&ws.id, now, ws.status.state, "created")
            .await?;
        self.changed(Change::Spec(ws.id.clone()));
        Ok(ws)
    }

    /// Changes the desired state and/or profile, bumping `generation` when anything
    /// changes, and when a failed workspace is asked to run again (the
    /// controller then starts it anew). A workspace being deleted is a conflict.
    pub async fn update_workspace_spec(
        &mut self,
        id: &str,
        profile: Option<&Profile>,
        desired: Option<DesiredState>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE workspaces SET profile_id = COALESCE($2, profile_id), \
             desired = COALESCE($3, desired), updated_at = $4, \
             generation = generation + CASE WHEN profile_id = COALESCE($2, profile_id) \
                 AND desired = COALESCE($3, desired) \
                 AND NOT (state = 'failed' AND $3 IN ('running', 'paused')) THEN 0 ELSE 1 END \
             WHERE id = $1 AND deletion_requested_at IS NULL",
        )
        .bind(id)
        .bind(profile.map(|p| p.id.as_str()))
        .bind(desired.map(DesiredState::as_str))
        .bind(now_millis())
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("update workspace", "workspace"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                what: "workspace being deleted",
            });
        }
        self.changed(Change::Spec(id.into()));
        Ok(())
    }

    /// How many workspaces `owner_id` has, and the CPU and memory of those not
    /// stopped; read inside the write transaction so that a quota check and the
    /// change it allows see the same state (on SQLite, where writers are serialized).
    pub async fn usage(&mut self, owner_id: &str) -> Result<Usage> {
        let row = sqlx::query(rows::USAGE_SELECT)
            .bind(owner_id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(query_error("sum usage", "workspace"))?;
        rows::usage(&row)
    }

    /// Marks a workspace for deletion (the controller finishes it); idempotent.
    pub async fn request_workspace_deletion(&mut self, id: &str, keep_files: bool) -> Result<()> {
        let now = now_millis();
        sqlx::query(
            "UPDATE workspaces SET deletion_requested_at = $2, updated_at = $2, \
             keep_files = $3, generation = generation + 1 \
             WHERE id = $1 AND deletion_requested_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(i64::from(keep_files))
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("delete workspace", "workspace"))?;
        self.changed(Change::Spec(id.into()));
        Ok(())
    }

    /// Writes what the controller observed, for the generation it acted on,
    /// and where the proxy sends the workspace's traffic (`None` unless it is
    /// running). A new state is recorded in the workspace's history
    /// ([`crate::Store::workspace_events`]) with the status message.
    pub async fn set_workspace_status(
        &mut self,
        id: &str,
        status: &WorkspaceStatus,
        observed_generation: i64,
        upstream: Option<&Upstream>,
    ) -> Result<()> {
        self.changed(Change::Status(id.into()));
        let upstream = upstream.map(Upstream::to_string);
        let now = now_millis();
        let json = serde_json::to_string(status).expect("a status always serializes");
        let update = |sql| {
            sqlx::query(sql)
                .bind(id)
                .bind(status.state.as_str())
                .bind(json.as_str())
                .bind(observed_generation)
                .bind(now)
                .bind(upstream.clone())
        };
        // First as a change of state, then (if the state stays) as it is. On
        // PostgreSQL the first UPDATE locks the row, and a concurrent writer of
        // the same state then finds no change: a change is recorded once.
        let changed = update(
            "UPDATE workspaces SET state = $2, status = $3, observed_generation = $4, \
             updated_at = $5, upstream = $6 WHERE id = $1 AND state <> $2",
        )
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("write workspace status", "workspace"))?
        .rows_affected()
            > 0;
        if changed {
            let message = status.message.as_deref().unwrap_or("");
            return self
                .record_state_change(id, now, status.state, message)
                .await;
        }
        let done = update(
            "UPDATE workspaces SET state = $2, status = $3, observed_generation = $4, \
             updated_at = $5, upstream = $6 WHERE id = $1",
        )
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("write workspace status", "workspace"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "workspace" });
        }
        Ok(())
    }

    /// Appends a state change to a workspace's history and drops what falls
    /// beyond the latest [`EVENTS_KEPT`].
    async fn record_state_change(
        &mut self,
        workspace_id: &str,
        at: i64,
        state: WorkspaceState,
        message: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO workspace_events (id, workspace_id, at, state, message) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(workspace_id)
        .bind(at)
        .bind(state.as_str())
        .bind(message)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("record workspace event", "workspace event"))?;
        sqlx::query(
            "DELETE FROM workspace_events WHERE workspace_id = $1 AND id NOT IN \
             (SELECT id FROM workspace_events WHERE workspace_id = $1 \
              ORDER BY at DESC, id DESC LIMIT $2)",
        )
        .bind(workspace_id)
        .bind(EVENTS_KEPT)
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("trim workspace events", "workspace event"))?;
        Ok(())
    }

    /// Removes a workspace record for good (the controller, after cleaning up).
    pub async fn remove_workspace(&mut self, id: &str) -> Result<()> {
        self.credentials_changed();
        self.changed(Change::Status(id.into()));
        self.delete_by_id("DELETE FROM workspaces WHERE id = $1", id, "workspace")
            .await
    }
}

/// Rows a multi-row `INSERT` writes at most: well under SQLite's limit of
/// 32,766 bound values with a dozen columns.
const ROWS_PER_INSERT: usize = 500;

/// `($1, …, $columns), ($columns+1, …), …`: `rows` rows of placeholders.
fn values(rows: usize, columns: usize) -> String {
    values_with(rows, columns, "")
}

/// [`values`] with `constants` (`", 0"`) after each row's placeholders.
fn values_with(rows: usize, columns: usize, constants: &str) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * columns + c + 1));
        }
        sql.push_str(constants);
        sql.push(')');
    }
    sql
}
