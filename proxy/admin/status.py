"""GET /status: public liveness; with the admin token, backends, cache, LLM state, signing, the
limits on new images and the spend (no secret)."""

from __future__ import annotations

import time

from aiohttp import web

from proxy import __version__
from proxy.config.backends import public_url
from proxy.keys import (
    ADMISSION,
    ALLOWANCE,
    BREAKER,
    FLIGHT,
    HOSTING,
    IMAGE_CACHE,
    PIPELINE,
    SETTINGS,
    SHARED,
)
from proxy.web.responses import json_response


async def status(request: web.Request) -> web.Response:
    app = request.app
    body: dict[str, object] = {"status": "ok", "version": __version__}
    if await app[ADMISSION].admin_token_valid(request):
        body.update(await admin_status(app))
    return json_response(body, headers={"Cache-Control": "no-store"})


async def admin_status(app: web.Application) -> dict[str, object]:
    image = app[SETTINGS].image
    breaker = app[BREAKER]
    now = breaker.clock()
    backends = [
        {"url": public_url(spec.url), "weight": spec.weight, "kind": spec.kind,
         "token": bool(spec.token), **breaker.of(spec.url).snapshot(now)}
        for spec in app[PIPELINE].pool.specs
    ]
    llm = image.llm
    return {
        "time": time.time(),
        "backends": backends,
        "fallback": {"enabled": image.pollinations_fallback and not image.pollinations_is_pool,
                     "url": public_url(image.pollinations_url)},
        "cache": {**await app[IMAGE_CACHE].stats(), "coalesced": app[FLIGHT].coalesced},
        "llm": {"optimization": llm.enabled, "de_nsfw": llm.de_nsfw_enabled,
                "url": public_url(llm.url) if llm.url else None, "model": llm.model,
                "token": bool(llm.token), "de_nsfw_max_attempts": llm.de_nsfw_max_attempts,
                **(breaker.of(llm.url).snapshot(now) if llm.url else {})},
        "blocked_retry_attempts": image.blocked_retry_attempts,
        "redis": shared.snapshot() if (shared := app.get(SHARED)) is not None else None,
        "hosting": await hosting_status(app),
        "signing": {"keys": len(app[ADMISSION].signer.keys),
                    "configured": bool(app[SETTINGS].server.signing_keys),  # else generated under DATA_DIR
                    "require_signed": app[ADMISSION].require_signed},
        "spending": await app[ALLOWANCE].status(),
    }


async def hosting_status(app: web.Application) -> dict[str, object]:
    """The host and the upload counts, never the key or auth code."""
    cfg = app[SETTINGS].hosting
    stage = app[HOSTING]
    if stage is None:
        return {"enabled": False}
    return {"enabled": True, "provider": cfg.provider, "url": public_url(cfg.url), "response": cfg.response,
            "key": bool(cfg.key), "auth_code": bool(cfg.auth_code), "uploads": await stage.stats()}
