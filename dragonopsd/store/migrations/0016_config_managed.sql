-- Maintenance windows and notification channels declared in the config file ([[maintenance]],
-- [[notifications]]) are synced like [[monitors]]: 'config' rows belong to the file, and the
-- API refuses to change them.
ALTER TABLE maintenance_windows ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api'
    CHECK (managed_by IN ('api', 'config'));
ALTER TABLE notification_channels ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api'
    CHECK (managed_by IN ('api', 'config'));
