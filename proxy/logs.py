"""Logging: plain text or one JSON object a line, and an access log that never shows a key."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, unquote_plus

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
ACCESS_LOGGER = "proxy.access"  # the name the lines carry, as a logger's would
SECRET_PARAMETERS = frozenset({"key", "token", "authcode", "auth_code"})
"""Query parameters whose values are never logged, however their names are spelled."""
_SEPARATORS = re.compile(r"([&;])")
REMEMBERED_PATHS = 4096  # redacted paths an access log keeps, so a hot URL is redacted once


def redact(path_qs: str) -> str:
    """A path and query fit for a log: the key of ``/auth-{key}`` and the values of secret
    parameters replaced by ``***``. Names are compared as a server decodes them (``%6bey``,
    ``KEY``, ``key+``), and ``;`` separates parameters as well as ``&``: whatever some parser
    might read as a key is hidden."""
    path, mark, query = path_qs.partition("?")
    if unquote(path).startswith("/auth-"):  # POST /auth-{key}: the key is the path
        path = "/auth-***"
    if not mark:
        return path
    pieces = _SEPARATORS.split(query)
    for i in range(0, len(pieces), 2):  # the even pieces are parameters, the odd ones separators
        name, equals, _ = pieces[i].partition("=")
        if equals and unquote_plus(name).strip().casefold() in SECRET_PARAMETERS:
            pieces[i] = f"{name}=***"
    return f"{path}?{''.join(pieces)}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"time": round(record.created, 3), "level": record.levelname, "logger": record.name,
                   "message": record.getMessage(), "request_id": getattr(record, "request_id", "-")}
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload).decode()


class RequestIdFilter(logging.Filter):
    """Adds the id of the request being handled (``-`` outside one) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None)
        record.request_id = fields.get("request_id", "-") if fields else REQUEST_ID.get()
        return True


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLog:
    """A worker's access log: one line a request, kept as a tuple when the request ends and written
    with the others every ``every`` seconds (or once ``most`` are waiting), in one write.

    The request path holds no logging machinery: no record, no formatter, no handler lock, no
    write a request. Redaction and formatting happen when the batch is written, off the request
    path. The lines read as the logging module would have written them (``LOG_FORMAT=text``, or
    one JSON object a line with ``json``). ``close`` writes what is left: nothing is lost at a stop."""

    def __init__(self, fmt: str, write: Callable[[str], object] | None = None, *, every: float = 0.1,
                 most: int = 2048):
        self.json = fmt == "json"
        self.write = write or _to_stderr
        self.every = every
        self.most = most
        self.waiting: list[tuple[float, str, str | None, str, str, int, int, float]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._second = (0, "")
        self._paths: dict[str, str] = {}

    def add(self, request: web.BaseRequest, response: web.StreamResponse, time_taken: float) -> None:
        self.waiting.append((time.time(), response.headers.get("X-Request-Id", "-"), request.remote,
                             request.method, request.path_qs, response.status, response.body_length,
                             time_taken))
        if len(self.waiting) >= self.most:
            self.flush()
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.every, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        waiting, self.waiting = self.waiting, []
        if waiting:
            self.write("".join(map(self._line, waiting)))

    close = flush

    def _line(self, entry: tuple[float, str, str | None, str, str, int, int, float]) -> str:
        at, rid, remote, method, path_qs, status, size, taken = entry
        path, ms = self._redacted(path_qs), int(taken * 100_000 + 0.5) / 100  # round(x, 2), cheaper
        if self.json:
            return orjson.dumps({
                "time": int(at * 1000 + 0.5) / 1000, "level": "INFO", "logger": ACCESS_LOGGER,
                "message": f"{rid} {remote} {method} {path} {status} {size} {ms}ms",
                "request_id": rid, "remote": remote, "method": method, "path": path, "status": status,
                "bytes": size, "ms": ms}).decode() + "\n"
        return (f"{self._asctime(at)} INFO {ACCESS_LOGGER} [{rid}]: "
                f"{rid} {remote} {method} {path} {status} {size} {ms}ms\n")

    def _redacted(self, path_qs: str) -> str:
        """``redact(path_qs)``, remembered: the same few URLs come back again and again."""
        path = self._paths.get(path_qs)
        if path is None:
            if len(self._paths) >= REMEMBERED_PATHS:
                self._paths.clear()
            path = self._paths[path_qs] = redact(path_qs)
        return path

    def _asctime(self, at: float) -> str:
        """``logging``'s default ``asctime`` (local time, milliseconds), the seconds part made once."""
        second = int(at)
        if self._second[0] != second:
            self._second = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
        return f"{self._second[1]},{int((at - second) * 1000):03d}"


def _to_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access-logger hook, handing each finished request to the worker's ``AccessLog``
    (given to the server as its ``access_log``)."""

    def __init__(self, logger: Any, log_format: str) -> None:
        super().__init__(logger, log_format)
        self.batch: AccessLog = logger

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_taken: float) -> None:
        self.batch.add(request, response, time_taken)

    @property
    def enabled(self) -> bool:
        return True
