-- Several replicas on one database.
--
-- Where the proxy sends a running workspace's traffic, written by the
-- controller with the status: every replica's proxy routes from it.
ALTER TABLE workspaces ADD COLUMN upstream TEXT;

-- Who does what only one replica may do (the controller): a holder that renews
-- its lease, bumping `version`; another replica takes the lease over when it
-- has seen the version stand still for a lease's length.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    version BIGINT NOT NULL,
    renewed_at BIGINT NOT NULL
);
