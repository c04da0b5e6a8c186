-- Where each audited call came from (the client address, resolved behind trusted proxies).
ALTER TABLE audit_log ADD COLUMN client TEXT;

-- Entries used to keep the whole request path: a push monitor's token sat there in clear,
-- and anonymous callers could store paths of any length. Keep the template instead.
UPDATE audit_log SET path = route WHERE route LIKE '%{token}%';
UPDATE audit_log SET path = substr(path, 1, 512) WHERE length(path) > 512;
UPDATE audit_log SET entity_id = substr(entity_id, 1, 200) WHERE length(entity_id) > 200;
