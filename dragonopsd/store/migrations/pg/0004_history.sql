-- PostgreSQL version of ../0004_history.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- Heartbeat history (store/history.py, store/rollups.py): raw rows for [history] raw_hours, then
-- 5-minute, hourly and daily rollups. Keyed by the monitor's integer seq with no foreign key:
-- heartbeats are written in batches that must not fail because a monitor was just deleted, and
-- deleting a monitor drops its history explicitly (HistoryQuery.delete_monitor).
--
-- auto_vacuum is left as the file was created: switching it on an existing database needs a
-- full VACUUM. Retention reaches a steady state, so freed pages are reused by new rows; the
-- maintenance job runs incremental_vacuum only on files created with auto_vacuum=INCREMENTAL.

-- One row per heartbeat: ~20 bytes. at in Unix milliseconds, latency in microseconds,
-- message only for non-up heartbeats.
CREATE TABLE history_raw (
    monitor  BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    status   BIGINT NOT NULL,
    latency  BIGINT,
    message  TEXT,
    PRIMARY KEY (monitor, at)
);

-- Every monitor with history: rollup and retention jobs walk it (one index seek per monitor).
CREATE TABLE history_monitors (
    monitor  BIGINT PRIMARY KEY
);

-- Rollups: id = monitor << 24 | block number; data packs every bucket of the block (counts per
-- status, latency sum, log-bucket histogram; see rollups.py). 5m: a block per hour; 1h: per
-- day; 1d: per 16 days.
CREATE TABLE history_5m (id BIGINT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE history_1h (id BIGINT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE history_1d (id BIGINT PRIMARY KEY, data BYTEA NOT NULL);

-- rolled_<level>: every bucket of the level before this time (Unix seconds) is stored.
-- kept_<level>: rows of the level before this time have been deleted by retention.
CREATE TABLE history_state (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    rolled_5m  BIGINT NOT NULL DEFAULT 0,
    rolled_1h  BIGINT NOT NULL DEFAULT 0,
    rolled_1d  BIGINT NOT NULL DEFAULT 0,
    kept_raw   BIGINT NOT NULL DEFAULT 0,
    kept_5m    BIGINT NOT NULL DEFAULT 0,
    kept_1h    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO history_state (id) VALUES (1);
