"""The cache store and generation with REDIS_URL: Redis, failing over to the local ones."""

from __future__ import annotations

from aiohttp import web

from proxy.cache.base import ByteStore
from proxy.cache.images import SharedGeneration
from proxy.cache.redis import RedisStore
from proxy.keys import SHARED
from proxy.shared.failover import FailoverStore
from proxy.shared.generation import RedisGeneration


def shared_store(app: web.Application, disk: ByteStore,
                 local: SharedGeneration) -> tuple[ByteStore, SharedGeneration]:
    shared = app[SHARED]
    redis = RedisStore(shared.client, prefix=shared.settings.prefix, default_ttl=shared.settings.cache_ttl)
    store = FailoverStore(redis, disk, shared.health)
    generation = RedisGeneration(local, shared.bus)
    store.replay_hooks.append(generation.announce)
    return store, generation
