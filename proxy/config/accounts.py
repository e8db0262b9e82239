"""Accounts: the SQLite database of profiles under DATA_DIR, the master secret that protects their
keys, glasses sessions, custom prompts, stored frames and how long all of it is kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from proxy.config.env import Env

DEFAULT_PROMPT = ("Answer in at most 15 words, plain text, for a 24x5 character display: "
                  "what is most important in this image?")


@dataclass(frozen=True)
class AccountSettings:
    database: Path = Path("data/iris.db")
    frames_dir: Path = Path("data/frames")
    secret_key: str | None = field(default=None, repr=False)
    session_ttl: float = 12 * 3600.0
    retention_days: float = 3.0
    retention_interval: float = 3600.0
    profile_quota_bytes: int = 1024**3
    store_frames: bool = True
    profile_refresh: float = 1.0
    default_prompt: str = DEFAULT_PROMPT
    max_prompt_chars: int = 2000


def load_accounts(env: Env, data_dir: Path) -> AccountSettings:
    return AccountSettings(
        database=Path(env.text("PROFILE_DB", str(data_dir / "iris.db"))).expanduser(),
        frames_dir=Path(env.text("FRAMES_DIR", str(data_dir / "frames"))).expanduser(),
        secret_key=env.optional("PROXY_SECRET_KEY"),
        session_ttl=env.number("AUTH_SESSION_TTL", 12 * 3600.0, lo=0.0),
        retention_days=env.number("RETENTION_DAYS", 3.0, lo=0.0),
        retention_interval=env.number("RETENTION_INTERVAL", 3600.0, lo=0.05),
        profile_quota_bytes=env.integer("PROFILE_QUOTA_BYTES", 1024**3, lo=0),
        store_frames=env.flag("STORE_FRAMES", True),
        profile_refresh=env.number("PROFILE_REFRESH", 1.0, lo=0.05, hi=10.0),
        default_prompt=env.text("VISION_DEFAULT_PROMPT", DEFAULT_PROMPT),
        max_prompt_chars=env.integer("VISION_MAX_PROMPT_CHARS", 2000, lo=1, hi=100_000),
    )
