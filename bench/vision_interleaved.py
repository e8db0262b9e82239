"""Two versions of Iris (and the bare relay) on the same one-client glasses load, frame by frame in
turn: the comparison that survives a noisy machine.

``bench.vision_overhead`` runs its scenarios one after another, and on a shared 2-core machine the
same scenario moves by 0.5 ms from one minute to the next: more than most changes it should judge.
Here every server gets one frame in turn (each one a frame a second), so whatever the machine does
meanwhile falls on all of them alike. Each TREE is a checkout of this repository (for instance
``git worktree add /tmp/before HEAD~3``); its Iris runs as ``python -m proxy serve`` from that
directory, with this venv. Overhead = latency minus the delay the fake provider really slept.

    .venv/bin/python -m bench.vision_interleaved [--frames 60] [--no-relay] TREE [TREE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from bench.harness import REPO, STARTUP, free_port, wait_http
from bench.vision_overhead import FORM, frames, iris_env, multipart, provider_running, provider_tally, stop

WARM_UP = 5
ADD_PROFILE = ("import json, os, sys; sys.path.insert(0, os.getcwd()); "
               "from bench.vision_overhead import add_profiles; "
               "print(json.dumps(add_profiles(dict(os.environ), 1)))")


class Target:
    """One server under test: its name, address, and the profile its client logs in as."""

    def __init__(self, name: str, base: str, username: str, key: str):
        self.name, self.base, self.username, self.key = name, base, username, key
        self.latencies: list[float] = []


def start_iris(tree: Path, provider_url: str, data_dir: str, procs: list[subprocess.Popen[bytes]]) -> Target:
    port = free_port()
    env = iris_env(data_dir, port, provider_url)
    added = subprocess.check_output([sys.executable, "-c", ADD_PROFILE], env=env, cwd=tree)
    [(username, key)] = json.loads(added)
    procs.append(subprocess.Popen([sys.executable, "-m", "proxy", "serve"], env=env, cwd=tree,
                                  stderr=subprocess.DEVNULL))
    return Target(tree.name or str(tree), f"http://127.0.0.1:{port}", username, key)


def start_relay(provider_url: str, procs: list[subprocess.Popen[bytes]]) -> Target:
    port = free_port()
    procs.append(subprocess.Popen([sys.executable, "-m", "bench.vision_floor", str(port), provider_url],
                                  cwd=REPO, stderr=subprocess.DEVNULL))
    return Target("(bare relay)", f"http://127.0.0.1:{port}", "floor", "-")


async def run(targets: list[Target], provider_url: str, count: int) -> float:
    """Sends the frames in turn; returns the mean delay the provider really slept."""
    images = frames(64)
    async with AsyncExitStack() as stack:
        sessions = []
        for n, target in enumerate(targets):  # each client on its own loopback address, as glasses are
            connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{n + 2}", 0))
            session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
            async with session.post(f"{target.base}/auth-{target.key}") as resp:
                assert (await resp.json())["success"] is True, f"{target.name}: auth failed"
            sessions.append(session)
        tally = await stack.enter_async_context(aiohttp.ClientSession())
        before = await provider_tally(tally, provider_url)
        gap = 1.0 / len(targets)
        for frame in range(WARM_UP + count):
            for target, session in zip(targets, sessions, strict=True):
                body = multipart(target.username, images[frame % len(images)])
                began = time.perf_counter()
                async with session.post(f"{target.base}/process", data=body,
                                        headers={"Content-Type": FORM}) as resp:
                    await resp.read()
                elapsed = time.perf_counter() - began
                assert resp.status == 200, f"{target.name}: HTTP {resp.status}"
                if frame >= WARM_UP:
                    target.latencies.append(elapsed)
                await asyncio.sleep(max(0.0, gap - elapsed))
        return (await provider_tally(tally, provider_url) - before).delay(0.05)


def report(targets: list[Target], slept: float) -> None:
    print(f"one client per server, one frame a second each, in turn; "
          f"the provider slept {slept * 1000:.2f} ms")
    for target in targets:
        q = statistics.quantiles([(x - slept) * 1000 for x in target.latencies], n=100, method="inclusive")
        print(f"{target.name:<24} frames={len(target.latencies):3d}  overhead p25={q[24]:5.2f}  "
              f"p50={q[49]:5.2f}  p75={q[74]:5.2f}  p90={q[89]:5.2f} ms")


async def measure(targets: list[Target], provider_url: str, count: int) -> None:
    async with asyncio.timeout(STARTUP):
        for target in targets:
            await wait_http(f"{target.base}/health")
        await wait_http(f"{provider_url}/count")
    report(targets, await run(targets, provider_url, count))


def main(args: argparse.Namespace) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    with provider_running(0.05) as provider_url, tempfile.TemporaryDirectory() as tmp:
        try:
            targets = [start_iris(Path(tree).resolve(), provider_url, tempfile.mkdtemp(dir=tmp), procs)
                       for tree in args.trees]
            if args.relay:
                targets.append(start_relay(provider_url, procs))
            asyncio.run(measure(targets, provider_url, args.frames))
        finally:  # before their data directories go
            stop(procs)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="checkouts of this repository to compare")
    parser.add_argument("--frames", type=int, default=60, help="frames per server")
    parser.add_argument("--no-relay", dest="relay", action="store_false", help="leave the bare relay out")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse())
