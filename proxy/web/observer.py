"""What the app notes about each answered request: metrics, cache results, recent generations."""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import time

from aiohttp import web

from proxy.config.image import ImageSettings
from proxy.errors import IrisError
from proxy.imagegen.params import decode_path, parse_request
from proxy.web.metrics import Metrics
from proxy.web.recent import RecentGenerations

PROMPT_ROUTE = "prompt_image"
PROMPT_PREFIX = "/prompt/"
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,100}")


class Observer:
    def __init__(self, metrics: Metrics, recent: RecentGenerations, image: ImageSettings):
        self.metrics = metrics
        self.image = image
        self.recent = recent
        self.prefix = secrets.token_hex(4)
        self.counter = itertools.count(1)

    def next_id(self) -> str:
        return f"{self.prefix}{next(self.counter):06x}"

    def request_id(self, request: web.BaseRequest) -> str:
        """The caller's X-Request-Id when it is a sane one, else a new id."""
        given = request.headers.get("X-Request-Id")
        return given if given is not None and _GIVEN_ID.fullmatch(given) else self.next_id()

    def done(self, request: web.Request, response: web.StreamResponse, started: float) -> None:
        route = request.match_info.route
        name = route.name
        if name is None:
            name = "unmatched" if route.resource is None else route.resource.canonical
        self.metrics.request(name, request.method, response.status, time.perf_counter() - started)
        if name == PROMPT_ROUTE:
            state = response.headers.get("X-Cache", "")
            self.metrics.cache_result(state)
            if state == "MISS" and response.status == 200 and request.method == "GET":
                self._note(request, response)

    def _note(self, request: web.Request, response: web.StreamResponse) -> None:
        key = response.headers.get("ETag", "").strip('"')
        with contextlib.suppress(IrisError):
            raw = request.rel_url.raw_path[len(PROMPT_PREFIX):]
            req = parse_request(decode_path(raw), request.query, self.image)
            self.recent.note(key, req)
