"""A posted form, read the one way every route reads it: a malformed body (a multipart type
without its boundary, a broken part) is a 400 ``invalid_form``, never an error of aiohttp's own."""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from proxy.errors import BadRequest

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


async def read_form(request: web.BaseRequest) -> Form:
    """``request.post()`` (read once, then kept by aiohttp), a malformed body being a 400."""
    try:
        return await request.post()
    except (ValueError, HttpProcessingError) as exc:
        raise BadRequest(f"the form body is malformed ({type(exc).__name__})", code="invalid_form") from None
