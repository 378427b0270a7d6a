//! berth's persistence, and the only crate that speaks SQL.
//!
//! One [`Store`] over sqlx's `Any` driver serves SQLite (the embedded default, in
//! WAL mode) and PostgreSQL with the same SQL and the same append-only migrations:
//! ids are text (UUID v7), times are BIGINT milliseconds, placeholders are `$N`,
//! and optional filters are written `CAST($n AS T) IS NULL OR ...` so that both
//! engines can type them. Mutations go through a [`Tx`], which callers finish with
//! an audit record and a commit, so that a change and its audit entry land together
//! or not at all.

mod feed;
mod rows;
mod tx;
mod write_lock;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub use feed::Change;
pub use rows::{
    Among, AuditFilter, NewProfile, NewToken, NewUser, OAuthCode, SessionRow, Usage, UserFilter,
    UserOrder, WorkspaceFilter,
};
pub use tx::{Tx, UserPatch, EVENTS_KEPT};

use model::{
    now_millis, AuditRecord, Filter, Group, Name, Profile, QuotaOverride, Share, StateChange,
    Targets, Token, User, UserId, Workspace,
};

/// A share with its workspace's owner and name, and whom it is with.
const SHARE_SELECT: &str = "SELECT s.workspace_id, s.created_at, w.name AS workspace, \
    w.owner_id, o.name AS owner, u.name AS user_name, g.name AS group_name FROM shares s \
    JOIN workspaces w ON w.id = s.workspace_id JOIN users o ON o.id = w.owner_id \
    LEFT JOIN users u ON u.id = s.user_id LEFT JOIN groups g ON g.id = s.group_id";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A store operation failed. Callers branch on `NotFound` and `Conflict`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{what} conflicts with an existing record")]
    Conflict { what: &'static str },
    #[error("open database")]
    Connect(#[source] sqlx::Error),
    #[error("migrate database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The SQLite file is not a database, or a part of one.
    #[error("{path} is not a SQLite database: {why}")]
    NotADatabase { path: String, why: String },
    #[error("{op}")]
    Query {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("decode {what}: {message}")]
    Corrupt { what: &'static str, message: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Refuses, at once, a SQLite file that is not a database or was cut short,
/// rather than letting the pool retry its connections until it times out. An
/// empty or missing file is a new database.
fn check_sqlite_file(url: &str) -> Result<()> {
    use std::io::Read;
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let not = |why: String| StoreError::NotADatabase {
        path: path.to_owned(),
        why,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(not(e.to_string())),
    };
    let len = file.metadata().map_err(|e| not(e.to_string()))?.len();
    if len == 0 {
        return Ok(());
    }
    // The header: the magic string, the page size at 16 (big-endian; 1 means
    // 65536), the page count at 28 (valid when the change counter at 24
    // matches the version-valid-for number at 92).
    let mut header = [0u8; 100];
    if len < 100 || file.read_exact(&mut header).is_err() {
        return Err(not(format!(
            "it has {len} bytes, fewer than a database header"
        )));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(not("it does not start with SQLite's header".into()));
    }
    let be32 = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    if be32(24) == be32(92) && pages > 0 && len < pages * page_size {
        return Err(not(format!(
            "it is cut short: {len} bytes of the {} its header counts",
            pages * page_size
        )));
    }
    Ok(())
}

/// Maps a driver error to a matchable [`StoreError`]: unique and foreign-key
/// violations are conflicts, everything else a failed query named by `op`.
pub(crate) fn query_error(
    op: &'static str,
    what: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() || db.is_foreign_key_violation() {
                return StoreError::Conflict { what };
            }
        }
        StoreError::Query { op, source: e }
    }
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// SQLite allows one writer: write transactions queue here instead of failing
    /// with `SQLITE_BUSY` when a deferred transaction upgrades to a write.
    write_lock: Option<Arc<write_lock::WriteLock>>,
    /// What commits changed, here and on other replicas.
    feed: Arc<feed::Feed>,
}

impl Store {
    /// Changes with every commit that changed credentials, users, groups or
    /// shares through this store (the controller's rotation of server tokens
    /// included): what a cache of who-may-do-what is valid for.
    /// Commits on other replicas count too, once their notification arrives.
    pub fn credentials_epoch(&self) -> u64 {
        self.feed.credentials_epoch()
    }

    /// What each commit changes from now on, through this store or (on
    /// PostgreSQL) any other replica's: the controller wakes on it, the route
    /// table follows it. A lagging receiver missed some: look at everything.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    /// Connects to `url` (`sqlite://PATH` or `postgres://…`) and runs the migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::Connect(sqlx::Error::Configuration(
                "database URL must start with sqlite: or postgres:".into(),
            )));
        };
        if engine == Engine::Sqlite {
            check_sqlite_file(url)?;
        }
        let url = match engine {
            Engine::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        if engine == Engine::Sqlite {
            // One connection first, so that what is wrong with the file is
            // said at once (the pool would retry until its timeout).
            use sqlx::Connection;
            let mut probe = sqlx::AnyConnection::connect(&url)
                .await
                .map_err(StoreError::Connect)?;
            probe
                .execute("SELECT count(*) FROM sqlite_master")
                .await
                .map_err(StoreError::Connect)?;
            probe.close().await.map_err(StoreError::Connect)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match engine {
                Engine::Sqlite => 8,
                Engine::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file open in this process: it cannot
            // go stale, and a ping before each query is a round trip to its
            // worker thread, as much as the query's own. PostgreSQL's are
            // sockets, which can.
            .test_before_acquire(engine == Engine::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(StoreError::Connect)?;
        if engine == Engine::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL")
                .await
                .map_err(StoreError::Connect)?;
        }
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        let feed = feed::Feed::new();
        if engine == Engine::Postgres {
            feed.listen(&url).await.map_err(StoreError::Connect)?;
        }
        Ok(Store {
            pool,
            engine,
            write_lock: (engine == Engine::Sqlite).then(Arc::default),
            feed,
        })
    }

    /// Whether the database holds no users: a fresh install.
    pub async fn is_fresh(&self) -> Result<bool> {
        Ok(self.count_users().await? == 0)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Starts a write transaction, for a request (of a person or an API
    /// client): on SQLite, ahead of background work.
    pub async fn begin(&self) -> Result<Tx> {
        let guard = match &self.write_lock {
            Some(l) => Some(l.foreground().await),
            None => None,
        };
        self.begin_locked(guard).await
    }

    /// Starts a write transaction for background work (the controller's):
    /// on SQLite, it lets the requests that wait go first, for a while
    /// (`write_lock.rs`).
    pub async fn begin_background(&self) -> Result<Tx> {
        let guard = match &self.write_lock {
            Some(l) => Some(l.background().await),
            None => None,
        };
        self.begin_locked(guard).await
    }

    async fn begin_locked(&self, guard: Option<tokio::sync::OwnedMutexGuard<()>>) -> Result<Tx> {
        // On SQLite, take the write lock at BEGIN (waiting out `busy_timeout`)
        // rather than at the first write: a deferred transaction that has read
        // cannot wait for the lock, and fails at once with "database is locked"
        // while another connection still finishes (a dropped transaction's
        // rollback runs after its guard is released).
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
        .map_err(query_error("begin transaction", "transaction"))?;
        Ok(Tx::new(tx, guard, self.engine, self.feed.clone()))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(query_error("ping", "database"))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users -------------------------------------------------------------

    pub async fn count_users(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE kind = 'user'")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("count users", "user"))?;
        row.try_get("n").map_err(|e| rows::corrupt("count", e))
    }

    pub async fn user(&self, id: &str) -> Result<User> {
        let row = sqlx::query(&format!("{} WHERE id = $1", rows::USER_SELECT))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("get user", "user"))?;
        rows::one(row, "user", rows::user)
    }

    /// A person by name (services are not users: [`Store::service`]).
    pub async fn user_by_name(&self, name: &Name) -> Result<User> {
        let row = sqlx::query(&format!(
            "{} WHERE name = $1 AND kind = 'user'",
            rows::USER_SELECT
        ))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("get user", "user"))?;
        rows::one(row, "user", rows::user)
    }

    /// The user and their password hash, for login.
    pub async fn user_credentials(&self, name: &str) -> Result<(User, Option<String>)> {
        let row = sqlx::query(&format!(
            "{} WHERE name = $1 AND kind = 'user'",
            rows::USER_SELECT
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("get user", "user"))?;
        rows::one(row, "user", |r| {
            Ok((
                rows::user(r)?,
                r.try_get("password_hash")
                    .map_err(|e| rows::corrupt("user", e))?,
            ))
        })
    }

    /// Users ordered by name, after the name `after`, at most `limit`.
    pub async fn users(&self, after: Option<&str>, limit: i64) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "{} WHERE kind = 'user' AND (CAST($1 AS TEXT) IS NULL OR name > $1) \
             ORDER BY name LIMIT $2",
            rows::USER_SELECT
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list users", "user"))?;
        rows.iter().map(rows::user).collect()
    }

    /// One page of the people `f` asks for, and how many there are in all.
    pub async fn list_users(&self, f: &UserFilter) -> Result<(Vec<User>, i64)> {
        // Placeholders: $1 only, $2 the name pattern, then the ids; the page's
        // offset and limit after them.
        let ids = f.ids.as_ref().map_or(&[][..], |(_, ids)| &ids[..]);
        let mut filter = "WHERE kind = 'user' AND (CAST($1 AS TEXT) IS NULL OR id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR LOWER(name) LIKE '%' || LOWER($2) || '%')"
            .to_owned();
        if let Some((among, _)) = &f.ids {
            let list = placeholders(3, ids.len());
            filter.push_str(match (among, ids.is_empty()) {
                (Among::In, true) => " AND 1 = 0",
                (Among::NotIn, true) => "",
                (Among::In, false) => " AND id IN (",
                (Among::NotIn, false) => " AND id NOT IN (",
            });
            if !ids.is_empty() {
                filter.push_str(&list);
                filter.push(')');
            }
        }
        let (col, dir) = (
            match f.order {
                UserOrder::Id => "id",
                UserOrder::Name => "name",
                UserOrder::LastActivity => "last_activity",
            },
            if f.descending { "DESC" } else { "ASC" },
        );
        let next = 3 + ids.len();
        // Ids and names are never NULL, and ordering by them alone lets the
        // database walk their index instead of sorting every row.
        let order = match f.order {
            UserOrder::LastActivity => {
                format!("CASE WHEN {col} IS NULL THEN 0 ELSE 1 END {dir}, {col} {dir}, name {dir}")
            }
            UserOrder::Id | UserOrder::Name => format!("{col} {dir}"),
        };
        let sql = format!(
            "{} {filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
            rows::USER_SELECT,
            next,
            next + 1
        );
        let count = format!("SELECT COUNT(*) FROM users {filter}");
        let mut q = sqlx::query(&sql)
            .bind(f.only.as_deref())
            .bind(f.name_like.as_deref());
        let mut c = sqlx::query(&count)
            .bind(f.only.as_deref())
            .bind(f.name_like.as_deref());
        for id in ids {
            q = q.bind(id.as_str());
            c = c.bind(id.as_str());
        }
        let rows = q
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list users", "user"))?;
        let users = rows.iter().map(rows::user).collect::<Result<Vec<_>>>()?;
        let total: i64 = c
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("count users", "user"))?
            .try_get(0)
            .map_err(|e| rows::corrupt("user", e))?;
        Ok((users, total))
    }

    /// The names of the groups of each of `user_ids`, as (user id, group name)
    /// by group name.
    pub async fn groups_of_users(&self, user_ids: &[&str]) -> Result<Vec<(UserId, Name)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT m.user_id, g.name FROM groups g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id IN ({}) ORDER BY g.name, m.user_id",
            placeholders(1, user_ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in user_ids {
            q = q.bind(*id);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list groups of users", "group"))?;
        rows.iter()
            .map(|r| Ok((get_id(r, "user_id", "group")?, rows::name(r, "name")?)))
            .collect()
    }

    /// Every workspace of each of `owner_ids`, oldest first.
    pub async fn workspaces_of_users(&self, owner_ids: &[&str]) -> Result<Vec<Workspace>> {
        if owner_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{} WHERE w.owner_id IN ({}) ORDER BY w.id",
            rows::WORKSPACE_SELECT,
            placeholders(1, owner_ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in owner_ids {
            q = q.bind(*id);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list workspaces of users", "workspace"))?;
        rows.iter().map(rows::workspace).collect()
    }

    /// The workspaces (of `owner_id`, if given) that may be in use: all but
    /// those stopped (or failed) with nothing asked of them. Whether one is
    /// active is the caller's to tell; none of the others is.
    pub async fn workspaces_maybe_active(&self, owner_id: Option<&str>) -> Result<Vec<Workspace>> {
        let rows = sqlx::query(&format!(
            "{} WHERE (CAST($1 AS TEXT) IS NULL OR w.owner_id = $1) \
             AND (w.state NOT IN ('stopped', 'failed') OR w.desired <> 'stopped' \
             OR w.deletion_requested_at IS NOT NULL) ORDER BY w.id",
            rows::WORKSPACE_SELECT
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list workspaces in use", "workspace"))?;
        rows.iter().map(rows::workspace).collect()
    }

    /// Which of `names` are people's (one query a thousand names).
    pub async fn users_named(&self, names: &[Name]) -> Result<Vec<Name>> {
        let mut taken = Vec::new();
        for chunk in names.chunks(1000) {
            let sql = format!(
                "SELECT name FROM users WHERE kind = 'user' AND name IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(n.as_str());
            }
            let rows = q
                .fetch_all(&self.pool)
                .await
                .map_err(query_error("look users up by name", "user"))?;
            for r in &rows {
                taken.push(rows::name(r, "name")?);
            }
        }
        Ok(taken)
    }

    /// The services, by name.
    pub async fn services(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "{} WHERE kind = 'service' ORDER BY name",
            rows::USER_SELECT
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list services", "service"))?;
        rows.iter().map(rows::user).collect()
    }

    pub async fn service(&self, name: &Name) -> Result<User> {
        let row = sqlx::query(&format!(
            "{} WHERE name = $1 AND kind = 'service'",
            rows::USER_SELECT
        ))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("get service", "service"))?;
        rows::one(row, "service", rows::user)
    }

    /// Names of the groups `user_id` belongs to.
    pub async fn groups_of(&self, user_id: &str) -> Result<Vec<Name>> {
        let rows = sqlx::query(
            "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id = $1 ORDER BY g.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list groups of user", "group"))?;
        rows.iter().map(|r| rows::name(r, "name")).collect()
    }

    // ---- groups ------------------------------------------------------------

    pub async fn group(&self, name: &Name) -> Result<Group> {
        let row =
            sqlx::query("SELECT id, name, created_at, properties FROM groups WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(query_error("get group", "group"))?;
        let mut group = rows::one(row, "group", rows::group)?;
        group.members = self.members(&group.id).await?;
        Ok(group)
    }

    /// What a scope filter reaches now: ids of the users it names (a group's
    /// members) and the servers, as (owner id, workspace name). Names that do
    /// not exist reach nothing.
    pub async fn resolve_filter(&self, filter: &Filter) -> Result<Targets> {
        let ids = |sql: &'static str, name: String| async move {
            let rows = sqlx::query(sql)
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(query_error("resolve scope filter", "user"))?;
            rows.iter()
                .map(|r| {
                    r.try_get::<String, _>(0)
                        .map_err(|e| rows::corrupt("user", e))
                })
                .collect::<Result<Vec<String>>>()
        };
        const USER: &str = "SELECT id FROM users WHERE name = $1 AND kind = 'user'";
        let mut t = Targets::default();
        match filter {
            Filter::User(u) => t.users.extend(ids(USER, u.to_string()).await?),
            Filter::Group(g) => t.users.extend(
                ids(
                    "SELECT m.user_id FROM group_members m JOIN groups g ON g.id = m.group_id \
                     WHERE g.name = $1",
                    g.to_string(),
                )
                .await?,
            ),
            Filter::Server(u, server) => {
                for id in ids(USER, u.to_string()).await? {
                    t.servers
                        .insert((id, model::hub::workspace_name(server).to_owned()));
                }
            }
        }
        Ok(t)
    }

    pub async fn groups(&self) -> Result<Vec<Group>> {
        let rows = sqlx::query("SELECT id, name, created_at, properties FROM groups ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list groups", "group"))?;
        let mut groups: Vec<Group> = rows.iter().map(rows::group).collect::<Result<_>>()?;
        for g in &mut groups {
            g.members = self.members(&g.id).await?;
        }
        Ok(groups)
    }

    async fn members(&self, group_id: &str) -> Result<Vec<Name>> {
        let rows = sqlx::query(
            "SELECT u.name FROM users u JOIN group_members m ON m.user_id = u.id \
             WHERE m.group_id = $1 ORDER BY u.name",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list group members", "group"))?;
        rows.iter().map(|r| rows::name(r, "name")).collect()
    }

    // ---- shares --------------------------------------------------------------

    /// The shares of one workspace, or (with `None`) of every workspace of
    /// `owner_id`, oldest first.
    pub async fn shares(&self, owner_id: &str, workspace_id: Option<&str>) -> Result<Vec<Share>> {
        let rows = sqlx::query(&format!(
            "{SHARE_SELECT} WHERE w.owner_id = $1 AND (CAST($2 AS TEXT) IS NULL OR s.workspace_id = $2) \
             ORDER BY s.created_at, s.id"
        ))
        .bind(owner_id)
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list shares", "share"))?;
        rows.iter().map(rows::share).collect()
    }

    /// The shares that reach `user_id`: with them, or with a group of theirs.
    pub async fn shared_with(&self, user_id: &str) -> Result<Vec<Share>> {
        let rows = sqlx::query(&format!(
            "{SHARE_SELECT} WHERE s.user_id = $1 OR s.group_id IN \
             (SELECT group_id FROM group_members WHERE user_id = $1) ORDER BY s.created_at, s.id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list shares", "share"))?;
        rows.iter().map(rows::share).collect()
    }

    // ---- tokens and sessions ------------------------------------------------

    pub async fn tokens(&self, user_id: &str) -> Result<Vec<Token>> {
        let rows = sqlx::query(&format!(
            "{} WHERE user_id = $1 ORDER BY id",
            rows::TOKEN_SELECT
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list tokens", "token"))?;
        rows.iter().map(rows::token).collect()
    }

    /// The token with this hash and its owner, if it exists (expiry is the caller's check).
    pub async fn token_by_hash(&self, hash: &str) -> Result<(Token, User)> {
        let row = sqlx::query(
            "SELECT t.id AS t_id, t.user_id AS t_user_id, t.prefix, t.note, t.scopes, \
             t.created_at AS t_created_at, t.expires_at, t.last_used_at, t.kind, \
             t.workspace_id, u.id, u.name, \
             u.password_hash, u.is_admin, u.disabled, u.created_at, u.last_activity, u.kind AS user_kind \
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("get token", "token"))?;
        rows::one(row, "token", |r| {
            Ok((rows::token_prefixed(r)?, rows::user(r)?))
        })
    }

    /// Records that a token was used, at most once a minute per token. A write
    /// like any other: in a transaction, so that on SQLite it waits its turn.
    /// Records a use of token `id` of user `user_id` at `now`: the token's
    /// `last_used` and the user's `last_activity`.
    pub async fn touch_token(&self, id: &str, user_id: &str, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.touch_token(id, now).await?;
        tx.record_user_activity(user_id, now).await?;
        tx.commit().await
    }

    pub async fn session_by_hash(&self, hash: &str) -> Result<(SessionRow, User)> {
        let row = sqlx::query(
            "SELECT s.csrf, s.expires_at AS s_expires_at, u.id, u.name, u.password_hash, \
             u.is_admin, u.disabled, u.created_at, u.last_activity, u.kind AS user_kind \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("get session", "session"))?;
        rows::one(row, "session", |r| {
            let s = SessionRow {
                csrf: r.try_get("csrf").map_err(|e| rows::corrupt("session", e))?,
                expires_at: r
                    .try_get("s_expires_at")
                    .map_err(|e| rows::corrupt("session", e))?,
            };
            Ok((s, rows::user(r)?))
        })
    }

    // ---- profiles ----------------------------------------------------------

    pub async fn profile(&self, name: &Name) -> Result<Profile> {
        let row = sqlx::query(&format!("{} WHERE name = $1", rows::PROFILE_SELECT))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("get profile", "profile"))?;
        rows::one(row, "profile", rows::profile)
    }

    pub async fn profiles(&self) -> Result<Vec<Profile>> {
        let rows = sqlx::query(&format!("{} ORDER BY name", rows::PROFILE_SELECT))
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list profiles", "profile"))?;
        rows.iter().map(rows::profile).collect()
    }

    // ---- quotas ------------------------------------------------------------

    /// The limits an admin gave `user_id`, if any.
    pub async fn quota_override(&self, user_id: &str) -> Result<Option<QuotaOverride>> {
        let row = sqlx::query(&format!("{} WHERE user_id = $1", rows::QUOTA_SELECT))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("get user quota", "user quota"))?;
        row.as_ref().map(rows::quota_override).transpose()
    }

    /// What counts against `owner_id`'s quota now (the check itself reads it
    /// with [`Tx::usage`]).
    pub async fn usage(&self, owner_id: &str) -> Result<Usage> {
        let row = sqlx::query(rows::USAGE_SELECT)
            .bind(owner_id)
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("sum usage", "workspace"))?;
        rows::usage(&row)
    }

    /// Every user's own limits, by user id.
    pub async fn quota_overrides(&self) -> Result<HashMap<String, QuotaOverride>> {
        let rows = sqlx::query(rows::QUOTA_SELECT)
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list user quotas", "user quota"))?;
        rows.iter()
            .map(|r| Ok((get(r, "user_id", "user quota")?, rows::quota_override(r)?)))
            .collect()
    }

    // ---- workspaces --------------------------------------------------------

    pub async fn workspace(&self, id: &str) -> Result<Workspace> {
        let row = sqlx::query(&format!("{} WHERE w.id = $1", rows::WORKSPACE_SELECT))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("get workspace", "workspace"))?;
        rows::one(row, "workspace", rows::workspace)
    }

    /// Workspaces matching `f`, ordered by id (creation time), after `f.after`.
    pub async fn workspaces(&self, f: &WorkspaceFilter) -> Result<Vec<Workspace>> {
        let rows = sqlx::query(&format!(
            "{} WHERE (CAST($1 AS TEXT) IS NULL OR w.owner_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR w.state = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR p.name = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR w.name = $4) \
             AND (CAST($5 AS TEXT) IS NULL OR w.id > $5) \
             ORDER BY w.id LIMIT $6",
            rows::WORKSPACE_SELECT
        ))
        .bind(f.owner_id.as_deref())
        .bind(f.state.map(|s| s.as_str()))
        .bind(f.profile.as_ref().map(Name::as_str))
        .bind(f.name.as_ref().map(Name::as_str))
        .bind(f.after.as_deref())
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list workspaces", "workspace"))?;
        rows.iter().map(rows::workspace).collect()
    }

    /// Every workspace of `owner_id` (a user holds a few: quotas bound them).
    pub async fn workspaces_of(&self, owner_id: &str) -> Result<Vec<Workspace>> {
        self.workspaces(&WorkspaceFilter {
            owner_id: Some(owner_id.to_owned()),
            limit: 10_000,
            ..Default::default()
        })
        .await
    }

    /// Every workspace (of `owner_id`, if given), oldest first, read a page
    /// at a time.
    pub async fn all_workspaces(&self, owner_id: Option<&str>) -> Result<Vec<Workspace>> {
        const PAGE: i64 = 1000;
        let mut all = Vec::new();
        loop {
            let page = self
                .workspaces(&WorkspaceFilter {
                    owner_id: owner_id.map(str::to_owned),
                    after: all.last().map(|w: &Workspace| w.id.to_string()),
                    limit: PAGE,
                    ..Default::default()
                })
                .await?;
            let more = page.len() as i64 == PAGE;
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }

    /// The ids of every workspace, for the controller's periodic resync.
    pub async fn workspace_ids(&self) -> Result<Vec<model::WorkspaceId>> {
        let rows = sqlx::query("SELECT id FROM workspaces ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("list workspace ids", "workspace"))?;
        rows.iter()
            .map(|r| get::<String>(r, "id", "workspace").map(Into::into))
            .collect()
    }

    /// The latest `limit` changes of a workspace's state, newest first; empty
    /// for a workspace that does not exist. At most [`EVENTS_KEPT`] are kept.
    pub async fn workspace_events(
        &self,
        workspace_id: &str,
        limit: i64,
    ) -> Result<Vec<StateChange>> {
        let rows = sqlx::query(
            "SELECT at, state, message FROM workspace_events WHERE workspace_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(workspace_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list workspace events", "workspace event"))?;
        rows.iter().map(rows::state_change).collect()
    }

    /// How long each workspace has been running in its kept history (the
    /// latest [`EVENTS_KEPT`] changes), counting a span still running up to
    /// `now`: the workspaces of `owner_id`, or the one `workspace_id`, or all.
    /// Workspaces that never ran are absent.
    pub async fn running_millis(
        &self,
        owner_id: Option<&str>,
        workspace_id: Option<&str>,
        now: i64,
    ) -> Result<HashMap<String, u64>> {
        let rows = sqlx::query(
            "SELECT workspace_id, CAST(SUM(CASE WHEN state = 'running' AND COALESCE(next_at, $3) > at \
             THEN COALESCE(next_at, $3) - at ELSE 0 END) AS BIGINT) AS running FROM ( \
             SELECT e.workspace_id, e.state, e.at, \
             LEAD(e.at) OVER (PARTITION BY e.workspace_id ORDER BY e.at, e.id) AS next_at \
             FROM workspace_events e JOIN workspaces w ON w.id = e.workspace_id \
             WHERE (CAST($1 AS TEXT) IS NULL OR w.owner_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR w.id = $2)) spans \
             GROUP BY workspace_id",
        )
        .bind(owner_id)
        .bind(workspace_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("sum running time", "workspace event"))?;
        let mut out = HashMap::new();
        for r in &rows {
            let ms: i64 = get(r, "running", "workspace event")?;
            if ms > 0 {
                out.insert(get(r, "workspace_id", "workspace event")?, ms as u64);
            }
        }
        Ok(out)
    }

    // ---- audit -------------------------------------------------------------

    /// Audit records matching `f`, newest first, older than the cursor `f.before`.
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, actor_id, actor, action, target_type, target, outcome, source, \
             request_id, detail FROM audit_log \
             WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR action = $2 OR action LIKE $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR at >= $4) \
             AND (CAST($5 AS BIGINT) IS NULL OR at < $5) \
             AND (CAST($6 AS TEXT) IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $7",
        )
        .bind(f.actor.as_deref())
        .bind(f.action.as_deref())
        .bind(f.action.as_ref().map(|a| format!("{a}.%")))
        .bind(f.since)
        .bind(f.until)
        .bind(f.before.as_deref())
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("list audit records", "audit record"))?;
        rows.iter().map(rows::audit).collect()
    }

    /// Writes one audit record outside any transaction (denied or failed attempts).
    pub async fn audit_alone(&self, a: &model::AuditEntry) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.audit(a).await?;
        tx.commit().await
    }

    // ---- leases ------------------------------------------------------------

    /// Who holds lease `name`, and its version (bumped by every renewal).
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let row = sqlx::query("SELECT holder, version, renewed_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("read lease", "lease"))?;
        row.map(|r| {
            Ok(Lease {
                holder: get(&r, "holder", "lease")?,
                version: get(&r, "version", "lease")?,
                renewed_at: get(&r, "renewed_at", "lease")?,
            })
        })
        .transpose()
    }

    /// Takes lease `name` for `holder`: a free one, or (with `seen`) the one
    /// whose version is still `seen`. Whether it was taken: of two replicas
    /// that try at once, one gets it.
    pub async fn claim_lease(&self, name: &str, holder: &str, seen: Option<i64>) -> Result<bool> {
        let query = match seen {
            None => sqlx::query(
                "INSERT INTO leases (name, holder, version, renewed_at) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (name) DO NOTHING",
            ),
            Some(_) => sqlx::query(
                "UPDATE leases SET holder = $2, version = version + 1, renewed_at = $3 \
                 WHERE name = $1 AND version = $4",
            ),
        }
        .bind(name)
        .bind(holder)
        .bind(now_millis());
        self.lease_write(match seen {
            None => query,
            Some(version) => query.bind(version),
        })
        .await
    }

    /// Renews lease `name` if `holder` still holds it; whether it does.
    pub async fn renew_lease(&self, name: &str, holder: &str) -> Result<bool> {
        let query = sqlx::query(
            "UPDATE leases SET version = version + 1, renewed_at = $3 \
             WHERE name = $1 AND holder = $2",
        );
        self.lease_write(query.bind(name).bind(holder).bind(now_millis()))
            .await
    }

    /// Gives lease `name` up if `holder` holds it, for another to take at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let query = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2");
        self.lease_write(query.bind(name).bind(holder)).await?;
        Ok(())
    }

    /// Runs one write on the leases in a transaction of its own (on SQLite,
    /// queued with the other writers); whether it changed a row.
    async fn lease_write<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let changed = tx.execute(query, "write lease").await? > 0;
        tx.commit().await?;
        Ok(changed)
    }
}

/// A lease's row: who holds it, and how often it was renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub version: i64,
    /// When it was last renewed, by the holder's clock (for people to read;
    /// replicas judge a lease by its version standing still).
    pub renewed_at: model::Millis,
}

pub(crate) fn get<T>(r: &AnyRow, col: &str, what: &'static str) -> Result<T>
where
    T: for<'a> sqlx::Decode<'a, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    r.try_get(col).map_err(|e| rows::corrupt(what, e))
}

/// An id column as its type ([`model::WorkspaceId`], [`model::UserId`], …).
/// `$first, $first+1, …`: `n` placeholders for a list.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn get_id<T: From<String>>(r: &AnyRow, col: &str, what: &'static str) -> Result<T> {
    get::<String>(r, col, what).map(T::from)
}
