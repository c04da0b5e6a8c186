"""A server resource sample: what the sampler publishes, history stores and agents push."""

from __future__ import annotations

from typing import Annotated

import msgspec

from .inventory import Body, Wire

# Stored as integers: percentages and load in hundredths, network in whole bytes per second.
METRICS = ("cpu", "memory", "load", "disk", "net_in", "net_out")
SCALES = (100, 100, 100, 100, 1, 1)
MAX_BATCH = 100  # samples per push; an agent back from an outage sends its backlog in parts

Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
Load = Annotated[float, msgspec.Meta(ge=0, le=100_000)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1e13)]  # bytes/s: 100 Gbit/s is 1.25e10


class Sample(Wire, kw_only=True):
    """One reading of a server (the ``server.metrics`` event payload).

    cpu, memory and disk are percent used; load is the 1-minute load average; net_in and
    net_out are bytes per second summed over the host's interfaces; at is Unix seconds.
    """

    server_id: str
    cpu: float
    memory: float
    load: float
    disk: float
    net_in: float
    net_out: float
    at: float

    def scaled(self) -> tuple[int, int, int, int, int, int]:
        """The six metrics as the integers history stores."""
        return (
            round(self.cpu * 100),
            round(self.memory * 100),
            round(self.load * 100),
            round(self.disk * 100),
            round(self.net_in),
            round(self.net_out),
        )


class SampleIn(Body, kw_only=True):
    """A pushed sample (POST /api/servers/{id}/samples); at defaults to the time received."""

    cpu: Percent
    memory: Percent
    load: Load
    disk: Percent
    net_in: Rate
    net_out: Rate
    at: float | None = None


SampleBatch = SampleIn | Annotated[list[SampleIn], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
