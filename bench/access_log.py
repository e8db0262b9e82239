"""What the access log costs a small cache hit: Iris with its access log (the default) against
Iris without, side by side, alternating.

    .venv/bin/python -m bench.access_log [--seconds 3] [--rounds 5] [TREE ...]

Each TREE (default: this checkout) runs two Iris servers (WORKERS one per core, the log written
to a file as to a journal), one with ``ACCESS_LOG=true`` and one with ``false``; wrk (50
connections) asks each for the same small cached image in turn, round after round, the order
alternating. The table gives, per tree, the medians of req/s and of the CPU time the servers
spent per request (from /proc), and the cost of the log: 1 - (with / without). Target: <= 10 %
of a small hit's throughput. Trees let one run compare versions (``git worktree add``)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import aiohttp

from bench.fake_backend import BenchBackend, tiny_png
from bench.harness import (
    REPO,
    Iris,
    child_pids,
    cpu_count,
    cpu_seconds,
    free_port,
    median,
    require_tools,
    workdir,
    wrk,
)

TARGET = 0.10
Sample = tuple[float, float]  # req/s, us of CPU per request


async def fill(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(50):  # the answer goes out before the entry is stored: wait for the first hit
            async with session.get(url) as resp:
                await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"bench: {url.split('?')[0]} answered {resp.status}")
                if resp.headers.get("X-Cache") == "HIT":
                    return
            await asyncio.sleep(0.05)
    raise SystemExit("bench: the image never became a cache hit")


async def run(iris: Iris, url: str, seconds: float) -> Sample:
    assert iris.proc is not None
    pids = [iris.proc.pid, *child_pids(iris.proc.pid)]
    before = cpu_seconds(pids)
    res = await wrk(url, seconds=seconds)
    if res.bad:
        raise SystemExit(f"bench: {res.bad} bad responses or socket errors")
    return res.requests_per_s, (cpu_seconds(pids) - before) / (res.requests_per_s * seconds) * 1e6


async def main(args: argparse.Namespace) -> int:
    require_tools("wrk")
    backend = BenchBackend(images={"small": tiny_png()})
    port = free_port()
    runner = await backend.start(port)
    trees = args.trees or [REPO]
    servers: dict[tuple[Path, bool], Iris] = {}
    try:
        with workdir() as tmp:
            for n, tree in enumerate(trees):
                for logging in (True, False):
                    iris = Iris(f"http://127.0.0.1:{port}", args.workers, Path(tmp) / f"{n}-{logging}",
                                tree=tree, ACCESS_LOG=str(logging).lower(), LOG_LEVEL="INFO")
                    servers[tree, logging] = iris
                    await iris.start()
            urls = {which: iris.image_url("bench-small", width=64, height=64)
                    for which, iris in servers.items()}
            for url in urls.values():
                await fill(url)
                await wrk(url, seconds=1)
            print(f"{len(trees)} tree(s), each Iris {args.workers} workers; wrk 50 connections, "
                  f"{args.seconds:g} s a run; {cpu_count()} cores", flush=True)
            results: dict[tuple[Path, bool], list[Sample]] = {which: [] for which in servers}
            for round_no in range(args.rounds):
                order = list(servers) if round_no % 2 == 0 else list(servers)[::-1]
                for which in order:
                    results[which].append(await run(servers[which], urls[which], args.seconds))
                print(f"  round {round_no + 1}: " + "   ".join(
                    f"{which[0].name} {'log' if which[1] else 'no log'} {results[which][-1][0]:.0f} req/s "
                    f"({results[which][-1][1]:.1f} us CPU/req)" for which in servers), flush=True)
    finally:
        for iris in servers.values():
            iris.stop()
        await runner.cleanup()
    return 0 if report(trees, results) else 1


def report(trees: list[Path], results: dict[tuple[Path, bool], list[Sample]]) -> bool:
    print("\n| tree | req/s with log | without | CPU/req with | without | cost (req/s) | (CPU/req) "
          "| target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for tree in trees:
        on, off = results[tree, True], results[tree, False]
        cost = 1 - median([a[0] / b[0] for a, b in zip(on, off, strict=True)])
        cpu = median([a[1] / b[1] for a, b in zip(on, off, strict=True)]) - 1
        met = cost <= TARGET
        ok &= met
        print(f"| {tree.name} | {median([a[0] for a in on]):.0f} | {median([b[0] for b in off]):.0f} | "
              f"{median([a[1] for a in on]):.1f} us | {median([b[1] for b in off]):.1f} us | "
              f"{cost * 100:+.1f} % | {cpu * 100:+.1f} % | <= {TARGET * 100:.0f} % "
              f"{'met' if met else 'MISSED'} |")
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=lambda tree: Path(tree).resolve(),
                        help="checkouts to compare (default: this one)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=cpu_count(), help="Iris WORKERS")
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
