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
    monitor  INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    status   INTEGER NOT NULL,
    latency  INTEGER,
    message  TEXT,
    PRIMARY KEY (monitor, at)
) STRICT, WITHOUT ROWID;

-- Every monitor with history: rollup and retention jobs walk it (one index seek per monitor).
CREATE TABLE history_monitors (
    monitor  INTEGER PRIMARY KEY
) STRICT;

-- Rollups: id = monitor << 24 | block number; data packs every bucket of the block (counts per
-- status, latency sum, log-bucket histogram; see rollups.py). 5m: a block per hour; 1h: per
-- day; 1d: per 16 days.
CREATE TABLE history_5m (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT;
CREATE TABLE history_1h (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT;
CREATE TABLE history_1d (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT;

-- rolled_<level>: every bucket of the level before this time (Unix seconds) is stored.
-- kept_<level>: rows of the level before this time have been deleted by retention.
CREATE TABLE history_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_5m  INTEGER NOT NULL DEFAULT 0,
    rolled_1h  INTEGER NOT NULL DEFAULT 0,
    rolled_1d  INTEGER NOT NULL DEFAULT 0,
    kept_raw   INTEGER NOT NULL DEFAULT 0,
    kept_5m    INTEGER NOT NULL DEFAULT 0,
    kept_1h    INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO history_state (id) VALUES (1);
