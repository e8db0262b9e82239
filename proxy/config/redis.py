"""Scale-out: with REDIS_URL, several Iris instances share cache, locks, limits and signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from proxy.config.env import Env
from proxy.errors import ConfigError

SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = field(default=None, repr=False)  # may hold a password
    prefix: str = "iris:"
    cache_ttl: float = 30 * 86400.0
    timeout: float = 1.0
    retry_interval: float = 2.0

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @property
    def public_url(self) -> str | None:
        """Scheme, host, port and database: never the user name or password."""
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return f"unix://{parts.path}"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def load_redis(env: Env) -> RedisSettings:
    url = env.optional("REDIS_URL")
    if url is not None and urlsplit(url).scheme not in SCHEMES:
        raise ConfigError("REDIS_URL", "is not a Redis URL", "write redis://host:6379/0 (or rediss://, unix://)")
    prefix = env.text("REDIS_PREFIX", "iris:")
    return RedisSettings(
        url=url,
        prefix=prefix,
        cache_ttl=env.number("REDIS_CACHE_TTL", 30 * 86400.0, lo=0.0),
        timeout=env.number("REDIS_TIMEOUT", 1.0, lo=0.05, hi=60.0),
        retry_interval=env.number("REDIS_RETRY_INTERVAL", 2.0, lo=0.05, hi=600.0),
    )
