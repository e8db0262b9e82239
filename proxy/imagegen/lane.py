"""The fast lane: a cache hit answered before aiohttp's router and middlewares.

A small image served from memory costs more in routing, three middlewares and the handler's
generality than in anything it really needs; this lane answers the common case directly. It
takes a request only when the answer is certain to be what ``prompt_image`` would send: a GET
of a target parsed before, carrying the right access key, from an address neither blacklisted
nor suspected of guessing, without If-None-Match, for an image this worker's memory front holds
and no image host wants. Anything else, or anything unexpected, goes the full way, where every
check and the error handling live. The lane counts what it serves in the same metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from proxy.cache.entry import IMAGE
from proxy.imagegen.route import image_headers, image_response
from proxy.keys import GUARD, HOSTING, IMAGE_CACHE, OBSERVER, SECRETS, TARGETS
from proxy.security.auth import bearer_of, same
from proxy.security.identity import address_for
from proxy.web.observer import PROMPT_ROUTE

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class FastLane:
    def __init__(self, app: web.Application, full: Handler):
        self.full = full
        self.guard = app[GUARD]
        self.targets = app[TARGETS]
        self.cache = app[IMAGE_CACHE]
        self.observer = app[OBSERVER]
        self.hosting = app[HOSTING]
        self.access_key = app[SECRETS].access_key
        self.served = 0  # hits this worker answered here

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == hdrs.METH_GET:
            try:
                response = self._hit(request)
            except Exception:  # noqa: BLE001 - the full way decides, and reports what went wrong
                response = None
            if response is not None:
                return response
        return await self.full(request)

    def _hit(self, request: web.BaseRequest) -> web.StreamResponse | None:
        started = time.perf_counter()
        found = self.targets.remembered(request.raw_path)
        if found is None or hdrs.IF_NONE_MATCH in request.headers or not self._admitted(request):
            return None
        key = found[1]
        entry = self.cache.peek(key)
        if entry is None or entry.kind != IMAGE or (self.hosting is not None and self.hosting.wants(entry)):
            return None
        headers = image_headers(key, "HIT")
        headers["X-Request-Id"] = self.observer.request_id(request)
        response = image_response(self.cache, key, entry, headers)
        self.cache.count(True)
        self.observer.metrics.cache_result("HIT")
        self.observer.metrics.request(PROMPT_ROUTE, hdrs.METH_GET, 200, time.perf_counter() - started)
        self.served += 1
        return response

    def _admitted(self, request: web.BaseRequest) -> bool:
        guard = self.guard
        if guard.blacklist.listed:
            return False
        if guard.suspects and guard.suspect(address_for(request, guard.trusted_proxies)):
            return False  # the full way asks the shared limiter first for a suspect address
        return same(request.query.get("key") or bearer_of(request), self.access_key)
