"""Running the server: one process, or WORKERS processes sharing the port with SO_REUSEPORT.

Workers share the disk cache, single flight (a byte-range lock on a file in the cache directory)
and cache deletes (a shared generation counter), so they behave as one server.

Starting and stopping:
- The address is claimed before anything starts (``proxy.web.listen``): a port in use (by another
  program or another Iris) or a ``HOST`` that is not this machine's stops Iris at once with one line
  naming the setting and the fix, and exit status 1.
- A worker says it is listening only once its port is bound. A start-up error it cannot get past
  by trying again (a ``ConfigError``: the port, a master secret that does not open the database...)
  ends it with ``EXIT_CANNOT_START``, and the supervisor stops everything with status 1.
- A worker that dies while starting is restarted after a pause that doubles each time
  (``BACKOFF_FIRST`` up to ``BACKOFF_MAX``); after ``START_ATTEMPTS`` failed starts in a row the
  supervisor gives up with a message and status 1. One that dies after it was listening is
  restarted the same way (its pause grows only while it keeps dying within ``STABLE`` seconds).
- SIGINT/SIGTERM stop the workers and the supervisor, status 0. Each worker drains first
  (``proxy.web.drain``): ``/readyz`` answers 503, the requests in flight finish within
  SHUTDOWN_GRACE, then its listener closes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

from proxy.app import create_app
from proxy.config import Settings
from proxy.errors import ConfigError
from proxy.imagegen.lane import FastLaneRunner
from proxy.logs import AccessLog, AccessLogger, setup_logging
from proxy.security.credentials import Secrets
from proxy.web.listen import claim_port
from proxy.web.metrics import prepare_multiprocess, worker_exited
from proxy.web.runner import serve_app

log = logging.getLogger(__name__)

EXIT_CANNOT_START = 3  # a worker's status for a start-up error that restarting cannot fix
START_ATTEMPTS = 5
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE = 10.0  # seconds a worker must live for its next death to count as a fresh one


def run_worker(settings: Settings, secrets: Secrets, index: int, shared_port: bool,
               ready: Event | None = None) -> int:
    """Serve until stopped: 0, or ``EXIT_CANNOT_START`` after logging why it could not start."""
    setup_logging(settings.server.log_level, settings.server.log_format)
    server = settings.server

    def listening() -> None:
        log.info("worker %d listening on http://%s:%d", index, server.host, server.port)
        if ready is not None:
            ready.set()

    # an access line is an INFO record, as it always was: LOG_LEVEL=WARNING or ERROR writes none
    logs_access = server.access_log and server.log_level in ("DEBUG", "INFO")
    access = AccessLog(server.log_format, every=server.access_log_interval) if logs_access else None
    try:
        app = create_app(settings, secrets)
        serve_app(
            app, host=server.host, port=server.port, reuse_port=shared_port or None,
            loop_factory=_uvloop(), runner_class=FastLaneRunner, on_listening=listening,
            access_log_class=AccessLogger, access_log=access, grace=server.shutdown_grace,
        )
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_CANNOT_START
    finally:
        if access is not None:
            access.close()  # the lines of the last requests
    return 0


def _worker_main(settings: Settings, secrets: Secrets, index: int, ready: Event) -> None:
    raise SystemExit(run_worker(settings, secrets, index, True, ready))


def _uvloop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
        return None
    return uvloop.new_event_loop


def serve(settings: Settings, secrets: Secrets) -> int:
    """Run Iris until stopped; the process's exit status (0, or 1 when it could not serve)."""
    server = settings.server
    setup_logging(server.log_level, server.log_format)
    workers = server.workers if server.port != 0 else 1
    try:
        _keep_private(settings)
        claim = claim_port(server.host, server.port)
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 1
    with claim:
        if workers == 1:
            return 0 if run_worker(settings, secrets, 0, shared_port=False) == 0 else 1
        return Supervisor(settings, secrets, workers).run()


def _keep_private(settings: Settings) -> None:
    """DATA_DIR and the folders Iris alone keeps data in are its user's alone (0700), also when an
    older version made them 0755 (what is in them was 0644 then)."""
    folders = {"DATA_DIR": settings.server.data_dir, "CACHE_DIR": settings.cache.directory,
               "FRAMES_DIR": settings.accounts.frames_dir}
    for variable, folder in folders.items():
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(variable, f"{folder} cannot be a folder of Iris's ({exc.strerror})",
                              "point it at a folder Iris's user may create and write") from None
        with contextlib.suppress(PermissionError):
            os.chmod(folder, 0o700)


@dataclass
class Worker:
    proc: BaseProcess
    ready: Event
    started: float
    failed_starts: int = 0  # deaths in a row before it was listening
    quick_deaths: int = 0  # deaths in a row within STABLE seconds of its start
    restart_at: float | None = None


class Supervisor:
    def __init__(self, settings: Settings, secrets: Secrets, count: int):
        self.settings = settings
        self.secrets = secrets
        self.count = count
        self.ctx = multiprocessing.get_context("spawn")
        self.workers: dict[int, Worker] = {}
        self.stopping = False

    def start(self, index: int) -> None:
        ready = self.ctx.Event()
        proc = self.ctx.Process(target=_worker_main, args=(self.settings, self.secrets, index, ready),
                                name=f"iris-worker-{index}", daemon=False)
        proc.start()
        old = self.workers.get(index)
        worker = Worker(proc, ready, time.monotonic())
        if old is not None:
            worker.failed_starts, worker.quick_deaths = old.failed_starts, old.quick_deaths
        self.workers[index] = worker

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        prepare_multiprocess(self.settings.server.data_dir)  # workers sum their metrics there
        for index in range(self.count):
            self.start(index)
        log.info("%d workers on http://%s:%d", self.count, self.settings.server.host,
                 self.settings.server.port)
        status = self._watch()
        self._stop(signal.SIGTERM, None)
        for worker in self.workers.values():
            worker.proc.join(timeout=self.settings.server.shutdown_grace + 10)  # each drains first
            if worker.proc.is_alive():
                worker.proc.kill()
        return status

    def _watch(self) -> int:
        while not self.stopping:
            now = time.monotonic()
            for index, worker in list(self.workers.items()):
                if worker.restart_at is not None:
                    if now >= worker.restart_at and not self.stopping:
                        self.start(index)
                    continue
                if worker.proc.is_alive() or self.stopping:
                    continue
                status = self._died(index, worker, now)
                if status is not None:
                    return status
            time.sleep(0.1)
        return 0

    def _died(self, index: int, worker: Worker, now: float) -> int | None:
        """Schedules the restart of a dead worker; the supervisor's exit status when it gives up."""
        code = worker.proc.exitcode
        if worker.proc.pid is not None:
            worker_exited(worker.proc.pid)
        if code == EXIT_CANNOT_START:
            log.error("worker %d cannot start (the reason is logged above): stopping", index)
            return 1
        listened = worker.ready.is_set()
        worker.failed_starts = 0 if listened else worker.failed_starts + 1
        worker.quick_deaths = worker.quick_deaths + 1 if now - worker.started < STABLE else 0
        if worker.failed_starts >= START_ATTEMPTS:
            log.error("worker %d failed to start %d times in a row (last exit status %s): giving up; "
                      "the errors above say why", index, worker.failed_starts, code)
            return 1
        streak = worker.quick_deaths if listened else worker.failed_starts
        pause = min(BACKOFF_FIRST * 2 ** max(streak - 1, 0), BACKOFF_MAX)
        when = "while starting" if not listened else "while serving"
        log.error("worker %d exited with status %s %s; restarting it in %.1f s", index, code, when, pause)
        worker.restart_at = now + pause
        return None

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for worker in self.workers.values():
            if worker.proc.is_alive() and worker.proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.proc.pid, signal.SIGTERM)
