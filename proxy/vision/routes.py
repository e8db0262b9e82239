"""The vision routes: ``POST /process`` (the Frame glasses app), ``POST /analyze`` (VisionAI's web
app), ``GET /health``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from proxy import __version__
from proxy.accounts.identity import authenticate
from proxy.accounts.models import Profile
from proxy.errors import BadRequest, Forbidden, IrisError, Unauthorized
from proxy.keys import ACCOUNTS, GUARD, SETTINGS, VISION
from proxy.security.credentials import bearer_of
from proxy.security.gate import refuse_cross_site
from proxy.vision.display import Debug, failure_body, success_body
from proxy.vision.form import FrameForm, read_frame_form
from proxy.vision.records import Record
from proxy.vision.uploads import frame_from_bytes
from proxy.web.responses import json_response


async def process(request: web.Request) -> web.Response:
    with request.app[VISION].intake.entered():
        return await _answer_frame(request)


async def _answer_frame(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app, debug = request.app, Debug()
    refuse_cross_site(request)  # the session is the address's: another site's page may not post frames
    profile, form = await _caller_and_form(request)
    username = profile.username
    named = form.fields.get("username", "").strip()
    if named and named != username:
        raise Forbidden("you are authenticated as another user", code="wrong_user")
    upload = form.files.get("image")
    if upload is None:
        raise BadRequest('the frame must be a file in the multipart field "image"', code="missing_image")
    if not named:  # devices sharing an address share its session: the frame says whose it is
        raise BadRequest('the form needs the field "username": the profile the frame is for',
                         code="missing_username")
    guard, settings, service = app[GUARD], app[SETTINGS], app[VISION]
    state = await app[ACCOUNTS].users.state(username)  # the prompt and keys: cached by this worker
    if state is None:
        raise Unauthorized("the profile no longer exists", code="no_profile")
    await guard.process(username)  # the rate limit first: a refused frame is never decoded
    frame = await frame_from_bytes(upload, settings.vision, settings.server.max_upload_bytes,
                                   inline=service.intake.alone, pool=service.checks.pool)
    prompt = _prompt(form.fields.get("prompt"), state.prompt, settings.accounts.default_prompt,
                     settings.accounts.max_prompt_chars)
    debug.add(f"[AI] Processing image for {username}")
    try:
        result = await service.answer(username, prompt, frame, state.keys)
    except IrisError as exc:
        if exc.status < 500:
            raise
        body = failure_body(exc, prompt, debug, time.perf_counter() - started)
        service.later.add(Record(username, "frame", {"success": False, "error": exc.code}))
        return json_response(body, status=exc.status, headers=exc.headers)
    body = success_body(result, prompt, debug, time.perf_counter() - started)
    _keep(request, username, frame.jpeg, body)
    return json_response(body)


async def _caller_and_form(request: web.Request) -> tuple[Profile, FrameForm]:
    """A bearer key is checked before the body is read; otherwise the form may hold the key."""
    if request.content_type != "multipart/form-data":
        return await authenticate(request), FrameForm()  # no file part possible: missing_image
    if bearer_of(request):
        profile = await authenticate(request)
        return profile, await read_frame_form(request)
    form = await read_frame_form(request)
    key = form.fields.get("key", "").strip() or None
    return await authenticate(request, key, body_read=True), form


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
    cfg = request.app[SETTINGS].vision
    ready = [p for p in cfg.providers if p.token or p.keyless]
    judges = [p.name for p in ready if p.judges]
    return json_response({"status": "healthy", "model": "iris vision cascade", "version": __version__,
                          "providers": [p.name for p in ready],
                          "judge": cfg.judge or (judges[0] if judges else None)})
