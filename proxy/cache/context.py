"""Opens the cache store chosen by the settings, the image cache over it and single flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.cache.disk import DiskStore
from proxy.cache.flight import SingleFlight
from proxy.cache.front import Generation
from proxy.cache.images import ImageCache
from proxy.keys import FLIGHT, IMAGE_CACHE, SETTINGS, STORE


async def cache_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].cache
    store = await asyncio.to_thread(DiskStore.from_settings, settings)
    generation = Generation(settings.directory / "generation")
    images = ImageCache(store, generation, settings)
    flight = SingleFlight(store)
    app[STORE] = store
    app[IMAGE_CACHE] = images
    app[FLIGHT] = flight
    flusher = asyncio.create_task(images.run_flusher())
    yield
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await flight.close()
    await images.flush_counts()
    generation.close()
    await store.close()
