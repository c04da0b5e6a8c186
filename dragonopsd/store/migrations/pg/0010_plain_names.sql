-- PostgreSQL version of ../0010_plain_names.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- SQLite's 0010 rewrote names stored by older builds (control characters to spaces). A
-- PostgreSQL database only ever holds rows written by builds that clean names on the way
-- in (or copied from a migrated SQLite file), so there is nothing to rewrite here.
SELECT 1;
