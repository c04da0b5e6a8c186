-- PostgreSQL version of ../0001_inventory.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- The inventory hierarchy: clients -> projects -> environments -> servers.
-- Children reference parents with ON DELETE CASCADE so `?cascade=true` is one statement;
-- the API refuses a plain delete of a parent that still has children.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    description TEXT,
    tags        TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    technology  TEXT NOT NULL DEFAULT '[]',
    description TEXT,
    tags        TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE environments (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    url         TEXT,
    resources   TEXT NOT NULL DEFAULT '{}',
    description TEXT,
    tags        TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE servers (
    id             TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    type           TEXT NOT NULL,
    status         TEXT NOT NULL,
    private_ip     TEXT,
    description    TEXT,
    tags           TEXT NOT NULL DEFAULT '[]',
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- Parent lookups (include=, derived counts, filters) and keyset pagination per sort key.
CREATE INDEX projects_client ON projects(client_id, name, id);
CREATE INDEX environments_project ON environments(project_id, name, id);
CREATE INDEX servers_environment ON servers(environment_id, name, id);
CREATE INDEX servers_status ON servers(status);
CREATE INDEX clients_name ON clients(name, id);
CREATE INDEX projects_name ON projects(name, id);
CREATE INDEX environments_name ON environments(name, id);
CREATE INDEX servers_name ON servers(name, id);
