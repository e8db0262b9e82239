"""The cache backing with REDIS_URL: Redis, failing over to the local store and generation;
flight locks in the store, so they hold across hosts."""

from __future__ import annotations

from aiohttp import web

from proxy.cache.backing import Backing
from proxy.cache.disk import DiskStore
from proxy.cache.front import Generation
from proxy.cache.locks.store import StoreLock
from proxy.cache.redis import RedisStore
from proxy.keys import SHARED
from proxy.shared.failover import FailoverStore
from proxy.shared.generation import RedisGeneration


def shared_store(app: web.Application, disk: DiskStore, local: Generation) -> Backing:
    shared = app[SHARED]
    redis = RedisStore(shared.client, prefix=shared.settings.prefix, default_ttl=shared.settings.cache_ttl)
    store = FailoverStore(redis, disk, shared.health)
    generation = RedisGeneration(local, shared.bus)
    store.replay_hooks.append(generation.announce)
    return Backing(store, generation, StoreLock(store))
