"""The assistant service: sanitise, gather inventory context, ask the provider, fall back.

With ``[ai] provider = "openai"`` the model answers first and the templates catch every
failure (with a warning saying why); offline the templates answer alone.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import TYPE_CHECKING, Annotated

import msgspec

from ..config import AiConfig
from ..inventory.reach import EVERYTHING, Reach
from ..model.inventory import Body
from ..problem import FieldIssue, Problem
from . import context, prompt
from .failure import KeySource, LlmFailure
from .limiter import RateLimiter
from .model import TARGETS, Context, Generated, Target
from .offline import NoMatch, OfflineProvider
from .usage import Usage

if TYPE_CHECKING:
    from ..inventory.service import InventoryService
    from .llm import LlmProvider

log = logging.getLogger("dragonopsd.assistant")

# Raw characters accepted before sanitising; the 4,000 limit applies to what remains.
MAX_RAW_PROMPT = 16_000
# Sent when no key is configured anywhere: local servers (Ollama, vLLM) want none, and the
# SDK refuses to start without one.
NO_KEY = "none"


class GenerateRequest(Body, kw_only=True):
    """POST /api/ai/generate."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_RAW_PROMPT)]
    target: Target | None = None
    project_id: uuid.UUID | None = None
    environment_id: uuid.UUID | None = None


class AssistantService:
    """Owns the providers, the per-caller limit and the usage counters."""

    def __init__(
        self, cfg: AiConfig, inventory: InventoryService, secret_key: KeySource | None = None
    ) -> None:
        self.cfg = cfg
        self.inventory = inventory
        self.offline = OfflineProvider()
        self.limiter = RateLimiter(cfg.rate_limit)
        self.usage = Usage()
        self.llm: LlmProvider | None = None
        self._secret_key = secret_key

    async def start(self) -> None:
        """Open the model client when a model is configured (no network until a request)."""
        if self.cfg.provider != "openai":
            return
        # Imported here, not at the top: the OpenAI SDK (and pydantic under it) costs ~0.8 s
        # of every start, and only a daemon with a model configured uses it.
        from openai import AsyncOpenAI  # noqa: PLC0415

        from .llm import LlmProvider  # noqa: PLC0415

        key = self.cfg.api_key or None
        source = "[ai] api_key"
        per_request: KeySource | None = None
        if key is None and self.cfg.api_key_secret and self._secret_key is not None:
            per_request, source = self._secret_key, f"secret {self.cfg.api_key_secret!r}"
        elif key is None and os.environ.get("OPENAI_API_KEY"):
            key, source = os.environ["OPENAI_API_KEY"], "OPENAI_API_KEY"
        elif key is None:
            source = "nowhere (fine for servers that want none, such as a local Ollama)"
        client = AsyncOpenAI(
            api_key=key or NO_KEY,
            base_url=self.cfg.base_url or None,
            timeout=self.cfg.timeout,
            max_retries=0,  # a retry would double the wait before the fallback answers
        )
        self.llm = LlmProvider(client, self.cfg, self.usage, per_request)
        log.info(
            "assistant: model %s at %s, API key from %s",
            self.cfg.model,
            client.base_url,
            source,
        )

    async def close(self) -> None:
        """Close the model client."""
        if self.llm is not None:
            await self.llm.close()
            self.llm = None

    def admit(self, caller: str) -> None:
        """Count one request for caller; 429 with Retry-After past [ai] rate_limit per minute."""
        wait = self.limiter.acquire(caller)
        if wait is not None:
            self.usage.rate_limited += 1
            raise Problem(
                429,
                f"at most {self.cfg.rate_limit} assistant requests per minute; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    async def _context(self, body: GenerateRequest, text: str, reach: Reach) -> Context:
        """Inventory metadata for the request, of the projects in the caller's reach only."""
        if body.project_id is not None or body.environment_id is not None:
            return await context.from_ids(
                self.inventory, body.project_id, body.environment_id, reach
            )
        return await context.from_prompt(self.inventory, text, reach)

    async def generate(self, body: GenerateRequest, reach: Reach = EVERYTHING) -> Generated:
        """The file for body.prompt; a scoped caller's context holds only its reach."""
        text = prompt.clean(body.prompt)
        ctx = await self._context(body, text, reach)
        if self.llm is None:
            return self._offline(text, body.target, ctx, None)
        try:
            out = await self.llm.generate(text, body.target, ctx)
        except LlmFailure as exc:
            self.usage.fallbacks[exc.reason] += 1
            log.warning("assistant: model answer not used (%s): %s", exc.reason, exc)
            return self._offline(text, body.target, ctx, exc)
        self.usage.requests["llm"] += 1
        return out

    def _offline(
        self, text: str, target: Target | None, ctx: Context, failure: LlmFailure | None
    ) -> Generated:
        try:
            out = self.offline.generate(text, target, ctx)
        except NoMatch as exc:
            self.usage.unmatched += 1
            supported = ", ".join(TARGETS)
            if failure is not None:
                raise Problem(
                    503,
                    f"the language model failed ({failure}) and no offline template "
                    f"matches the prompt; supported targets: {supported}",
                    kind="assistant-unavailable",
                ) from None
            issue = FieldIssue("$.prompt", f"{exc}; or send target")
            raise Problem(422, f"$.prompt: {issue.message}", errors=[issue]) from None
        if failure is not None:
            out.warnings.insert(
                0,
                "answered from the offline templates because the language model failed: "
                f"{failure} ({failure.reason})",
            )
        self.usage.requests["template"] += 1
        return out
