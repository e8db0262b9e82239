"""What Iris needs from a Redis deployment, whatever its shape (``Topology``): a command client,
a ping that says the data is reachable, a pub/sub connection on a live node, a cache write that
replicas may confirm, and each data node's memory for /status and /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio.client import PubSub

from proxy.redis.client import RedisClient

SwitchHook = Callable[[], Awaitable[None]]
Write = tuple[str, bytes, int | None]  # key, value, expiry in milliseconds (None: none)


@dataclass(frozen=True)
class NodeMemory:
    """One node holding data (a cluster primary, or the one server): what it holds and its bound."""

    node: str  # host:port, never credentials
    keys: int
    used_memory: int
    maxmemory: int  # 0: unbounded
    policy: str


class Topology(Protocol):
    name: str
    switches: int  # times the master moved (Sentinel); writes made before a move may need repeating
    switch_hooks: list[SwitchHook]  # run after the client follows a move

    @property
    def client(self) -> RedisClient:
        """The command client: every command but pub/sub goes through it."""
        ...

    def start(self) -> None:
        """Begin whatever runs in the background (following Sentinel's master)."""
        ...

    async def ping(self) -> None:
        """Raises an outage error unless every node holding data answers."""
        ...

    async def subscriber(self) -> PubSub:
        """A pub/sub connection on a node that answers now (every node hears every PUBLISH)."""
        ...

    async def write(self, items: list[Write]) -> bool:
        """SET each key (with its expiry in milliseconds), in one round trip; True once the
        replicas REDIS_WAIT_REPLICAS asks for hold them all (always, when it asks for none)."""
        ...

    async def memory(self) -> list[NodeMemory]: ...

    def snapshot(self) -> dict[str, Any]:
        """The topology for /status: its name and where the data is now (addresses only)."""
        ...

    async def close(self) -> None: ...


def node_memory(node: str, info: dict[str, Any], keys: int) -> NodeMemory:
    return NodeMemory(node, int(keys), int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)),
                      str(info.get("maxmemory_policy", "unknown")))


async def set_all(client: RedisClient, items: list[Write], wait: tuple[int, int] | None = None) -> int:
    """SET each item, alone or in one pipeline (which a cluster client splits by node), followed
    by ``WAIT replicas milliseconds`` when asked; the replicas WAIT counted (0 without it)."""
    if len(items) == 1 and wait is None:
        key, value, px = items[0]
        await client.set(key, value, px=px)
        return 0
    async with client.pipeline(transaction=False) as pipe:
        for key, value, px in items:
            pipe.set(key, value, px=px)
        if wait is not None:
            pipe.execute_command("WAIT", *wait)
        answers = await pipe.execute()
    return int(answers[-1]) if wait is not None else 0
