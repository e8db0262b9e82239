"""Scale-out on Redis: misses spread over two instances, and hit throughput, Redis against local.

    .venv/bin/python -m bench.redis_scaleout [--clients 40] [--seconds 5] [--rounds 3]

A redis-server of its own (free loopback port, temp dir), a fake backend (0.5 s a generation) and
Iris as real ``python -m proxy serve`` processes (WORKERS=1 each, access log off):

1. Two instances on one Redis, separate DATA_DIRs: ``--clients`` identical concurrent misses, half
   to each instance, for three prompts in turn; the backend calls per prompt (target 1).
2. One hit URL measured by wrk (1 thread, 20 connections) against an instance with REDIS_URL and
   one without, alternating, in two modes: the default memory front (most hits never leave the
   process) and CACHE_MEMORY_BYTES=0 (every hit is a store read: Redis against diskcache). The
   median ratio Redis/local of requests per second is printed for each."""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

import aiohttp

from bench.fake_backend import BenchBackend
from bench.harness import Iris, free_port, median, require_tools, workdir, wrk
from tests.support.redis_fakes import RedisServer


async def herd(session: aiohttp.ClientSession, pair: list[Iris], prompt: str, clients: int) -> list[str]:
    urls = [pair[i % 2].image_url(prompt, width=64, height=64) for i in range(clients)]

    async def one(url: str) -> str:
        async with session.get(url) as resp:
            await resp.read()
            if resp.status != 200:
                raise SystemExit(f"bench: a miss answered {resp.status}")
            return resp.headers.get("X-Cache", "?")

    return await asyncio.gather(*(one(url) for url in urls))


async def spread_misses(args: argparse.Namespace, pair: list[Iris], backend: BenchBackend) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(3):
            before = backend.calls
            states = await herd(session, pair, f"spread-{n}", args.clients)
            print(f"  prompt {n}: {args.clients} identical misses over 2 instances -> "
                  f"{backend.calls - before} backend call(s) ({states.count('MISS')} answered MISS)")


async def fill(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(url) as resp:
                await resp.read()
                if resp.status == 200 and resp.headers.get("X-Cache") == "HIT":
                    return
            await asyncio.sleep(0.05)
    raise SystemExit("bench: the entry never became a hit")


async def hits(args: argparse.Namespace, shared: Iris, local: Iris, label: str) -> None:
    urls = {"redis": shared.image_url("hit-me", width=64, height=64),
            "local": local.image_url("hit-me", width=64, height=64)}
    for url in urls.values():
        await fill(url)
    rates: dict[str, list[float]] = {"redis": [], "local": []}
    bad = {"redis": 0, "local": 0}
    for _ in range(args.rounds):
        for name, url in urls.items():
            result = await wrk(url, connections=20, seconds=args.seconds, threads=1)
            bad[name] += result.bad
            rates[name].append(result.requests_per_s)
    ratios = [r / lo for r, lo in zip(rates["redis"], rates["local"], strict=True)]
    print(f"  {label}: redis {median(rates['redis']):.0f} req/s, local {median(rates['local']):.0f} req/s, "
          f"ratio redis/local {median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"non-2xx or socket errors: redis {bad['redis']}, local {bad['local']}")


async def main(args: argparse.Namespace) -> int:
    require_tools("wrk")
    if shutil.which("redis-server") is None:
        raise SystemExit("bench: redis-server not found; apt-get install -y redis-server")
    backend = BenchBackend(delay=0.5)
    runner = await backend.start(port := free_port())
    backend_url = f"http://127.0.0.1:{port}"
    with workdir() as tmp:
        root = Path(tmp)
        redis = RedisServer(root / "redis")
        await redis.astart()
        started: list[Iris] = []
        try:
            env = {"REDIS_URL": redis.url, "REDIS_PREFIX": "bench:"}
            pair = [Iris(backend_url, 1, root / f"shared{i}", **env) for i in range(2)]
            for iris in pair:
                started.append(iris)
                await iris.start()
            print("1. misses spread over two instances sharing Redis")
            await spread_misses(args, pair, backend)
            print("2. hit throughput, Redis cache against the local one (wrk -t1 -c20)")
            for label, extra in (("memory front on", {}), ("memory front off", {"CACHE_MEMORY_BYTES": "0"})):
                shared = Iris(backend_url, 1, root / f"hits-redis-{len(started)}", **env, **extra)
                local = Iris(backend_url, 1, root / f"hits-local-{len(started)}", **extra)
                for iris in (shared, local):
                    started.append(iris)
                    await iris.start()
                await hits(args, shared, local, label)
                for iris in (shared, local):
                    iris.stop()
        finally:
            for iris in started:
                iris.stop()
            await redis.astop()
            await runner.cleanup()
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
