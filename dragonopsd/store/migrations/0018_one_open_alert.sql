-- At most one open alert incident per rule and server: the core that opens the row is the one
-- that notifies (with several cores two could take the same breach for new, and each opened and
-- notified its own). Duplicates left by that are closed first, the earliest opened one stays
-- open; a duplicate closes as it opened, with a resolution that says why.
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
