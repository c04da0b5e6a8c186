"""dragonopsd: the monitoring and operations daemon of DragonOps."""

__version__ = "0.1.0"
