"""Wall-clock timestamps as the API shows them (ISO 8601, UTC, milliseconds, sortable as text)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Current UTC time, e.g. ``2026-11-26T08:10:00.123Z``; text order equals time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
