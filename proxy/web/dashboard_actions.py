"""The dashboard's profile and blacklist forms, done through the store's own functions."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from proxy.errors import BadRequest, IrisError
from proxy.keys import DATABASE, GUARD
from proxy.store import blacklist, profiles
from proxy.web.adminauth import checked_form
from proxy.web.dashboard import show


async def add_profile(request: web.Request) -> web.Response:
    """Creates a profile and shows its key once, in this answer only (never in a URL or log)."""
    session, form = await checked_form(request)
    username = form.get("username", "").strip()
    try:
        key = await request.app[DATABASE].run(profiles.add, username, None)
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
        if _covers(network, request.remote):
            raise BadRequest(f"{network} includes your own address ({request.remote}); "
                             "use the command line to block it", code="blocks_yourself")
        reason = form.get("reason", "").strip()[:200] or "admin"
        await request.app[DATABASE].run(blacklist.add, network, reason)
    except IrisError as exc:
        return await show(request, session, status=exc.status, error=exc.message)
    await request.app[GUARD].blacklist.reload()
    raise web.HTTPSeeOther("/admin?done=blocked#blacklist")


async def unblock(request: web.Request) -> web.Response:
    session, form = await checked_form(request)
    try:
        removed = await request.app[DATABASE].run(blacklist.remove, form.get("address", ""))
    except IrisError as exc:
        return await show(request, session, status=exc.status, error=exc.message)
    await request.app[GUARD].blacklist.reload()
    raise web.HTTPSeeOther(f"/admin?done={'unblocked' if removed else 'notblocked'}#blacklist")


def _covers(network: str, remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote) in ipaddress.ip_network(network)
    except ValueError:
        return False
