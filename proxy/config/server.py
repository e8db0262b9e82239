"""Where and how Iris listens, and where it keeps its data."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from proxy.config.env import Env
from proxy.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MIN_SIGNING_KEY = 16  # characters: a short key could be found by trying


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    log_format: str = "text"
    access_log: bool = True
    access_log_interval: float = 0.1
    access_key: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    request_deadline: float = 90.0
    max_upload_bytes: int = 10 * 1024 * 1024
    signing_keys: tuple[str, ...] = field(default=(), repr=False)
    """IMAGE_SIGNING_KEYS: the first signs image URLs, all verify (empty: one generated under DATA_DIR)."""
    header_timeout: float = 15.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    send_timeout: float = 60.0
    max_connections: int = 1024
    shutdown_grace: float = 30.0


def load_server(env: Env) -> ServerSettings:
    level = env.text("LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"{level!r} is not a level", f"use one of {', '.join(LOG_LEVELS)}")
    log_format = env.text("LOG_FORMAT", "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError("LOG_FORMAT", f"{log_format!r} is not a format", "use text or json")
    return ServerSettings(
        host=env.text("HOST", "127.0.0.1"),
        port=env.integer("PORT", 8080, lo=0, hi=65535),
        workers=env.integer("WORKERS", os.cpu_count() or 1, lo=1, hi=256),
        data_dir=Path(env.text("DATA_DIR", "./data")).expanduser(),
        log_level=level,
        log_format=log_format,
        access_log=env.flag("ACCESS_LOG", True),
        access_log_interval=env.number("ACCESS_LOG_INTERVAL", 0.1, lo=0.0, hi=60.0),
        access_key=env.optional("PROXY_ACCESS_KEY"),
        admin_token=env.optional("ADMIN_TOKEN"),
        request_deadline=env.number("REQUEST_DEADLINE", 90.0, lo=1.0, hi=3600.0),
        max_upload_bytes=env.integer("MAX_UPLOAD_BYTES", 10 * 1024 * 1024, lo=1024),
        signing_keys=_signing_keys(env),
        header_timeout=env.number("HEADER_TIMEOUT", 15.0, lo=0.1, hi=3600.0),
        body_timeout=env.number("BODY_TIMEOUT", 60.0, lo=0.1, hi=3600.0),
        keepalive_timeout=env.number("KEEPALIVE_TIMEOUT", 75.0, lo=0.1, hi=3600.0),
        send_timeout=env.number("SEND_TIMEOUT", 60.0, lo=0.1, hi=3600.0),
        max_connections=env.integer("MAX_CONNECTIONS", 1024, lo=1, hi=1_000_000),
        shutdown_grace=env.number("SHUTDOWN_GRACE", 30.0, lo=0.0, hi=3600.0),
    )


def _signing_keys(env: Env) -> tuple[str, ...]:
    keys = tuple(env.items("IMAGE_SIGNING_KEYS"))
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_SIGNING_KEY:
            raise ConfigError("IMAGE_SIGNING_KEYS",
                              f"key {number} is shorter than {MIN_SIGNING_KEY} characters",
                              "use long random strings, such as the output of "
                              "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return keys
