"""Cache misses: the latency Iris adds to the backend's own, and single flight across workers.

    .venv/bin/python -m bench.image_miss [--delay 0.05] [--samples 40] [--workers N]

1. Sequential misses (a new prompt each) through Iris against the same backend called directly,
   interleaved; the overhead is Iris p50 minus direct p50 (target <= 1 ms). Beside them, the same
   backend call through nginx as a reverse proxy (keep-alive to the backend, as operators run
   it), interleaved too: what one more HTTP hop costs on this machine, measured in the same run,
   is the floor under any proxy's overhead (``--no-nginx`` leaves it out). And the same call
   through a bare aiohttp proxy (``bench/bare_proxy.py``: aiohttp's server and client, none of
   Iris's steps): the floor under any aiohttp server's.
2. 100 identical concurrent misses from 100 connections (spread by the kernel over the WORKERS
   processes; the script counts which worker holds each connection): backend calls (target 1)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import aiohttp

from bench.bare_proxy import BareProxy
from bench.fake_backend import BenchBackend, tiny_png
from bench.harness import (
    Iris,
    Nginx,
    child_pids,
    connections_by_process,
    cpu_count,
    free_port,
    interpreter,
    require_tools,
    workdir,
)

ADDED_TARGET = 1.0  # ms a miss may add to the backend's own time (p50)


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kwargs: object) -> float:
    start = time.perf_counter()
    async with session.request(method, url, **kwargs) as resp:
        await resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench: {method} {url.split('?')[0]} answered {resp.status}")
    return (time.perf_counter() - start) * 1000


class Floors(NamedTuple):
    """p50s of the same backend call through nginx (None: not run) and a bare aiohttp proxy."""

    nginx: float | None
    aiohttp: float


async def overhead(args: argparse.Namespace, iris: Iris, backend_url: str, nginx: Nginx | None,
                   bare: BareProxy) -> tuple[float, float, Floors]:
    """p50s of the backend called directly and through Iris, and the floors."""
    direct, through, proxied, bared = [], [], [], []
    async with aiohttp.ClientSession() as session:
        for i in range(args.samples + 5):
            payload = {"prompt": f"direct {i}", "n": 1, "size": "64x64", "seed": 42}
            d = await timed(session, "POST", f"{backend_url}/v1/images/generations", json=payload)
            t = await timed(session, "GET", iris.image_url(f"miss-{i}", width=64, height=64))
            b = await timed(session, "POST", f"{bare.url}/v1/images/generations", json=payload)
            p = None
            if nginx is not None:
                p = await timed(session, "POST", f"{nginx.url}/v1/images/generations", json=payload)
            if i >= 5:  # the first few warm connections and code paths
                direct.append(d)
                through.append(t)
                bared.append(b)
                if p is not None:
                    proxied.append(p)
            await asyncio.sleep(args.gap)  # a miss finishes storing its entry after answering
    floors = Floors(statistics.median(proxied) if proxied else None, statistics.median(bared))
    return statistics.median(direct), statistics.median(through), floors


def overhead_table(direct: float, through: float, floors: Floors) -> bool:
    added = through - direct
    met = added <= ADDED_TARGET
    print(f"| direct p50 | through Iris p50 | added by Iris | target |\n| --- | --- | --- | --- |\n"
          f"| {direct:.2f} ms | {through:.2f} ms | {added:.2f} ms | <= {ADDED_TARGET:g} ms "
          f"{'met' if met else 'MISSED'} |\n")
    print("| the same backend call through | p50 | added: the floor | Iris beyond it |\n"
          "| --- | --- | --- | --- |")
    for name, p50 in (("nginx (reverse proxy): one more HTTP hop", floors.nginx),
                      ("a bare aiohttp proxy (bench/bare_proxy.py)", floors.aiohttp)):
        if p50 is not None:
            print(f"| {name} | {p50:.2f} ms | {p50 - direct:.2f} ms | {added - (p50 - direct):.2f} ms |")
    print()
    return met


async def herd(iris: Iris, backend: BenchBackend, prompt: str, clients: int) -> tuple[int, dict[int, int]]:
    """``clients`` identical concurrent misses, one connection each; backend calls and spread."""
    before = backend.calls
    url = iris.image_url(prompt, width=64, height=64)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> bytes:
            async with session.get(url) as resp:
                if resp.status != 200:
                    raise SystemExit(f"bench: a concurrent miss answered {resp.status}")
                return await resp.read()

        bodies = await asyncio.gather(*(one() for _ in range(clients)))
        assert iris.proc is not None
        spread = connections_by_process(iris.port, child_pids(iris.proc.pid))
    if len(set(bodies)) != 1:
        raise SystemExit("bench: concurrent misses answered different bytes")
    return backend.calls - before, {pid: n for pid, n in spread.items() if n}


async def main(args: argparse.Namespace) -> int:
    if args.nginx:
        require_tools("nginx")
    backend = BenchBackend(delay=args.delay, images={"tiny": tiny_png()})
    port = free_port()
    runner = await backend.start(port)
    backend_url = f"http://127.0.0.1:{port}"
    ok = True
    with workdir() as tmp:
        iris = Iris(backend_url, args.workers, Path(tmp))
        nginx = Nginx(Path(tmp), proxy_to=f"127.0.0.1:{port}") if args.nginx else None
        bare = BareProxy(backend_url)
        try:
            await iris.start()
            await bare.start()
            if nginx is not None:
                await nginx.start()
            direct, through, floors = await overhead(args, iris, backend_url, nginx, bare)
            print(f"backend delay {args.delay * 1000:g} ms, {args.samples} sequential misses, "
                  f"{args.workers} workers; Iris runs on {interpreter()}")
            ok &= overhead_table(direct, through, floors)
            print("| round | concurrent identical misses | connections per worker | backend calls |")
            print("| --- | --- | --- | --- |")
            for n in range(args.rounds):
                calls, spread = await herd(iris, backend, f"herd-{n}", args.clients)
                ok &= calls == 1
                per_worker = " + ".join(str(c) for c in spread.values())
                print(f"| {n + 1} | {args.clients} | {per_worker} | {calls} |")
        finally:
            iris.stop()
            bare.stop()
            if nginx is not None:
                nginx.stop()
            await runner.cleanup()
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return 0 if ok else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.05, help="the backend's own latency, seconds")
    parser.add_argument("--samples", type=int, default=40, help="sequential misses to time")
    parser.add_argument("--gap", type=float, default=0.02, help="pause between sequential misses, s")
    parser.add_argument("--clients", type=int, default=100, help="identical concurrent misses")
    parser.add_argument("--rounds", type=int, default=3, help="herds of concurrent misses")
    parser.add_argument("--workers", type=int, default=cpu_count(), help="Iris WORKERS")
    parser.add_argument("--no-nginx", dest="nginx", action="store_false",
                        help="leave out the reverse-proxy floor (nginx in front of the same backend)")
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
