"""Resource alert rule routes (everyone reads, operators write) and a server's alerts."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import ALERTS, INVENTORY
from ..model.inventory import Wire
from ..monitoring.alert_notices import AlertState
from ..store.alerts import AlertIncident, AlertRule, AlertRulePatch, AlertRuleSpec, merge_patch
from .codec import convert, id_param, json_response, no_repeats, page_limit, path_uuid, read_json
from .route import Param, Route

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


async def list_rules(request: web.Request) -> web.Response:
    """Every alert rule."""
    return json_response(AlertRuleList(items=request.app[ALERTS].rules.all()))


async def create_rule(request: web.Request) -> web.Response:
    """Create a rule; it is evaluated from the next sample on."""
    spec = await read_json(request, AlertRuleSpec)
    rule = await request.app[ALERTS].rules.create(spec)
    return json_response(rule, status=201, headers={"Location": f"{BASE}/{rule.id}"})


async def get_rule(request: web.Request) -> web.Response:
    """One rule."""
    return json_response(request.app[ALERTS].rules.get(path_uuid(request, "alert rule")))


async def patch_rule(request: web.Request) -> web.Response:
    """Change some fields; the result is validated as a whole, like a create."""
    ident = path_uuid(request, "alert rule")
    patch = await read_json(request, AlertRulePatch)
    rules = request.app[ALERTS].rules
    spec = convert(merge_patch(rules.get(ident), patch), AlertRuleSpec)
    return json_response(await rules.replace(ident, spec))


async def delete_rule(request: web.Request) -> web.Response:
    """Remove a rule; what it had open closes at the next tick."""
    await request.app[ALERTS].rules.delete(path_uuid(request, "alert rule"))
    return web.Response(status=204)


async def server_alerts(request: web.Request) -> web.Response:
    """The rules in force on a server, their state, and its latest alert incidents."""
    ident = path_uuid(request, "server")
    no_repeats(request)
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
        ),
    ]
