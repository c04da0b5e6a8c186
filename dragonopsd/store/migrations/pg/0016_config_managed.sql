-- PostgreSQL version of ../0015_config_managed.sql: windows and channels declared in the
-- config file ([[maintenance]], [[notifications]]) belong to it ('config'); the API refuses
-- to change them.
ALTER TABLE maintenance_windows ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api'
    CHECK (managed_by IN ('api', 'config'));
ALTER TABLE notification_channels ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api'
    CHECK (managed_by IN ('api', 'config'));
