-- Monitors, their last known state, and incidents.

-- seq is the compact integer key history rows use; id is the public UUID. The full spec is one
-- JSON document (validated by MonitorSpec); the columns beside it are what queries filter on.
CREATE TABLE monitors (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    enabled        INTEGER NOT NULL,
    managed_by     TEXT NOT NULL DEFAULT 'api',
    server_id      TEXT REFERENCES servers(id) ON DELETE SET NULL,
    environment_id TEXT REFERENCES environments(id) ON DELETE SET NULL,
    push_token     TEXT UNIQUE,
    spec           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE INDEX monitors_name ON monitors(name, id);
CREATE INDEX monitors_server ON monitors(server_id);
CREATE INDEX monitors_environment ON monitors(environment_id);

-- Written on status transitions only (not per check), so a restart resumes where it stood.
CREATE TABLE monitor_state (
    seq          INTEGER PRIMARY KEY REFERENCES monitors(seq) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    since        TEXT NOT NULL,
    message      TEXT
) STRICT;

CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    monitor_id       TEXT NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
    monitor_name     TEXT NOT NULL,
    opened_at        TEXT NOT NULL,
    closed_at        TEXT,
    duration_seconds REAL,
    cause            TEXT NOT NULL,
    root_cause       TEXT,
    locations        TEXT NOT NULL DEFAULT '[]'
) STRICT;
CREATE INDEX incidents_monitor ON incidents(monitor_id, opened_at);
CREATE INDEX incidents_open ON incidents(closed_at) WHERE closed_at IS NULL;
CREATE INDEX incidents_opened ON incidents(opened_at, id);
