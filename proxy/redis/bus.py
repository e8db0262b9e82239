"""Signals between instances over Redis pub/sub: cache deletes, backend cool-downs, blacklist
changes. One subscriber connection per process (on a live node of a cluster, on the current
master behind Sentinel), re-established after an outage and after the master moved; an instance
ignores its own messages. Publishing never raises: a lost signal while Redis is down (or moving)
is made up for by the reconnect hooks (a front that reconnects forgets everything it held).

When the master moves, the subscription on the old one stops counting as ``connected`` at once
(peers now publish on the new master), and the listener leaves it within ``READ_WAIT`` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable

from proxy.lifecycle import stop_tasks
from proxy.redis.client import OUTAGE
from proxy.redis.health import RedisHealth
from proxy.redis.topology.base import Topology

log = logging.getLogger(__name__)
Handler = Callable[[bytes], None]
READ_WAIT = 0.25  # how long a read waits before the listener looks whether the master moved


class RedisBus:
    def __init__(self, topology: Topology, health: RedisHealth, prefix: str):
        self.topology = topology
        self.health = health
        self.prefix = prefix
        self.origin = secrets.token_hex(8).encode()
        self.handlers: dict[str, list[Handler]] = {}
        self.connect_hooks: list[Callable[[], None]] = []
        self.subscribed_at: int | None = None  # the topology's ``switches`` when it subscribed
        self.received = 0
        self.tasks: set[asyncio.Task[bool]] = set()
        self._listener: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Subscribed on the node that takes the publishes now."""
        return self.subscribed_at == self.topology.switches

    def subscribe(self, channel: str, handler: Handler) -> None:
        """``handler`` gets the payload of every peer's message on ``channel``; any time."""
        self.handlers.setdefault(self.prefix + channel, []).append(handler)

    async def publish(self, channel: str, payload: bytes = b"") -> bool:
        if not self.health.up:
            return False
        try:
            await self.topology.client.publish(self.prefix + channel, self.origin + b"|" + payload)
        except OUTAGE as exc:
            self.health.failed(exc)
            return False
        return True

    def publish_soon(self, channel: str, payload: bytes = b"") -> None:
        """From synchronous code (a breaker listener): publish in the background."""
        task = asyncio.create_task(self.publish(channel, payload))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen_forever())

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
                continue  # the master moved: subscribe again on the new one at once
            except OUTAGE as exc:
                self.health.failed(exc)
            await asyncio.sleep(self.health.retry_interval)

    async def _listen(self) -> None:
        """Until an outage (raised) or a move of the master (returns)."""
        moves = self.topology.switches
        pubsub = await self.topology.subscriber()
        try:
            await pubsub.psubscribe(_glob_escape(self.prefix) + "*")
            self.subscribed_at = moves
            for hook in self.connect_hooks:
                hook()
            while self.topology.switches == moves:
                message = await pubsub.get_message(timeout=READ_WAIT)
                if message is not None:
                    self._dispatch(message)
        finally:
            self.subscribed_at = None
            with contextlib.suppress(*OUTAGE):
                await pubsub.aclose()

    def _dispatch(self, message: dict) -> None:
        channel = message["channel"].decode()
        origin, _, payload = message["data"].partition(b"|")
        if origin == self.origin:
            return
        self.received += 1
        for handler in self.handlers.get(channel, ()):
            try:
                handler(payload)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignored a malformed %s signal: %s", channel, exc)

    async def close(self) -> None:
        tasks = [*self.tasks, *([self._listener] if self._listener else [])]
        await stop_tasks(tasks)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
