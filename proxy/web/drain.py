"""Stopping without dropping anyone: whether this worker is stopping, and how many requests it
is answering. On SIGTERM the runner (``proxy.web.runner``) begins the drain: ``/readyz`` answers
503 at once, so load balancers send no more; the listener stays open while the requests in flight
finish (new ones arriving meanwhile are still served), for at most SHUTDOWN_GRACE seconds; then the
listener closes (new connections are refused) and the worker exits 0."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around one request of the full path (the fast lane's answers never wait on anything)."""
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def finished(self, within: float) -> bool:
        """Waits until nothing is in flight (True), or ``within`` seconds passed (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True
