"""The inventory: the service every write goes through, and the in-memory index readers use."""
