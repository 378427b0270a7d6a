-- Shares: a workspace's owner lets another user, or a group's members, use it
-- (JupyterHub's shares: `access:servers!server=owner/name` for them). One row
-- per (workspace, user) or (workspace, group); they go with either side.
CREATE TABLE shares (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    group_id TEXT REFERENCES groups(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, user_id),
    UNIQUE (workspace_id, group_id)
);
CREATE INDEX shares_user ON shares(user_id);
CREATE INDEX shares_group ON shares(group_id);
