-- Server resource sampling: where each server's samples come from, agent tokens scoped to one
-- server, and sample history (store/samples.py, store/sample_rollups.py): raw rows for
-- [sampling] raw_hours, then minute rollups (minute_days) and hourly rollups (hourly_days).

-- simulated: a deterministic random walk; local: this host (/proc); agent: pushed by
-- `dragonopsd agent` on the host itself.
ALTER TABLE servers ADD COLUMN sampling TEXT NOT NULL DEFAULT 'simulated';

-- Agent tokens may push samples for this one server and call nothing else. No foreign key:
-- the push handler checks the server exists, and a token outliving its server is harmless.
ALTER TABLE tokens ADD COLUMN server_id TEXT;

-- The compact integer key sample rows use for a server's UUID. No foreign key, like
-- history_monitors: batched writes must not fail because a server was just deleted; the
-- maintenance job drops the history of servers that no longer exist.
CREATE TABLE sample_servers (
    seq        INTEGER PRIMARY KEY,
    server_id  TEXT NOT NULL UNIQUE
) STRICT;

-- One row per sample (~30 bytes): at in Unix milliseconds; cpu, memory, disk in 0.01 %;
-- load in 0.01; net_in, net_out in bytes per second.
CREATE TABLE samples_raw (
    server   INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    cpu      INTEGER NOT NULL,
    memory   INTEGER NOT NULL,
    load     INTEGER NOT NULL,
    disk     INTEGER NOT NULL,
    net_in   INTEGER NOT NULL,
    net_out  INTEGER NOT NULL,
    PRIMARY KEY (server, at)
) STRICT, WITHOUT ROWID;

-- Rollups, id = server seq << 24 | block number; data packs every bucket of the block (count,
-- mean and max per metric; see sample_rollups.py). 1m: a block per hour; 1h: a block per day.
CREATE TABLE samples_1m (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT;
CREATE TABLE samples_1h (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT;

-- rolled: both rollup levels hold every bucket before this time (Unix seconds, whole hours).
-- kept_<level>: rows of the level before this time have been deleted by retention.
CREATE TABLE samples_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    rolled     INTEGER NOT NULL DEFAULT 0,
    kept_raw   INTEGER NOT NULL DEFAULT 0,
    kept_1m    INTEGER NOT NULL DEFAULT 0,
    kept_1h    INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO samples_state (id) VALUES (1);
