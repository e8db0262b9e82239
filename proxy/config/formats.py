"""Image formats: which formats ``Accept`` may choose, and how each lossy one is encoded."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.config.env import Env
from proxy.errors import ConfigError

NEGOTIABLE = ("avif", "webp", "jpeg", "png")
QUALITY_RANGE = (1, 100)
DEFAULT_QUALITY = {"jpeg": 85, "webp": 80, "avif": 60}


@dataclass(frozen=True)
class FormatSettings:
    negotiate: tuple[str, ...] = ("avif", "webp")
    """NEGOTIATE_FORMATS: what ``Accept`` may choose without ``format=``, in the server's order of
    preference (empty: the backend's own format, always)."""
    quality: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUALITY), hash=False, compare=False)
    """The encoding quality of each lossy format when a request gives none (JPEG_QUALITY, ...)."""
    avif_speed: int = 8
    """AVIF_SPEED, libavif's 0 (slowest, smallest) to 10; 8 is 1.5 to 3 times faster than
    Pillow's 6 for nearly the same size (bench/README.md)."""
    threads: int = 2
    """IMAGE_CONVERT_THREADS: conversions at once in a worker (each is CPU work off the event loop)."""


def load_formats(env: Env) -> FormatSettings:
    negotiate = tuple(item.lower() for item in env.items("NEGOTIATE_FORMATS")) \
        if env.raw("NEGOTIATE_FORMATS") is not None else FormatSettings.negotiate
    unknown = [name for name in negotiate if name not in NEGOTIABLE]
    if unknown or len(set(negotiate)) != len(negotiate):
        raise ConfigError("NEGOTIATE_FORMATS", f"{','.join(negotiate)!r} is not a list of distinct formats",
                          f"list some of {', '.join(NEGOTIABLE)} in order of preference, or leave it empty")
    lo, hi = QUALITY_RANGE
    return FormatSettings(
        negotiate=negotiate,
        quality={name: env.integer(f"{name.upper()}_QUALITY", default, lo=lo, hi=hi)
                 for name, default in DEFAULT_QUALITY.items()},
        avif_speed=env.integer("AVIF_SPEED", 8, lo=0, hi=10),
        threads=env.integer("IMAGE_CONVERT_THREADS", 2, lo=1, hi=64),
    )
