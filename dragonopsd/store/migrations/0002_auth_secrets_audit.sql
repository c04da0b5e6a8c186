-- API tokens, JWT profiles, encrypted secrets, settings and the audit log.

-- Only a SHA-256 of each token is kept; tokens are 256 random bits, so a slow hash adds nothing.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    created_by   TEXT
) STRICT;

-- One row per JWT subject, created on its first valid token (Supabase's on_auth_user_created).
CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    email        TEXT,
    role         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

-- value is AES-256-GCM: nonce || ciphertext+tag, sealed with key key_id; the associated data
-- binds id, key, env and key_id, so a ciphertext copied to another row does not open.
CREATE TABLE secrets (
    id           TEXT PRIMARY KEY,
    key          TEXT NOT NULL,
    env          TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    value        BLOB NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    description  TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (key, env)
) STRICT;
CREATE INDEX secrets_key_id ON secrets(key_id);

CREATE TABLE settings (
    id           TEXT PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    value        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    actor_kind   TEXT NOT NULL,
    role         TEXT,
    method       TEXT NOT NULL,
    route        TEXT NOT NULL,
    path         TEXT NOT NULL,
    entity       TEXT,
    entity_id    TEXT,
    request_id   TEXT NOT NULL,
    status       INTEGER NOT NULL,
    outcome      TEXT NOT NULL
) STRICT;
CREATE INDEX audit_at ON audit_log(at);
CREATE INDEX audit_entity ON audit_log(entity, entity_id);
CREATE INDEX audit_actor ON audit_log(actor);
