"""CORS for the browser-facing vision routes (/analyze, /health): the configured origins only,
the preflight answered, and the headers kept on error answers too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.errors import IrisError
from proxy.keys import SETTINGS
from proxy.web.responses import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALLOW_HEADERS = "Content-Type, X-API-Key, Authorization"


def cors_headers(request: web.Request) -> dict[str, str]:
    allowed = request.app[SETTINGS].vision.cors_origins
    origin = request.headers.get("Origin")
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def with_cors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        headers = cors_headers(request)
        try:
            response = await handler(request)
        except IrisError as exc:
            return error_response(exc.status, exc.code, exc.message, {**exc.headers, **headers})
        response.headers.update(headers)
        return response

    return wrapped


async def preflight(request: web.Request) -> web.Response:
    headers = cors_headers(request)
    if "Access-Control-Allow-Origin" in headers:
        headers.update({"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": "600"})
    return web.Response(status=204, headers=headers)
