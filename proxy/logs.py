"""Logging: plain text or one JSON object a line, and an access log that never shows a key."""

from __future__ import annotations

import contextvars
import logging
import re
import sys

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SECRET_QUERY = re.compile(r"(?<=[?&])(key|token|authCode|auth_code)=[^&]*", re.IGNORECASE)
_SECRET_PATH = re.compile(r"^/auth-[^?]*")  # POST /auth-{key}: the key is the path


def redact(path_qs: str) -> str:
    path_qs = _SECRET_PATH.sub("/auth-***", path_qs)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", path_qs)


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


