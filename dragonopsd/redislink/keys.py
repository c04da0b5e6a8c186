"""Every Redis key, stream, channel and group name the deployment uses, in one place.

All of them start with ``<prefix>:`` ([redis] prefix), so several deployments can share one
server and a test can delete exactly its own keys.
"""

from __future__ import annotations

from dataclasses import dataclass

# Consumer groups (one per role, not per process: processes of one role share the work).
CORE_GROUP = "core"
WORKER_GROUP = "workers"
ACTION_GROUP = "executors"


@dataclass(frozen=True)
class Keys:
    """Names under one prefix."""

    prefix: str

    @property
    def events(self) -> str:
        """The pub/sub channel every process publishes its bus events on."""
        return f"{self.prefix}:events"

    def cache(self, key: str) -> str:
        """A cached value (dashboard stats...)."""
        return f"{self.prefix}:cache:{key}"

    @property
    def cache_pattern(self) -> str:
        """Every cached value (SCAN pattern), dropped when Redis comes back from an outage."""
        return f"{self.prefix}:cache:*"

    @property
    def monitor_state(self) -> str:
        """Hash: monitor id -> its latest check report (JSON)."""
        return f"{self.prefix}:state:monitors"

    @property
    def server_state(self) -> str:
        """Hash: server id -> its latest sample (JSON)."""
        return f"{self.prefix}:state:servers"

    def jobs(self, location: str) -> str:
        """Stream of probe jobs for one location's workers."""
        return f"{self.prefix}:jobs:{location}"

    @property
    def results(self) -> str:
        """Stream of probe results from every location, read by the core."""
        return f"{self.prefix}:results"

    def results_for(self, core: str) -> str:
        """Stream of the results of one core's jobs (several cores: each reads its own, so a
        result reaches the core whose round waits for it). "" = the shared one."""
        return f"{self.prefix}:results:{core}" if core else self.results

    def workers(self, location: str) -> str:
        """Sorted set: worker name -> last time it said it was alive (Unix seconds)."""
        return f"{self.prefix}:workers:{location}"

    @property
    def locations(self) -> str:
        """Sorted set: location -> last time a worker of it said it was alive (Unix seconds,
        Redis's clock), so the locations can be listed without scanning the keyspace."""
        return f"{self.prefix}:locations"

    @property
    def actions(self) -> str:
        """Stream of accepted server action ids."""
        return f"{self.prefix}:actions"

    @property
    def cluster_alive(self) -> str:
        """Sorted set: core name -> its last heartbeat (Unix seconds, Redis's clock)."""
        return f"{self.prefix}:cluster:alive"

    @property
    def cluster_cores(self) -> str:
        """Hash: core name -> what it says about itself (JSON: address, version, since)."""
        return f"{self.prefix}:cluster:cores"

    def lease(self, name: str) -> str:
        """String: the core holding one singleton's lease (SET NX PX, renewed by its holder)."""
        return f"{self.prefix}:cluster:lease:{name}"

    @property
    def pattern(self) -> str:
        """Everything of this deployment (SCAN pattern; tests clean up with it)."""
        return f"{self.prefix}:*"
