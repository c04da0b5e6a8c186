"""A local OpenAI-compatible server (``POST /v1/chat/completions``) on loopback, for the
assistant's model path: it records what the SDK really sends and answers as told."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Mode = Literal[
    "ok", "slow", "error", "malformed", "refusal", "truncated", "wrong-shape", "html", "not-chat"
]

ANSWER = {
    "code": "server {\n    listen 80;\n}\n",
    "language": "nginx",
    "filename": "../../etc/site.conf",
    "explanation": "A minimal server block.",
    "target": "nginx",
}
USAGE = {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200}


@dataclass
class Seen:
    """One request as it arrived."""

    headers: dict[str, str]
    body: dict[str, Any]
    raw: str


@dataclass
class FakeOpenAI:
    """What the server answers next, and every request it saw."""

    mode: Mode = "ok"
    url: str = ""  # the API root to configure as [ai] base_url, once started
    requests: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def _completion(self, model: str, message: dict[str, Any], finish: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": USAGE,
        }

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        body = json.loads(raw)
        self.requests.append(Seen(dict(request.headers), body, raw))
        model = body["model"]
        content: str | None = json.dumps(ANSWER)
        refusal, finish = None, "stop"
        match self.mode:
            case "slow":
                # Held until the test ends: the daemon must give up on its own.
                await self.release.wait()
            case "error":
                return web.json_response(
                    {"error": {"message": "overloaded", "type": "server_error"}}, status=500
                )
            case "malformed":
                content = '{"code": "server {", "language": '
            case "refusal":
                content, refusal = None, "I can't help with that."
            case "truncated":
                content, finish = json.dumps(ANSWER)[:40], "length"
            case "wrong-shape":
                content = json.dumps({"answer": "server {}"})
            case "html":  # a proxy's error page with a 200
                return web.Response(text="<html>gateway</html>", content_type="text/html")
            case "not-chat":
                return web.json_response({"object": "list", "data": []})
            case "ok":
                pass
        message = {"role": "assistant", "content": content, "refusal": refusal}
        return web.json_response(self._completion(model, message, finish))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        return app
