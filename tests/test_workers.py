"""WORKERS > 1: a real ``python -m proxy serve`` with two processes sharing the port.

Single flight and admin deletes must hold across the workers, and the supervisor must stop
cleanly. Connections are spread over the workers by the kernel (SO_REUSEPORT); /proc tells which
worker holds each one, so the tests check that both were really used."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bench.harness import ADMIN_TOKEN, Iris, child_pids, connections_by_process, tcp_sockets
from tests.support.fakes import FakeImageBackend, png

pytestmark = pytest.mark.slow
CLIENTS = 24


@pytest.fixture
async def slow_backend(serve) -> FakeImageBackend:
    fake = FakeImageBackend(delay=0.4)
    await serve(fake)
    return fake


@pytest.fixture
async def workers(slow_backend: FakeImageBackend, tmp_path: Path) -> AsyncIterator[Iris]:
    iris = Iris(slow_backend.url, 2, tmp_path, REQUEST_DEADLINE="20", BACKEND_TIMEOUT="10")
    await iris.start()
    yield iris
    await asyncio.to_thread(iris.stop)


async def fetch_all(session: aiohttp.ClientSession, url: str) -> list[tuple[int, str | None, bytes]]:
    async def one() -> tuple[int, str | None, bytes]:
        async with session.get(url) as resp:
            return resp.status, resp.headers.get("X-Cache"), await resp.read()

    return await asyncio.gather(*(one() for _ in range(CLIENTS)))


def spread(iris: Iris) -> list[int]:
    assert iris.proc is not None
    counts = connections_by_process(iris.port, child_pids(iris.proc.pid))
    return sorted(n for n in counts.values() if n)


async def test_identical_misses_on_both_workers_cost_one_backend_call(
        workers: Iris, slow_backend: FakeImageBackend) -> None:
    url = workers.image_url("a%20herd%20of%20cats", width=64, height=64)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        answers = await fetch_all(session, url)
        used = spread(workers)
    assert len(used) == 2, f"the connections did not reach both workers: {used}"
    assert {status for status, _, _ in answers} == {200}
    assert {body for _, _, body in answers} == {slow_backend.image}
    assert len(slow_backend.calls) == 1


async def test_admin_delete_is_gone_from_every_worker(workers: Iris, slow_backend: FakeImageBackend) -> None:
    slow_backend.delay = 0.0
    url = workers.image_url("deleted%20soon", width=64, height=64)
    old, new = slow_backend.image, png(color=(0, 200, 0))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async with session.get(url) as resp:
            assert resp.status == 200
            key = resp.headers["ETag"].strip('"')
        await asyncio.sleep(0.3)  # the entry is stored just after the first answer
        warm = await fetch_all(session, url)  # now in both workers' memory fronts
        assert {(status, state, body) for status, state, body in warm} == {(200, "HIT", old)}
        assert len(spread(workers)) == 2
        slow_backend.image = new
        async with session.delete(f"{workers.url}/cache/{key}", headers={"X-Admin-Token": ADMIN_TOKEN}) as resp:
            assert resp.status == 200
        after = await fetch_all(session, url)  # the same kept-alive connections, on both workers
    assert {body for _, _, body in after} == {new}
    assert "MISS" in {state for _, state, _ in after}
    assert len(slow_backend.calls) == 2


async def test_status_counts_every_workers_backend_calls(workers: Iris, slow_backend: FakeImageBackend) -> None:
    """/status (and the dashboard, which shows the same rows) gives the calls of all the workers,
    as /metrics does, not the share of the one that answers."""
    slow_backend.delay = 0.2
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(n: int) -> int:
            async with session.get(workers.image_url(f"cat%20{n}", width=64, height=64)) as resp:
                await resp.read()
                return resp.status

        assert set(await asyncio.gather(*(one(n) for n in range(CLIENTS)))) == {200}
        assert len(spread(workers)) == 2, "the misses did not reach both workers"
        calls: list[int] = []
        for _ in range(40):  # each worker hands its counts over once a second
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
                for _ in range(4):  # a fresh connection each time: any worker may answer
                    async with fresh.get(f"{workers.url}/status", headers={"X-Admin-Token": ADMIN_TOKEN}) as resp:
                        calls.append((await resp.json())["backends"][0]["calls"])
            if calls[-4:] == [CLIENTS] * 4:
                break
            await asyncio.sleep(0.25)
    assert len(slow_backend.calls) == CLIENTS
    assert calls[-4:] == [CLIENTS] * 4, calls


async def test_supervisor_stops_cleanly_on_sigterm(workers: Iris) -> None:
    assert workers.proc is not None
    kids = child_pids(workers.proc.pid)
    assert len(tcp_sockets(workers.port, "0A")) == 2
    workers.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(workers.proc.wait, 15)
    assert code == 0
    for _ in range(100):  # the workers are joined; multiprocessing's resource tracker follows
        if not any(_running(pid) for pid in kids):
            break
        await asyncio.sleep(0.05)
    assert [pid for pid in kids if _running(pid)] == []
    assert tcp_sockets(workers.port, "0A") == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_limits_on_new_images_hold_across_the_workers(slow_backend: FakeImageBackend, tmp_path: Path) -> None:
    """Misses per address, generations at once and the spend are shared by both processes."""
    slow_backend.delay = 0.1
    iris = Iris(slow_backend.url, 2, tmp_path, REQUEST_DEADLINE="20", RATE_LIMIT_GENERATE="8/minute",
                MAX_GENERATIONS_IN_FLIGHT="1", GENERATION_SLOT_WAIT="15",
                BACKEND_PRICES=f'{{"{slow_backend.url}": 0.25}}')
    await iris.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one(n: int) -> int:
                async with session.get(iris.image_url(f"new{n}", width=64, height=64)) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one(n) for n in range(16)))
            used = spread(iris)
            made = [n for n, status in enumerate(statuses) if status == 200]
            hits = await asyncio.gather(*(one(n) for n in made))
            async with session.get(f"{iris.url}/status", headers={"X-Admin-Token": ADMIN_TOKEN}) as resp:
                spending = (await resp.json())["spending"]
    finally:
        await asyncio.to_thread(iris.stop)
    assert len(used) == 2, f"the connections did not reach both workers: {used}"
    assert sorted(statuses) == [200] * 8 + [429] * 8
    assert hits == [200] * 8 and len(slow_backend.calls) == 8
    assert slow_backend.most_in_flight == 1
    assert (spending["budget"]["days"][0]["images"], spending["budget"]["spent_today"]) == (8, 2.0)
