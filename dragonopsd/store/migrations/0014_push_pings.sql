-- The last pings of each push monitor (store/pings.py): what the job said, with the body it
-- sent (at most 10 KB). Heartbeat history is compact rows and rollups with no room for a
-- body, so the ping log lives here, pruned to the newest few per monitor on every insert.
CREATE TABLE push_pings (
    id          INTEGER PRIMARY KEY,
    monitor     INTEGER NOT NULL REFERENCES monitors(seq) ON DELETE CASCADE,
    at          REAL NOT NULL,
    kind        TEXT NOT NULL,
    exit_code   INTEGER,
    duration    REAL,
    message     TEXT,
    body        TEXT,
    truncated   INTEGER NOT NULL DEFAULT 0,
    method      TEXT NOT NULL,
    source      TEXT,
    user_agent  TEXT
) STRICT;
CREATE INDEX push_pings_monitor ON push_pings(monitor, id);
