"""Per-request observation, the one place that stamps a request id and counts a request: the
middleware on the full path (``Observer.middleware``) and the image fast lane call
``Observer.finish`` alike. It also marks every answer to a request that carried ``Authorization``
with ``Vary: Authorization``, so a shared cache (a CDN) never hands it to a request without it.

The id is the caller's X-Request-Id when it is a sane one, else a new one; it goes back in the
answer and into every log line of the request. Counting is a few dictionary updates on the hot
path (``proxy.web.metrics``); everything that touches disk or other processes runs off it."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import MutableMapping

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from proxy.logs import REQUEST_ID
from proxy.web.drain import Drain
from proxy.web.metrics import Metrics
from proxy.web.view import RequestView

_GIVEN_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,100}")


class Observer:
    def __init__(self, metrics: Metrics, drain: Drain):
        self.metrics = metrics
        self.drain = drain
        self.prefix = secrets.token_hex(4)
        self.counter = itertools.count(1)

    def next_id(self) -> str:
        return f"{self.prefix}{next(self.counter):06x}"

    def request_id(self, request: RequestView) -> str:
        """The caller's X-Request-Id when it is a sane one, else a new id."""
        given = request.headers.get("X-Request-Id")
        return given if given is not None and _GIVEN_ID.fullmatch(given) else self.next_id()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The full path's observation (the fast lane calls ``finish`` itself)."""
        started = time.perf_counter()
        rid = self.request_id(request)
        authorized = hdrs.AUTHORIZATION in request.headers
        token = REQUEST_ID.set(rid)
        try:
            with self.drain.request():
                response = await handler(request)
        except web.HTTPException as exc:  # redirects and 304s raised by handlers pass through here
            self.finish(exc, rid, route_name(request), request.method, started, authorized=authorized)
            raise
        finally:
            REQUEST_ID.reset(token)
        self.finish(response, rid, route_name(request), request.method, started, authorized=authorized)
        return response

    def finish(self, response: web.StreamResponse, request_id: str, route: str, method: str,
               started: float, *, authorized: bool = False) -> None:
        """Stamps the id on the answer and counts it (and its cache result, when it has one).
        ``authorized``: the request carried ``Authorization``."""
        headers = response.headers
        self.stamp(headers, request_id, authorized)
        self.count(route, method, response.status, started, headers.get("X-Cache"))

    @staticmethod
    def stamp(headers: MutableMapping[str, str], request_id: str, authorized: bool) -> None:
        """The id on the answer's ``headers``, and ``Vary: Authorization`` when ``authorized``."""
        headers["X-Request-Id"] = request_id
        if authorized:
            vary = headers.get(hdrs.VARY)
            headers[hdrs.VARY] = f"{vary}, Authorization" if vary else "Authorization"

    def count(self, route: str, method: str, status: int, started: float, cache: str | None) -> None:
        """One answer counted (``started``: its ``perf_counter``), and its cache result if any."""
        self.metrics.request(route, method, status, time.perf_counter() - started)
        if cache is not None:
            self.metrics.cache_result(cache)


def route_name(request: web.Request) -> str:
    route = request.match_info.route
    if route.name is not None:
        return route.name
    return "unmatched" if route.resource is None else route.resource.canonical
