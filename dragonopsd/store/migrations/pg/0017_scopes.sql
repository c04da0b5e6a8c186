-- PostgreSQL version of ../0017_scopes.sql: a token or a profile may be limited to some
-- clients and projects ({"clients": [...], "projects": [...]} as JSON); NULL sees every client.
ALTER TABLE tokens ADD COLUMN scope TEXT;
ALTER TABLE profiles ADD COLUMN scope TEXT;
