"""The error vocabulary of Iris. Every failure a client can see is an ``IrisError``.

``proxy.web.errors`` is the one place that turns these (and anything else) into HTTP.
"""

from __future__ import annotations


class IrisError(Exception):
    """A failure with an HTTP status, a stable machine code and a human message."""

    status = 500
    code = "internal_error"

    param: str | None = None
    """The request field the failure is about, when one is (the OpenAI API's errors name it)."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(IrisError):
    status = 400
    code = "bad_request"


class Unauthorized(IrisError):
    status = 401
    code = "unauthorized"


class Forbidden(IrisError):
    status = 403
    code = "forbidden"


class NotFound(IrisError):
    status = 404
    code = "not_found"


class RequestTimeout(IrisError):
    """The request (its body) did not arrive in time."""

    status = 408
    code = "request_timeout"


class PayloadTooLarge(IrisError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(IrisError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(IrisError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None):
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(message, code=code, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class UpstreamFailed(IrisError):
    """Every stage that could answer failed; the message names the stages, never a secret."""

    status = 502
    code = "upstream_failed"


class DeadlineExceeded(IrisError):
    status = 504
    code = "deadline_exceeded"


class ServiceUnavailable(IrisError):
    status = 503
    code = "unavailable"


class StorageFull(ServiceUnavailable):
    """The disk is full: nothing new can be stored."""

    code = "storage_full"


class ConfigError(Exception):
    """A setting is wrong. The message names the variable and says how to fix it."""

    def __init__(self, variable: str, problem: str, fix: str):
        super().__init__(f"{variable}: {problem}. Fix: {fix}")
        self.variable = variable
