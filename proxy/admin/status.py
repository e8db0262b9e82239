"""GET /status: public liveness; with the admin token, backends, cache, LLM state, signing, the
limits on new images and the spend (no secret).

A backend's health is kept per model (and role: the prompt LLM on the same URL as an image
backend is another row), so each backend has a row for its default model and one for every other
model it has been asked for. The calls, failures, refusals and rejections are every worker's
(read from the metrics); the health (state, cool-down, latency) is this worker's view, shared
with the other instances through Redis when REDIS_URL is set."""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiohttp import web

from proxy import __version__
from proxy.admin.metrics import Totals, labels_of
from proxy.config.backends import BackendSpec, public_url
from proxy.keys import (
    ADMISSION,
    ALLOWANCE,
    BACKEND_COUNTS,
    BREAKER,
    FLIGHT,
    HOSTING,
    IMAGE_CACHE,
    PIPELINE,
    SAFETY,
    SETTINGS,
    SHARED,
)
from proxy.upstream.breaker import Breaker, HealthKey
from proxy.upstream.pool import health_key
from proxy.web.responses import json_response


async def status(request: web.Request) -> web.Response:
    app = request.app
    body: dict[str, object] = {"status": "ok", "version": __version__}
    if await app[ADMISSION].admin_token_valid(request):
        body.update(await admin_status(app))
    return json_response(body, headers={"Cache-Control": "no-store"})


def health_rows(breaker: Breaker, specs: Iterable[BackendSpec], totals: Totals) -> list[dict[str, object]]:
    """One row per backend and model: the default model first, then every other one seen."""
    now = breaker.clock()
    rows: list[dict[str, object]] = []
    for spec in specs:
        default = health_key(spec)
        others = sorted(k for k in list(breaker.health) if k[:2] == default[:2] and k != default)
        for key in (default, *others):
            rows.append({"label": spec.label, "url": public_url(spec.url), "model": key.model or None,
                         "weight": spec.weight, "kind": spec.kind, "token": bool(spec.token),
                         **health(breaker, key, totals, now)})
    return rows


def health(breaker: Breaker, key: HealthKey, totals: Totals, now: float) -> dict[str, object]:
    snapshot = breaker.of(key).snapshot(now)
    counted = totals.get(labels_of(key))
    return {**snapshot, **counted} if counted is not None else snapshot


async def admin_status(app: web.Application, totals: Totals | None = None) -> dict[str, object]:
    image = app[SETTINGS].image
    breaker = app[BREAKER]
    if totals is None:
        totals = await app[BACKEND_COUNTS].totals()
    llm = image.llm
    llm_spec = llm.backend
    return {
        "time": time.time(),
        "backends": health_rows(breaker, app[PIPELINE].pool.specs, totals),
        "image_model": image.image_model,
        "fallback": {"enabled": image.pollinations_fallback and not image.pollinations_is_pool,
                     "label": "pollinations", "url": public_url(image.pollinations_url)},
        "cache": {**await app[IMAGE_CACHE].stats(), "coalesced": app[FLIGHT].coalesced},
        "llm": {"optimization": llm.enabled, "de_nsfw": llm.de_nsfw_enabled,
                "url": public_url(llm.url) if llm.url else None, "model": llm.model,
                "token": bool(llm.token), "de_nsfw_max_attempts": llm.de_nsfw_max_attempts,
                **(health(breaker, health_key(llm_spec), totals, breaker.clock()) if llm_spec else {})},
        "blocked_retry_attempts": image.blocked_retry_attempts,
        "safety_check": await app[SAFETY].report(),
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
