"""The fast lane: a cache hit answered before aiohttp's router and middlewares.

A small image served from memory costs more in routing, the middlewares and the handler's
generality than in anything it really needs; this lane answers the common case directly. It
takes a request only when the answer is certain to be what ``prompt_image`` would send: a GET of
a target parsed before, without If-None-Match, admitted by the admission rule without any I/O
(``Admission.admits_at_once``: the access key, or the signature the target cache remembered what
it covers, checked with one HMAC), for an image this worker's memory front holds, that passed the
safety check when the request wants it, in the representation the request wants (the original,
or a variant the front holds beside it: the format comes from the remembered target or from
``Accept``, decided without I/O), and no image host wants. Anything else, or anything unexpected,
goes the full way, where every check and the error handling live.

What the middlewares do on the full way, the lane does by calling the same code: the admission
rule, and ``Observer.finish`` (request id and counting). The errors middleware has nothing to do
for an answer that cannot fail. ``FastLaneRunner`` refuses to start when the app has a middleware
the lane does not stand in for, so a middleware added later cannot be skipped on hits unnoticed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from proxy.cache.entry import IMAGE
from proxy.cache.images import variant_key
from proxy.imagegen.route import image_headers, image_response
from proxy.imagegen.targets import Target
from proxy.keys import ADMISSION, HOSTING, IMAGE_CACHE, OBSERVER, SAFETY, TARGETS, VARIANTS
from proxy.security.gate import admission_middleware
from proxy.web.errors import errors_middleware
from proxy.web.runner import IrisRunner

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
VIEWS_PER_TARGET = 16


class FastLane:
    def __init__(self, app: web.Application, full: Handler):
        stands_in_for = (app[OBSERVER].middleware, errors_middleware, admission_middleware)
        unknown = [m for m in app.middlewares if m not in stands_in_for]
        if unknown:
            raise RuntimeError(f"the image fast lane does not do what {unknown} does for the full way: "
                               "teach proxy/imagegen/lane.py, or hits will skip it")
        self.full = full
        self.admission = app[ADMISSION]
        self.targets = app[TARGETS]
        self.cache = app[IMAGE_CACHE]
        self.observer = app[OBSERVER]
        self.hosting = app[HOSTING]
        self.formats = app[VARIANTS].formats
        self.safety = app[SAFETY]
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
        if found is None or hdrs.IF_NONE_MATCH in request.headers:
            return None
        if not self.admission.admits_at_once(request, found.signed):
            return None
        key = found.key
        entry = self.cache.peek(key)
        if entry is None or entry.kind != IMAGE or (self.hosting is not None and self.hosting.wants(entry)):
            return None
        if self.safety.required(found.request) and not self.safety.passed(entry):
            return None  # the check is made on the full way
        pick = (request.headers.get(hdrs.ACCEPT), entry.content_type)
        view = found.views.get(pick) or self._view(found, pick)
        suffix, negotiated = view
        stored = key
        if suffix:
            stored = key + suffix
            entry = self.cache.peek_variant(stored, entry)
            if entry is None:
                return None  # to be made: the full way
        expires = found.signed.expires if found.signed is not None else None
        headers = image_headers(stored, "HIT", expires, self.admission.clock(), negotiated=negotiated)
        response = image_response(self.cache, stored, entry, headers)
        self.cache.count(True)
        observer = self.observer
        observer.finish(response, observer.request_id(request), found.route, hdrs.METH_GET, started,
                        authorized=hdrs.AUTHORIZATION in request.headers)
        self.served += 1
        return response

    def _view(self, found: Target, pick: tuple[str | None, str]) -> tuple[str, bool]:
        """What ``found`` is served as for an ``Accept`` header and the original's type, remembered
        on the target (a few per target: browsers send a handful of different headers)."""
        formats = self.formats
        variant = formats.variant(found.wanted, pick[0], pick[1])
        suffix = variant_key("", variant.suffix) if variant is not None else ""
        view = (suffix, formats.negotiates(found.wanted))
        if len(found.views) < VIEWS_PER_TARGET:
            found.views[pick] = view
        return view


class FastLaneRunner(IrisRunner):
    """An ``IrisRunner`` whose server answers through the fast lane first (the server and the tests)."""

    async def setup(self) -> None:
        await super().setup()
        server = self.server
        assert server is not None
        server.request_handler = FastLane(self.app, server.request_handler)  # before any connection
