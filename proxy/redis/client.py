"""The one asyncio Redis client of a process, and the errors that mean "Redis is unreachable"."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.config.redis import RedisSettings

# A failure of Redis itself (down, restarting, full, read-only replica), as opposed to a bug.
OUTAGE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OutOfMemoryError, ReadOnlyError,
          OSError, TimeoutError)


def open_client(settings: RedisSettings) -> aioredis.Redis:
    """Short timeouts and one immediate retry (a pooled connection that died with a restarted
    server is replaced once); anything longer would hold requests hostage to an outage."""
    assert settings.url is not None
    return aioredis.Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        client_name="iris",
    )


def describe(exc: BaseException) -> str:
    """An outage in words. redis-py names host and port in its messages, never the password."""
    return f"{type(exc).__name__}: {exc}"[:200]
