-- What the culler does with an idle workspace: 'stop' it, or 'pause' it (freeze its
-- processes; resuming is instant).
ALTER TABLE profiles ADD COLUMN idle_action TEXT NOT NULL DEFAULT 'stop';
