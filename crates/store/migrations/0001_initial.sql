-- berth's initial schema. Append-only: never edit an applied migration, add a new one.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL (text ids, BIGINT millis,
-- flags as BIGINT 0/1 because sqlx's Any driver cannot decode SQLite booleans).

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    is_admin BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_activity BIGINT
);

CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    note TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX tokens_user ON tokens(user_id);

CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    cpu_millis BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    max_processes BIGINT NOT NULL,
    disk_quota_bytes BIGINT NOT NULL,
    idle_timeout_secs BIGINT,
    max_lifetime_secs BIGINT,
    cost_per_hour_micros BIGINT NOT NULL,
    start_timeout_secs BIGINT NOT NULL,
    app TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    profile_id TEXT NOT NULL REFERENCES profiles(id),
    desired TEXT NOT NULL,
    generation BIGINT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    observed_generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_activity BIGINT,
    deletion_requested_at BIGINT,
    UNIQUE (owner_id, name)
);
CREATE INDEX workspaces_state ON workspaces(state);
CREATE INDEX workspaces_profile ON workspaces(profile_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor TEXT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    source TEXT,
    request_id TEXT,
    detail TEXT
);
CREATE INDEX audit_actor ON audit_log(actor, id);
CREATE INDEX audit_action ON audit_log(action, id);
