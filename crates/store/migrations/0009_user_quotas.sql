-- User quotas: an administrator's limits for one user in place of the
-- configured default. A NULL limit is the default's; the row goes with the user.
CREATE TABLE user_quotas (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    max_workspaces BIGINT,
    max_cpu_millis BIGINT,
    max_memory_bytes BIGINT,
    updated_at BIGINT NOT NULL
);
