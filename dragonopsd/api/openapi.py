"""OpenAPI 3.1 document generated from the route table and the Structs it names."""

from __future__ import annotations

from typing import Any

import msgspec

from ..model.monitor import ALLOWED, KIND_FIELDS, REQUIRED, camel
from ..model.schedule import FIELD_NOTES
from ..problem import ProblemBody
from .route import Route

REF = "#/components/schemas/{name}"
COMMON_ERRORS = (500,)
# What the request front itself can answer on any route that needs a credential: none or a bad
# one (401), a role too low (403), too many failed attempts from the client (429).
SECURED_ERRORS = (401, 403, 429)
# A write that cannot commit (database locked or disk full) answers 503 with Retry-After.
WRITE_ERRORS = (503,)
CONVENTIONS = (
    "Conventions: entity times (createdAt, openedAt, lastCheckAt, ...) are ISO 8601 UTC "
    "strings; points of a time series (history, heartbeats, metrics) carry `at`/`ts` as Unix "
    "seconds, which keeps long series compact. Times in query parameters may be Unix seconds, "
    "ISO 8601, or relative to now (-24h, -90m, -7d). Uptime is a fraction from 0 to 1 wherever "
    "it appears (uptime, uptimeRatio); health on the dashboard is a percent (0-100), named so."
)
ERROR_TEXT = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing or invalid credentials",
    403: "Not allowed for this role (or, on global configuration, for a scoped caller)",
    404: "No such resource",
    405: "Method not allowed",
    409: "Conflict with the current state (e.g. children still present)",
    412: "If-Match precondition failed",
    413: "Body larger than [server] max_body_bytes",
    415: "Body is not application/json",
    422: "Body or parameter failed validation; errors[] names each field",
    429: "Too many requests",
    500: "Internal error (no stack trace; quote X-Request-ID)",
    503: "Not ready, or the database cannot take writes now (locked by another process, disk "
    "full); Retry-After says when to try again",
}


def _op_id(route: Route) -> str:
    words = [w for w in route.path.replace("{", "").replace("}", "").split("/") if w]
    words = [w for w in words if w != "api"]
    name = "".join(w.replace(".", "_").replace("-", "_").title().replace("_", "") for w in words)
    return route.method.lower() + name


def _errors(route: Route) -> list[int]:
    """Every error status the route can answer, its own and those of the request front."""
    codes = {*route.errors, *COMMON_ERRORS}
    if route.role != "public":
        codes.update(SECURED_ERRORS)
    if route.method not in ("GET", "HEAD"):
        codes.update(WRITE_ERRORS)
    return sorted(codes)


def _kind_fields(components: dict[str, Any]) -> None:
    """Say, on every monitor schema, which fields each kind takes.

    Monitors are one flat shape (see model.monitor); the server rejects a field foreign to the
    kind with 422. Each kind-specific property names its kinds, and ``x-kinds`` lists every
    kind's required and allowed fields, so a reader or generator sees only a kind's own fields.
    """
    by_field: dict[str, list[str]] = {}
    for kind, names in ALLOWED.items():
        for name in sorted(names):
            by_field.setdefault(camel(name), []).append(kind)
    table = {
        kind: {
            "required": [camel(n) for n in REQUIRED[kind]],
            "fields": sorted(camel(n) for n in ALLOWED[kind]),
        }
        for kind in ALLOWED
    }
    wire_fields = {camel(n) for n in KIND_FIELDS}
    for schema in components.values():
        props = schema.get("properties", {})
        if "kind" not in props or not wire_fields & props.keys():
            continue
        schema["x-kinds"] = table
        for name, kinds in by_field.items():
            if name in props:
                note = FIELD_NOTES.get(name, "")
                props[name]["description"] = f"{note} Only for kind {', '.join(kinds)}.".lstrip()
        if "interval" in props:
            props["interval"]["description"] = FIELD_NOTES["interval"]


def build(routes: list[Route], version: str) -> dict[str, Any]:
    """The OpenAPI document for these routes."""
    types = [t for r in routes for t in (r.body, r.response) if t is not None and t is not dict]
    unique = list(dict.fromkeys([*types, ProblemBody]))
    schemas, components = msgspec.json.schema_components(unique, ref_template=REF)
    schema_of = dict(zip(unique, schemas, strict=True))
    _kind_fields(components)
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "operationId": _op_id(r),
            "summary": r.summary,
            "tags": [r.tag],
            "x-role": r.role,
            # How a caller scoped to some clients meets it (api/route.py ScopeRule).
            "x-scope": r.scope,
            "responses": {},
        }
        if r.role != "public":
            op["security"] = [{"bearerAuth": []}]
        if r.params:
            op["parameters"] = [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in r.params
            ]
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[r.body]}},
            }
        ok: dict[str, Any] = {"description": "Success"}
        if r.status != 204:
            if r.response is dict:
                schema: dict[str, Any] = {"type": "object"}
            elif r.response is not None:
                schema = schema_of[r.response]
            else:
                schema = {"type": "string"}
            ok["content"] = {r.content_type: {"schema": schema}}
        for status in (r.status, *r.also):
            op["responses"][str(status)] = ok
        if any(p.name == "If-None-Match" for p in r.params):
            op["responses"]["304"] = {"description": "Not modified: the ETag sent is current"}
        for code in _errors(r):
            op["responses"][str(code)] = {"$ref": f"#/components/responses/E{code}"}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    used = sorted({c for r in routes for c in _errors(r)})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dragonopsd",
            "version": version,
            "description": "Inventory, monitoring and operations daemon. Errors are RFC 9457 "
            "application/problem+json documents. " + CONVENTIONS,
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                f"E{code}": {
                    "description": ERROR_TEXT.get(code, "Error"),
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": REF.format(name="ProblemBody")}
                        }
                    },
                }
                for code in used
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API token or Supabase JWT",
                },
            },
        },
    }
