"""GET /admin: the dashboard (or the login form), and its forms: delete a cache entry, add a
profile, block or unblock an address. Each form goes through the owning room's own functions."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from aiohttp import web

from proxy.accounts import profiles
from proxy.admin.login import AdminSession, checked_form, login_page, session_of
from proxy.admin.panel import panel
from proxy.admin.status import admin_status
from proxy.errors import BadRequest, IrisError
from proxy.keys import ACCOUNTS, BACKEND_COUNTS, GUARD, IMAGE_CACHE, RECENT
from proxy.pages.views import render
from proxy.security import blacklist
from proxy.security.gate import address_of

GALLERY = 24
_KEY = re.compile(r"[0-9a-f]{64}")
NOTICES = {
    "deleted": "The cache entry was deleted; the next request makes it again.",
    "missing": "There was no cache entry with that key.",
    "badkey": "A cache key is 64 hex digits (the image's ETag).",
    "blocked": "The address is blocked; every worker applies it within seconds.",
    "unblocked": "The address is no longer blocked.",
    "notblocked": "That address was not on the blacklist.",
}


async def show(request: web.Request, session: AdminSession, status: int = 200,
               **extra: Any) -> web.Response:
    app = request.app
    totals = await app[BACKEND_COUNTS].totals()
    state = await admin_status(app, totals)
    vision = await panel(app, totals)
    context = {
        "page": "admin", "csrf": session.csrf, "status": state, "cache": state["cache"],
        "backends": state["backends"] + vision["providers"], **vision,
        "recent": await app[RECENT].latest(GALLERY), "safety": state["safety_check"],
        "notice": NOTICES.get(request.query.get("done", "")), "error": None, "new_key": None,
        "new_user": None, "you": address_of(request), "lone_peer": app[GUARD].peers.lone_peer(),
    }
    context.update(extra)
    return render("admin.html", request, context, status=status)


async def admin(request: web.Request) -> web.Response:
    session = await session_of(request)
    if session is None:
        return login_page(request)
    return await show(request, session)


async def delete_entry(request: web.Request) -> web.Response:
    _, form = await checked_form(request)
    key = form.get("key", "").strip().lower()
    if not _KEY.fullmatch(key):
        raise web.HTTPSeeOther("/admin?done=badkey#cache")
    deleted = await request.app[IMAGE_CACHE].delete(key)
    if deleted:
        await request.app[RECENT].forget(key)
    raise web.HTTPSeeOther(f"/admin?done={'deleted' if deleted else 'missing'}#cache")


async def add_profile(request: web.Request) -> web.Response:
    """Creates a profile and shows its key once, in this answer only (never in a URL or log)."""
    session, form = await checked_form(request)
    username = form.get("username", "").strip()
    try:
        key = await request.app[ACCOUNTS].run(profiles.add, username, None)
    except IrisError as exc:
        return await show(request, session, status=exc.status, error=exc.message)
    response = await show(request, session, new_key=key, new_user=username)
    response.headers["Cache-Control"] = "no-store"
    return response


async def block(request: web.Request) -> web.Response:
    session, form = await checked_form(request)
    address = form.get("address", "").strip()
    try:
        network = blacklist.normalize(address)
        you = address_of(request)
        if _covers(network, you):
            raise BadRequest(f"{network} includes your own address ({you}); "
                             "use the command line to block it", code="blocks_yourself")
        reason = form.get("reason", "").strip()[:200] or "admin"
        await request.app[GUARD].block(network, reason)
    except IrisError as exc:
        return await show(request, session, status=exc.status, error=exc.message)
    raise web.HTTPSeeOther("/admin?done=blocked#blacklist")


async def unblock(request: web.Request) -> web.Response:
    session, form = await checked_form(request)
    try:
        removed = await request.app[GUARD].unblock(form.get("address", ""))
    except IrisError as exc:
        return await show(request, session, status=exc.status, error=exc.message)
    raise web.HTTPSeeOther(f"/admin?done={'unblocked' if removed else 'notblocked'}#blacklist")


def _covers(network: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network)
    except ValueError:
        return False
