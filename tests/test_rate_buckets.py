"""The per-worker front of the SQLite rate limiter (``proxy.security.limits_sqlite``): two limiters on two
connections to one real SQLite file stand for two worker processes."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from proxy.accounts.service import open_database
from proxy.config.security import Rate
from proxy.security import limits_sqlite
from proxy.security.limits_sqlite import MAX_PENDING, SLACK, SqliteLimiter

HOUR = Rate(40, 3600.0)


@pytest.fixture
async def workers(settings_for):
    settings = settings_for()
    dbs = [await open_database(settings), await open_database(settings)]
    yield [SqliteLimiter(db) for db in dbs]
    for db in dbs:
        await db.close()


async def test_one_worker_admits_exactly_the_limit_and_refuses_honestly(workers):
    one, _ = workers
    results = [await one.hit("process:alice", HOUR) for _ in range(HOUR.count + 5)]
    assert results[: HOUR.count] == [0.0] * HOUR.count
    waits = results[HOUR.count:]
    assert all(85.0 < w <= 90.0 for w in waits), waits  # one token every 90 s


async def test_hits_admitted_locally_reach_the_shared_row(workers):
    one, two = workers
    for _ in range(HOUR.count - SLACK):
        assert await one.hit("process:alice", HOUR) == 0.0
    assert one.views["process:alice"].pending or one.writer is not None, "the front answered"
    await one.settle()
    assert not one.views["process:alice"].pending
    # the other worker sees them all: only SLACK tokens are left for it
    results = [await two.hit("process:alice", HOUR) for _ in range(SLACK + 3)]
    assert results[:SLACK] == [0.0] * SLACK and all(w > 0 for w in results[SLACK:])


async def test_two_workers_together_stay_within_a_small_slack(workers):
    one, two = workers

    async def send(limiter: SqliteLimiter, n: int) -> int:
        allowed = 0
        for _ in range(n):
            allowed += await limiter.hit("process:bob", HOUR) == 0.0
            await asyncio.sleep(0)
        return allowed

    allowed = sum(await asyncio.gather(send(one, 40), send(two, 40)))
    await asyncio.gather(one.settle(), two.settle())
    assert HOUR.count <= allowed <= HOUR.count + 2 * MAX_PENDING, allowed
    assert await one.wait("process:bob", HOUR) > 0 and await two.wait("process:bob", HOUR) > 0


async def test_small_limits_are_always_decided_by_the_shared_row(workers):
    one, two = workers
    auth = Rate(5, 60.0)
    assert [await one.hit("auth:1.2.3.4", auth) for _ in range(3)] == [0.0] * 3
    assert "auth:1.2.3.4" not in one.views
    assert [await two.hit("auth:1.2.3.4", auth) for _ in range(2)] == [0.0] * 2
    assert await one.hit("auth:1.2.3.4", auth) > 0


async def test_settle_writes_what_is_waiting_at_shutdown(workers, settings_for):
    one, _ = workers
    for _ in range(10):
        await one.hit("process:carol", HOUR)
    await one.settle()
    fresh = await open_database(settings_for())
    try:
        other = SqliteLimiter(fresh)
        allowed = sum([await other.hit("process:carol", HOUR) == 0.0 for _ in range(HOUR.count)])
        assert allowed == HOUR.count - 10
    finally:
        await fresh.close()


async def test_a_high_limit_keeps_its_view_between_hits(workers):
    """One hit's bucket is full again before its write ends (3.6 ms between tokens): the next hit is
    still answered by the front, not by a write transaction."""
    one, _ = workers
    fast = Rate(1_000_000, 3600.0)
    assert [await one.hit("process:dave", fast) for _ in range(2)] == [0.0, 0.0]
    await one.settle()
    await asyncio.sleep(0.01)
    assert await one.hit("process:dave", fast) == 0.0
    assert one.views["process:dave"].pending, "the front answered"


async def test_views_of_idle_users_are_forgotten(workers, monkeypatch):
    one, _ = workers
    monkeypatch.setattr("proxy.security.limits_sqlite.MAX_AGE", 0.05)
    for user in ("erin", "erin", "frank"):
        await one.hit(f"process:{user}", HOUR)
    await one.settle()
    await asyncio.sleep(0.06)
    for _ in range(2):
        await one.hit("process:frank", HOUR)
    await one.settle()
    assert "process:erin" not in one.views and "process:frank" in one.views


async def fill(limiter: SqliteLimiter, bucket: str) -> None:
    while await limiter.hit(bucket, HOUR) == 0.0:
        pass
    await limiter.settle()


async def test_a_worker_admits_at_most_max_pending_hits_on_a_stale_picture(workers):
    """Worker one saw a bucket with room; worker two then used it all. One may admit only the
    hits it may leave unwritten (MAX_PENDING) before the shared row refuses."""
    one, two = workers
    assert await one.hit("process:alice", HOUR) == 0.0  # one's view: 39 tokens left
    await one.settle()
    await fill(two, "process:alice")
    results = [await one.hit("process:alice", HOUR) for _ in range(10)]
    admitted = sum(r == 0.0 for r in results)
    assert admitted <= MAX_PENDING and all(r > 0 for r in results[MAX_PENDING:]), results


async def test_an_old_view_is_not_trusted_even_with_nothing_unwritten(workers, monkeypatch):
    monkeypatch.setattr(limits_sqlite, "MAX_AGE", 0.05)
    one, two = workers
    assert await one.hit("process:bob", HOUR) == 0.0
    await one.settle()
    await fill(two, "process:bob")
    await asyncio.sleep(0.06)
    assert await one.hit("process:bob", HOUR) > 0, "the shared row decided"


async def test_only_limits_above_twice_the_slack_get_a_front(workers):
    one, _ = workers
    for count, front in ((2 * SLACK, False), (2 * SLACK + 1, True)):
        await one.hit(f"process:count{count}", Rate(count, 3600.0))
        assert (f"process:count{count}" in one.views) is front, count


async def test_wait_counts_the_hits_not_yet_written(workers, monkeypatch):
    one, two = workers
    assert await one.hit("process:carol", HOUR) == 0.0
    for _ in range(HOUR.count - 3):
        assert await two.hit("process:carol", HOUR) == 0.0
    await two.settle()
    monkeypatch.setattr(limits_sqlite, "WRITE_DELAY", 5.0)  # one's next hits stay unwritten here
    assert [await one.hit("process:carol", HOUR) for _ in range(MAX_PENDING)] == [0.0] * MAX_PENDING
    assert len(one.views["process:carol"].pending) == MAX_PENDING
    assert await one.wait("process:carol", HOUR) > 0, "the shared row is full with this worker's unwritten hits"
    assert await two.wait("process:carol", HOUR) == 0.0, "the other worker cannot see them yet"
    one.writer.cancel()


async def test_hits_during_a_write_are_admitted_and_all_of_them_counted(workers):
    one, two = workers
    rate = Rate(100, 3600.0)
    admitted = 0
    for _ in range(60):  # spread over the writes: some land while one is under way
        admitted += await one.hit("process:dan", rate) == 0.0
        await asyncio.sleep(0.002)
    await one.settle()
    assert admitted == 60
    left = sum([await two.hit("process:dan", rate) == 0.0 for _ in range(rate.count)])
    assert left == rate.count - 60, "every hit written once"


async def test_a_failed_write_keeps_its_hits_for_the_next_one(workers, settings_for, caplog, monkeypatch):
    monkeypatch.setattr(limits_sqlite, "WRITE_DELAY", 0.05)
    one, two = workers
    assert await one.hit("process:erin", HOUR) == 0.0  # through the shared row: a view
    admitted = [await one.hit("process:erin", HOUR) for _ in range(MAX_PENDING)]
    assert admitted == [0.0] * MAX_PENDING and len(one.views["process:erin"].pending) == MAX_PENDING
    await two.db.run(lambda ctx: ctx.conn.execute("ALTER TABLE rate_buckets RENAME TO rate_buckets_away"))

    refused = asyncio.create_task(one.hit("process:erin", HOUR))  # MAX_PENDING unwritten: the row decides
    await asyncio.sleep(0)  # it has taken the waiting hits and waits for the database
    assert one.views["process:erin"].pending == []
    assert await one.hit("process:erin", HOUR) == 0.0, "meanwhile the front admits another"
    with pytest.raises(sqlite3.OperationalError):
        await refused
    assert len(one.views["process:erin"].pending) == MAX_PENDING + 1, "the hits it took are put back"
    await one.settle()
    failures = [r.getMessage() for r in caplog.records if r.name == "proxy.security.limits_sqlite"]
    assert failures == ["could not write 1 rate buckets; keeping their hits"]
    assert len(one.views["process:erin"].pending) == MAX_PENDING + 1

    await two.db.run(lambda ctx: ctx.conn.execute("ALTER TABLE rate_buckets_away RENAME TO rate_buckets"))
    await one.hit("process:erin", HOUR)  # goes to the row, with the hits kept
    await one.settle()
    left = sum([await two.hit("process:erin", HOUR) == 0.0 for _ in range(HOUR.count)])
    assert left == HOUR.count - (1 + MAX_PENDING + 1 + 1)


async def test_hits_admitted_while_a_write_fails_are_kept_too(workers, monkeypatch):
    monkeypatch.setattr(limits_sqlite, "WRITE_DELAY", 0.01)
    one, two = workers
    assert await one.hit("process:fay", HOUR) == 0.0  # through the shared row: a view
    assert await one.hit("process:fay", HOUR) == 0.0  # at the front: written in the background
    blocker = asyncio.create_task(one.db.run(lambda ctx: time.sleep(0.3)))  # the write queues behind it
    await asyncio.sleep(0.05)
    view = one.views["process:fay"]
    assert len(view.writing) == 1 and view.pending == []
    assert await one.hit("process:fay", HOUR) == 0.0, "one unwritten hit: the front admits another"
    await two.db.run(lambda ctx: ctx.conn.execute("ALTER TABLE rate_buckets RENAME TO rate_buckets_away"))
    await blocker
    await one.settle()
    assert view.writing == [] and len(view.pending) == 2, "the failed write's hit and the newer one"
    await two.db.run(lambda ctx: ctx.conn.execute("ALTER TABLE rate_buckets_away RENAME TO rate_buckets"))
    await one.hit("process:fay", HOUR)
    await one.settle()
    left = sum([await two.hit("process:fay", HOUR) == 0.0 for _ in range(HOUR.count)])
    assert left == HOUR.count - 4


async def test_one_worker_whose_hits_are_each_written_admits_exactly_the_limit(workers):
    """After each background write the front sees the shared count again (not the count it had)."""
    one, _ = workers
    results = []
    for _ in range(HOUR.count + 3):
        results.append(await one.hit("process:gus", HOUR))
        await one.settle()
    assert results[: HOUR.count] == [0.0] * HOUR.count and all(w > 0 for w in results[HOUR.count:])


async def test_retention_forgets_the_buckets_full_again_and_only_those(workers):
    """A bucket still holding hits must survive the sweep, or every sweep would hand out a new limit."""
    one, two = workers
    now = time.time()
    await one.hit("auth:idle", Rate(1, 1.0))  # full again a second from now
    await one.hit("auth:busy", Rate(1, 3600.0))
    await one.db.run(limits_sqlite.purge, now + 2.0)
    left = await one.db.run(lambda ctx: [r["bucket"] for r in ctx.conn.execute("SELECT bucket FROM rate_buckets")])
    assert left == ["auth:busy"]
    assert await two.hit("auth:busy", Rate(1, 3600.0)) > 3500, "still refused, from the shared row"
