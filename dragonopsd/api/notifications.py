"""Notification channel routes: viewers see channels (credentials masked), admins change and
test them (a channel holds credentials and sends data out of the network).

Every write reloads the dispatcher, so routing follows the API at once.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, cast

from aiohttp import web

from ..appkeys import BUS, NOTIFIER
from ..netguard import REFUSED, check_host_literal
from ..notify.channels import (
    ChannelBody,
    ChannelCreate,
    ChannelList,
    ChannelOut,
    ChannelPatch,
    fields_of,
    public,
)
from ..notify.delivery import DeliveryResult
from ..notify.dispatcher import CHANNELS_TOPIC
from ..notify.patching import patched
from ..problem import Problem, invalid
from ..store.notifications import ChannelFields, StoredChannel
from .codec import (
    IF_MATCH,
    IF_NONE_MATCH,
    cacheable_response,
    convert,
    id_param,
    if_match,
    json_response,
    path_uuid,
    read_json,
)
from .route import Route

_CREATE = cast("type[ChannelBody]", ChannelCreate)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


def _checked(request: web.Request, body: ChannelBody) -> ChannelFields:
    """The row to store, after the checks that need the daemon's config."""
    fields = fields_of(body)
    guard = request.app[NOTIFIER].guard  # built from [probes]
    if "url" in fields.config and check_host_literal(guard, _host(fields.config["url"])):
        raise invalid("$.config.url", REFUSED)
    if "host" in fields.config and check_host_literal(guard, fields.config["host"]):
        raise invalid("$.config.host", REFUSED)
    return fields


def _writable(row: StoredChannel) -> None:
    if row.managed_by == "config":
        raise Problem(
            409,
            f"notification channel {row.id} is managed by the config file ([[notifications]]); "
            "change it there",
        )


async def _reload(request: web.Request) -> None:
    """A channel was written: this core reloads now, the others when the event reaches them."""
    await request.app[NOTIFIER].reload()
    request.app[BUS].publish(CHANNELS_TOPIC, {"changed": True}, "channels.changed")


async def list_channels(request: web.Request) -> web.Response:
    """Every channel, credentials masked."""
    rows = await request.app[NOTIFIER].store.list()
    return json_response(ChannelList(items=[public(r) for r in rows]))


async def create_channel(request: web.Request) -> web.Response:
    """Create a channel (201)."""
    notifier = request.app[NOTIFIER]
    fields = _checked(request, await read_json(request, _CREATE))
    row = await notifier.store.create(fields)
    await _reload(request)
    location = f"/api/notifications/{row.id}"
    return json_response(public(row), status=201, headers={"Location": location})


async def get_channel(request: web.Request) -> web.Response:
    """One channel, credentials masked."""
    ident = path_uuid(request, "notification channel")
    return cacheable_response(request, public(await request.app[NOTIFIER].store.get(ident)))


async def patch_channel(request: web.Request) -> web.Response:
    """Change a channel; config merges, so credentials not sent are kept."""
    ident = path_uuid(request, "notification channel")
    notifier = request.app[NOTIFIER]
    patch = await read_json(request, ChannelPatch)
    precondition = if_match(request, public)  # the masked view GET gave, inside the write

    def change(old: StoredChannel) -> ChannelFields:
        if precondition is not None:
            precondition(old)
        _writable(old)
        doc: dict[str, Any] = patched(old, patch)
        return _checked(request, convert(doc, _CREATE))

    row = await notifier.store.update(ident, change)
    await _reload(request)
    return json_response(public(row), etag=True)  # the form's next If-Match


async def delete_channel(request: web.Request) -> web.Response:
    """Remove a channel; its queued notifications are dropped."""
    notifier = request.app[NOTIFIER]
    ident = path_uuid(request, "notification channel")
    current = await notifier.store.get(ident)
    _writable(current)
    if (precondition := if_match(request, public)) is not None:
        # Checked just before the delete rather than inside it: the worst a race does here is
        # delete a channel someone renamed a moment before.
        precondition(current)
    await notifier.store.delete(ident)
    await _reload(request)
    return web.Response(status=204)


async def test_channel(request: web.Request) -> web.Response:
    """Send a test notification now and report whether it arrived."""
    result = await request.app[NOTIFIER].test(path_uuid(request, "notification channel"))
    return json_response(result)


def routes() -> list[Route]:
    """/api/notifications."""
    ident = id_param("channel")
    tag = "Notifications"
    # Channels are global configuration (one channel routes events of every client, and its
    # routes name their ids): scoped callers get 403, even viewers.
    return [
        Route(
            "GET",
            "/api/notifications",
            list_channels,
            "List notification channels",
            tag,
            "viewer",
            response=ChannelList,
            scope="unscoped",
        ),
        Route(
            "POST",
            "/api/notifications",
            create_channel,
            "Create a notification channel",
            tag,
            "admin",
            body=ChannelCreate,
            response=ChannelOut,
            status=201,
            errors=(400, 413, 415, 422),
            scope="unscoped",
        ),
        Route(
            "GET",
            "/api/notifications/{id}",
            get_channel,
            "Get a notification channel",
            tag,
            "viewer",
            response=ChannelOut,
            params=(ident, IF_NONE_MATCH),
            errors=(404,),
            scope="unscoped",
        ),
        Route(
            "PATCH",
            "/api/notifications/{id}",
            patch_channel,
            "Update a notification channel",
            tag,
            "admin",
            body=ChannelPatch,
            response=ChannelOut,
            params=(ident, IF_MATCH),
            errors=(400, 404, 409, 412, 413, 415, 422),
            scope="unscoped",
        ),
        Route(
            "DELETE",
            "/api/notifications/{id}",
            delete_channel,
            "Delete a notification channel",
            tag,
            "admin",
            status=204,
            params=(ident, IF_MATCH),
            errors=(404, 409, 412),
            scope="unscoped",
        ),
        Route(
            "POST",
            "/api/notifications/{id}/test",
            test_channel,
            "Send a test notification",
            tag,
            "admin",
            response=DeliveryResult,
            params=(ident,),
            errors=(404, 409, 503),
            scope="unscoped",
        ),
    ]
