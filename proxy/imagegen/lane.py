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
rule, and the observer's ``stamp`` and ``count`` (request id and counting). The errors middleware
has nothing to do for an answer that cannot fail. ``FastLaneRunner`` refuses to start when the app
has a middleware the lane does not stand in for, so a middleware added later cannot be skipped on
hits unnoticed.

The lane answers at two depths. Most hits are answered where the connection parsed them
(``wire``, the server's shortcut: ``proxy.web.protocol``), writing the header block and the body
straight to the socket: no task, no response object. A request that arrives while its connection
is busy, or pipelined behind another, or that the shortcut cannot answer whole for another reason
(HTTP/1.0, ``Connection: close``, an answer still being written), reaches the lane as the server's
request handler (``__call__``) and is answered with an ``ImageResponse``: the same bytes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiohttp import hdrs, web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_writer import _serialize_headers

from proxy.cache.entry import IMAGE, CacheEntry
from proxy.cache.images import variant_key
from proxy.imagegen.reply import send_image
from proxy.imagegen.route import image_headers, image_response
from proxy.imagegen.targets import Target
from proxy.keys import ADMISSION, HOSTING, IMAGE_CACHE, OBSERVER, SAFETY, TARGETS, VARIANTS
from proxy.security.gate import admission_middleware
from proxy.web.errors import errors_middleware
from proxy.web.observe import Observer
from proxy.web.protocol import Answered, IrisServer
from proxy.web.runner import IrisRunner
from proxy.web.view import RequestView, WireRequest

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
VIEWS_PER_TARGET = 16
STATUS_LINE = "HTTP/1.1 200 OK"


class Hit(NamedTuple):
    found: Target
    stored: str  # the cache key of the representation served
    entry: CacheEntry
    negotiated: bool  # the format was chosen from Accept
    expires: int | None  # a signed URL's exp
    started: float


RID, DATE = "<iris:rid>", "<iris:date>"  # where a header block's per-request values go


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
        self.wired = 0  # ... of them, where their connection parsed them

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
        hit = self._find(request)
        if hit is None:
            return None
        response = image_response(self.cache, hit.stored, hit.entry, self._headers(hit))
        self._served()
        self.observer.finish(response, self.observer.request_id(request), hit.found.route, hdrs.METH_GET,
                             hit.started, authorized=hdrs.AUTHORIZATION in request.headers)
        return response

    def wire(self, request: WireRequest) -> Answered | None:
        """The hit answered on the connection that parsed it (the server's shortcut); None declines."""
        transport = request.transport
        if request.method != hdrs.METH_GET or transport is None:
            return None
        observer = self.observer
        try:
            hit = self._find(request)
            if hit is None:
                return None
            rid = observer.request_id(request)
            before, between, after = self._block(hit, hdrs.AUTHORIZATION in request.headers)
        except Exception:  # noqa: BLE001 - the full way decides, and reports what went wrong
            return None
        self._served()
        head = b"".join((before, rid.encode(), between, rfc822_formatted_time().encode(), after))
        body = hit.entry.body
        send_image(transport, head, body, self.cache.file_for(hit.stored, hit.entry), request.sock)
        observer.count(hit.found.route, hdrs.METH_GET, 200, hit.started, "HIT")
        self.wired += 1
        return Answered(200, {"X-Request-Id": rid}, len(head) + len(body))  # as aiohttp counts: every byte

    def _headers(self, hit: Hit) -> dict[str, str]:
        """The answer's headers but the request id (``Observer.stamp``), in the route's order."""
        headers = image_headers(hit.stored, "HIT", hit.expires, self.admission.clock(),
                                negotiated=hit.negotiated)
        headers["Content-Type"] = hit.entry.content_type
        return headers

    def _block(self, hit: Hit, authorized: bool) -> tuple[bytes, bytes, bytes]:
        """The answer's header block, as aiohttp would write the route's answer, in three parts
        around the request id and the date; remembered on the target for this entry (while the
        headers depend on nothing else: not for a signed URL with an expiry, whose max-age runs)."""
        memo = hit.found.heads
        held = memo.get((hit.stored, authorized))
        if held is not None and held[0] is hit.entry:
            return held[1]
        headers = self._headers(hit)
        Observer.stamp(headers, RID, authorized)
        headers["Content-Length"] = str(len(hit.entry.body))  # where aiohttp adds the last three
        headers["Date"] = DATE
        headers["Server"] = SERVER_SOFTWARE
        before, rest = _serialize_headers(STATUS_LINE, headers).split(RID.encode())  # type: ignore[arg-type]
        between, after = rest.split(DATE.encode())
        block = (before, between, after)
        if hit.expires is None and len(memo) < VIEWS_PER_TARGET:
            memo[(hit.stored, authorized)] = (hit.entry, block)
        return block

    def _find(self, request: RequestView) -> Hit | None:
        """The hit ``request`` is, when the lane can answer it; else None (not counted yet)."""
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
        return Hit(found, stored, entry, negotiated, expires, started)

    def _served(self) -> None:
        """A hit counted: only once its answer is certain (nothing that can fail comes after)."""
        self.cache.count(True)
        self.served += 1

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
        server.request_handler = lane = FastLane(self.app, server.request_handler)  # before any connection
        if isinstance(server, IrisServer):
            server.shortcut = lane.wire
