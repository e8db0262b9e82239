"""Per-frame overhead of POST /process for glasses clients, each keeping one frame in flight.

Iris runs as a real ``python -m proxy serve`` process over a temp DATA_DIR; the provider is a fake
OpenAI-compatible chat endpoint in another process that answers confidently after a fixed delay.
Overhead = the client's latency minus that delay as the provider measured it: asyncio
rounds a timer's wait up to the next millisecond, so ``sleep(0.05)`` lasts 50.0-51.0 ms (about
+0.5 ms on average) and subtracting the nominal delay would count the fake's own oversleep as
overhead. Each client is its own profile on its own
loopback address (127.0.0.N), logs in with ``POST /auth-{key}`` and then sends multipart frames
exactly as the Frame app does. Frames are distinct scenes, so dedup never answers (the last scenario
sends one scene again and again on purpose: the dedup path, no provider call, nothing subtracted).
"in the handler" is the ``processing_time`` Iris reports (ms resolution) minus the delay.

    .venv/bin/python -m bench.vision_overhead [--frames 30] [--clients 20] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from PIL import Image, ImageDraw

from bench.harness import free_port, wait_http

REPO = Path(__file__).resolve().parents[1]
STARTUP = 30.0


def fake_provider(port: int, delay: float) -> None:
    """A confident OpenAI-compatible vision provider; GET /count reports the calls so far and the
    seconds they really slept."""
    calls, slept = [0], [0.0]

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        calls[0] += 1
        began = time.perf_counter()
        await asyncio.sleep(delay)
        slept[0] += time.perf_counter() - began
        content = orjson.dumps({"answer": "A cup of coffee on a desk", "confidence": 0.93}).decode()
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": content}}]})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"calls": calls[0], "slept": slept[0]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/count", count)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def frames(count: int, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """Distinct busy JPEG scenes, like the glasses camera's 256-720 px frames."""
    out = []
    for seed in range(count):
        rng = random.Random(seed)
        image = Image.new("RGB", size, (rng.randrange(256), 80, 80))
        draw = ImageDraw.Draw(image)
        for _ in range(60):
            x, y = rng.randrange(size[0]), rng.randrange(size[1])
            draw.ellipse((x, y, x + rng.randrange(10, 200), y + rng.randrange(10, 200)),
                         fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def add_profiles(env: dict[str, str], count: int) -> list[tuple[str, str]]:
    from proxy.accounts import profiles
    from proxy.accounts.service import open_context
    from proxy.config import load_settings

    ctx = open_context(load_settings(env))
    users = [(f"glasses{i}", profiles.add(ctx, f"glasses{i}")) for i in range(count)]
    ctx.conn.close()
    return users


BOUNDARY = "dart-http-boundary-0123456789abcdef"
FORM = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(username: str, image: bytes) -> bytes:
    """The Frame app's request body (as Dart's MultipartRequest writes it), encoded ahead of time so
    that the load generator spends its CPU on sending, not on encoding."""
    head = (f'--{BOUNDARY}\r\ncontent-disposition: form-data; name="username"\r\n\r\n{username}\r\n'
            f'--{BOUNDARY}\r\ncontent-type: application/octet-stream\r\n'
            f'content-disposition: form-data; name="image"; filename="frame_image.jpg"\r\n\r\n')
    return head.encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass
class Client:
    username: str
    key: str
    address: str
    latencies: list[float] = field(default_factory=list)
    handler: list[float] = field(default_factory=list)  # processing_time Iris reports


async def run_client(base: str, client: Client, images: list[bytes], interval: float, start: int) -> None:
    connector = aiohttp.TCPConnector(local_addr=(client.address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(f"{base}/auth-{client.key}") as resp:
            assert (await resp.json())["success"] is True, "auth failed"
        bodies = [multipart(client.username, images[(start + n) % len(images)]) for n in range(len(images))]
        for body in bodies:
            began = time.perf_counter()
            async with session.post(f"{base}/process", data=body, headers={"Content-Type": FORM}) as resp:
                body = await resp.json()
            elapsed = time.perf_counter() - began
            assert resp.status == 200 and body["success"], body
            client.latencies.append(elapsed)
            client.handler.append(body["processing_time"])
            if interval:
                await asyncio.sleep(max(0.0, interval - elapsed))


@dataclass(frozen=True)
class Tally:
    """The fake provider's calls and the seconds they slept, so far."""

    calls: int
    slept: float

    def __sub__(self, other: Tally) -> Tally:
        return Tally(self.calls - other.calls, self.slept - other.slept)

    def delay(self, nominal: float) -> float:
        """The mean delay the provider really imposed (the nominal one when it was not called)."""
        return self.slept / self.calls if self.calls else nominal


async def provider_tally(session: aiohttp.ClientSession, url: str) -> Tally:
    async with session.get(f"{url}/count") as resp:
        body = await resp.json()
    return Tally(body["calls"], body["slept"])


async def scenario(name: str, base: str, provider_url: str, clients: list[Client], images: list[bytes],
                   interval: float, delay: float, subtract: bool = True) -> float:
    """Prints the scenario's line; returns the overhead p50 in ms."""
    async with aiohttp.ClientSession() as session:
        before = await provider_tally(session, provider_url)
        await asyncio.gather(*(run_client(base, c, images, interval, i * 7) for i, c in enumerate(clients)))
        tally = await provider_tally(session, provider_url) - before
    latencies = sorted(x for c in clients for x in c.latencies)
    offset = tally.delay(delay) if subtract else 0.0
    q = percentiles([x - offset for x in latencies])
    inside = percentiles([x - offset for c in clients for x in c.handler])
    slept = f"  (the provider slept {offset * 1000:.2f} ms)" if subtract else ""
    per_frame = tally.calls / len(latencies)
    print(f"{name:<42} frames={len(latencies):4d}  overhead p50={q[49]:6.2f} ms  p99={q[98]:6.2f} ms  "
          f"(in the handler p50={inside[49]:5.2f} ms)  provider calls/frame={per_frame:.2f}{slept}")
    for c in clients:
        c.latencies.clear()
        c.handler.clear()
    return q[49]


def percentiles(seconds: list[float]) -> list[float]:
    return statistics.quantiles([x * 1000 for x in seconds], n=100, method="inclusive")


async def direct_baseline(provider_url: str, delay: float, clients: int, frames_each: int) -> None:
    """What the fake provider and this load generator cost by themselves, with Iris left out."""
    payload = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 46_000}]})
    latencies: list[float] = []

    async def one_client() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(frames_each):
                began = time.perf_counter()
                async with session.post(f"{provider_url}/v1/chat/completions", data=payload,
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - began)

    async with aiohttp.ClientSession() as session:
        before = await provider_tally(session, provider_url)
        await asyncio.gather(*(one_client() for _ in range(clients)))
        slept = (await provider_tally(session, provider_url) - before).delay(delay)
    q = percentiles([x - slept for x in latencies])
    print(f"{f'(baseline: {clients} client(s) -> fake provider, no Iris)':<42} frames={len(latencies):4d}  "
          f"overhead p50={q[49]:6.2f} ms  p99={q[98]:6.2f} ms  (the provider slept {slept * 1000:.2f} ms)")


async def measure(args: argparse.Namespace, base: str, provider_url: str, floor: str,
                  users: list[tuple[str, str]]) -> None:
    async with asyncio.timeout(STARTUP):
        await wait_http(f"{base}/health")
        await wait_http(f"{provider_url}/count")
        await wait_http(f"{floor}/health")
    images = frames(64)
    await run_client(base, Client(*users[-1], "127.0.0.200"), images[:5], 0.0, 0)  # warm-up
    print(f"provider delay {args.delay * 1000:.0f} ms; frames ~{len(images[0]) // 1000} kB 640x480 JPEG; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    await direct_baseline(provider_url, args.delay, 1, args.frames)
    await direct_baseline(provider_url, args.delay, args.clients, args.frames)
    one = [Client(*users[0], "127.0.0.2")]
    many = [Client(u, k, f"127.0.0.{i + 2}") for i, (u, k) in enumerate(users[: args.clients])]
    await run_client(floor, Client("floor", "-", "127.0.0.200"), images[:5], 0.0, 0)
    floor_one = await scenario("(floor: bare relay, 1 client, 1 frame/s)", floor, provider_url, one,
                               images[: args.frames], 1.0, args.delay)
    floor_many = await scenario(f"(floor: bare relay, {args.clients} clients)", floor, provider_url, many,
                                images[: args.frames], 0.0, args.delay)
    iris_one = await scenario("1 client, 1 frame/s", base, provider_url, one, images[: args.frames], 1.0,
                              args.delay)
    iris_many = await scenario(f"{args.clients} clients at once, one frame in flight each", base,
                               provider_url, many, images[: args.frames], 0.0, args.delay)
    await scenario("1 client, same scene again (dedup, no call)", base, provider_url,
                   [Client(*users[0], "127.0.0.2")], [images[0]] * args.frames, 0.0, args.delay,
                   subtract=False)
    print(f"Iris / bare relay (overhead p50): 1 client {iris_one / floor_one:.2f}, "
          f"{args.clients} clients {iris_many / floor_many:.2f}")


def iris_env(data_dir: str, port: int, provider_url: str, workers: int = 1) -> dict[str, str]:
    """``python -m proxy serve`` over the fake provider, with limits a load test does not trip."""
    providers = [{"name": "fake", "base_url": provider_url, "model": "m", "token": "sk-bench-0123456789"}]
    return {**os.environ, "DATA_DIR": data_dir, "HOST": "127.0.0.1", "PORT": str(port),
            "WORKERS": str(workers), "ACCESS_LOG": "false", "LOG_LEVEL": "WARNING",
            "POLLINATIONS_URL": "http://127.0.0.1:9", "RATE_LIMIT_PROCESS": "1000000/hour",
            "RATE_LIMIT_AUTH": "1000/minute", "VISION_PROVIDERS": orjson.dumps(providers).decode()}


@contextlib.contextmanager
def provider_running(delay: float) -> Iterator[str]:
    """The fake provider in its own process; yields its base URL."""
    port = free_port()
    spawn = multiprocessing.get_context("spawn")
    provider = spawn.Process(target=fake_provider, args=(port, delay), daemon=True)
    provider.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        provider.terminate()
        provider.join(10)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def main(args: argparse.Namespace) -> None:
    port, floor_port = free_port(), free_port()
    with provider_running(args.delay) as provider_url, tempfile.TemporaryDirectory() as tmp:
        env = iris_env(tmp, port, provider_url, args.workers)
        users = add_profiles(env, max(args.clients, 1) + 1)
        procs = [subprocess.Popen([sys.executable, "-m", "proxy", "serve"], env=env, cwd=REPO,
                                  stderr=subprocess.DEVNULL),
                 subprocess.Popen([sys.executable, "-m", "bench.vision_floor", str(floor_port), provider_url],
                                  cwd=REPO, stderr=subprocess.DEVNULL)]
        try:
            asyncio.run(measure(args, f"http://127.0.0.1:{port}", provider_url, f"http://127.0.0.1:{floor_port}",
                                users))
        finally:
            stop(procs)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="frames per client and scenario")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.05, help="the fake provider's delay in seconds")
    parser.add_argument("--workers", type=int, default=1, help="Iris worker processes (WORKERS)")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse())
