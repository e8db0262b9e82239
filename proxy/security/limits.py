"""Rate limits: the interface every limiter implements, and the generic cell rate algorithm they
all count with (one timestamp a bucket, an exact and honest wait).

The SQLite limiter (``limits_sqlite``) is shared by the workers of one host; its Redis twin
(``limits_redis``) by every instance."""

from __future__ import annotations

from typing import Protocol

from proxy.config.security import Rate


class RateLimiter(Protocol):
    async def hit(self, bucket: str, rate: Rate) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is free (nothing taken)."""
        ...

    async def wait(self, bucket: str, rate: Rate) -> float:
        """Like ``hit`` without taking anything."""
        ...


def gcra(tat: float | None, now: float, rate: Rate) -> tuple[float, float]:
    """Returns ``(new_tat, wait)``: store ``new_tat`` when ``wait`` is 0, else refuse for ``wait`` s.

    ``tat`` (theoretical arrival time) is when the bucket would be full again; a burst of
    ``rate.count`` is allowed, then one event every ``period / count`` seconds."""
    interval = rate.period / rate.count
    new_tat = max(tat or now, now) + interval
    return new_tat, max(0.0, new_tat - rate.period - now)
