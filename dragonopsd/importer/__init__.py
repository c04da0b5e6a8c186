"""Import from Uptime Kuma and Gatus: read the source into a plan, report it, write it."""
