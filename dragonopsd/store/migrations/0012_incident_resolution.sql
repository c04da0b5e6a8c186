-- How an incident ended when it was not a plain recovery: "monitor paused", "up again after
-- flapping". NULL for an incident still open or closed by the monitor coming back up.
ALTER TABLE incidents ADD COLUMN resolution TEXT;
