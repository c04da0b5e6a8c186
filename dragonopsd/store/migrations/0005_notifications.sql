-- Notification channels: where DOWN / UP / certificate events are delivered.

-- events and scope are JSON (which events, which monitors); config is the kind's JSON settings.
-- config holds credentials (webhook URLs, signing secrets, SMTP passwords): the API masks them
-- on the way out and nothing logs a row.
CREATE TABLE notification_channels (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1,
    events       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    config       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
