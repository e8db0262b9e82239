"""Helpers for the scale-out tests: a private redis-server to kill and restart, and waiting
for signals that travel through Redis asynchronously."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from proxy.keys import SHARED
from tests.conftest import ADMIN_TOKEN


def die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the test process dies, even when it is killed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


class RedisServer:
    """A redis-server of our own on 127.0.0.1 (AOF on, so a restart keeps the data)."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 10
        while not answers(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)


async def eventually(check: Callable[[], Any], within: float = 5.0) -> None:
    """Wait until ``check()`` is truthy (signals travel through Redis asynchronously)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def a_delete_is_heard(sender: Any, listener: Any, description: str) -> None:
    """An admin delete on the instance ``sender`` reaches ``listener`` over the signal bus."""
    await eventually(lambda: sender.app[SHARED].bus.connected and listener.app[SHARED].bus.connected)
    heard = listener.app[SHARED].bus.received
    gone = await sender.post("/cache/delete", json={"description": description, "width": 256, "height": 256},
                             headers={"X-Admin-Token": ADMIN_TOKEN})
    assert gone.status == 200
    await eventually(lambda: listener.app[SHARED].bus.received > heard)
