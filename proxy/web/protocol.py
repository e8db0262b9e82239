"""The HTTP connection as Iris runs it: aiohttp's ``RequestHandler`` with the bounds a server facing
the internet needs, and its own errors in Iris's shape.

- **Headers in time** (``header_timeout``): a request's line and headers must be complete within
  this many seconds of the connection opening, or of the first byte of a later request; a client
  trickling header lines (slowloris) is cut off. Between requests, an idle connection is closed
  after aiohttp's ``keepalive_timeout``.
- **Bodies in time** (``body_timeout``): a body still arriving after this many seconds fails its
  read with 408, and the connection is closed after the answer.
- **Answers taken in time** (``send_timeout``, nginx's ``send_timeout``): while an answer's bytes
  wait for the client (the transport still holds some after an answer, or holds so many that
  writing is paused, or a send around the transport, sendfile, waits for the socket), the
  connection's one send timer looks every quarter of the timeout whether the client took any; when
  it took none for the whole timeout, the connection is reset: what it still held dropped, a
  stored file being sent released (its send wakes at once), its slot freed, one INFO line. The time
  counts between two writes, not for the whole answer: a slow but steady reader is never cut. No
  timer runs while nothing waits: an answer the socket took whole arms none.
- **Open connections** (``max_connections`` per worker): a connection beyond the bound closes the
  oldest one that is waiting for a request (an idle keep-alive or a slow sender) to make room; when
  every connection is busy with a request, the newcomer gets a 503 and is closed.
- **Requests the parser refuses** (a raw non-ASCII byte in the path, a malformed header): the JSON
  error shape (no body for HEAD) and one log line, where aiohttp answers in plain text, echoing the
  request line (a key in its query string included), and logs a traceback.
- **Answers at once** (``IrisServer.shortcut``): a request read whole, alone, on a connection that
  was idle, may be answered right where it was parsed (the image fast lane answers cache hits so),
  without the connection's task, a response object or their loop turns. aiohttp's own parser has
  read it, as every request; a request the shortcut declines goes on exactly as if it had not
  looked. The answer keeps the connection alive, is counted and logged as any other. A request
  the shortcut answered is remembered parsed, by its exact bytes (``proxy.web.parsed``): the same
  bytes again, on a connection whose every chunk so far was one whole request (so its parser is
  between requests), are answered with that message without being parsed again.

aiohttp has no public hook for these, so ``IrisServer`` makes ``IrisRequestHandler`` connections;
``tests/test_dependency_internals.py`` checks the private attributes used here still exist."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler

from proxy.errors import RequestTimeout
from proxy.web.parsed import ParsedRequests, whole_request
from proxy.web.responses import NO_STORE, error_response
from proxy.web.view import WireRequest, peer_address

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 413: "payload_too_large", 431: "headers_too_large",
               500: "internal_error", 504: "deadline_exceeded"}
_FULL = orjson.dumps({"error": {"code": "unavailable",
                                "message": "the server has too many open connections; try again"}})
FULL_ANSWER = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               b"Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\n"
               b"Content-Length: " + str(len(_FULL)).encode() + b"\r\n\r\n" + _FULL)
WARN_EVERY = 10.0
SEND_LOOKS = 4  # looks at a waiting answer per SEND_TIMEOUT: cut at most a quarter of it late
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: a close drops what the kernel holds and resets


class Answered(NamedTuple):  # a tuple: one is built for every answer made at once
    """What a shortcut wrote, as the access log reads a response: its status, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body_length: int


Shortcut = Callable[[WireRequest], Answered | None]  # writes the whole answer, or None: declined


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 15.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_connections: int = 1024
    send_timeout: float = 60.0


class IrisServer(web.Server):
    """aiohttp's ``Server`` making ``IrisRequestHandler`` connections under ``limits``."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.refusals = 0
        self.warned_at = -WARN_EVERY
        self.shortcut: Shortcut | None = None
        self.parsed = ParsedRequests()  # whole requests the shortcut answered, by their bytes

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
    __slots__ = ("_around", "_around_waits", "_body_timer", "_consumed", "_header_deadline", "_header_timer",
                 "_iris_server", "_limits", "_peer", "_refused_start", "_send_looks", "_send_mark",
                 "_send_timer", "_sock", "_start", "_transport", "_whole")

    def __init__(self, manager: IrisServer, *, limits: ConnectionLimits, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._iris_server = manager
        self._limits = limits
        self._header_deadline: float | None = None  # when the request being received must have its headers
        self._header_timer: asyncio.TimerHandle | None = None  # at most one, moved on as deadlines move
        self._body_timer: asyncio.TimerHandle | None = None
        self._start: bytes | None = None  # the first bytes of the request being received
        self._refused_start: bytes | None = None  # ... of the one the parser refused
        self._peer: str | None = None  # the peer's address, for requests answered at once
        self._sock: socket.socket | None = None  # and the socket sendfile may write to, when it may
        self._transport: asyncio.Transport | None = None  # kept while closing (aiohttp forgets it at once)
        self._send_timer: asyncio.TimerHandle | None = None  # runs only while an answer's bytes wait
        self._send_mark: tuple[int, int] = (0, 0)  # what waited at the last look: held, moved around
        self._send_looks = 0  # looks in a row that found the client took nothing
        self._around = 0  # bytes written to the socket around the transport (sendfile)
        self._around_waits = False  # a send around the transport waits for the socket
        self._whole = True  # every chunk read so far was one whole request: the parser is between requests
        # aiohttp >= 3.14 counts the messages its parser queued; one answered at once is taken off
        parser = getattr(self, "_parser", None)
        self._consumed: Callable[[], None] | None = getattr(parser, "message_consumed", None)

    @property
    def sock(self) -> socket.socket | None:
        """The connection's plain socket (None under TLS, or once the connection is lost)."""
        return self._sock

    @property
    def waiting(self) -> bool:
        """Waiting for a request (idle, or receiving its headers), not handling one."""
        return self._waiter is not None and not self._messages

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._transport = self.transport
        server = self._iris_server
        if len(server.connections) > self._limits.max_connections and not server.make_room(self):
            server.refused()
            if self.transport is not None:
                self.transport.write(FULL_ANSWER)
            self.force_close()
            return
        self._peer = peer_address(self.peername)
        self._sock = plain_socket(transport)
        self._expect_headers()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        self._disarm()
        release(self._sock)
        self._sock = None
        super().connection_lost(exc)

    def force_close(self) -> None:
        super().force_close()
        self._answered()  # a close waits for what the transport holds: only as long as the client takes it

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._watch_sending()

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered()

    def data_received(self, data: bytes) -> None:
        waiter, shortcut = self._waiter, self._iris_server.shortcut
        if shortcut is None or waiter is None or waiter.done() or self._messages or self._start is not None:
            return self._receive(data)  # not idle between requests: aiohttp's way, in order
        if self._whole and not (self._close or self._force_close):  # (aiohttp reads nothing once closing)
            parsed = self._iris_server.parsed
            known = parsed.get(data)
            if known is not None and self._answer_at_once(shortcut, known, EMPTY_PAYLOAD):
                parsed.used()
                self._request_count += 1
                self._header_deadline = None
                return
        self._waiter = None  # aiohttp's wake-up is held until the shortcut has had its look
        try:
            self._receive(data)
        finally:
            self._waiter = waiter
        messages = self._messages
        if len(messages) == 1:
            message, payload = messages[0]
            if self._answer_at_once(shortcut, message, payload):
                messages.popleft()
                if self._consumed is not None:
                    self._consumed()
                if self._whole and isinstance(message, RawRequestMessage):
                    self._iris_server.parsed.remember(data, message)
                return
        if messages:
            waiter.set_result(None)

    def _answer_at_once(self, shortcut: Shortcut, message: Any, payload: Any) -> bool:
        """``message`` answered by ``shortcut``; False (nothing done) if declined."""
        transport = self.transport
        if (not isinstance(message, RawRequestMessage) or payload is not EMPTY_PAYLOAD
                or message.should_close or message.version != HttpVersion11 or transport is None
                or not message.path.startswith("/")  # origin form only
                or transport.get_write_buffer_size()):  # the last answer still going out: wait for it
            return False
        loop = self._loop
        started = loop.time()
        request = WireRequest(message, transport, self._peer, self._sock)
        answered = shortcut(request)
        if answered is None:
            return False
        self._manager.requests_count += 1  # type: ignore[union-attr]
        if self._send_timer is None and transport.get_write_buffer_size():
            self._watch_sending()  # the socket did not take it all
        self._next_keepalive_close_time = started + self._keepalive_timeout
        if self._keepalive_handle is None:
            self._keepalive_handle = loop.call_at(self._next_keepalive_close_time, self._process_keepalive)
        if self.access_logger is not None and self._logging_enabled:
            # read as the request and the response it logs (method, path, peer; status, headers, size)
            self.access_logger.log(request, answered, loop.time() - started)  # type: ignore[arg-type]
        return True

    def _receive(self, data: bytes) -> None:
        if data and self._start is None and self._body_timer is None:
            self._start = data[:16]  # a new request begins
            if self._header_deadline is None:  # (the first one's counts from the connection's opening)
                self._expect_headers()
        messages = self._messages
        before = len(messages)
        super().data_received(data)
        after = len(messages)
        if after == before:
            self._whole = False
            return
        for i in range(before, after):
            message, payload = messages[i]
            if not isinstance(message, RawRequestMessage):
                self._refused_start = self._start
            elif not payload.is_eof():
                self._arm_body_timer(payload)
        self._start = self._header_deadline = None
        if self._whole:
            self._whole = after - before == 1 and whole_request(data, *messages[before])

    def _expect_headers(self) -> None:
        """A request's headers are due within HEADER_TIMEOUT from now. The connection's one timer
        is not moved for each request (a timer armed and cancelled a request was 5 % of a worker's
        Python time on small hits): when it fires, it waits on for a later deadline, or does nothing."""
        self._header_deadline = deadline = self._loop.time() + self._limits.header_timeout
        if self._header_timer is None:
            self._header_timer = self._loop.call_at(deadline, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None:
            return  # every request so far came whole; the next one arms it again
        if self._loop.time() < deadline:
            self._header_timer = self._loop.call_at(deadline, self._headers_late)
            return
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

    def wrote_around(self, count: int) -> None:
        """``count`` bytes written to the socket around the transport (sendfile): taken by the client."""
        self._around += count

    def waits_around(self, waits: bool) -> None:
        """A send around the transport waits for the socket (``waits``), or no longer does."""
        self._around_waits = waits
        if waits and self._send_timer is None:
            self._watch_sending()

    def _answered(self) -> None:
        """After an answer (or a close): what the socket did not take yet is watched."""
        transport = self._transport
        if self._send_timer is None and transport is not None and transport.get_write_buffer_size():
            self._watch_sending()

    def _watch_sending(self) -> None:
        """An answer's bytes wait for the client: the connection's one send timer starts, and looks
        every quarter of SEND_TIMEOUT until nothing waits (cheaper than a timer moved on every write)."""
        transport = self._transport
        if transport is None:
            return
        self._send_mark = (transport.get_write_buffer_size(), self._around)
        self._send_looks = 0
        self._look_later()

    def _look_later(self) -> None:
        step = self._limits.send_timeout / SEND_LOOKS
        self._send_timer = self._loop.call_later(step, self._look_at_sending)

    def _look_at_sending(self) -> None:
        self._send_timer = None
        transport = self._transport
        if transport is None:
            return
        held = transport.get_write_buffer_size()
        if not (held or self._paused or self._around_waits):
            return  # all taken: no timer until an answer's bytes wait again
        mark = (held, self._around)
        if mark != self._send_mark:  # the client took some (or the answer wrote more): time starts again
            self._send_mark, self._send_looks = mark, 0
        else:
            self._send_looks += 1
            if self._send_looks >= SEND_LOOKS:
                return self._cut_off(transport, held)
        self._look_later()

    def _cut_off(self, transport: asyncio.Transport, held: int) -> None:
        log.info("reset the connection of %s: it took none of its answer for %g s (SEND_TIMEOUT); "
                 "%d buffered bytes dropped", self._peer or "a client", self._limits.send_timeout, held)
        reset(self._sock, transport)
        transport.abort()

    def _disarm(self) -> None:
        for timer in (self._header_timer, self._body_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = self._send_timer = None

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


def plain_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """A socket object over the transport's own descriptor, if it is a plain socket (no TLS over
    it): not a copy (a copy would double the descriptors a worker holds) and not the loop's own
    object (uvloop's builds a socket object and asks the kernel for its name on every option set).
    ``release`` it when the connection is lost, before the loop closes the descriptor."""
    if transport.get_extra_info("sslcontext") is not None:
        return None
    loops = transport.get_extra_info("socket")
    if loops is None:
        return None
    return socket.socket(loops.family, loops.type, loops.proto, fileno=loops.fileno())


def socket_for(request: web.BaseRequest) -> socket.socket | None:
    """The plain socket of the connection ``request`` came on: the one an Iris connection made
    once (``plain_socket``), else the loop's own (a connection of another server's making)."""
    protocol = request.protocol
    if isinstance(protocol, IrisRequestHandler):
        return protocol.sock
    transport = request.transport
    if transport is None or transport.is_closing() or transport.get_extra_info("sslcontext") is not None:
        return None
    sock: socket.socket | None = transport.get_extra_info("socket")
    return sock


def reset(sock: socket.socket | None, transport: asyncio.Transport) -> None:
    """Before ``transport.abort()``: its close resets the connection, dropping what the kernel still
    holds for the peer (nginx's ``reset_timedout_connection``), and a send waiting on a duplicate of
    the socket's descriptor (``proxy.web.sendfile``) wakes at once to fail. ``sock``: the
    connection's ``plain_socket``, None under TLS (where no such send runs)."""
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            sock.shutdown(socket.SHUT_RDWR)
            return
        loops = transport.get_extra_info("socket")
        if loops is not None:
            loops.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    except OSError:  # the connection is gone already
        return


def release(sock: socket.socket | None) -> None:
    """Lets go of a ``plain_socket`` without closing the descriptor (the loop closes it)."""
    if sock is not None:
        sock.detach()


def _reason(exc: BaseException | None) -> str:
    """What the parser found wrong, without the bytes it quotes (a key may be among them)."""
    text = exc.message if isinstance(exc, HttpProcessingError) and isinstance(exc.message, str) else ""
    reason = text.split(":", 1)[0].split("\n", 1)[0].strip()
    return "".join(c for c in reason if c.isprintable() and c.isascii())[:120] or "malformed request"
