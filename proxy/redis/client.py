"""What every Redis topology's client shares: the errors that mean "Redis is unreachable", the
connection options (short timeouts, one immediate retry), and describing an outage."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.config.redis import RedisSettings

# The command client of any topology: one server (standalone, or Sentinel's current master) or a cluster.
RedisClient = aioredis.Redis | RedisCluster

# A failure of Redis itself (down, restarting, full, read-only replica, a master Sentinel cannot
# name yet, a cluster with slots uncovered or being moved, no cluster node reachable), as opposed
# to a bug. SlotNotCoveredError and RedisClusterUnreachableError do not derive from RedisError.
OUTAGE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OutOfMemoryError, ReadOnlyError,
          MasterNotFoundError, ClusterDownError, TryAgainError, SlotNotCoveredError,
          RedisClusterUnreachableError, OSError, TimeoutError)


def connection_options(settings: RedisSettings) -> dict[str, Any]:
    """Short timeouts and one immediate retry (a pooled connection that died with a restarted
    server, or that Sentinel's failover moved, is replaced once); anything longer would hold
    requests hostage to an outage."""
    return {"socket_timeout": settings.timeout, "socket_connect_timeout": settings.timeout,
            "retry": Retry(NoBackoff(), 1), "client_name": "iris"}


def describe(exc: BaseException) -> str:
    """An outage in words. redis-py names host and port in its messages, never the password."""
    return f"{type(exc).__name__}: {exc}"[:200]
