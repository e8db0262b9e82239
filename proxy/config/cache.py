"""The image cache: where it lives and how big it may grow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proxy.config.env import Env


@dataclass(frozen=True)
class CacheSettings:
    directory: Path
    size_limit: int = 10 * 1000**3
    memory_bytes: int = 64 * 1024 * 1024
    memory_item_bytes: int = 4 * 1024 * 1024
    failure_ttl: float = 60.0
    enhance_ttl: float = 7 * 24 * 3600.0
    refusal_ttl: float = 3600.0
    """REFUSAL_CACHE_TTL: how long a prompt the backends refused goes straight to the safety rewrite."""


def load_cache(env: Env, data_dir: Path) -> CacheSettings:
    return CacheSettings(
        directory=Path(env.text("CACHE_DIR", str(data_dir / "cache"))).expanduser(),
        size_limit=env.integer("CACHE_SIZE_LIMIT", 10 * 1000**3, lo=1024 * 1024),
        memory_bytes=env.integer("CACHE_MEMORY_BYTES", 64 * 1024 * 1024, lo=0),
        memory_item_bytes=env.integer("CACHE_MEMORY_ITEM_BYTES", 4 * 1024 * 1024, lo=0),
        failure_ttl=env.number("FAILURE_CACHE_TTL", 60.0, lo=0.0, hi=86400.0),
        enhance_ttl=env.number("ENHANCE_CACHE_TTL", 7 * 24 * 3600.0, lo=0.0),
        refusal_ttl=env.number("REFUSAL_CACHE_TTL", 3600.0, lo=0.0, hi=30 * 86400.0),
    )
