-- PostgreSQL version of ../0011_sealed_channels.sql: the same tables, in PostgreSQL's types (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, DOUBLE PRECISION for REAL; ids the engine assigns are identities).
-- Channel credentials sealed with the secrets key ring (store/channel_seal.py): the webhook
-- URL, signing secret and SMTP password leave config for sealed, under key_id. Both stay NULL
-- for a row in clear (no key configured yet); the daemon seals such rows when it starts with
-- a key, so existing rows are sealed on the first start after this migration.
ALTER TABLE notification_channels ADD COLUMN key_id TEXT;
ALTER TABLE notification_channels ADD COLUMN sealed BYTEA;
CREATE INDEX notification_channels_key ON notification_channels(key_id);
