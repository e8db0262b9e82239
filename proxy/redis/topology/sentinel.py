"""Redis behind Sentinel (``redis+sentinel://``): the client asks the sentinels where the master is,
and a watcher follows it when it moves.

redis-py asks Sentinel only when it opens a connection, so after a planned failover (``SENTINEL
FAILOVER``) pooled connections keep writing to the old master until Sentinel demotes it, seconds
later, and those writes vanish with its demotion. The watcher asks the sentinels every
``WATCH_EVERY`` seconds and, when the master moved, drops every pooled connection (a command in
flight on one is retried once, on the new master), counts the move in ``switches`` and runs the
switch hooks (the cache store rewrites what the old master may have lost); the signal bus sees
``switches`` move and subscribes again on the new master. Cache writes wait for a replica
(``REDIS_WAIT_REPLICAS``, default 1): a write the old master took after its replica was promoted
is not confirmed, so the store keeps it and rewrites it after the move."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio.client import PubSub, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool

from proxy.config.redis import RedisSettings
from proxy.lifecycle import stop_tasks
from proxy.redis.client import OUTAGE, connection_options, describe
from proxy.redis.topology.base import SwitchHook
from proxy.redis.topology.standalone import OneMaster

log = logging.getLogger(__name__)
WATCH_EVERY = 0.25


class NewestSentinel(Sentinel):
    """redis-py's Sentinel, asking every sentinel at once and believing the newest configuration
    (the highest ``config-epoch``) among those that see a healthy master. redis-py's own asks them
    in turn and believes the first that answers: during a failover that may be one that has not
    heard of it yet, and the master would seem to move back. It also moves the sentinel that
    answered to the front of its list by index across awaits, so calls made together (the
    watcher, a probe, connections opening) duplicated one sentinel in the list and dropped
    another, which was then never asked again nor closed; this one leaves the list alone."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        states = await asyncio.gather(*(_master_state(sentinel, service_name) for sentinel in self.sentinels))
        healthy = [state for state in states
                   if state is not None and self.check_master_state(state, service_name)]
        if not healthy:
            raise MasterNotFoundError(f"No master found for {service_name!r}")
        newest = max(healthy, key=lambda state: int(state.get("config-epoch", 0)))
        return str(newest["ip"]), int(newest["port"])


class MasterPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, which never hands out a connection to another server than the
    master it last heard of: one that was connecting while the master moved (to the address
    asked for before the move) connects again."""

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        await super().ensure_connection(connection)
        master = self.master_address
        where = (getattr(connection, "host", None), getattr(connection, "port", None))
        if master is not None and where != (master[0], int(master[1])):
            await connection.disconnect()
            await super().ensure_connection(connection)


class SentinelTopology(OneMaster):
    name = "sentinel"

    def __init__(self, settings: RedisSettings):
        self.settings = settings
        options = connection_options(settings)
        self.sentinel = NewestSentinel(
            list(settings.nodes),
            sentinel_kwargs={"socket_timeout": settings.timeout, "socket_connect_timeout": settings.timeout,
                             "username": settings.sentinel_username, "password": settings.sentinel_password,
                             "ssl": settings.tls},
        )
        master = {"db": settings.db, "username": settings.username, "password": settings.password,
                  "ssl": settings.tls, "health_check_interval": 30, **options}
        self.client = self.sentinel.master_for(settings.service, connection_pool_class=MasterPool, **master)
        # pub/sub on a pool of its own: dropping the commands' connections when the master moves
        # must not break the bus's read; the bus subscribes again itself (``switches``)
        self.listener = self.sentinel.master_for(settings.service, connection_pool_class=MasterPool, **master)
        self.master: tuple[str, int] | None = None
        self.switches = 0
        self.switch_hooks: list[SwitchHook] = []
        self._watcher: asyncio.Task[None] | None = None

    @property
    def pool(self) -> SentinelConnectionPool:
        return _pool(self.client)

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name="redis-sentinel-watch")

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(*OUTAGE):  # sentinels unreachable: the commands' failures tell
                await self.check()
            await asyncio.sleep(WATCH_EVERY)

    async def check(self) -> None:
        """Ask the sentinels where the master is; follow it if it moved."""
        found = await self.sentinel.discover_master(self.settings.service)
        address = (str(found[0]), int(found[1]))
        before, self.master = self.master, address
        if before is None or before == address:
            return
        for client in (self.client, self.listener):  # records the new address, drops idle connections
            await _pool(client).get_master_address()
        await self.pool.disconnect(inuse_connections=True)  # and the commands' in use (retried once)
        self.switches += 1
        log.warning("Redis master %s moved to %s (Sentinel): following it", _name(before), _name(address))
        for hook in self.switch_hooks:
            try:
                await hook()
            except OUTAGE as exc:
                log.warning("after the master moved, Redis failed (%s): tried again once it answers",
                            describe(exc))

    async def subscriber(self) -> PubSub:
        return self.listener.pubsub(ignore_subscribe_messages=True)

    def where(self) -> str:
        where = self.pool.master_address or self.master
        return _name(where) if where else "master"

    def snapshot(self) -> dict[str, Any]:
        return {"topology": self.name, "service": self.settings.service,
                "master": _name(self.master) if self.master else None, "master_moves": self.switches}

    async def close(self) -> None:
        if self._watcher is not None:
            await stop_tasks([self._watcher])
        await self.client.aclose()
        await self.listener.aclose()
        await self.sentinel.aclose()


async def _master_state(sentinel: Redis, service_name: str) -> dict[str, Any] | None:
    """What one sentinel says of the master (None: it does not answer, or does not know it)."""
    try:
        masters = await sentinel.sentinel_masters()
    except OUTAGE:
        return None
    state = masters.get(service_name) if isinstance(masters, dict) else None  # RESP2: by name
    return state if isinstance(state, dict) else None


def _pool(client: Redis) -> SentinelConnectionPool:
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    return pool


def _name(address: tuple[Any, Any]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
