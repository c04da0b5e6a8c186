"""Stopping background tasks reliably.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation when the operation it wraps
completes in the same loop pass (CPython gh-86296, fixed in 3.12). redis-py wraps socket
calls in ``wait_for`` when a socket timeout is set, so a task cancelled once may keep running.
``cancel_and_wait`` repeats the cancellation until the task is really done.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

RECANCEL_EVERY = 0.5


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel task and wait for it, cancelling again while it keeps running."""
    task.cancel()
    while not task.done():
        await asyncio.wait({task}, timeout=RECANCEL_EVERY)
        if not task.done():
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
