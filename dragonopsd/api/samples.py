"""Server resource samples: the metrics history read, and the agents' push."""

from __future__ import annotations

import time

from aiohttp import web

from ..appkeys import CONFIG, INVENTORY, PRINCIPAL, SAMPLER
from ..model.inventory import Wire
from ..model.sample import Sample, SampleBatch, SampleIn
from ..problem import Problem, invalid, not_found
from ..store.samples import Point
from .access import reach
from .codec import duration, id_param, json_response, path_uuid, query_time, read_json
from .route import Param, Route

MAX_SKEW = 300.0  # seconds an agent's clock may run ahead of ours
DEFAULT_SPAN = 3600.0
TARGET_POINTS = 360


class Metrics(Wire, kw_only=True):
    """GET /api/servers/{id}/metrics: the newest sample and a series of step-sized points."""

    server_id: str
    since: float
    until: float
    step: float
    latest: Sample | None
    points: list[Point]


class Accepted(Wire, kw_only=True):
    """Answer to a push: how many samples were queued for history."""

    accepted: int


def _step(raw: str | None, span: float, interval: float) -> float:
    if raw is None:
        return max(1.0, interval, span / TARGET_POINTS)
    try:
        step = float(raw)
    except ValueError:
        step = duration(raw, "step")
    if not 1 <= step <= 366 * 86_400:
        raise invalid("step", "between 1 second and 366 days")
    return step


async def metrics(request: web.Request) -> web.Response:
    """A server's samples aggregated per step (mean and max of each metric)."""
    ident = path_uuid(request, "server")
    if not (await reach(request)).server(ident):  # as one that does not exist
        raise not_found("server", ident)
    await request.app[INVENTORY].get("servers", ident)  # 404 for unknown servers
    q = request.query
    until = query_time(q.get("until"), "until", time.time())
    since = query_time(q.get("since"), "since", until - DEFAULT_SPAN)
    if since >= until:
        raise invalid("since", "must be before until")
    step = _step(q.get("step"), until - since, request.app[CONFIG].sampling.interval)
    sampler = request.app[SAMPLER]
    try:
        points = await sampler.query.series(ident, since, until, step)
    except ValueError as exc:
        raise invalid("step", str(exc)) from None
    return json_response(
        Metrics(
            server_id=ident,
            since=since,
            until=until,
            step=step,
            latest=sampler.latest(ident),
            points=points,
        )
    )


def _interval(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise invalid("interval", "expected seconds as a number") from None
    if not 1 <= value <= 3600:
        raise invalid("interval", "between 1 and 3600 seconds")
    return value


def _samples(ident: str, body: SampleIn | list[SampleIn], oldest: float) -> list[Sample]:
    """Pushed samples as Samples; 422 naming the first one whose time is out of range."""
    now = time.time()
    items = body if isinstance(body, list) else [body]
    out = []
    for i, s in enumerate(items):
        at = now if s.at is None else s.at
        if not oldest <= at <= now + MAX_SKEW:
            path = f"$[{i}].at" if isinstance(body, list) else "$.at"
            raise invalid(
                path, "must be within raw history and at most 5 minutes ahead (check the clock)"
            )
        out.append(
            Sample(
                server_id=ident,
                cpu=s.cpu,
                memory=s.memory,
                load=s.load,
                disk=s.disk,
                net_in=s.net_in,
                net_out=s.net_out,
                at=at,
            )
        )
    return out


async def push_samples(request: web.Request) -> web.Response:
    """An agent's samples for its server (an agent token may push for its own server only)."""
    ident = path_uuid(request, "server")
    principal = request[PRINCIPAL]
    if principal.role == "agent" and principal.server_id != ident:
        raise Problem(403, "this agent token may push samples for its own server only")
    interval = _interval(request.query.get("interval"))
    await request.app[INVENTORY].get("servers", ident)  # 404 for unknown servers
    # SampleBatch is a union (one sample or a list), which type[T] cannot name.
    body: SampleIn | list[SampleIn] = await read_json(request, SampleBatch)  # type: ignore[arg-type]
    raw_hours = request.app[CONFIG].sampling.raw_hours
    samples = _samples(ident, body, time.time() - raw_hours * 3600 + 60)
    accepted = await request.app[SAMPLER].push(ident, samples, interval)
    return json_response(Accepted(accepted=accepted), status=202)


def routes() -> list[Route]:
    """GET /api/servers/{id}/metrics and POST /api/servers/{id}/samples."""
    sid = id_param("server")
    return [
        Route(
            "GET",
            "/api/servers/{id}/metrics",
            metrics,
            "Resource history of a server",
            "Servers",
            "viewer",
            response=Metrics,
            params=(
                sid,
                Param(
                    "since",
                    "Unix seconds or ISO 8601 (default: an hour before until)",
                    {"type": "string"},
                ),
                Param("until", "Unix seconds or ISO 8601 (default: now)", {"type": "string"}),
                Param(
                    "step",
                    "Seconds or a duration like 5m (default: about 360 points)",
                    {"type": "string"},
                ),
            ),
            errors=(404, 422),
            scope="filtered",
        ),
        Route(
            "POST",
            "/api/servers/{id}/samples",
            push_samples,
            "Push host samples (agent token for this server, or admin)",
            "Servers",
            "agent",
            body=SampleBatch,
            response=Accepted,
            status=202,
            params=(
                sid,
                Param(
                    "interval",
                    "Seconds between the agent's samples (silence detection)",
                    {"type": "number"},
                ),
            ),
            errors=(400, 404, 409, 413, 415, 422),
            # Thousands of pushes a minute would drown the audit log; the token is the record.
            audit=False,
            scope="global",
        ),
    ]
