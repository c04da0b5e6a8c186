"""What a query probe (postgres, mysql) reports: [RESULT], [ROWS], and a failed query's reason."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from typing import Any

DEFAULT_QUERY = "SELECT 1"
# Rows fetched at most: [ROWS] counts up to here; a health query returning more is a mistake.
MAX_ROWS = 1000


class QueryFailed(Exception):
    """The server ran the query and refused it (a write in the read-only transaction, a syntax
    error, the statement timeout); the message is the server's reason, cut short."""


def scalar(value: Any) -> Any:
    """A database value as conditions compare it: numbers and text as they are, the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value) if value % 1 else int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def query_context(rows: Sequence[Sequence[Any]], elapsed_ms: float) -> dict[str, Any]:
    """The condition placeholders of a query that ran."""
    context: dict[str, Any] = {
        "CONNECTED": True,
        "RESPONSE_TIME": elapsed_ms,
        "ROWS": min(len(rows), MAX_ROWS),
    }
    if len(rows) > MAX_ROWS:
        context["ROWS_TRUNCATED"] = True
    if rows and len(rows[0]):
        first = scalar(rows[0][0])
        if first is not None:  # NULL leaves [RESULT] "not available", which a condition shows
            context["RESULT"] = first
    return context
