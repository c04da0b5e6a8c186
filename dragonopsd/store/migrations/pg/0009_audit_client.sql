-- PostgreSQL version of ../0009_audit_client.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
ALTER TABLE audit_log ADD COLUMN client TEXT;
