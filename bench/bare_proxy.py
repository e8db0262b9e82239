"""A bare aiohttp reverse proxy: the floor under a miss through any aiohttp server.

    python -m bench.bare_proxy PORT BACKEND_URL

It passes ``POST /v1/images/generations`` to the backend with one kept-alive ``ClientSession``
and answers with the backend's bytes: one more HTTP hop through aiohttp's server and client, on
uvloop as Iris runs, with none of Iris's own steps. ``bench.image_miss`` times it beside Iris and
nginx, interleaved, in the same run."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bench.harness import REPO, STARTUP, free_port, stop_process, wait_http

BACKEND = web.AppKey("backend", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)
PATH = "/v1/images/generations"


async def forward(request: web.Request) -> web.Response:
    async with request.app[SESSION].post(request.app[BACKEND] + PATH, data=await request.read(),
                                         headers={"Content-Type": request.content_type}) as upstream:
        body = await upstream.read()
        return web.Response(body=body, status=upstream.status, content_type=upstream.content_type)


def create_app(backend_url: str) -> web.Application:
    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as opened:
            app[SESSION] = opened
            yield

    app = web.Application()
    app[BACKEND] = backend_url
    app.cleanup_ctx.append(session)
    app.router.add_post(PATH, forward)
    return app


class BareProxy:
    """``python -m bench.bare_proxy`` on a free port, with the benchmark's own interpreter."""

    def __init__(self, backend_url: str):
        self.backend_url = backend_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.bare_proxy", str(self.port),
                                      self.backend_url], cwd=REPO)

    async def start(self) -> None:
        self.launch()
        async with asyncio.timeout(STARTUP):
            await wait_http(f"{self.url}/")  # a 404: it listens

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM)


def main(argv: list[str]) -> None:
    port, backend_url = int(argv[0]), argv[1]
    try:
        import uvloop  # Iris runs on it when it is installed
    except ImportError:
        loop = None
    else:
        loop = uvloop.new_event_loop()
    web.run_app(create_app(backend_url), host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main(sys.argv[1:])
