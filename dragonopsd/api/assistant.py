"""Assistant route: POST /api/ai/generate, for operators, limited per caller."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import ASSISTANT, PRINCIPAL
from ..assistant.model import Generated
from ..assistant.service import GenerateRequest
from .access import reach
from .codec import json_response, read_json
from .route import Route


async def generate(request: web.Request) -> web.Response:
    """A config file or script for the prompt, with what it assumed."""
    assistant = request.app[ASSISTANT]
    # Counted before the body is read: a flood of bad requests is limited like good ones.
    assistant.admit(request[PRINCIPAL].actor)
    body = await read_json(request, GenerateRequest)
    generated = await assistant.generate(body, await reach(request))
    return json_response(generated, headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    """/api/ai."""
    return [
        Route(
            "POST",
            "/api/ai/generate",
            generate,
            "Generate a config file or script from a prompt (assistant)",
            "Assistant",
            "operator",
            body=GenerateRequest,
            response=Generated,
            errors=(400, 413, 415, 422, 429, 503),
            scope="filtered",
        ),
    ]
