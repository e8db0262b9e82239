"""The generic cell rate algorithm: one timestamp a bucket, an exact and honest wait."""

from __future__ import annotations

from proxy.config.security import Rate


def gcra(tat: float | None, now: float, rate: Rate) -> tuple[float, float]:
    """Returns ``(new_tat, wait)``: store ``new_tat`` when ``wait`` is 0, else refuse for ``wait`` s.

    ``tat`` (theoretical arrival time) is when the bucket would be full again; a burst of
    ``rate.count`` is allowed, then one event every ``period / count`` seconds."""
    interval = rate.period / rate.count
    new_tat = max(tat or now, now) + interval
    return new_tat, max(0.0, new_tat - rate.period - now)
