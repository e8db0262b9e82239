"""Settings, parsed once at start-up into frozen dataclasses: one dataclass and loader per area.

``load_settings(environ)`` reads a mapping (``os.environ`` merged over ``.env``); nothing here
reads the environment at import time. A bad value raises ``ConfigError`` naming the variable and
the fix. What the settings are used for lives with each feature, not here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from proxy.config.accounts import AccountSettings, load_accounts
from proxy.config.cache import CacheSettings, load_cache
from proxy.config.env import Env
from proxy.config.formats import FormatSettings, load_formats
from proxy.config.hosting import HostingSettings, load_hosting
from proxy.config.image import ImageSettings, load_image
from proxy.config.local import LocalSettings, load_local
from proxy.config.redis import RedisSettings, load_redis
from proxy.config.security import SecuritySettings, load_security
from proxy.config.server import ServerSettings, load_server
from proxy.config.spending import SpendingSettings, load_spending
from proxy.config.vision import VisionSettings, load_vision
from proxy.config.web import WebSettings, load_web


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    cache: CacheSettings
    image: ImageSettings
    vision: VisionSettings = field(default_factory=VisionSettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    web: WebSettings = field(default_factory=WebSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    hosting: HostingSettings = field(default_factory=HostingSettings)
    spending: SpendingSettings = field(default_factory=SpendingSettings)
    formats: FormatSettings = field(default_factory=FormatSettings)
    local: LocalSettings = field(default_factory=LocalSettings)

    def with_server(self, **changes: Any) -> Settings:
        return replace(self, server=replace(self.server, **changes))


def load_settings(environ: Mapping[str, str]) -> Settings:
    env = Env(environ)
    server = load_server(env)
    image = load_image(env)
    return Settings(
        server=server,
        cache=load_cache(env, server.data_dir),
        image=image,
        vision=load_vision(env),
        accounts=load_accounts(env, server.data_dir),
        security=load_security(env),
        web=load_web(env),
        redis=load_redis(env),
        hosting=load_hosting(env),
        spending=load_spending(env, image),
        formats=load_formats(env),
        local=load_local(env),
    )


def gather_environment(dotenv: Path | None = Path(".env")) -> dict[str, str]:
    """``.env`` in the working directory, overridden by the real environment."""
    values: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ)
    return values


__all__ = ["AccountSettings", "CacheSettings", "FormatSettings", "ImageSettings", "LocalSettings",
           "SecuritySettings", "ServerSettings", "Settings", "SpendingSettings", "VisionSettings",
           "gather_environment", "load_settings"]
