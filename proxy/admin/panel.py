"""What the dashboard shows of the vision side: providers' health, profiles with their usage and
recent activity, and the blacklist. Read through the accounts', security's and vision's own APIs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.accounts import activity, profiles, retention
from proxy.accounts.models import AccountsContext
from proxy.admin.metrics import Totals
from proxy.admin.status import health
from proxy.config.backends import public_url
from proxy.keys import ACCOUNTS, SETTINGS, VISION
from proxy.security import blacklist
from proxy.upstream.pool import health_key
from proxy.vision.providers import spec_of

RECENT_EVENTS = 5


def providers(app: web.Application, totals: Totals) -> list[dict[str, Any]]:
    """The server's own provider keys' health (users' own keys have breakers of their own)."""
    breaker = app[VISION].breaker
    now = breaker.clock()
    rows = []
    for p in app[SETTINGS].vision.providers:
        state = health(breaker, health_key(spec_of(p)), totals, now)
        if not (p.token or p.keyless):
            state["state"] = "users_keys_only"  # no server key: used only with a profile's own key
        rows.append({"label": p.name, "url": public_url(p.base_url), "model": p.model, "kind": "vision",
                     "weight": "–", **state})
    return rows


def _profiles(ctx: AccountsContext) -> list[dict[str, Any]]:
    rows = []
    for profile in profiles.listing(ctx):
        report = activity.report(ctx, profile.username, RECENT_EVENTS)
        last = max((k["last"] for k in report["kinds"].values() if k["last"]), default=None)
        rows.append({"username": profile.username, "created": profile.created_at,
                     "usage": retention.usage(ctx, profile.username), "kinds": report["kinds"],
                     "frames": report["frames"], "recent": report["recent"], "last": last,
                     "custom_prompt": profiles.prompt(ctx, profile.username) is not None})
    return rows


async def panel(app: web.Application, totals: Totals) -> dict[str, Any]:
    accounts = app[ACCOUNTS]
    return {"vision": True, "profiles": await accounts.run(_profiles),
            "blacklist": await accounts.run(blacklist.entries), "providers": providers(app, totals)}
