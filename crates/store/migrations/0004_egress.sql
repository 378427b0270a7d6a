-- Whether a profile's workspaces may reach the network beyond berth's API (0/1).
-- Profiles made before this column existed keep what they had: no egress.
ALTER TABLE profiles ADD COLUMN egress BIGINT NOT NULL DEFAULT 0;
