"""CORS for the browser-facing vision routes: ``/analyze`` from the ANALYZE_ORIGINS only (none by
default: a page elsewhere must not spend the vision providers with a key it holds), ``/health``
from VISION_CORS_ORIGINS; the preflight answered, and the headers kept on error answers too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.config.vision import VisionSettings
from proxy.errors import IrisError
from proxy.keys import SETTINGS
from proxy.web.responses import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Origins = Callable[[VisionSettings], tuple[str, ...]]
ALLOW_HEADERS = "Content-Type, X-API-Key, Authorization"


def analyze_origins(cfg: VisionSettings) -> tuple[str, ...]:
    return cfg.analyze_origins


def health_origins(cfg: VisionSettings) -> tuple[str, ...]:
    return cfg.cors_origins


def cors_headers(request: web.Request, origins: Origins) -> dict[str, str]:
    allowed = origins(request.app[SETTINGS].vision)
    origin = request.headers.get("Origin")
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def with_cors(handler: Handler, origins: Origins) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        headers = cors_headers(request, origins)
        try:
            response = await handler(request)
        except IrisError as exc:
            return error_response(exc.status, exc.code, exc.message, {**exc.headers, **headers})
        response.headers.update(headers)
        return response

    return wrapped


def preflight(origins: Origins) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        headers = cors_headers(request, origins)
        if "Access-Control-Allow-Origin" in headers:
            headers.update({"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                            "Access-Control-Allow-Headers": ALLOW_HEADERS,
                            "Access-Control-Max-Age": "600"})
        return web.Response(status=204, headers=headers)

    return answer
