"""Claiming the listening address before any worker starts, and saying in one line why it cannot be.

The workers listen with ``SO_REUSEPORT``, so that the kernel spreads connections over them. The
same option would let a second Iris started on the same port join the first without a word, the
kernel then splitting requests between two configurations. So before its workers start, Iris:

1. takes a lock named after the address: an abstract Unix socket ``iris-proxy HOST:PORT``, held
   while Iris runs and dropped by the kernel when it exits (Linux; there is no such namespace
   elsewhere and this step is skipped), so two Iris starting at once cannot both go on;
2. binds the address once without ``SO_REUSEPORT``: that fails while anything listens there,
   another program or another Iris's workers, and for a ``HOST`` that is not this machine's.

Either failure is a ``ConfigError`` naming ``PORT`` or ``HOST`` and the fix."""

from __future__ import annotations

import errno
import socket
import sys
from types import TracebackType
from typing import Any

from proxy.errors import ConfigError

ABSTRACT_NAMESPACE = sys.platform.startswith("linux")


class PortClaim:
    """Held while Iris serves ``host:port``; ``release`` (or leaving the ``with``) lets it go."""

    def __init__(self, lock: socket.socket | None):
        self.lock = lock

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def __enter__(self) -> PortClaim:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def claim_port(host: str, port: int) -> PortClaim:
    """The claim on ``host:port``, or ``ConfigError`` saying why it cannot be had."""
    lock = _lock(host, port)
    try:
        for family, kind, proto, _, address in _addresses(host, port):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the workers do
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    probe.bind(address)
                except OSError as exc:
                    raise cannot_listen(exc, host, port) from None
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    return PortClaim(lock)


def _lock(host: str, port: int) -> socket.socket | None:
    if not ABSTRACT_NAMESPACE or port == 0:
        return None
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0iris-proxy {host}:{port}")
    except OSError as exc:
        lock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError("PORT", f"another Iris is already serving {host}:{port} (its workers and "
                              "this one's would share the port and split the requests between them)",
                              "stop the other one, or give this one another PORT") from None
        return None  # no abstract namespace here after all: the bind below still guards the port
    return lock


def _addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    try:
        return socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError("HOST", f"{host!r} is not an address Iris can listen on ({_plain(exc)})",
                          "use 127.0.0.1, 0.0.0.0 (every interface) or an address of this machine") from None


def cannot_listen(exc: OSError, host: str, port: int) -> ConfigError:
    """The one-line reason ``host:port`` cannot be listened on (a bind that failed with ``exc``)."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError("HOST", f"{host!r} is not an address of this machine ({_plain(exc)})",
                           "use 127.0.0.1, 0.0.0.0 (every interface) or an address of this machine")
    if exc.errno == errno.EADDRINUSE:
        return ConfigError("PORT", f"port {port} on {host} is already in use by another program or server",
                           "stop it (ss -ltnp shows which), or set PORT to a free port")
    if exc.errno == errno.EACCES:
        return ConfigError("PORT", f"port {port} needs privileges this process lacks",
                           "use a port above 1023 and put a reverse proxy in front, or grant the right")
    return ConfigError("HOST", f"cannot listen on {host}:{port} ({_plain(exc)})", "check HOST and PORT")


def _plain(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)
