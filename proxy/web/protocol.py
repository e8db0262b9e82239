"""The HTTP connection as Iris runs it: aiohttp's ``RequestHandler`` with the bounds a server facing
the internet needs, and its own errors in Iris's shape.

- **Headers in time** (``header_timeout``): a request's line and headers must be complete within
  this many seconds of the connection opening, or of the first byte of a later request; a client
  trickling header lines (slowloris) is cut off. Between requests, an idle connection is closed
  after aiohttp's ``keepalive_timeout``.
- **Bodies in time** (``body_timeout``): a body still arriving after this many seconds fails its
  read with 408, and the connection is closed after the answer.
- **Open connections** (``max_connections`` per worker): a connection beyond the bound closes the
  oldest one that is waiting for a request (an idle keep-alive or a slow sender) to make room; when
  every connection is busy with a request, the newcomer gets a 503 and is closed.
- **Requests the parser refuses** (a raw non-ASCII byte in the path, a malformed header): the JSON
  error shape (no body for HEAD) and one log line, where aiohttp answers in plain text, echoing the
  request line (a key in its query string included), and logs a traceback.

aiohttp has no public hook for these, so ``IrisServer`` makes ``IrisRequestHandler`` connections;
``tests/test_dependency_internals.py`` checks the private attributes used here still exist."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from proxy.errors import RequestTimeout
from proxy.web.responses import NO_STORE, error_response

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 413: "payload_too_large", 431: "headers_too_large",
               500: "internal_error", 504: "deadline_exceeded"}
_FULL = orjson.dumps({"error": {"code": "unavailable",
                                "message": "the server has too many open connections; try again"}})
FULL_ANSWER = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               b"Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\n"
               b"Content-Length: " + str(len(_FULL)).encode() + b"\r\n\r\n" + _FULL)
WARN_EVERY = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 15.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_connections: int = 1024


class IrisServer(web.Server):
    """aiohttp's ``Server`` making ``IrisRequestHandler`` connections under ``limits``."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.refusals = 0
        self.warned_at = -WARN_EVERY

    @classmethod
    def replacing(cls, made: web.Server, limits: ConnectionLimits) -> IrisServer:
        """The same server as ``made`` (its handler, request factory and connection settings)."""
        return cls(made.request_handler, limits=limits, request_factory=made.request_factory,
                   handler_cancellation=made.handler_cancellation, loop=made._loop, **made._kwargs)

    def __call__(self) -> IrisRequestHandler:
        kwargs = {**self._kwargs, "keepalive_timeout": self.limits.keepalive_timeout}
        return IrisRequestHandler(self, limits=self.limits, loop=self._loop, **kwargs)

    def make_room(self, newcomer: RequestHandler) -> bool:
        """Close the oldest connection waiting for a request; False when every one is busy."""
        for handler in self.connections:
            if handler is not newcomer and isinstance(handler, IrisRequestHandler) and handler.waiting:
                log.debug("closed a connection waiting for a request to make room for a new one")
                handler.force_close()
                return True
        return False

    def refused(self) -> None:
        """Counts a refused connection; a warning at most every ``WARN_EVERY`` seconds."""
        self.refusals += 1
        now = self._loop.time()
        if now - self.warned_at >= WARN_EVERY:
            self.warned_at = now
            log.warning("refused %d connection(s): %d are open and all are busy (MAX_CONNECTIONS)",
                        self.refusals, len(self.connections) - 1)
            self.refusals = 0


class IrisRequestHandler(RequestHandler):
    __slots__ = ("_body_timer", "_header_timer", "_iris_server", "_limits", "_refused_start", "_start")

    def __init__(self, manager: IrisServer, *, limits: ConnectionLimits, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._iris_server = manager
        self._limits = limits
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._start: bytes | None = None  # the first bytes of the request being received
        self._refused_start: bytes | None = None  # ... of the one the parser refused

    @property
    def waiting(self) -> bool:
        """Waiting for a request (idle, or receiving its headers), not handling one."""
        return self._waiter is not None and not self._messages

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self._iris_server
        if len(server.connections) > self._limits.max_connections and not server.make_room(self):
            server.refused()
            if self.transport is not None:
                self.transport.write(FULL_ANSWER)
            self.force_close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data and self._start is None and self._body_timer is None:
            self._start = bytes(data[:16])  # a new request begins
            if self._header_timer is None:
                self._arm_header_timer()
        before = len(self._messages)
        super().data_received(data)
        added = len(self._messages) - before
        if added <= 0:
            return
        for message, payload in list(self._messages)[-added:]:
            if not isinstance(message, RawRequestMessage):
                self._refused_start = self._start
            elif not payload.is_eof():
                self._arm_body_timer(payload)
        self._start = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _arm_header_timer(self) -> None:
        self._header_timer = self._loop.call_later(self._limits.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.waiting:
            log.info("closed a connection that sent no complete request headers within %g s "
                     "(HEADER_TIMEOUT)", self._limits.header_timeout)
            self.force_close()

    def _arm_body_timer(self, payload: StreamReader) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self._loop.call_later(self._limits.body_timeout, self._body_late, payload)
        payload.on_eof(self._body_done)

    def _body_done(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self, payload: StreamReader) -> None:
        self._body_timer = None
        if payload.is_eof() or payload.exception() is not None:
            return
        log.info("a request body did not arrive within %g s (BODY_TIMEOUT)", self._limits.body_timeout)
        self._lingering_time = 0.0  # aiohttp would otherwise read the rest at the client's pace
        payload.set_exception(RequestTimeout(
            f"the request body did not arrive within {self._limits.body_timeout:g} s", code="body_timeout"))

    def _disarm(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's own answer for a request it could not parse, or for a handler that failed
        outside the errors middleware: the JSON error shape, never a trace or an echo."""
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was partly sent: no error answer can follow")
        if status >= 500:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
            text = "an internal error occurred; it has been logged"
        else:
            text = f"the request could not be read: {_reason(exc)}"
            log.info("refused a malformed request from %s: %s", request.remote, _reason(exc))
        head = request.method == hdrs.METH_HEAD or (
            request.method not in hdrs.METH_ALL and (self._refused_start or b"").startswith(b"HEAD "))
        response = error_response(status, _HTTP_CODES.get(status, "http_error"), text)
        if head:
            response = web.Response(status=status, headers={"Content-Type": "application/json",
                                                            "Cache-Control": NO_STORE})
        response.force_close()
        return response


def _reason(exc: BaseException | None) -> str:
    """What the parser found wrong, without the bytes it quotes (a key may be among them)."""
    text = exc.message if isinstance(exc, HttpProcessingError) and isinstance(exc.message, str) else ""
    reason = text.split(":", 1)[0].split("\n", 1)[0].strip()
    return "".join(c for c in reason if c.isprintable() and c.isascii())[:120] or "malformed request"
