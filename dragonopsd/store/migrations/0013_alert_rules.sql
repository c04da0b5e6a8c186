-- Resource alert rules on server samples, and the incidents they open on servers.

-- A rule targets one server, environment, project or client (at most one column set), or every
-- server when none is. Rules from [[alert_rules]] in the config file are not stored here: the
-- daemon keeps them in memory and re-reads them on SIGHUP.
CREATE TABLE alert_rules (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    metric         TEXT NOT NULL CHECK (metric IN ('cpu', 'memory', 'disk', 'load', 'no-samples')),
    threshold      REAL,
    duration       INTEGER NOT NULL,
    enabled        INTEGER NOT NULL DEFAULT 1,
    server_id      TEXT REFERENCES servers(id) ON DELETE CASCADE,
    environment_id TEXT REFERENCES environments(id) ON DELETE CASCADE,
    project_id     TEXT REFERENCES projects(id) ON DELETE CASCADE,
    client_id      TEXT REFERENCES clients(id) ON DELETE CASCADE,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

-- rule_id is not a foreign key: config rules live in memory only, and an incident outlives
-- the rule that opened it (it is closed, with a resolution, when the rule goes).
CREATE TABLE alert_incidents (
    id               TEXT PRIMARY KEY,
    server_id        TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    rule_id          TEXT NOT NULL,
    rule_name        TEXT NOT NULL,
    metric           TEXT NOT NULL,
    opened_at        TEXT NOT NULL,
    closed_at        TEXT,
    duration_seconds REAL,
    cause            TEXT NOT NULL,
    root_cause       TEXT,
    resolution       TEXT
) STRICT;
CREATE INDEX alert_incidents_server ON alert_incidents(server_id, opened_at);
CREATE INDEX alert_incidents_open ON alert_incidents(closed_at) WHERE closed_at IS NULL;
