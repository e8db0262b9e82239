"""A fake LiteLLM proxy: a real aiohttp server on 127.0.0.1 in front of several models, as LiteLLM
(1.108) serves them on one URL. ``POST /v1/images/generations`` and ``POST /v1/chat/completions``;
the ``model`` in the body picks the deployment's behaviour; a missing or unknown model gets
LiteLLM's 400 "Invalid model name". Error bodies are LiteLLM's, word for word (its
``{"error": {"message", "type", "param", "code"}}``, where the provider's own code is lost)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.fakes import Seen, png

# What LiteLLM answers when the provider refused the content, with its debug suffix on (today's
# default), and with it off (as LiteLLM plans to default to).
REFUSAL_DEBUG = {"error": {
    "message": "litellm.BadRequestError: litellm.ContentPolicyViolationError: Your request was rejected "
               "as a result of our safety system.\nmodel=... content_policy_fallback=None ...",
    "type": "invalid_request_error", "param": None, "code": "400"}}
REFUSAL_SHORT = {"error": {
    "message": "litellm.BadRequestError: litellm.ContentPolicyViolationError: Request blocked.",
    "type": "invalid_request_error", "param": None, "code": "400"}}
# Its proxy's own errors: an HTTPException's detail as text, "None" for the missing type and param.
NO_DB = {"error": {"message": "No connected db.", "type": "no_db_connection", "param": "None", "code": "400"}}
UPSTREAM_DOWN = {"error": {"message": "litellm.APIConnectionError: Connection error. Received Model Group="
                                      "x\nAvailable Model Group Fallbacks=None", "type": None, "param": None,
                           "code": "500"}}


def invalid_model(route: str, model: str) -> dict[str, Any]:
    return {"error": {"message": f"{{'error': '{route}: Invalid model name passed in model={model}. Call "
                                 "`/v1/models` to view available models for your key.'}",
                      "type": "None", "param": "None", "code": "400"}}


@dataclass
class FakeLiteLLM:
    """``models``: model name -> behaviour.

    Images: ``ok`` | ``refuse`` (REFUSAL_DEBUG) | ``refuse_short`` (REFUSAL_SHORT) | ``nodb`` |
    ``error500``. Chat: ``prompt`` (the prompt LLM: ``<prompt>enhanced: ...</prompt>``) | ``vision``
    (JSON with a confidence) | ``noconfidence`` (JSON without one) | ``error500``.
    ``down``: every call is LiteLLM's 500 (its providers unreachable)."""

    models: dict[str, str] = field(default_factory=dict)
    image: bytes = field(default_factory=png)
    confidence: float = 0.9
    down: bool = False
    calls: list[Seen] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/images/generations", self.images)
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    def models_called(self, path: str) -> list[str | None]:
        return [c.json.get("model") for c in self.calls if c.path == path]

    async def _seen(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        body = await request.json()
        self.calls.append(Seen(request.method, request.path, dict(request.headers), body, dict(request.query)))
        model = body.get("model")
        return body, model if isinstance(model, str) else None

    async def images(self, request: web.Request) -> web.Response:
        _, model = await self._seen(request)
        behaviour = self.models.get(model or "")
        if self.down:
            return web.json_response(UPSTREAM_DOWN, status=500)
        if behaviour is None:
            return web.json_response(invalid_model("/images/generations", model or ""), status=400)
        if behaviour == "refuse":
            return web.json_response(REFUSAL_DEBUG, status=400)
        if behaviour == "refuse_short":
            return web.json_response(REFUSAL_SHORT, status=400)
        if behaviour == "nodb":
            return web.json_response(NO_DB, status=400)
        if behaviour == "error500":
            return web.json_response(UPSTREAM_DOWN, status=500)
        return web.json_response({"created": 1, "data": [{"b64_json": base64.b64encode(self.image).decode()}]})

    async def chat(self, request: web.Request) -> web.Response:
        body, model = await self._seen(request)
        behaviour = self.models.get(model or "")
        if self.down or behaviour == "error500":
            return web.json_response(UPSTREAM_DOWN, status=500)
        if behaviour is None:
            return web.json_response(invalid_model("/chat/completions", model or ""), status=400)
        if behaviour == "prompt":
            content = body["messages"][-1]["content"]  # a template writing <<{ORIGINAL_PROMPT}>>
            text = f"<prompt>enhanced: {content.split('<<', 1)[-1].split('>>', 1)[0]}</prompt>"
        else:
            reply: dict[str, Any] = {"answer": f"{model} says apple"}
            if behaviour == "vision":
                reply["confidence"] = self.confidence
            text = orjson.dumps(reply).decode()
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": text}}]})
