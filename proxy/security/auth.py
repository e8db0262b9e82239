"""Checking the access key and the admin token, always in constant time."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from proxy.config.server import ServerSettings
from proxy.security.secrets import load_or_create

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Secrets:
    access_key: str = field(repr=False)
    admin_token: str = field(repr=False)
    generated: tuple[Path, ...] = ()


def resolve_secrets(server: ServerSettings) -> Secrets:
    """The configured key and token, or ones generated (once) under DATA_DIR."""
    generated: list[Path] = []
    values = []
    for configured, name in ((server.access_key, "access-key"), (server.admin_token, "admin-token")):
        if configured:
            values.append(configured)
            continue
        path = server.data_dir / "secrets" / name
        value, created = load_or_create(path)
        if created:
            generated.append(path)
        values.append(value)
    return Secrets(values[0], values[1], tuple(generated))


def same(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def bearer_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None
