"""The glasses vision route: profiles, sessions, limits, the blacklist, retention.

The cascade settings (providers, judge, thresholds, deadlines) join this dataclass too."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from proxy.config.cascade import CascadeSettings, load_cascade
from proxy.config.env import Env
from proxy.errors import ConfigError

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
DEFAULT_PROMPT = ("Answer in at most 15 words, plain text, for a 24x5 character display: "
                  "what is most important in this image?")
STATE_BACKENDS = ("local",)
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
    return parse_rate(name, env.str(name, default))


@dataclass(frozen=True)
class VisionSettings:
    database: Path = Path("data/iris.db")
    frames_dir: Path = Path("data/frames")
    secret_key: str | None = None
    session_ttl: float = 12 * 3600.0
    rate_auth: Rate = Rate(5, 60.0)
    rate_profile: Rate = Rate(10, 60.0)
    rate_process: Rate = Rate(3600, 3600.0)
    retention_days: float = 3.0
    retention_interval: float = 3600.0
    profile_quota_bytes: int = 1024**3
    store_frames: bool = True
    autoblock_failures: int = 20
    autoblock_window: float = 600.0
    autoblock_seconds: float = 3600.0
    blacklist_refresh: float = 1.0
    profile_refresh: float = 1.0
    state_backend: str = "local"
    default_prompt: str = DEFAULT_PROMPT
    max_prompt_chars: int = 2000
    trusted_proxies: tuple[str, ...] = ()
    cascade: CascadeSettings = field(default_factory=CascadeSettings)


def load_vision(env: Env, data_dir: Path) -> VisionSettings:
    return VisionSettings(
        database=Path(env.str("PROFILE_DB", str(data_dir / "iris.db"))).expanduser(),
        frames_dir=Path(env.str("FRAMES_DIR", str(data_dir / "frames"))).expanduser(),
        secret_key=env.opt("PROXY_SECRET_KEY"),
        session_ttl=env.float("AUTH_SESSION_TTL", 12 * 3600.0, lo=0.0),
        rate_auth=env_rate(env, "RATE_LIMIT_AUTH", "5/minute"),
        rate_profile=env_rate(env, "RATE_LIMIT_PROFILE", "10/minute"),
        rate_process=env_rate(env, "RATE_LIMIT_PROCESS", "3600/hour"),
        retention_days=env.float("RETENTION_DAYS", 3.0, lo=0.0),
        retention_interval=env.float("RETENTION_INTERVAL", 3600.0, lo=0.05),
        profile_quota_bytes=env.int("PROFILE_QUOTA_BYTES", 1024**3, lo=0),
        store_frames=env.bool("STORE_FRAMES", True),
        autoblock_failures=env.int("BLACKLIST_AUTO_FAILURES", 20, lo=0),
        autoblock_window=env.float("BLACKLIST_AUTO_WINDOW", 600.0, lo=1.0),
        autoblock_seconds=env.float("BLACKLIST_AUTO_SECONDS", 3600.0, lo=1.0),
        blacklist_refresh=env.float("BLACKLIST_REFRESH", 1.0, lo=0.05, hi=60.0),
        profile_refresh=env.float("PROFILE_REFRESH", 1.0, lo=0.05, hi=10.0),
        state_backend=_choice(env, "SECURITY_STATE", "local", STATE_BACKENDS),
        default_prompt=env.str("VISION_DEFAULT_PROMPT", DEFAULT_PROMPT),
        max_prompt_chars=env.int("VISION_MAX_PROMPT_CHARS", 2000, lo=1, hi=100_000),
        trusted_proxies=env.networks("TRUSTED_PROXIES"),
        cascade=load_cascade(env),
    )


def _choice(env: Env, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.str(name, default).lower()
    if value not in allowed:
        raise ConfigError(name, f"{value!r} is not known", f"use one of {', '.join(allowed)}")
    return value
