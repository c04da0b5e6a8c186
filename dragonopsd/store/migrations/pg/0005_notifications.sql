-- PostgreSQL version of ../0005_notifications.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- Notification channels: where DOWN / UP / certificate events are delivered.

-- events and scope are JSON (which events, which monitors); config is the kind's JSON settings.
-- config holds credentials (webhook URLs, signing secrets, SMTP passwords): the API masks them
-- on the way out and nothing logs a row.
CREATE TABLE notification_channels (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    enabled      BIGINT NOT NULL DEFAULT 1,
    events       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    config       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
