"""The generic cell rate algorithm every limiter counts with, and the per-worker front of the
SQLite limiter: exactly when a hit may be admitted without a write (``View.admits``; the same
limits through two real limiters are in test_rate_buckets.py)."""

from __future__ import annotations

import time

import pytest

from proxy.config.security import Rate
from proxy.security.limits import gcra
from proxy.security.limits_sqlite import MAX_AGE, MAX_PENDING, SLACK, View

FIVE = Rate(5, 60.0)  # one token every 12 s


def burst(tat: float | None, now: float, rate: Rate, n: int) -> tuple[float | None, list[float]]:
    """``n`` hits at ``now``; the TAT after the admitted ones and every wait."""
    waits = []
    for _ in range(n):
        new_tat, wait = gcra(tat, now, rate)
        waits.append(wait)
        if wait == 0.0:
            tat = new_tat
    return tat, waits


def test_the_first_hit_sets_the_tat_one_interval_ahead():
    assert gcra(None, 1000.0, FIVE) == (1012.0, 0.0)
    assert gcra(1012.0, 1000.0, FIVE) == (1024.0, 0.0)


def test_a_full_bucket_allows_exactly_the_burst_then_waits_one_interval():
    tat, waits = burst(None, 1000.0, FIVE, 7)
    assert waits == [0.0] * 5 + [pytest.approx(12.0)] * 2
    assert tat == pytest.approx(1060.0)
    assert gcra(tat, 1006.0, FIVE)[1] == pytest.approx(6.0), "the wait shrinks as time passes"


def test_an_idle_bucket_is_full_again_and_no_fuller():
    tat, _ = burst(None, 1000.0, FIVE, 5)
    _, waits = burst(tat, 5000.0, FIVE, 6)  # long after: the old TAT is in the past
    assert waits == [0.0] * 5 + [pytest.approx(12.0)]
    _, waits = burst(500.0, 1000.0, FIVE, 6)
    assert waits == [0.0] * 5 + [pytest.approx(12.0)]


def test_one_token_comes_back_per_interval():
    tat, _ = burst(None, 1000.0, FIVE, 5)
    _, waits = burst(tat, 1012.0, FIVE, 2)
    assert waits == [0.0, pytest.approx(12.0)]
    _, waits = burst(tat, 1024.0, FIVE, 3)
    assert waits == [0.0, 0.0, pytest.approx(12.0)]


def test_one_per_second_and_a_large_rate():
    assert burst(None, 0.0, Rate(1, 1.0), 2)[1] == [0.0, pytest.approx(1.0)]
    tat, waits = burst(None, 0.0, Rate(3600, 3600.0), 3600)
    assert set(waits) == {0.0} and gcra(tat, 0.0, Rate(3600, 3600.0))[1] == pytest.approx(1.0)


HOUR = Rate(40, 3600.0)  # 90 s a token: a limit the front may answer


def view(now: float, **fields) -> View:
    return View(HOUR, fields.pop("tat", None), fields.pop("synced_at", now), **fields)


def test_a_fresh_view_with_room_admits():
    now = time.time()
    assert view(now).admits(now)
    assert view(now, pending=[now] * (MAX_PENDING - 1)).admits(now)


def test_too_many_unwritten_hits_send_the_next_one_to_the_shared_row():
    now = time.time()
    assert not view(now, pending=[now] * MAX_PENDING).admits(now)
    assert not view(now, writing=[now] * MAX_PENDING).admits(now)
    assert not view(now, pending=[now] * (MAX_PENDING - 1), writing=[now]).admits(now)


def test_an_old_view_sends_the_next_hit_to_the_shared_row_even_with_nothing_pending():
    now = time.time()
    assert not view(now, synced_at=now - MAX_AGE).admits(now)
    assert view(now, synced_at=now - MAX_AGE + 0.5).admits(now)


def test_near_the_limit_the_shared_row_decides():
    now = time.time()
    interval = HOUR.period / HOUR.count
    # after this hit exactly SLACK tokens are left: admitted; one fewer: not
    exactly = now + (HOUR.count - SLACK - 1) * interval
    assert view(now, tat=exactly).admits(now)
    assert not view(now, tat=exactly + interval).admits(now)
    assert not view(now, tat=now + HOUR.period).admits(now), "a full bucket"

