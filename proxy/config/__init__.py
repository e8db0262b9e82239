"""Settings are parsed once, at start-up, into frozen dataclasses.

``load_settings(environ)`` reads a mapping (``os.environ`` merged over ``.env``); nothing here
reads the environment at import time. A bad value raises ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import dotenv_values

from proxy.config.cache import CacheSettings, load_cache
from proxy.config.env import Env
from proxy.config.hosting import HostingSettings, load_hosting
from proxy.config.image import ImageSettings, load_image
from proxy.config.redis import RedisSettings, load_redis
from proxy.config.server import ServerSettings, load_server
from proxy.config.vision import VisionSettings, load_vision
from proxy.config.web import WebSettings, load_web


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    cache: CacheSettings
    image: ImageSettings
    vision: VisionSettings
    web: WebSettings = field(default_factory=WebSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    hosting: HostingSettings = field(default_factory=HostingSettings)

    def with_server(self, **changes: object) -> Settings:
        return replace(self, server=replace(self.server, **changes))


def load_settings(environ: Mapping[str, str]) -> Settings:
    env = Env(environ)
    server = load_server(env)
    return Settings(
        server=server,
        cache=load_cache(env, server.data_dir),
        image=load_image(env),
        vision=load_vision(env, server.data_dir),
        web=load_web(env),
        redis=load_redis(env),
        hosting=load_hosting(env),
    )


def gather_environment(dotenv: Path | None = Path(".env")) -> dict[str, str]:
    """``.env`` in the working directory, overridden by the real environment."""
    values: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ)
    return values


__all__ = ["CacheSettings", "ImageSettings", "ServerSettings", "Settings", "VisionSettings",
           "gather_environment", "load_settings"]
