"""The admission rule at the door: the middleware that refuses blacklisted addresses on every route
before any handler runs, and who is calling as the routes need it (the client's address, whether
it came over HTTPS, whether a browser sent it from another site), with the trusted proxies of the
settings."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.errors import Forbidden
from proxy.keys import ADMISSION, SETTINGS
from proxy.security.address import address_for, host_for, https_for
from proxy.security.origin import cross_site


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    admission = request.app[ADMISSION]
    if admission.peers.enabled:  # only while TRUSTED_PROXIES is empty
        admission.peers.saw(request.remote, request.match_info.route.name)
    if admission.blocked(request):
        raise Forbidden("this address is blocked", code="blocked")
    return await handler(request)


def address_of(request: web.Request) -> str:
    """The client's address (X-Forwarded-For is believed only from TRUSTED_PROXIES)."""
    return address_for(request, request.app[SETTINGS].security.trusted_proxies)


def over_https(request: web.Request) -> bool:
    """Did the client reach Iris, or the trusted proxy in front of it, over HTTPS?"""
    return https_for(request, request.app[SETTINGS].security.trusted_proxies)


def asked_host(request: web.Request) -> str:
    """The host (and port) the client asked for, as the trusted proxy in front of Iris saw it."""
    return host_for(request, request.app[SETTINGS].security.trusted_proxies)



def refuse_cross_site(request: web.Request) -> None:
    """403 ``cross_origin`` for a browser's request sent from another site (``proxy.security.origin``)."""
    if cross_site(request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"), asked_host(request)):
        raise Forbidden("this request may only be sent from this site, or by an app that is not a "
                        "browser", code="cross_origin")
