"""The one place where failures become HTTP: ``{"error": {"code", "message"}}``, never a trace
(on the OpenAI-compatible API, ``/v1/...``, in OpenAI's shape: ``proxy.web.openai_errors``)."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.errors import IrisError
from proxy.logs import redact
from proxy.web.openai_errors import openai_error_response, speaks_openai
from proxy.web.responses import error_response

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except IrisError as exc:
        return _answer(request, exc.status, exc.code, exc.message, exc.headers, exc.param)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = exc.reason if exc.status != 413 else "the request body is too large"
        return _answer(request, exc.status, code, message, headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, redact(request.rel_url.path))
        return _answer(request, 500, "internal_error", "an internal error occurred; it has been logged")


def _answer(request: web.Request, status: int, code: str, message: str,
            headers: dict[str, str] | None = None, param: str | None = None) -> web.Response:
    if speaks_openai(request):
        return openai_error_response(status, code, message, param, headers)
    return error_response(status, code, message, headers)
