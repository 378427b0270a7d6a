-- OAuth: every workspace is an OAuth client of berth (JupyterHub's per-server
-- clients). Its app gets a token of its own ('server') at each start, which is
-- also the client's secret; browsers that log in to it get 'oauth' tokens issued
-- through the authorization-code flow. Both go with the workspace.
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
ALTER TABLE tokens ADD COLUMN workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE;
CREATE INDEX tokens_workspace ON tokens(workspace_id);

-- Authorization codes waiting to be exchanged for a token (single use, short-lived).
CREATE TABLE oauth_codes (
    hash TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    scopes TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
