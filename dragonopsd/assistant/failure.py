"""Why a model answer was not used, and where a per-request API key comes from.

Apart from llm.py so that the service, the credentials and the metrics can name them without
importing the OpenAI SDK, which costs ~0.8 s of start-up and is only loaded with
``[ai] provider = "openai"``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

Reason = Literal["timeout", "error", "invalid", "refused", "no-key"]
KeySource = Callable[[], Awaitable[str]]


class LlmFailure(Exception):
    """The model gave no usable answer; ``reason`` is the metrics label."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
