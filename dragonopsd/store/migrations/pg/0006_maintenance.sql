-- PostgreSQL version of ../0006_maintenance.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- Maintenance windows: a one-off interval or a recurring cron schedule, scoped to inventory.
-- The daemon keeps every window in memory (the probe hot path checks them), so no indexes.

CREATE TABLE maintenance_windows (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    description  TEXT,
    enabled      BIGINT NOT NULL DEFAULT 1,
    kind         TEXT NOT NULL CHECK (kind IN ('one-off', 'recurring')),
    -- one-off: ISO 8601 UTC, end exclusive
    starts_at    TEXT,
    ends_at      TEXT,
    -- recurring: 5-field cron in an IANA time zone, each occurrence lasting duration seconds,
    -- optionally only for occurrences starting within [active_from, active_until)
    cron         TEXT,
    timezone     TEXT,
    duration     BIGINT,
    active_from  TEXT,
    active_until TEXT,
    -- JSON: {"all": bool, "monitorIds": [...], "serverIds": [...], "environmentIds": [...],
    --        "projectIds": [...], "clientIds": [...]}
    scope        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CHECK ((kind = 'one-off' AND starts_at IS NOT NULL AND ends_at IS NOT NULL AND cron IS NULL)
        OR (kind = 'recurring' AND cron IS NOT NULL AND timezone IS NOT NULL
            AND duration > 0 AND starts_at IS NULL AND ends_at IS NULL))
);
