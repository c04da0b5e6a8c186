"""What the metrics read of the services: narrow, read-only views, as Protocols.

The collectors sit below the services they report on (the layers contract in pyproject.toml):
they never import the engine, the scheduler, the sampler, the hub, the dispatcher or the
assistant, only these shapes, which those objects satisfy as they are. app.py passes the
concrete objects, and mypy checks each one against its view there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence, Sized
from typing import Protocol

from ..buckets import Buckets
from ..model.sample import Sample
from ..store.links import Hierarchy
from ..store.monitors import Incident, MonitorRow


class LastCheck(Protocol):
    """The one figure of a monitor's last check the series show."""

    @property
    def latency_ms(self) -> float | None: ...


class MonitorFigures(Protocol):
    """One monitor's live state, read on the loop and not kept (the engine's runtimes)."""

    @property
    def row(self) -> MonitorRow: ...
    @property
    def last(self) -> LastCheck | None: ...
    @property
    def incident(self) -> Incident | None: ...
    @property
    def successes(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def cert_expires_at(self) -> float | None: ...
    @property
    def visible_status(self) -> str: ...


class EngineFigures(Protocol):
    """Every monitor's live state (monitoring's EngineView)."""

    def figures(self) -> Collection[MonitorFigures]: ...


class SchedulerFigures(Protocol):
    """The scheduler's counters since start."""

    @property
    def drift_buckets(self) -> Buckets: ...
    @property
    def started(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def in_flight(self) -> int: ...


class LatestSamples(Protocol):
    """The newest sample of every server that has one (the sampler)."""

    def all_latest(self) -> Sequence[Sample]: ...


class HubFigures(Protocol):
    """The websocket hub: its open clients and the frames it dropped, by reason."""

    @property
    def clients(self) -> Sized: ...
    @property
    def drops(self) -> Mapping[str, int]: ...


class ChannelFigures(Protocol):
    """One notification channel's counters."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def sent(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def dropped(self) -> int: ...


class NotifierFigures(Protocol):
    """The notification dispatcher: counters per channel id, and what waits per channel."""

    @property
    def stats(self) -> Mapping[str, ChannelFigures]: ...
    @property
    def deduped(self) -> int: ...
    def backlog(self) -> Mapping[str, int]: ...


class RemoteFigures(Protocol):
    """Remote probing's counters: jobs queued, checks with no live worker, results received."""

    @property
    def dispatched(self) -> int: ...
    @property
    def no_worker(self) -> int: ...
    @property
    def received(self) -> int: ...


class AssistantFigures(Protocol):
    """The assistant's usage counters (a missing source or reason counts 0)."""

    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def requests(self) -> Counter[str]: ...
    @property
    def fallbacks(self) -> Counter[str]: ...
    @property
    def rate_limited(self) -> int: ...
    @property
    def unmatched(self) -> int: ...


class CoreFigures(Protocol):
    """This core of a deployment of several: the live cores it sees."""

    def cores(self) -> int: ...


class OwnedFigures(Protocol):
    """How many monitors this core owns (monitoring's EngineView)."""

    def owned_count(self) -> int | None: ...


class HierarchySource(Protocol):
    """Whatever holds the inventory's current names and links (the inventory index)."""

    @property
    def hierarchy(self) -> Hierarchy: ...
