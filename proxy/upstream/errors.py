"""What can go wrong upstream. Messages are safe to show: no tokens, no upstream bodies verbatim.

Two questions decide what Iris does with a failure: is it the backend's fault (only then does it
count towards the backend's cool-down), and does it say something about the request (only then may
it be remembered as that prompt's failure)? A backend's 5xx, a timeout, a reset or garbage is its
fault; its 4xx about this request (a bad model name, a size it does not offer) is not; neither is a
wait in Iris's own connection pool, nor a backend skipped because it was cooling down."""

from __future__ import annotations

import re
from typing import Any

_SHORT = re.compile(r"[A-Za-z0-9_.-]{1,40}")
# 4xx a backend answers about the request itself: a client's mistake, not the backend's failure.
# (401, 403, 408 and 429 are the backend's or its configuration's: they count.)
ABOUT_THE_REQUEST = frozenset({400, 404, 405, 409, 410, 413, 414, 415, 422})


class UpstreamError(Exception):
    """One upstream call failed (error status, timeout, garbage, connection)."""

    backend_fault = True
    """Counts towards the backend's cool-down."""
    about_the_request = True
    """May be remembered as this prompt's failure (``FAILURE_CACHE_TTL``)."""
    sent = True
    """The upstream was asked (and its not failing is an answer of sorts)."""

    def __init__(self, reason: str, *, backend: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.backend = backend

    def describe(self) -> str:
        return f"{self.backend}: {self.reason}" if self.backend else self.reason


class HttpStatus(UpstreamError):
    """The upstream answered with an error status (and, in ``detail``, its error's type and code).
    ``own_url``: the URL was one the upstream gave itself (an image URL), so a 4xx there is its
    fault too."""

    def __init__(self, status: int, *, backend: str = "", detail: str = "", own_url: bool = False):
        super().__init__(f"HTTP {status}{f' ({detail})' if detail else ''}", backend=backend)
        self.status = status
        self.detail = detail
        self.backend_fault = own_url or status not in ABOUT_THE_REQUEST


class ConnectFailed(UpstreamError):
    """No connection could be opened (refused, unreachable, TLS handshake): nothing was sent."""


class LocalWait(UpstreamError):
    """No connection to the upstream came free in Iris's own pool in time: nothing was sent."""

    backend_fault = False
    about_the_request = False
    sent = False


class CoolingDown(UpstreamError):
    """The pool skipped this backend: it is cooling down after failures."""

    backend_fault = False
    about_the_request = False
    sent = False

    def __init__(self, *, backend: str = ""):
        super().__init__("cooling down", backend=backend)


class Unsupported(UpstreamError):
    """The pool skipped this backend: it does not do what the request needs (image edits)."""

    backend_fault = False
    sent = False


class Refusal(UpstreamError):
    """The upstream refused the content (a content-policy / moderation / safety decision)."""

    backend_fault = False


class PoolExhausted(UpstreamError):
    """Every backend in the pool was tried (or cooling down) and none answered."""

    def __init__(self, stage: str, errors: list[UpstreamError]):
        super().__init__("; ".join(e.describe() for e in errors) or "no backend available")
        self.stage = stage
        self.errors = errors
        self.about_the_request = all(e.about_the_request for e in errors)


class PoolRefused(PoolExhausted):
    """The pool stopped because enough backends refused the content."""


def short_code(value: Any) -> str:
    """An upstream's error code or type, only when it is a short plain token (never its free text,
    which may echo a credential); ``""`` for anything else, and for ``None`` spelt as text."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if _SHORT.fullmatch(text) and text.lower() not in ("none", "null") else ""


def error_detail(payload: Any) -> str:
    """``type invalid_request_error, code 400`` from an OpenAI-style ``{"error": {...}}`` body."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [f"{name} {value}" for name in ("type", "code") if (value := short_code(error.get(name)))]
    return ", ".join(parts)
