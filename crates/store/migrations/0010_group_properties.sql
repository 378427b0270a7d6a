-- A group's properties: a JSON object, as JupyterHub's groups have (the hub API
-- stores and returns them; berth itself reads none).
ALTER TABLE groups ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';
