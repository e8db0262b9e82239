"""JSON responses encoded with orjson. An error answer (4xx, 5xx) is never stored by a browser or
a cache in between (``Cache-Control: no-store``), unless its caller says otherwise."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

NO_STORE = "no-store"


def json_response(obj: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    if status >= 400:
        headers = {"Cache-Control": NO_STORE, **(headers or {})}
    return web.Response(body=orjson.dumps(obj), status=status, headers=headers,
                        content_type="application/json")


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
