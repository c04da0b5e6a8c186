-- PostgreSQL version of ../0008_actions.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- Server actions (restart / stop / start): the queue's durable copy and their history.
-- A row is written before the API answers 202, so an acknowledged action survives any crash;
-- at start the daemon re-enqueues 'queued' rows and fails 'running' ones (see actions.py).

CREATE TABLE actions (
    id              TEXT PRIMARY KEY,
    -- An action belongs to its server: deleting the server deletes its history too.
    server_id       TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    action          TEXT NOT NULL CHECK (action IN ('restart', 'stop', 'start')),
    state           TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    -- The server's status when the action was accepted: restored when it fails or is cut short.
    previous_status TEXT NOT NULL,
    error           TEXT,
    -- What the executor answered (a webhook's response body, truncated).
    result          TEXT,
    requested_by    TEXT NOT NULL,
    -- Idempotency-Key as sent, scoped to requested_by, with a hash of what it was sent with.
    idempotency_key TEXT,
    request_hash    TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    updated_at      TEXT NOT NULL
);

-- At most one pending action per server: the API's 409 check, enforced by the file as well.
CREATE UNIQUE INDEX actions_one_pending ON actions(server_id)
    WHERE state IN ('queued', 'running');
CREATE UNIQUE INDEX actions_idempotency ON actions(requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- GET /api/actions?serverId= newest first, and the unfiltered list.
CREATE INDEX actions_server ON actions(server_id, created_at, id);
CREATE INDEX actions_created ON actions(created_at, id);
