-- Each user's workspaces run as one unprivileged uid, allocated by berth on the
-- user's first start and never reused.
ALTER TABLE users ADD COLUMN uid BIGINT;
CREATE UNIQUE INDEX users_uid ON users(uid);
