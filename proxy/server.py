"""Running the server: one process, or WORKERS processes sharing the port with SO_REUSEPORT.

Workers share the disk cache, single flight (a byte-range lock on a file in the cache directory)
and cache deletes (a shared generation counter), so they behave as one server. The supervisor
restarts a worker that dies and stops them all on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from proxy.app import create_app
from proxy.config import Settings
from proxy.imagegen.lane import FastLaneRunner
from proxy.logs import AccessLogger, setup_logging
from proxy.security.credentials import Secrets
from proxy.web.metrics import prepare_multiprocess, worker_exited
from proxy.web.runner import serve_app

log = logging.getLogger(__name__)


def run_worker(settings: Settings, secrets: Secrets, index: int, shared_port: bool) -> None:
    setup_logging(settings.server.log_level, settings.server.log_format)
    app = create_app(settings, secrets)
    server = settings.server
    log.info("worker %d listening on http://%s:%d", index, server.host, server.port)
    serve_app(
        app, host=server.host, port=server.port, reuse_port=shared_port or None,
        loop_factory=_uvloop(), runner_class=FastLaneRunner,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("proxy.access") if server.access_log else None,
        shutdown_timeout=5.0,
    )


def _uvloop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
        return None
    return uvloop.new_event_loop


def serve(settings: Settings, secrets: Secrets) -> int:
    workers = settings.server.workers if settings.server.port != 0 else 1
    if workers == 1:
        run_worker(settings, secrets, 0, shared_port=False)
        return 0
    return Supervisor(settings, secrets, workers).run()


class Supervisor:
    def __init__(self, settings: Settings, secrets: Secrets, count: int):
        self.settings = settings
        self.secrets = secrets
        self.count = count
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: dict[int, BaseProcess] = {}
        self.stopping = False

    def start(self, index: int) -> None:
        proc = self.ctx.Process(target=run_worker, args=(self.settings, self.secrets, index, True),
                                name=f"iris-worker-{index}", daemon=False)
        proc.start()
        self.procs[index] = proc

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        prepare_multiprocess(self.settings.server.data_dir)  # workers sum their metrics there
        for index in range(self.count):
            self.start(index)
        log.info("%d workers on http://%s:%d", self.count, self.settings.server.host,
                 self.settings.server.port)
        while not self.stopping:
            for index, proc in list(self.procs.items()):
                if not proc.is_alive() and not self.stopping:
                    log.error("worker %d exited with %s; restarting it", index, proc.exitcode)
                    if proc.pid is not None:
                        worker_exited(proc.pid)
                    time.sleep(0.5)
                    self.start(index)
            time.sleep(0.2)
        for proc in self.procs.values():
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        return 0

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
