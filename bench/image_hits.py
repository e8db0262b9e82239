"""Cache hits: Iris against nginx serving the same image bytes from disk, side by side.

    .venv/bin/python -m bench.image_hits [--seconds 5] [--rounds 3] [--workers N] [--no-access-log]

Like for like, as people run them: Iris at its default settings (WORKERS one per core, its access
log on, to a file) over a fake backend that fills its cache once, and nginx serving the bytes Iris
answered with ``sendfile on`` and a buffered access log (``buffer=64k``). ``--no-access-log``
turns both logs off. wrk (50 connections) measures a small (about 80 bytes), a 1 MB and a 6 MB
image, Iris and nginx alternating, and the median ratio Iris/nginx is compared with the targets
(small: req/s >= 0.45 x, 1 MB: bytes/s >= 0.9 x). The 6 MB image is over CACHE_MEMORY_ITEM_BYTES
(4 MB by default, as Iris runs here): never in the memory front, every hit is sent from the disk
store's own file of it; the issue sets it no number of its own, so it is held to the 1 MB one.

"small signed" is the small image through a signed URL (no key; the signature checked on every
hit): beside the unsigned one, a signed hit may cost at most 5 % more (req/s and CPU/request).
As those two swing by 10 % from run to run on a loaded machine, the signature's own cost is also
measured in process: the fast lane's work for the same hit with the key and signed (the only
difference between the two), on the thread's CPU clock, alternating, set against the CPU a whole
small hit cost Iris in the wrk runs."""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp.test_utils import make_mocked_request

from bench.fake_backend import BenchBackend, noise_png, tiny_png
from bench.harness import (
    ACCESS_KEY,
    ADMIN_TOKEN,
    REPO,
    Iris,
    Nginx,
    child_pids,
    cpu_count,
    cpu_seconds,
    free_port,
    interpreter,
    median,
    require_tools,
    workdir,
    wrk,
    wrk_options,
)
from proxy.app import create_app
from proxy.cache.entry import image_entry
from proxy.config import load_settings
from proxy.imagegen.lane import FastLane, FastLaneRunner
from proxy.keys import IMAGE_CACHE
from proxy.keys import TARGETS as PARSED_TARGETS
from proxy.security.signing import Signer

TARGETS = {"small": 0.45, "1 MB": 0.9, "small signed": 0.45, "6 MB": 0.9}
TARGET_NOTES = {"6 MB": " (as 1 MB)"}  # a target the issue gives no number of its own
HUGE = 6 * 1024 * 1024  # over CACHE_MEMORY_ITEM_BYTES's default (4 MB): hits come from the store's file
SIGNING_KEY = "bench-signing-key-0123456789"
SIGNED_OVERHEAD = 1.05  # a signed hit may cost at most 5 % more than the same hit with the key


@dataclass
class Case:
    name: str
    prompt: str
    signed: bool = False
    body: bytes = b""
    iris_url: str = ""
    nginx_url: str = ""


def signed_url(iris: Iris, prompt: str) -> str:
    return iris.url + Signer([SIGNING_KEY]).sign(f"/prompt/{prompt}?width=64&height=64")


async def fill(session: aiohttp.ClientSession, iris: Iris, case: Case) -> None:
    """One miss fills the cache; the next request must be a hit with the same bytes."""
    case.iris_url = (signed_url(iris, case.prompt) if case.signed
                     else iris.image_url(case.prompt, width=64, height=64))
    for _ in range(50):  # the answer goes out before the entry is stored: wait for the first hit
        async with session.get(case.iris_url) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise SystemExit(f"bench: {case.name}: {resp.status} {body[:200]!r}")
            if case.body and body != case.body:
                raise SystemExit(f"bench: {case.name}: a hit answered other bytes than the miss")
            case.body = body
            if resp.headers.get("X-Cache") == "HIT":
                return
        await asyncio.sleep(0.05)
    raise SystemExit(f"bench: {case.name}: never became a cache hit")


Runs = dict[str, list[tuple[float, float, float]]]  # per case: (Iris req/s, nginx req/s, Iris us CPU/req)


async def measure(args: argparse.Namespace, cases: list[Case], iris_pids: list[int],
                  nginx_pids: list[int]) -> Runs:
    results: Runs = {case.name: [] for case in cases}
    for case in cases:  # warm every worker's memory front and the page cache
        await wrk(case.iris_url, connections=args.connections, seconds=1)
        await wrk(case.nginx_url, connections=args.connections, seconds=1)
    for round_no in range(args.rounds):
        for case in cases:
            order = ("iris", "nginx") if round_no % 2 == 0 else ("nginx", "iris")
            got, cpu = {}, {}
            for who in order:
                url, pids = (case.iris_url, iris_pids) if who == "iris" else (case.nginx_url, nginx_pids)
                before = cpu_seconds(pids)
                res = await wrk(url, connections=args.connections, seconds=args.seconds)
                if res.bad:
                    raise SystemExit(f"bench: {who} {case.name}: {res.bad} bad responses or socket errors")
                got[who] = res.requests_per_s
                cpu[who] = (cpu_seconds(pids) - before) / (res.requests_per_s * args.seconds) * 1e6
            results[case.name].append((got["iris"], got["nginx"], cpu["iris"]))
            print(f"  round {round_no + 1} {case.name:>5}: Iris {got['iris']:8.0f} req/s "
                  f"({cpu['iris']:6.1f} us CPU/req)   nginx {got['nginx']:8.0f} req/s "
                  f"({cpu['nginx']:6.1f} us CPU/req)   ratio {got['iris'] / got['nginx']:.3f}", flush=True)
    return results


def report(cases: list[Case], results: Runs) -> bool:
    print("\n| image | Iris req/s | nginx req/s | Iris MB/s | nginx MB/s | ratio (median) | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for case in cases:
        rows = results[case.name]
        iris, nginx = median([r[0] for r in rows]), median([r[1] for r in rows])
        ratio = median([r[0] / r[1] for r in rows])
        size = len(case.body) / 1e6
        met = ratio >= TARGETS[case.name]
        ok &= met
        target = f">= {TARGETS[case.name]}{TARGET_NOTES.get(case.name, '')}"
        print(f"| {case.name} ({len(case.body)} B) | {iris:.0f} | {nginx:.0f} | {iris * size:.1f} | "
              f"{nginx * size:.1f} | {ratio:.3f} | {target} {'met' if met else 'MISSED'} |")
    report_signed(results)
    return ok


def report_signed(results: Runs) -> bool:
    """The signed small hit beside the unsigned one, round by round (each ran a few seconds apart);
    informative: on a loaded machine these swing by more than the target (judged in process)."""
    plain, signed = results.get("small", []), results.get("small signed", [])
    if not plain or not signed:
        return True
    rps = median([p[0] / s[0] for p, s in zip(plain, signed, strict=True)])  # > 1: signed is slower
    cpu = median([s[2] / p[2] for p, s in zip(plain, signed, strict=True)])  # > 1: signed costs more
    met = rps <= SIGNED_OVERHEAD and cpu <= SIGNED_OVERHEAD
    print("\n| small hit | unsigned req/s | signed req/s | cost of signing (req/s) | (CPU/req) | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| median | {median([p[0] for p in plain]):.0f} | {median([s[0] for s in signed]):.0f} | "
          f"{(rps - 1) * 100:+.1f} % | {(cpu - 1) * 100:+.1f} % | <= +5 % {'met' if met else 'MISSED'} |")
    return met


async def lane_signing_cost(tmp: Path, body: bytes, *, calls: int = 20000, rounds: int = 5) -> float:
    """Microseconds of CPU the signature adds to one small hit in the fast lane (median of
    ``rounds`` alternating runs of ``calls`` hits each, the same image with the key and signed)."""
    app = create_app(load_settings({"DATA_DIR": str(tmp / "lane"), "PROXY_ACCESS_KEY": ACCESS_KEY,
                                    "ADMIN_TOKEN": ADMIN_TOKEN, "IMAGE_SIGNING_KEYS": SIGNING_KEY,
                                    "BACKEND_API_URLS": "http://127.0.0.1:9", "LOG_LEVEL": "WARNING"}))
    runner = FastLaneRunner(app)
    await runner.setup()
    try:
        lane = runner.server.request_handler  # type: ignore[union-attr]
        assert isinstance(lane, FastLane)
        plain = f"/prompt/bench-small?key={ACCESS_KEY}&width=64&height=64"
        signed = Signer([SIGNING_KEY]).sign("/prompt/bench-small?width=64&height=64")
        requests = {name: make_mocked_request("GET", path, app=app) for name, path in
                    (("key", plain), ("signed", signed))}
        for request in requests.values():
            await app[IMAGE_CACHE].put(app[PARSED_TARGETS].parse(request).key, image_entry(body, "image/png"))
            response = lane._hit(request)
            if response is None or response.body != body:
                raise SystemExit("bench: the fast lane did not answer the small hit")
        spent: dict[str, list[float]] = {name: [] for name in requests}
        for round_no in range(rounds):
            for name in (list(requests) if round_no % 2 == 0 else list(requests)[::-1]):
                started = time.thread_time()
                for _ in range(calls):
                    lane._hit(requests[name])
                spent[name].append((time.thread_time() - started) / calls * 1e6)
    finally:
        await runner.cleanup()
    return median(spent["signed"]) - median(spent["key"])


async def main(args: argparse.Namespace) -> int:
    require_tools("nginx", "wrk")
    backend = BenchBackend(images={"small": tiny_png(), "large": noise_png(), "huge": noise_png(HUGE)})
    backend_port = free_port()
    runner = await backend.start(backend_port)
    with workdir() as tmp:
        iris = Iris(f"http://127.0.0.1:{backend_port}", args.workers, Path(tmp), tree=args.tree,
                    IMAGE_SIGNING_KEYS=SIGNING_KEY, ACCESS_LOG=str(args.access_log).lower(),
                    LOG_LEVEL="INFO")  # Iris's default: access lines are INFO lines
        nginx = Nginx(Path(tmp), access_log=args.access_log)
        cases = [Case("small", "bench-small"), Case("small signed", "bench-small", signed=True),
                 Case("1 MB", "bench-large"), Case("6 MB", "bench-huge")]
        try:
            await iris.start()
            async with aiohttp.ClientSession() as session:
                for case in cases:
                    await fill(session, iris, case)
            for case in cases:
                case.nginx_url = nginx.add_file(case.prompt + ".png", case.body)  # the signed case: same file
            await nginx.start()
            logs = "both access logs on (nginx: buffer=64k)" if args.access_log else "both access logs off"
            print(f"Iris: {args.workers} workers; nginx: worker_processes auto; {logs}; wrk: "
                  f"{args.connections} connections, 2 threads, {args.seconds:g} s a run; {cpu_count()} cores",
                  flush=True)
            print(f"Iris runs on {interpreter()}", flush=True)
            assert iris.proc is not None and nginx.proc is not None
            iris_pids = [iris.proc.pid, *child_pids(iris.proc.pid)]
            nginx_pids = [nginx.proc.pid, *child_pids(nginx.proc.pid)]
            results = await measure(args, cases, iris_pids, nginx_pids)
        finally:
            iris.stop()
            nginx.stop()
            await runner.cleanup()
    ok = report(cases, results)
    with workdir() as tmp:
        extra = await lane_signing_cost(Path(tmp), cases[0].body)
    whole = median([r[2] for r in results["small"]])
    met = extra / whole <= SIGNED_OVERHEAD - 1
    print("\n| small hit | Iris CPU per hit (wrk runs) | the signature's own (lane, in process) | share "
          "| target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| median | {whole:.1f} us | {extra:+.2f} us | {extra / whole * 100:+.1f} % | "
          f"<= +5 % {'met' if met else 'MISSED'} |")
    return 0 if ok and met else 1


def parse_args() -> argparse.Namespace:
    parser = wrk_options(__doc__, "Iris/nginx alternations")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="both servers without an access log (default: both log, as deployed)")
    parser.add_argument("--tree", type=lambda tree: Path(tree).resolve(), default=REPO,
                        help="the checkout whose Iris runs (default: this one), to measure another version")
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
