"""RFC 9457 problems: the one exception type every layer raises for a client-visible error."""

from __future__ import annotations

from http import HTTPStatus

import msgspec


class FieldIssue(msgspec.Struct, frozen=True):
    """One offending input: a JSON path (``$.name``) or parameter name, and what is wrong."""

    field: str
    message: str


class ProblemBody(msgspec.Struct, omit_defaults=True):
    """The application/problem+json document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldIssue] = []
    instance: str | None = None
    request_id: str | None = msgspec.field(default=None, name="requestId")


class Problem(Exception):
    """A failure the client caused (or may retry); the request front renders it."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[FieldIssue] | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.title = HTTPStatus(status).phrase
        self.kind = kind or self.title.lower().replace(" ", "-").replace("'", "")
        self.headers = headers or {}

    def body(self, instance: str | None = None, request_id: str | None = None) -> ProblemBody:
        """The document for this problem."""
        return ProblemBody(
            type=f"https://dragonops.dev/problems/{self.kind}",
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
            instance=instance,
            request_id=request_id,
        )


def invalid(field: str, message: str, status: int = 422) -> Problem:
    """A single bad field or parameter."""
    return Problem(status, f"{field}: {message}", errors=[FieldIssue(field, message)])


def not_found(entity: str, ident: str) -> Problem:
    """An id that names nothing."""
    return Problem(404, f"{entity} {ident} does not exist")
