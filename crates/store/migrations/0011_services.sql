-- JupyterHub's services: non-human identities with their own tokens (the idle
-- culler, other tools). A service is a row of `users` with kind 'service', so
-- that tokens, audit records and scopes work alike; every query about people
-- (lists, names, logins, filters, groups) takes only kind 'user'.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'user';
