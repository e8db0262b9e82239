"""GET /admin: the dashboard (or the login form), and its cache actions."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from proxy.keys import IMAGE_CACHE, OBSERVER
from proxy.web.adminauth import checked_form, session_of
from proxy.web.login import login_page
from proxy.web.pages import render
from proxy.web.session import AdminSession
from proxy.web.status import admin_status
from proxy.web.vision_panel import panel

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
    state = await admin_status(app)
    vision = await panel(app)
    context = {
        "page": "admin", "csrf": session.csrf, "status": state, "cache": state["cache"],
        "backends": state["backends"] + vision["providers"], **vision,
        "recent": await app[OBSERVER].recent.latest(GALLERY),
        "notice": NOTICES.get(request.query.get("done", "")), "error": None, "new_key": None,
        "new_user": None, "you": request.remote or "",
    }
    context.update(extra)
    return render("admin.html", request, context, status=status)


async def admin(request: web.Request) -> web.Response:
    session = session_of(request)
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
        await request.app[OBSERVER].recent.forget(key)
    raise web.HTTPSeeOther(f"/admin?done={'deleted' if deleted else 'missing'}#cache")
