"""The Redis connection one process shares, and the names of everything it keeps there."""
