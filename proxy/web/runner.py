"""Serving an app: aiohttp's ``run_app``, with the image fast lane in front of the app.

``run_app`` builds its runner inside; this module builds its own (``FastLaneRunner``, which the
tests use too, so they exercise the same request path) and otherwise does what ``run_app`` does:
one site, signals turned into a graceful stop, the app's cleanup contexts run on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from typing import Any

from aiohttp import web

from proxy.imagegen.lane import FastLane


class FastLaneRunner(web.AppRunner):
    async def setup(self) -> None:
        await super().setup()
        server = self.server
        assert server is not None
        server.request_handler = FastLane(self.app, server.request_handler)  # before any connection


async def _serve(app: web.Application, host: str, port: int, reuse_port: bool | None,
                 **runner_args: Any) -> None:
    runner = FastLaneRunner(app, handle_signals=True, **runner_args)
    await runner.setup()
    _freeze_startup_objects()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        await asyncio.Event().wait()  # until SIGINT/SIGTERM raise GracefulExit
    finally:
        await runner.cleanup()


def _freeze_startup_objects() -> None:
    """Everything built so far (modules, settings, the app and its parts) lives as long as the
    process: moved out of the collector's reach, a full collection no longer walks all of it
    (one took 26 ms in the middle of a glasses frame before)."""
    gc.collect()
    gc.freeze()


def serve_app(app: web.Application, *, host: str, port: int, reuse_port: bool | None,
              loop_factory: Callable[[], asyncio.AbstractEventLoop] | None, **runner_args: Any) -> None:
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port, reuse_port, **runner_args))
    try:
        with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
            loop.run_until_complete(main)
    finally:
        if not main.done():  # the stop arrived as an exception out of the loop: let cleanup run
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        _cancel_rest(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


def _cancel_rest(loop: asyncio.AbstractEventLoop) -> None:
    rest = asyncio.all_tasks(loop)
    for task in rest:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
