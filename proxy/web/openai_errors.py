"""Errors on the OpenAI-compatible API (``/v1/...``) in OpenAI's shape, so the OpenAI SDKs raise
their own exceptions (``AuthenticationError``, ``BadRequestError``, ``RateLimitError``, ...) with
Iris's ``code`` and ``message``: ``{"error": {"message", "type", "param", "code"}}``.

A refusal that will not change within the SDK's patience (a ``Retry-After`` beyond the 120 s it
honours, such as a spent daily budget) says ``x-should-retry: false``, so the client does not
spend its retries on it."""

from __future__ import annotations

from aiohttp import web

from proxy.web.responses import json_response

PREFIX = "/v1/"
SDK_PATIENCE = 120  # seconds of Retry-After the OpenAI SDKs wait for; beyond it they back off their own way
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error",
         415: "invalid_request_error", 429: "rate_limit_error"}


def speaks_openai(request: web.BaseRequest) -> bool:
    return request.path.startswith(PREFIX)


def error_type(status: int) -> str:
    if status >= 500:
        return "server_error"
    return TYPES.get(status, "invalid_request_error")


def openai_error_response(status: int, code: str, message: str, param: str | None = None,
                          headers: dict[str, str] | None = None) -> web.Response:
    headers = dict(headers or {})
    retry_after = headers.get("Retry-After", "")
    if retry_after.isdigit() and int(retry_after) > SDK_PATIENCE:
        headers["x-should-retry"] = "false"
    body = {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}
    return json_response(body, status=status, headers=headers)
