-- Incidents people write, and what people add to any incident: updates and acknowledgements.

-- An incident an operator opens by hand on monitors, servers or a whole environment, project
-- or client. It closes when an update says "resolved", and re-opens when a later one does not.
CREATE TABLE manual_incidents (
    id               TEXT PRIMARY KEY,
    title            TEXT NOT NULL,
    severity         TEXT NOT NULL CHECK (severity IN ('minor', 'major', 'critical')),
    state            TEXT NOT NULL
                     CHECK (state IN ('investigating', 'identified', 'monitoring', 'resolved')),
    opened_by        TEXT NOT NULL,
    opened_at        TEXT NOT NULL,
    closed_at        TEXT,
    duration_seconds REAL
) STRICT;
CREATE INDEX manual_incidents_opened ON manual_incidents(opened_at, id);
CREATE INDEX manual_incidents_open ON manual_incidents(closed_at) WHERE closed_at IS NULL;

-- What a manual incident is about. target_id is no foreign key: it names a row of one of five
-- tables, and the incident outlives what it was about (its story stays readable).
CREATE TABLE manual_incident_targets (
    incident_id TEXT NOT NULL REFERENCES manual_incidents(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL
                CHECK (kind IN ('monitor', 'server', 'environment', 'project', 'client')),
    target_id   TEXT NOT NULL,
    PRIMARY KEY (incident_id, kind, target_id)
) STRICT;
CREATE INDEX manual_incident_targets_target ON manual_incident_targets(kind, target_id);

-- The story of an incident, manual or automatic: incident_id names a row of manual_incidents
-- or of incidents, hence no foreign key.
CREATE TABLE incident_updates (
    seq         INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('investigating', 'identified', 'monitoring', 'resolved')),
    message     TEXT NOT NULL,
    author      TEXT NOT NULL,
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX incident_updates_incident ON incident_updates(incident_id, seq);

-- Who acknowledged an incident and when (one row per incident; a re-open removes it).
CREATE TABLE incident_acks (
    incident_id     TEXT PRIMARY KEY,
    acknowledged_by TEXT NOT NULL,
    acknowledged_at TEXT NOT NULL
) STRICT;
