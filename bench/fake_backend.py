"""A fake OpenAI-compatible image backend on 127.0.0.1 for the benchmarks.

It answers ``/v1/images/generations`` with the image named in the prompt (``small`` or ``large``,
else a tiny image), after an optional fixed delay, and counts its calls."""

from __future__ import annotations

import asyncio
import base64
import io
import random
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image


def tiny_png() -> bytes:
    """A 1x1 PNG: about 70-80 bytes, like a small icon."""
    out = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def noise_png(target: int = 1024 * 1024) -> bytes:
    """An incompressible PNG of about ``target`` bytes (random pixels, fixed seed)."""
    side = int((target / 3) ** 0.5)
    rng = random.Random(7)
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)
    return out.getvalue()


@dataclass
class BenchBackend:
    delay: float = 0.0
    images: dict[str, bytes] = field(default_factory=dict)
    calls: int = 0

    def image_for(self, prompt: str) -> bytes:
        for name, data in self.images.items():
            if name in prompt:
                return data
        return self.images.setdefault("tiny", tiny_png())

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        data = base64.b64encode(self.image_for(str(body.get("prompt", "")))).decode()
        return web.json_response({"data": [{"b64_json": data}]})

    async def start(self, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/images/generations", self.generate)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner
