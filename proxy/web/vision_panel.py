"""What the dashboard shows of the vision side: providers' health, profiles with their usage and
recent activity, and the blacklist. Read through the store's and vision's own APIs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.config.backends import public_url
from proxy.keys import DATABASE, SETTINGS, VISION
from proxy.store import activity, blacklist, profiles, retention
from proxy.store.models import StoreContext
from proxy.upstream.breaker import Breaker

RECENT_EVENTS = 5


def vision_breaker(app: web.Application) -> Breaker | None:
    """The breaker of the server's own provider keys (users' own keys have their own)."""
    service = app.get(VISION)
    asker = getattr(getattr(service, "cascade", None), "asker", None)
    shared = getattr(getattr(asker, "breakers", None), "shared", None)
    return shared if isinstance(shared, Breaker) else None


def providers(app: web.Application) -> list[dict[str, Any]]:
    breaker = vision_breaker(app)
    now = breaker.clock() if breaker else 0.0
    rows = []
    for p in app[SETTINGS].vision.providers:
        health = breaker.of(p.base_url).snapshot(now) if breaker else {"state": "healthy", "calls": 0}
        if not (p.token or p.keyless):
            health["state"] = "users_keys_only"  # no server key: used only with a profile's own key
        rows.append({"url": f"{p.name} · {public_url(p.base_url)}", "kind": f"vision ({p.model})",
                     "weight": "–", **health})
    return rows


def _profiles(ctx: StoreContext) -> list[dict[str, Any]]:
    rows = []
    for profile in profiles.listing(ctx):
        report = activity.report(ctx, profile.username, RECENT_EVENTS)
        last = max((k["last"] for k in report["kinds"].values() if k["last"]), default=None)
        rows.append({"username": profile.username, "created": profile.created_at,
                     "usage": retention.usage(ctx, profile.username), "kinds": report["kinds"],
                     "frames": report["frames"], "recent": report["recent"], "last": last,
                     "custom_prompt": profiles.prompt(ctx, profile.username) is not None})
    return rows


async def panel(app: web.Application) -> dict[str, Any]:
    db = app.get(DATABASE)
    if db is None:
        return {"vision": False, "profiles": [], "blacklist": [], "providers": []}
    return {"vision": True, "profiles": await db.run(_profiles), "blacklist": await db.run(blacklist.entries),
            "providers": providers(app)}
