-- Set with a deletion request: release the workspace but keep its files (0/1).
ALTER TABLE workspaces ADD COLUMN keep_files BIGINT NOT NULL DEFAULT 0;
