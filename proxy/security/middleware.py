"""Refuses blacklisted addresses on every route, before any handler runs."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.errors import Forbidden
from proxy.keys import GUARD
from proxy.security.identity import address_of


@web.middleware
async def blacklist_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    blacklist = request.app[GUARD].blacklist
    if blacklist.listed and blacklist.blocked(address_of(request)):  # the address only when needed
        raise Forbidden("this address is blocked", code="blocked")
    return await handler(request)
