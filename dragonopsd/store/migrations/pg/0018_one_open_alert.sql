-- PostgreSQL version of ../0018_one_open_alert.sql (the same statements): at most one open
-- alert incident per rule and server, so the core that opens the row is the one that notifies.
-- Duplicates are closed first, the earliest opened one stays open.
UPDATE alert_incidents
SET closed_at = opened_at,
    duration_seconds = 0,
    resolution = 'duplicate of an earlier open incident of the same rule on the server'
WHERE closed_at IS NULL
  AND EXISTS (
    SELECT 1 FROM alert_incidents AS earlier
    WHERE earlier.closed_at IS NULL
      AND earlier.rule_id = alert_incidents.rule_id
      AND earlier.server_id = alert_incidents.server_id
      AND (earlier.opened_at < alert_incidents.opened_at
           OR (earlier.opened_at = alert_incidents.opened_at AND earlier.id < alert_incidents.id))
  );
CREATE UNIQUE INDEX alert_incidents_one_open ON alert_incidents(rule_id, server_id)
    WHERE closed_at IS NULL;
