"""What the image cache stands on, chosen together by whether instances share Redis: the byte
store, the cache generation and the flight lock (``BACKINGS``).

- ``local``: one host. The disk store under DATA_DIR, the generation in a memory-mapped file the
  workers share, and flights locked by a byte-range lock on a file beside the store (a lease in
  the store where the file system refuses such locks).
- ``redis``: several instances. Redis, failing over to the disk store while it is out; the host's
  generation plus what other instances announce; and flights held as leases in Redis, so they
  hold across hosts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from proxy.cache.generation import Generation, SharedGeneration
from proxy.cache.generation_redis import RedisGeneration
from proxy.cache.locks.base import FlightLock
from proxy.cache.locks.file import FileLock
from proxy.cache.locks.lease import LeaseLock
from proxy.cache.stores.base import ByteStore
from proxy.cache.stores.disk import DiskStore
from proxy.cache.stores.failover import FailoverStore
from proxy.cache.stores.redis import RedisStore
from proxy.config.cache import CacheSettings
from proxy.redis.shared import SharedRedis

log = logging.getLogger(__name__)


@dataclass
class Backing:
    store: ByteStore
    generation: SharedGeneration
    lock: FlightLock
    host_generation: Generation
    host_store: DiskStore  # the host's own store (with Redis, ``store``'s fallback)

    async def close(self) -> None:
        await self.lock.close()
        self.host_generation.close()
        await self.store.close()


def local(settings: CacheSettings, disk: DiskStore, generation: Generation,
          shared: SharedRedis | None) -> Backing:
    lock = FileLock.open(settings.directory / "flights.lock")
    if lock is None:
        log.warning("this file system refuses byte-range locks: single flight locks in the cache store")
    return Backing(disk, generation, lock or LeaseLock(disk), generation, disk)


def redis(settings: CacheSettings, disk: DiskStore, generation: Generation,
          shared: SharedRedis | None) -> Backing:
    assert shared is not None
    redis_settings = shared.settings
    primary = RedisStore(shared.topology, prefix=redis_settings.prefix, default_ttl=redis_settings.cache_ttl)
    store = FailoverStore(primary, disk, shared.health)
    announced = RedisGeneration(generation, shared.bus)
    store.replay_hooks.append(announced.announce)
    return Backing(store, announced, LeaseLock(store), generation, disk)


BACKINGS: dict[str, Callable[[CacheSettings, DiskStore, Generation, SharedRedis | None], Backing]] = {
    "local": local,
    "redis": redis,
}


async def open_backing(settings: CacheSettings, shared: SharedRedis | None) -> Backing:
    disk = await asyncio.to_thread(DiskStore.from_settings, settings)
    generation = Generation(settings.directory / "generation")
    return BACKINGS["redis" if shared is not None else "local"](settings, disk, generation, shared)
