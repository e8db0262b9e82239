"""Logging: plain text or one JSON object a line, and an access log that never shows a key."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from urllib.parse import unquote, unquote_plus

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
SECRET_PARAMETERS = frozenset({"key", "token", "authcode", "auth_code"})
"""Query parameters whose values are never logged, however their names are spelled."""
_SEPARATORS = re.compile(r"([&;])")


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


class AccessLogger(AbstractAccessLogger):
    """One line a request: id, address, method, path (keys redacted), status, size, duration."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_taken: float) -> None:
        request_id = response.headers.get("X-Request-Id", "-")
        fields = {"request_id": request_id, "remote": request.remote, "method": request.method,
                  "path": redact(request.path_qs), "status": response.status,
                  "bytes": response.body_length, "ms": round(time_taken * 1000, 2)}
        self.logger.info("%(request_id)s %(remote)s %(method)s %(path)s %(status)s %(bytes)s %(ms)sms",
                         fields, extra={"fields": fields})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


