"""Serving an app as aiohttp's ``run_app`` does (one site, signals turned into a graceful stop, the
app's cleanup contexts run on the way out), but with a runner of the caller's choosing: the server
passes the one that puts the image fast lane in front of the app (``proxy.imagegen.lane``).

``IrisRunner`` serves its connections with ``proxy.web.protocol`` under the app's
``CONNECTION_LIMITS`` (header and body deadlines, open connections, errors in the JSON shape)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from typing import Any

from aiohttp import web

from proxy.keys import CONNECTION_LIMITS
from proxy.web.listen import cannot_listen
from proxy.web.protocol import ConnectionLimits, IrisServer

Runner = Callable[..., web.AppRunner]


class IrisRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are ``IrisRequestHandler``s under the app's limits."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return IrisServer.replacing(made, self.app.get(CONNECTION_LIMITS) or ConnectionLimits())


async def _serve(app: web.Application, host: str, port: int, reuse_port: bool | None,
                 runner_class: Runner, on_listening: Callable[[], None] | None,
                 **runner_args: Any) -> None:
    runner = runner_class(app, handle_signals=True, **runner_args)
    try:
        await runner.setup()  # a failure here still closes what the app opened so far
        _freeze_startup_objects()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        except OSError as exc:
            raise cannot_listen(exc, host, port) from None
        if on_listening is not None:
            on_listening()
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
              loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
              runner_class: Runner = web.AppRunner, on_listening: Callable[[], None] | None = None,
              **runner_args: Any) -> None:
    """Serve until SIGINT/SIGTERM. ``on_listening`` is called once the port is bound; a port that
    cannot be bound raises ``ConfigError`` (after the app's cleanup ran)."""
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port, reuse_port, runner_class, on_listening, **runner_args))
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
