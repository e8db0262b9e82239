"""Opens the cache store chosen by the settings (a registry: diskcache, or Redis over diskcache
with REDIS_URL), the image cache over it and single flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from proxy.cache.base import ByteStore
from proxy.cache.disk import DiskStore
from proxy.cache.flight import SingleFlight
from proxy.cache.front import Generation
from proxy.cache.images import ImageCache, SharedGeneration
from proxy.keys import FLIGHT, IMAGE_CACHE, SETTINGS, STORE
from proxy.lifecycle import stop_tasks
from proxy.shared.store import shared_store

Opener = Callable[[web.Application, ByteStore, SharedGeneration], tuple[ByteStore, SharedGeneration]]


def local_store(_app: web.Application, disk: ByteStore,
                generation: SharedGeneration) -> tuple[ByteStore, SharedGeneration]:
    return disk, generation


STORES: dict[str, Opener] = {"diskcache": local_store, "redis": shared_store}


async def cache_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].cache
    disk = await asyncio.to_thread(DiskStore.from_settings, settings)
    local_generation = Generation(settings.directory / "generation")
    kind = "redis" if app[SETTINGS].redis.enabled else "diskcache"
    store, generation = STORES[kind](app, disk, local_generation)
    images = ImageCache(store, generation, settings)
    flight = SingleFlight(store)
    app[STORE] = store
    app[IMAGE_CACHE] = images
    app[FLIGHT] = flight
    flusher = asyncio.create_task(images.run_flusher())
    yield
    await stop_tasks([flusher])
    await flight.close()
    await images.flush_counts()
    local_generation.close()
    await store.close()
