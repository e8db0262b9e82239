"""What can go wrong upstream. Messages are safe to show: no tokens, no upstream bodies verbatim."""

from __future__ import annotations


class UpstreamError(Exception):
    """One upstream call failed (error status, timeout, garbage, connection)."""

    def __init__(self, reason: str, *, backend: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.backend = backend

    def describe(self) -> str:
        return f"{self.backend}: {self.reason}" if self.backend else self.reason


class HttpStatus(UpstreamError):
    """The upstream answered with an error status."""

    def __init__(self, status: int, *, backend: str = ""):
        super().__init__(f"HTTP {status}", backend=backend)
        self.status = status


class ConnectFailed(UpstreamError):
    """No connection could be opened (refused, unreachable, TLS handshake): nothing was sent."""


class Refusal(UpstreamError):
    """The upstream refused the content (a content-policy / moderation / safety decision)."""


class PoolExhausted(UpstreamError):
    """Every backend in the pool was tried (or cooling down) and none answered."""

    def __init__(self, stage: str, errors: list[UpstreamError]):
        super().__init__("; ".join(e.describe() for e in errors) or "no backend available")
        self.stage = stage
        self.errors = errors


class PoolRefused(PoolExhausted):
    """The pool stopped because enough backends refused the content."""
