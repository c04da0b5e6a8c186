"""POST /api/import: the `dragonopsd import` commands through the running daemon (admin).

Through here the daemon schedules what it writes at once, so this is the way to import
while it runs. The body is JSON: ``source``, ``content`` (the Gatus YAML as text, or Uptime
Kuma's kuma.db as base64) and ``dryRun``; or multipart/form-data with the fields ``source``
and ``dryRun`` and the file in ``file``. The answer is the report; an input that cannot be read,
or an object of it the database refuses, is a 422 with nothing imported (one transaction).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from ..appkeys import BUS, CONFIG, MAINTENANCE, MONITORS, NOTIFIER, UNIT_OF_WORK, VAULT
from ..importer import gatus, kuma
from ..importer.apply import apply
from ..importer.plan import Plan, skip
from ..importer.report import ImportFailed, Report
from ..importer.target import service_target
from ..model.inventory import Body
from ..netguard import REFUSED, check_host_literal
from ..notify.dispatcher import CHANNELS_TOPIC
from ..problem import Problem, invalid
from .codec import convert, json_response, read_json
from .route import Route


class ImportBody(Body, kw_only=True):
    """What to import: Gatus' config.yaml as text, or Uptime Kuma's kuma.db as base64."""

    source: Literal["gatus", "uptime-kuma"]
    content: Annotated[str, msgspec.Meta(min_length=1)]
    dry_run: bool = False


def _read_kuma(data: bytes) -> Plan:
    """Kuma's reader takes a file (opened read-only): a private temporary one."""
    fd, name = tempfile.mkstemp(suffix=".db")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return kuma.parse_file(Path(name))
    finally:
        Path(name).unlink(missing_ok=True)


async def _plan(body: ImportBody) -> Plan:
    if body.source == "gatus":
        return await asyncio.to_thread(gatus.parse, body.content)
    try:
        data = base64.b64decode(body.content, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("$.content", "uptime-kuma: kuma.db as base64") from None
    return await asyncio.to_thread(_read_kuma, data)


def _guarded(request: web.Request, plan: Plan) -> None:
    """Channels aimed where [probes] forbids connecting are skipped, as the channel API
    refuses them."""
    guard = request.app[NOTIFIER].guard
    kept = []
    for channel in plan.channels:
        config = msgspec.to_builtins(channel.body).get("config", {})
        host = urllib.parse.urlsplit(config["url"]).hostname if "url" in config else None
        host = host or config.get("host")
        if host and check_host_literal(guard, str(host)):
            skip(plan, "channel", channel.entry.name, REFUSED)
        else:
            kept.append(channel)
    plan.channels = kept


async def _multipart(request: web.Request) -> ImportBody:
    """multipart/form-data: fields ``source`` and ``dryRun``, the file in ``file``."""
    limit = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"request body is larger than the {limit} byte limit")
    try:
        form = await request.post()
    except (web.HTTPRequestEntityTooLarge, ValueError):
        raise Problem(413, f"request body is larger than the {limit} byte limit") from None
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise invalid("$.file", "the file to import, as a multipart file field")
    data = await asyncio.to_thread(upload.file.read)
    source = str(form.get("source", ""))
    if source == "uptime-kuma":
        content = base64.b64encode(data).decode()
    else:
        try:
            content = data.decode()
        except UnicodeDecodeError:
            raise invalid("$.file", "not UTF-8 text") from None
    raw = {"source": source, "content": content, "dryRun": form.get("dryRun") in ("true", "1")}
    return convert(raw, ImportBody)


async def import_config(request: web.Request) -> web.Response:
    """Import (or with dryRun, report what would be imported) and answer the report."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        body = await _multipart(request)
    else:
        body = await read_json(request, ImportBody)
    try:
        plan = await _plan(body)
    except ImportFailed as exc:
        raise invalid("$.content", exc.message) from None
    _guarded(request, plan)
    app = request.app

    async def reload_channels() -> None:
        # As a channel written through /api/notifications: this core now, the others on the bus.
        await app[NOTIFIER].reload()
        app[BUS].publish(CHANNELS_TOPIC, {"changed": True}, "channels.changed")

    target = service_target(
        app[UNIT_OF_WORK],
        app[MONITORS],
        channels=app[NOTIFIER].store,
        windows=app[MAINTENANCE],
        vault=app[VAULT],
        reload_channels=reload_channels,
    )
    try:
        report = await apply(plan, target, body.dry_run)
    except ImportFailed as exc:
        raise invalid("$.content", f"nothing imported: {exc.message}") from None
    return json_response(report)


def routes() -> list[Route]:
    """/api/import."""
    return [
        Route(
            "POST",
            "/api/import",
            import_config,
            "Import monitors, channels and maintenance from Gatus or Uptime Kuma",
            "Import",
            "admin",
            body=ImportBody,
            response=Report,
            errors=(400, 413, 415, 422),
            # Monitors, channels and windows of any client at once: global configuration.
            scope="unscoped",
        )
    ]
