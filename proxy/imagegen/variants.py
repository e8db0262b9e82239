"""Variants of cached images: an image in the format a request wants, converted once for
everyone (single flight, across workers and instances, like a generation), on this worker's own
small thread pool so the event loop never waits on the encoder, and cached beside the original
(``ImageCache.put_variant``). A conversion that fails leaves the original to be served."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from proxy.cache.entry import CacheEntry, image_entry
from proxy.cache.flight import SingleFlight
from proxy.cache.images import OF, ImageCache, variant_key
from proxy.config.formats import FormatSettings
from proxy.imagegen.formats import Formats, Variant, convert

log = logging.getLogger(__name__)


class Variants:
    def __init__(self, settings: FormatSettings, cache: ImageCache, flight: SingleFlight[CacheEntry]):
        self.formats = Formats(settings)
        self.settings = settings
        self.cache = cache
        self.flight = flight
        self.pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="convert")
        self.converted = 0  # conversions this worker made
        self.seconds = 0.0  # and the time they took

    async def obtain(self, key: str, original: CacheEntry, variant: Variant) -> CacheEntry:
        """The variant of ``original`` (the entry under ``key``): from the cache, or made now."""
        suffix = variant.suffix
        found = await self.cache.get_variant(key, suffix, original)
        if found is not None:
            return found

        async def produce() -> CacheEntry:
            return await self._convert(original, variant)

        async def publish(entry: CacheEntry) -> None:
            await self.cache.put_variant(key, suffix, entry)

        try:
            return await self.flight.do(variant_key(key, suffix), produce,
                                        lambda: self.cache.get_variant(key, suffix, original), publish)
        except Exception:  # the original is still a good answer
            log.exception("could not convert %s to %s; serving the original", key[:12], suffix)
            return original

    async def _convert(self, original: CacheEntry, variant: Variant) -> CacheEntry:
        started = time.perf_counter()
        body = await asyncio.get_running_loop().run_in_executor(
            self.pool, convert, original.body, variant, self.settings.avif_speed)
        self.converted += 1
        self.seconds += time.perf_counter() - started
        meta = {k: v for k, v in original.meta.items() if k != "created"}
        return image_entry(body, variant.content_type, **meta, **{OF: original.meta.get("created"),
                                                                  "variant": variant.suffix})

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
