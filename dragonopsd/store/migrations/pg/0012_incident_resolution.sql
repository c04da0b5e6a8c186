-- PostgreSQL version of ../0012_incident_resolution.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- How an incident ended when it was not a plain recovery: "monitor paused", "up again after
-- flapping". NULL for an incident still open or closed by the monitor coming back up.
ALTER TABLE incidents ADD COLUMN resolution TEXT;
