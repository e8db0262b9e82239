"""The vision routes: ``POST /process`` (the Frame glasses app), ``POST /analyze`` (VisionAI's web
app), ``GET /health``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from proxy import __version__
from proxy.errors import BadRequest, Forbidden, IrisError
from proxy.keys import DATABASE, GUARD, SETTINGS, VISION
from proxy.security.identity import authenticate
from proxy.vision.analyze import analyze
from proxy.vision.cors import preflight, with_cors
from proxy.vision.display import Debug, failure_body, success_body
from proxy.vision.records import Record, user_state
from proxy.vision.uploads import frame_from_file
from proxy.web.responses import json_response


async def process(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app, debug = request.app, Debug()
    profile = await authenticate(request)
    form = await request.post()
    username = profile.username
    named = form.get("username")
    if isinstance(named, str) and named.strip() and named.strip() != username:
        raise Forbidden("you are authenticated as another user", code="wrong_user")
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise BadRequest('the frame must be a file in the multipart field "image"', code="missing_image")
    db, settings = app[DATABASE], app[SETTINGS]
    # one wait instead of three: the rate limit, the frame check and the user's prompt and keys
    outcomes = await asyncio.gather(
        app[GUARD].process(username),
        frame_from_file(upload.file, settings.vision.cascade, settings.server.max_upload_bytes),
        user_state(db, username), return_exceptions=True)
    for outcome in outcomes:  # the rate limit's refusal first, then a bad frame
        if isinstance(outcome, BaseException):
            raise outcome
    _, frame, (custom, own_keys) = outcomes
    prompt = _prompt(form.get("prompt"), custom, settings.vision.default_prompt,
                     settings.vision.max_prompt_chars)
    debug.add(f"[AI] Processing image for {username}")
    service = app[VISION]
    try:
        result = await service.answer(username, prompt, frame, own_keys)
    except IrisError as exc:
        if exc.status < 500:
            raise
        body = failure_body(exc, prompt, debug, time.perf_counter() - started)
        service.later.add(Record(username, "frame", {"success": False, "error": exc.code}))
        return json_response(body, status=exc.status, headers=exc.headers)
    body = success_body(result, prompt, debug, time.perf_counter() - started)
    _keep(request, username, frame.jpeg, body)
    return json_response(body)


def _prompt(given: Any, custom: str | None, default: str, limit: int) -> str:
    prompt = given.strip() if isinstance(given, str) and given.strip() else (custom or default)
    if len(prompt) > limit:
        raise BadRequest(f"the prompt is longer than {limit} characters", code="prompt_too_long")
    return prompt


def _keep(request: web.Request, username: str, jpeg: bytes, body: dict[str, Any]) -> None:
    """Store the frame and an activity row after answering."""
    app = request.app
    fields = {k: body[k] for k in ("provider", "confidence", "calls", "cached", "processing_time")}
    meta = {"prompt": body["prompt_used"], "answer": body["answer"], **fields}
    app[VISION].later.add(Record(username, "frame", {"success": True, **fields}, jpeg, meta))


async def health(request: web.Request) -> web.Response:
    cfg = request.app[SETTINGS].vision.cascade
    ready = [p.name for p in cfg.providers if p.token or p.keyless]
    return json_response({"status": "healthy", "model": "iris vision cascade", "version": __version__,
                          "providers": ready, "judge": cfg.judge or (ready[0] if ready else None)})


def add_vision_routes(app: web.Application) -> None:
    app.router.add_post("/process", process, name="process")
    app.router.add_post("/analyze", with_cors(analyze), name="analyze")
    app.router.add_route("OPTIONS", "/analyze", preflight, name="analyze_preflight")
    app.router.add_get("/health", with_cors(health), name="health")
    app.router.add_route("OPTIONS", "/health", preflight, name="health_preflight")


