"""Who may do what, and how often: rate limits, automatic blocks, the blacklist's refresh, and the
reverse proxies whose forwarding headers are believed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.config.env import Env, Network
from proxy.errors import ConfigError

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """``count`` events per ``period`` seconds."""

    count: int
    period: float


def parse_rate(name: str, text: str) -> Rate:
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ConfigError(name, f"{text!r} is not a rate", "write it like 5/minute, 3600/hour or 10/30second")
    span = int(match.group(2) or 1)
    return Rate(int(match.group(1)), span * _PERIODS[match.group(3).lower()])


def env_rate(env: Env, name: str, default: str) -> Rate:
    return parse_rate(name, env.text(name, default))


def optional_rate(env: Env, name: str, default: str) -> Rate | None:
    """A rate, or None for ``0`` (no limit)."""
    text = env.text(name, default)
    return None if text.strip() == "0" else parse_rate(name, text)


@dataclass(frozen=True)
class SecuritySettings:
    rate_auth: Rate = Rate(5, 60.0)
    rate_profile: Rate = Rate(10, 60.0)
    rate_process: Rate = Rate(3600, 3600.0)
    autoblock_failures: int = 20
    autoblock_window: float = 600.0
    autoblock_seconds: float = 3600.0
    blacklist_refresh: float = 1.0
    trusted_proxies: tuple[Network, ...] = ()
    require_signed: bool = False
    """REQUIRE_SIGNED: /prompt refuses ?key=; signed URLs, or the key in Authorization: Bearer."""


def load_security(env: Env) -> SecuritySettings:
    return SecuritySettings(
        rate_auth=env_rate(env, "RATE_LIMIT_AUTH", "5/minute"),
        rate_profile=env_rate(env, "RATE_LIMIT_PROFILE", "10/minute"),
        rate_process=env_rate(env, "RATE_LIMIT_PROCESS", "3600/hour"),
        autoblock_failures=env.integer("BLACKLIST_AUTO_FAILURES", 20, lo=0),
        autoblock_window=env.number("BLACKLIST_AUTO_WINDOW", 600.0, lo=1.0),
        autoblock_seconds=env.number("BLACKLIST_AUTO_SECONDS", 3600.0, lo=1.0),
        blacklist_refresh=env.number("BLACKLIST_REFRESH", 1.0, lo=0.05, hi=60.0),
        trusted_proxies=env.networks("TRUSTED_PROXIES"),
        require_signed=env.flag("REQUIRE_SIGNED", False),
    )
