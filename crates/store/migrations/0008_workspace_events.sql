-- Workspace events: each change of a workspace's observed state, with the status
-- message written with it, for the workspace's history. The store keeps the
-- latest 200 per workspace; they go with the workspace.
CREATE TABLE workspace_events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX workspace_events_workspace ON workspace_events(workspace_id, at);
