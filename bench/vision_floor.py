"""A reference for ``bench.vision_overhead``: the least a /process server can do for a frame.

A bare aiohttp server that takes the Frame app's multipart body, decodes the JPEG for a dHash the
cheapest way Iris knows (libjpeg-turbo through simplejpeg, grey at 1/8 scale, on the event loop:
Iris must check and hash every frame before it may call a provider), sends the frame as a data URL
to the provider and answers a small JSON: the two HTTP hops and the one decode, with no auth,
limits, cascade or storage. Iris's overhead divided by this one, measured in the same run, is the
comparison that holds across machines.

    .venv/bin/python -m bench.vision_floor PORT PROVIDER_URL"""

from __future__ import annotations

import base64
import sys
import time

import aiohttp
import orjson
import simplejpeg
from aiohttp import web
from PIL import Image

FILE_HEAD = b'filename="frame_image.jpg"\r\n\r\n'


def dhash(data: bytes) -> bytes:
    pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_width=36, min_height=32)
    image = Image.frombuffer("L", (pixels.shape[1], pixels.shape[0]), pixels.tobytes(), "raw", "L", 0, 1)
    return image.resize((9, 8), Image.Resampling.BOX).tobytes()


def relay(provider: str) -> web.Application:
    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        async with aiohttp.ClientSession() as session:
            app["session"] = session
            yield

    async def process(request: web.Request) -> web.Response:
        started = time.perf_counter()
        body = await request.read()
        start = body.index(FILE_HEAD) + len(FILE_HEAD)
        frame = body[start:body.rindex(b"\r\n--")]
        dhash(frame)
        url = "data:image/jpeg;base64," + base64.b64encode(frame).decode()
        payload = {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]}]}
        async with request.app["session"].post(f"{provider}/v1/chat/completions", data=orjson.dumps(payload),
                                               headers={"Content-Type": "application/json"}) as resp:
            reply = orjson.loads(await resp.read())
        answer = reply["choices"][0]["message"]["content"]
        return web.json_response({"answer": answer, "success": True,
                                  "processing_time": round(time.perf_counter() - started, 3)})

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"success": True, "status": "healthy"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/process", process)
    app.router.add_post("/auth-{key}", ok)
    app.router.add_get("/health", ok)
    return app


if __name__ == "__main__":
    import uvloop

    web.run_app(relay(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
                loop=uvloop.new_event_loop())
