"""What a route accepts as its body, checked before the body is read.

A browser may send three content types to any site without asking it first (a CORS "simple"
request): ``application/x-www-form-urlencoded``, ``multipart/form-data`` and ``text/plain``. A route
that acts for a session bound to the caller (its address, a cookie) and documents a JSON body, or
no body, refuses anything else, so that a page on another site cannot make a visitor's browser
send it a request it would act on."""

from __future__ import annotations

from aiohttp import hdrs, web

from proxy.errors import UnsupportedMediaType

BROWSER_SIMPLE = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})


def require_json(request: web.Request) -> None:
    """415 unless the body is declared ``application/json``."""
    if request.content_type != "application/json" or hdrs.CONTENT_TYPE not in request.headers:
        raise UnsupportedMediaType("send the body as JSON, with Content-Type: application/json")


def require_no_body(request: web.Request) -> None:
    """415 for a body, or for a content type a browser form could send even with an empty one."""
    declared = hdrs.CONTENT_TYPE in request.headers
    if request.body_exists or (declared and request.content_type in BROWSER_SIMPLE):
        raise UnsupportedMediaType("this request takes no body")
