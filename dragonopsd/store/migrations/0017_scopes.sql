-- Access scoped to clients: a token or a profile may be limited to some clients and projects
-- ({"clients": [...], "projects": [...]} as JSON); NULL sees every client, as before.
ALTER TABLE tokens ADD COLUMN scope TEXT;
ALTER TABLE profiles ADD COLUMN scope TEXT;
