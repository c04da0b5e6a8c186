"""Resource alert rule routes (everyone reads, operators write) and a server's alerts."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import ALERTS, INVENTORY
from ..model.inventory import Wire
from ..monitoring.alert_notices import AlertState
from ..problem import invalid, not_found
from ..store.alerts import (
    TARGETS,
    AlertIncident,
    AlertRule,
    AlertRulePatch,
    AlertRuleSpec,
    merge_patch,
)
from .access import reach
from .codec import convert, id_param, json_response, no_repeats, page_limit, path_uuid, read_json
from .route import Param, Route
from .targets import Target, first_outside, global_refused, within

BASE = "/api/alert-rules"
DEFAULT_INCIDENTS = 20


class AlertRuleList(Wire, kw_only=True):
    """Every rule: the config file's first, then the API's, each by name."""

    items: list[AlertRule]


class ServerAlerts(Wire, kw_only=True):
    """GET /api/servers/{id}/alerts: each rule in force with its state, and recent incidents."""

    server_id: str
    rules: list[AlertState]
    incidents: list[AlertIncident]


def _target(rule: AlertRule | AlertRuleSpec) -> list[Target]:
    """What a rule names: one server, environment, project or client; none for a rule on
    every server, which a scoped caller never reaches (it is global configuration)."""
    for field in TARGETS:
        value = getattr(rule, field)
        if value is not None:
            return [(field.removesuffix("_id"), str(value))]
    return []


async def _rule(request: web.Request) -> AlertRule:
    """The rule of the path: 404 when it does not exist, or is out of a scoped caller's reach."""
    ident = path_uuid(request, "alert rule")
    rule = request.app[ALERTS].rules.get(ident)
    where = await within(request)
    if where is not None and first_outside(where, _target(rule), {}) is not None:
        raise not_found("alert rule", ident)  # as rules.get() answers an unknown id
    return rule


async def _check_target(request: web.Request, spec: AlertRuleSpec) -> None:
    """A scoped caller's rule targets something it reaches: out of reach answers as a target
    that does not exist (the store's 422), no target at all (every server) is a 403."""
    where = await within(request)
    if where is None:
        return
    named = _target(spec)
    if not named:
        raise global_refused(request, "a rule on every server")
    if first_outside(where, named, {}) is not None:
        kind, ident = named[0]
        raise invalid(f"$.{kind}Id", f"{kind} {ident} does not exist")


async def list_rules(request: web.Request) -> web.Response:
    """Every alert rule (a scoped caller's: those on what it reaches)."""
    rules = request.app[ALERTS].rules.all()
    where = await within(request)
    if where is not None:
        rules = [r for r in rules if first_outside(where, _target(r), {}) is None]
    return json_response(AlertRuleList(items=rules))


async def create_rule(request: web.Request) -> web.Response:
    """Create a rule; it is evaluated from the next sample on."""
    spec = await read_json(request, AlertRuleSpec)
    await _check_target(request, spec)
    rule = await request.app[ALERTS].rules.create(spec)
    return json_response(rule, status=201, headers={"Location": f"{BASE}/{rule.id}"})


async def get_rule(request: web.Request) -> web.Response:
    """One rule."""
    return json_response(await _rule(request))


async def patch_rule(request: web.Request) -> web.Response:
    """Change some fields; the result is validated as a whole, like a create."""
    path_uuid(request, "alert rule")  # a malformed id is refused before the body is read
    patch = await read_json(request, AlertRulePatch)
    current = await _rule(request)
    spec = convert(merge_patch(current, patch), AlertRuleSpec)
    await _check_target(request, spec)
    return json_response(await request.app[ALERTS].rules.replace(current.id, spec))


async def delete_rule(request: web.Request) -> web.Response:
    """Remove a rule; what it had open closes at the next tick."""
    await request.app[ALERTS].rules.delete((await _rule(request)).id)
    return web.Response(status=204)


async def server_alerts(request: web.Request) -> web.Response:
    """The rules in force on a server, their state, and its latest alert incidents."""
    ident = path_uuid(request, "server")
    no_repeats(request)
    if not (await reach(request)).server(ident):
        raise not_found("server", ident)  # as the inventory answers an unknown server
    await request.app[INVENTORY].get("servers", ident)  # 404 for unknown servers
    alerts = request.app[ALERTS]
    limit = page_limit(request.query, DEFAULT_INCIDENTS)
    await alerts.settled()
    return json_response(
        ServerAlerts(
            server_id=ident,
            rules=await alerts.states(ident),
            incidents=await alerts.incidents(ident, limit),
        )
    )


def routes() -> list[Route]:
    """/api/alert-rules and /api/servers/{id}/alerts."""
    ident = id_param("alert rule")
    item = f"{BASE}/{{id}}"
    return [
        Route(
            "GET",
            BASE,
            list_rules,
            "List alert rules",
            "Alerts",
            "viewer",
            response=AlertRuleList,
            errors=(422,),
            scope="filtered",
        ),
        Route(
            "POST",
            BASE,
            create_rule,
            "Create an alert rule",
            "Alerts",
            "operator",
            body=AlertRuleSpec,
            response=AlertRule,
            status=201,
            errors=(400, 413, 415, 422),
            scope="filtered",
        ),
        Route(
            "GET",
            item,
            get_rule,
            "Get an alert rule",
            "Alerts",
            "viewer",
            response=AlertRule,
            params=(ident,),
            errors=(404, 422),
            scope="filtered",
        ),
        Route(
            "PATCH",
            item,
            patch_rule,
            "Change an alert rule",
            "Alerts",
            "operator",
            body=AlertRulePatch,
            response=AlertRule,
            params=(ident,),
            errors=(400, 404, 409, 413, 415, 422),
            scope="filtered",
        ),
        Route(
            "DELETE",
            item,
            delete_rule,
            "Delete an alert rule",
            "Alerts",
            "operator",
            status=204,
            params=(ident,),
            errors=(404, 409, 422),
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/servers/{id}/alerts",
            server_alerts,
            "Resource alerts of a server: rules in force, their state, recent incidents",
            "Servers",
            "viewer",
            response=ServerAlerts,
            params=(
                id_param("server"),
                Param(
                    "limit",
                    "How many recent incidents",
                    {"type": "integer", "minimum": 1, "maximum": 500, "default": DEFAULT_INCIDENTS},
                ),
            ),
            errors=(404, 422),
            # 404 for a server out of reach. Its rules in force are shown whoever they come
            # from (a rule on every server included): they hold nothing of another client,
            # and hiding them would hide why the caller's own server is firing.
            scope="filtered",
        ),
    ]
