"""Where hosting meets the image route.

After a generation, ``host`` uploads the image (inside the route's single flight, so identical
concurrent misses cost one upload) and turns it into a hosted entry: the cache keeps only the URL.
When the upload fails, the image stays an ordinary cached image marked pending, the request is
answered with its bytes, and ``settle`` retries the upload on a later request (at most once every
``IMAGE_HOSTING_RETRY_AFTER`` seconds, in a single flight of its own). In proxy mode ``settle``
also turns a hosted entry back into bytes, fetched from the host (and kept in a memory front that
a delete anywhere clears, like the image cache's). That fetch is guarded like a backend's url
answer (``proxy.upstream.guarded``): the URL must be on the host's own origin (that of
IMAGE_HOSTING_URL), on public addresses or in IMAGE_FETCH_ALLOW, redirects included, and the
bytes must decode as an image before they are served or kept. When the host answers that it no
longer has the image (404 or 410), the entry is deleted and ``ImageLost`` tells the route to make
the image again; a host that fails otherwise may come back, so that is a 502 and the entry stays."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import replace

import aiohttp

from proxy.cache.entry import HOSTED, IMAGE, CacheEntry
from proxy.cache.flight import SingleFlight
from proxy.cache.front import MemoryFront
from proxy.cache.images import ImageCache
from proxy.config import Settings
from proxy.config.backends import public_url
from proxy.config.hosting import HostingSettings
from proxy.errors import UpstreamFailed
from proxy.hosting.base import Uploader, filename_for
from proxy.hosting.registry import make_uploader
from proxy.hosting.retry import upload_with_retry
from proxy.upstream.errors import HttpStatus, UpstreamError
from proxy.upstream.guarded import GuardedFetcher
from proxy.upstream.inspect import checked_image_type

log = logging.getLogger(__name__)
FAILED_AT = "upload_failed_at"
MAX_DEFERRED = 10_000
GONE = frozenset({404, 410})


class ImageLost(Exception):
    """Proxy mode: the host no longer has a hosted image; its cache entry has been deleted."""


class HostingStage:
    def __init__(self, settings: HostingSettings, uploader: Uploader, cache: ImageCache,
                 flight: SingleFlight[CacheEntry], fetcher: GuardedFetcher, *,
                 deadline: float, fetched: MemoryFront[tuple[str, bytes]]):
        self.settings = settings
        self.uploader = uploader
        self.cache = cache
        self.flight = flight
        self.fetcher = fetcher
        self.deadline = deadline
        self.margin = min(1.0, deadline / 5)  # an upload gives up this long before the request does
        self.proxy = settings.response == "proxy"
        self.fetched = fetched  # proxy mode: (content type, bytes) fetched from the host, by key
        self.deferred: OrderedDict[str, float] = OrderedDict()  # key -> monotonic time of next try

    @classmethod
    def open(cls, settings: Settings, session: aiohttp.ClientSession, cache: ImageCache,
             flight: SingleFlight[CacheEntry]) -> HostingStage | None:
        """The stage IMAGE_HOSTING_ENABLED asks for, with the uploader IMAGE_HOSTING_PROVIDER names."""
        cfg = settings.hosting
        if not cfg.enabled:
            return None
        memory, upstream = settings.cache, settings.image.timeouts
        fetched: MemoryFront[tuple[str, bytes]] = MemoryFront(memory.memory_bytes, memory.memory_item_bytes)
        fetcher = GuardedFetcher(session, total=cfg.timeout, connect=cfg.connect_timeout,
                                 cap=upstream.fetch_max_bytes, allow=upstream.fetch_allow)
        log.info("image hosting: %s at %s, answering by %s", cfg.provider, public_url(cfg.url), cfg.response)
        return cls(cfg, make_uploader(cfg, session), cache, flight, fetcher,
                   deadline=settings.server.request_deadline, fetched=fetched)

    def wants(self, entry: CacheEntry) -> bool:
        """True when ``settle`` has work: a pending image, or a hosted one served as bytes."""
        return entry.kind == IMAGE or (self.proxy and entry.kind == HOSTED)

    async def host(self, key: str, entry: CacheEntry, *, until: float | None = None) -> CacheEntry:
        """Upload a fresh image: a hosted entry (still holding the bytes, for this answer only),
        or the image marked pending. Gives up a margin before loop time ``until``, so the request
        can still be answered with the bytes; never raises (but for cancellation)."""
        if entry.kind != IMAGE:
            return entry
        try:
            async with asyncio.timeout_at(None if until is None else until - self.margin):
                url = await upload_with_retry(
                    self.uploader, entry.body, filename_for(key, entry.content_type), entry.content_type,
                    attempts=self.settings.attempts, backoff=self.settings.backoff)
        except (UpstreamError, TimeoutError) as exc:
            reason = exc.describe() if isinstance(exc, UpstreamError) else "out of time"
            log.warning("upload of %s to %s failed: %s; serving it from the cache", key[:12],
                        self.uploader.name, reason)
            await self._count("failed")
            self._defer(key)
            return replace(entry, meta={**entry.meta, FAILED_AT: time.time(), "upload_error": reason})
        await self._count("done")
        meta = {k: v for k, v in entry.meta.items() if k not in (FAILED_AT, "upload_error")}
        return replace(entry, kind=HOSTED, meta={**meta, "url": url, "host": self.uploader.name,
                                                 "uploaded": time.time()})

    @staticmethod
    def stored(entry: CacheEntry) -> CacheEntry:
        """What the cache keeps: a hosted entry without its bytes (KV style)."""
        return replace(entry, body=b"") if entry.kind == HOSTED and entry.body else entry

    async def settle(self, key: str, entry: CacheEntry, *, fresh: bool = False) -> CacheEntry:
        """The entry to answer with: a pending image from the cache (not ``fresh`` from this
        request's flight, which just tried) is uploaded when due; in proxy mode a hosted entry
        becomes its bytes."""
        if entry.kind == IMAGE and not fresh and self._due(key, entry):
            entry = await self._retry(key, entry)
        if entry.kind == HOSTED and self.proxy:
            return await self._bytes(key, entry)
        return entry

    async def image_bytes(self, key: str, entry: CacheEntry) -> CacheEntry:
        """A hosted entry as its bytes, in either mode (for answers that must carry the image, such
        as the OpenAI API's ``b64_json``); ``ImageLost`` as in ``settle``."""
        return await self._bytes(key, entry) if entry.kind == HOSTED else entry

    def _due(self, key: str, entry: CacheEntry) -> bool:
        next_try = self.deferred.get(key)
        if next_try is not None and time.monotonic() < next_try:
            return False
        return time.time() - entry.meta.get(FAILED_AT, 0.0) >= self.settings.retry_after

    def _defer(self, key: str) -> None:
        self.deferred.pop(key, None)
        self.deferred[key] = time.monotonic() + self.settings.retry_after
        while len(self.deferred) > MAX_DEFERRED:
            self.deferred.popitem(last=False)

    async def _retry(self, key: str, entry: CacheEntry) -> CacheEntry:
        started = time.time()
        until = asyncio.get_running_loop().time() + self.deadline

        async def lookup() -> CacheEntry | None:
            self.cache.front.discard(key)  # another worker may have uploaded it: read the store
            found = await self.cache.get(key)
            if found is not None and (found.kind == HOSTED or found.meta.get(FAILED_AT, 0.0) >= started):
                return found
            return None

        async def publish(result: CacheEntry) -> None:
            self.cache.front.discard(key)
            await self.cache.put(key, self.stored(result))

        try:
            async with asyncio.timeout_at(until):
                return await self.flight.do(f"upload:{key}", lambda: self.host(key, entry, until=until),
                                            lookup, publish)
        except TimeoutError:
            return entry

    async def _bytes(self, key: str, entry: CacheEntry) -> CacheEntry:
        self.fetched.sync(self.cache.generation.read())
        if entry.body:  # fresh from this request's upload, its type read from the bytes upstream
            self.fetched.put(key, (entry.content_type, entry.body), len(entry.body))
            return replace(entry, kind=IMAGE)
        held = self.fetched.get(key)
        if held is not None:
            return replace(entry, kind=IMAGE, body=held[1], content_type=held[0])
        name = self.uploader.name
        try:
            body = await self.fetcher.fetch(entry.meta["url"], trusted=self.settings.url, label=name)
            content_type = await checked_image_type(body, name)
        except HttpStatus as exc:
            if exc.status not in GONE:
                raise _not_served(exc) from None
            log.warning("the image host lost %s (%s); the image will be made again", key, exc.describe())
            await self.cache.delete(key)
            raise ImageLost(key) from None
        except UpstreamError as exc:
            log.warning("the image host's copy of %s was not served: %s", key[:12], exc.describe())
            raise _not_served(exc) from None
        self.fetched.put(key, (content_type, body), len(body))
        return replace(entry, kind=IMAGE, body=body, content_type=content_type)

    async def _count(self, outcome: str) -> None:
        try:
            await self.cache.store.incr(f"stats:uploads:{outcome}")
        except Exception:  # a counter must never fail an upload
            log.exception("could not count an upload")

    async def stats(self) -> dict[str, int]:
        store = self.cache.store
        return {outcome: int(await store.get(f"stats:uploads:{outcome}") or 0)
                for outcome in ("done", "failed")}


def _not_served(exc: UpstreamError) -> UpstreamFailed:
    return UpstreamFailed(f"the image host did not serve the image ({exc.describe()})",
                          headers={"X-Cache": "HIT"})
