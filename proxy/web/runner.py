"""Serving an app as aiohttp's ``run_app`` does (one site, the app's cleanup contexts run on the way
out), but with a runner of the caller's choosing - the server passes the one that puts the image
fast lane in front of the app (``proxy.imagegen.lane``) - and a drain on SIGTERM/SIGINT:
``/readyz`` answers 503 at once, requests in flight finish (SHUTDOWN_GRACE at most), then the
listener closes and the worker exits 0, each step logged.

``IrisRunner`` serves its connections with ``proxy.web.protocol`` under the app's
``CONNECTION_LIMITS`` (header and body deadlines, open connections, errors in the JSON shape)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from proxy.keys import CONNECTION_LIMITS, DRAIN
from proxy.web.drain import Drain
from proxy.web.listen import cannot_listen
from proxy.web.protocol import ConnectionLimits, IrisServer

Runner = Callable[..., web.AppRunner]
CUT_AFTER = 1.0  # after the drain: seconds a request still running gets before it is cancelled
log = logging.getLogger(__name__)


class IrisRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are ``IrisRequestHandler``s under the app's limits."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return IrisServer.replacing(made, self.app.get(CONNECTION_LIMITS) or ConnectionLimits())


async def _serve(app: web.Application, host: str, port: int, reuse_port: bool | None,
                 runner_class: Runner, on_listening: Callable[[], None] | None, grace: float,
                 **runner_args: Any) -> None:
    runner = runner_class(app, shutdown_timeout=CUT_AFTER, **runner_args)
    try:
        await runner.setup()  # a failure here still closes what the app opened so far
        _freeze_startup_objects()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        except OSError as exc:
            raise cannot_listen(exc, host, port) from None
        if on_listening is not None:
            on_listening()
        await _until_stopped()
        await _drain(app[DRAIN], grace)
    finally:
        await runner.cleanup()  # the listener closes; what is still running gets CUT_AFTER seconds
    log.info("stopped")


async def _until_stopped() -> None:
    """Until SIGTERM or SIGINT. The handlers stay for the rest of the process's life, so a second
    signal (the supervisor's, a second Ctrl-C) cannot kill a worker that is draining."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _drain(drain: Drain, grace: float) -> None:
    """``/readyz`` answers 503 at once; the requests in flight (and any that still arrive) are
    answered for at most ``grace`` seconds; then the runner's cleanup closes the listener."""
    drain.draining = True
    log.info("stopping: /readyz answers 503; %d request(s) in flight get up to %g s (SHUTDOWN_GRACE)",
             drain.in_flight, grace)
    if await drain.finished(grace):
        log.info("stopping: no request in flight; closing the listener (new connections are refused)")
    else:
        log.warning("stopping: SHUTDOWN_GRACE is over with %d request(s) still in flight: closing the "
                    "listener and cutting them in %g s", drain.in_flight, CUT_AFTER)


def _freeze_startup_objects() -> None:
    """Everything built so far (modules, settings, the app and its parts) lives as long as the
    process: moved out of the collector's reach, a full collection no longer walks all of it
    (one took 26 ms in the middle of a glasses frame before)."""
    gc.collect()
    gc.freeze()


def serve_app(app: web.Application, *, host: str, port: int, reuse_port: bool | None,
              loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
              runner_class: Runner = web.AppRunner, on_listening: Callable[[], None] | None = None,
              grace: float = 30.0, **runner_args: Any) -> None:
    """Serve until SIGINT/SIGTERM, then drain for at most ``grace`` seconds (``proxy.web.drain``).
    ``on_listening`` is called once the port is bound; a port that cannot be bound raises
    ``ConfigError`` (after the app's cleanup ran)."""
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port, reuse_port, runner_class, on_listening, grace,
                                   **runner_args))
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
