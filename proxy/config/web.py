"""Pages and observability: the admin session, the recent-generations index, /metrics access."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.config.env import Env


@dataclass(frozen=True)
class WebSettings:
    admin_session_ttl: int = 8 * 3600
    recent_generations: int = 48
    metrics_public: bool = False


def load_web(env: Env) -> WebSettings:
    return WebSettings(
        admin_session_ttl=env.integer("ADMIN_SESSION_TTL", 8 * 3600, lo=60, hi=30 * 24 * 3600),
        recent_generations=env.integer("RECENT_GENERATIONS", 48, lo=0, hi=1000),
        metrics_public=env.flag("METRICS_PUBLIC", False),
    )
