"""Frames per second and p50 latency of the local vision provider (``"kind": "onnx"``) on this machine.

For each model file given, three measures on the same 640x480 JPEG frame (what the glasses send):

1. ``classify``: the classifier alone, one frame after another, as a provider's call runs it on its
   thread (decode, crop and scale, normalise, inference, top 5);
2. ``runner``: through the runner the provider uses (``LOCAL_MODEL_CONCURRENCY`` threads, one
   ONNX Runtime thread each), with as many callers as threads: the frames/s a worker can give;
3. ``/analyze``: Iris itself (``python -m proxy serve``, one worker, the model its only provider),
   one client after another, then ``--clients`` at once: what an HTTP client sees.

and, last, what the safety check costs a generated image (open_nsfw on a 1024x1024 PNG, 1 thread).

A model without a labels file gets numbered labels (``--labels`` to give its own). Run it from the
repository root with the ``local`` extra installed, on a quiet machine:

    .venv/bin/python -m bench.local_vision MODEL.onnx [MODEL.onnx ...] [--frames 40] [--clients 2]"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np
import orjson
from PIL import Image

from bench.harness import ACCESS_KEY, Iris, cpu_count, workdir
from bench.vision_overhead import frames
from proxy.config.vision import LocalModel
from proxy.local.classifier import ImageClassifier
from proxy.local.nsfw import NsfwModel
from proxy.local.runtime import LocalRunner, open_session


def frame() -> bytes:
    """A busy 640x480 JPEG scene, as the glasses send (the vision overhead bench's first)."""
    return frames(1)[0]


def numbered_labels(model: Path, directory: Path) -> Path:
    """As many labels as the model has outputs (read by running it once)."""
    session = open_session(model, 1, "bench", str(model))
    entry = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else (1 if i == 0 else 224) for i, d in enumerate(entry.shape)]
    (out,) = session.run(None, {entry.name: np.zeros(shape, np.float32)})[:1]
    path = directory / f"{model.stem}-labels.txt"
    path.write_text("".join(f"class {i}\n" for i in range(out.size)))
    return path


def labels_of(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())


async def timed(calls: int, callers: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(frames per second, p50 ms) of ``calls`` calls made by ``callers`` at once."""
    latencies: list[float] = []
    left = calls

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return calls / (time.perf_counter() - started), statistics.median(latencies)


async def bench_model(model: Path, labels: Path, args: argparse.Namespace, tmp: Path) -> list[str]:
    rows = []
    jpeg = frame()
    classifier = ImageClassifier.load(model.stem, LocalModel(model, labels_of(labels)), threads=1)
    for _ in range(3):
        classifier.classify(jpeg)

    async def direct() -> object:
        return classifier.classify(jpeg)

    fps, p50 = await timed(args.frames, 1, direct)
    rows.append(f"| {model.name} | classify, 1 thread | {fps:.1f} | {p50:.1f} |")
    for threads in args.concurrency:
        runner = LocalRunner("bench", concurrency=threads, deadline=600.0)
        fps, p50 = await timed(args.frames, threads, lambda r=runner: r.run(classifier.classify, jpeg))
        runner.close()
        rows.append(f"| {model.name} | runner, {threads} thread(s) and caller(s) | {fps:.1f} | {p50:.1f} |")
    provider = {"name": model.stem, "kind": "onnx", "model_path": str(model), "labels_path": str(labels)}
    iris = Iris("", 1, tmp / model.stem, VISION_PROVIDERS=orjson.dumps([provider]).decode(),
                SAFETY_CHECK="off", BACKEND_API_URLS="", LOCAL_MODEL_CONCURRENCY=str(max(args.concurrency)),
                VISION_DEDUP_SECONDS="0", RATE_LIMIT_PROCESS="1000000/hour", ANALYZE_ACCESS_KEY="true")
    await iris.start()
    try:
        body = orjson.dumps({"image": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()})
        async with aiohttp.ClientSession() as session:
            async def analyze() -> object:
                async with session.post(f"{iris.url}/analyze", data=body,
                                        headers={"X-API-Key": ACCESS_KEY,
                                                 "Content-Type": "application/json"}) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"bench: /analyze answered {resp.status}: {await resp.text()}")
                    return await resp.read()

            for _ in range(3):
                await analyze()
            for clients in (1, args.clients):
                fps, p50 = await timed(args.frames, clients, analyze)
                rows.append(f"| {model.name} | POST /analyze, {clients} client(s) | {fps:.1f} | {p50:.1f} |")
    finally:
        iris.stop()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--labels", type=Path, help="the labels file (default: numbered labels)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2],
                        help="LOCAL_MODEL_CONCURRENCY values to measure, comma-separated")
    args = parser.parse_args()
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}, {cpu_count()} cores, {args.frames} frames per row, "
          f"a 640x480 JPEG frame, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | how | frames/s | p50 ms |\n| --- | --- | --- | --- |")
    with workdir() as tmp:
        for model in args.models:
            labels = args.labels or numbered_labels(model, Path(tmp))
            for row in await bench_model(model.resolve(), labels.resolve(), args, Path(tmp)):
                print(row, flush=True)
    nsfw = NsfwModel.load(threads=1)
    out = io.BytesIO()
    Image.open(io.BytesIO(frame())).resize((1024, 1024)).save(out, "PNG")
    png = out.getvalue()
    nsfw.score(png)

    async def check() -> object:
        return nsfw.score(png)

    fps, p50 = await timed(args.frames, 1, check)
    print(f"| open_nsfw (safety check) | a 1024x1024 PNG, 1 thread | {fps:.1f} | {p50:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
