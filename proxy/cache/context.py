"""Opens the cache store chosen by the settings (a registry: diskcache, or Redis over diskcache
with REDIS_URL), the image cache over it and single flight with the matching flight lock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from proxy.cache.backing import Backing
from proxy.cache.disk import DiskStore
from proxy.cache.flight import SingleFlight
from proxy.cache.front import Generation
from proxy.cache.images import ImageCache
from proxy.cache.locks.file import FileLock
from proxy.cache.locks.store import StoreLock
from proxy.keys import FLIGHT, IMAGE_CACHE, SETTINGS, STORE
from proxy.lifecycle import stop_tasks
from proxy.shared.store import shared_store

log = logging.getLogger(__name__)
Opener = Callable[[web.Application, DiskStore, Generation], Backing]


def local_store(app: web.Application, disk: DiskStore, generation: Generation) -> Backing:
    """One host: the workers share the directory; flights lock a byte of a file in it."""
    lock = FileLock.open(app[SETTINGS].cache.directory / "flights.lock")
    if lock is None:
        log.warning("this file system refuses byte-range locks: single flight locks in the cache store")
    return Backing(disk, generation, lock or StoreLock(disk))


STORES: dict[str, Opener] = {"diskcache": local_store, "redis": shared_store}


async def cache_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].cache
    disk = await asyncio.to_thread(DiskStore.from_settings, settings)
    local_generation = Generation(settings.directory / "generation")
    kind = "redis" if app[SETTINGS].redis.enabled else "diskcache"
    store, generation, lock = STORES[kind](app, disk, local_generation)
    images = ImageCache(store, generation, settings)
    flight = SingleFlight(lock)
    app[STORE] = store
    app[IMAGE_CACHE] = images
    app[FLIGHT] = flight
    flusher = asyncio.create_task(images.run_flusher())
    yield
    await stop_tasks([flusher])
    await flight.close()
    await images.flush_counts()
    await lock.close()
    local_generation.close()
    await store.close()
