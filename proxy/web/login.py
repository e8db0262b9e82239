"""The admin login: the admin token, once, for an encrypted session cookie with an expiry."""

from __future__ import annotations

from aiohttp import web

from proxy.errors import RateLimited
from proxy.keys import ADMIN_SESSIONS, GUARD, SECRETS, SETTINGS
from proxy.security.auth import same
from proxy.security.identity import address_of, over_https
from proxy.web.adminauth import checked_form, same_origin
from proxy.web.pages import render
from proxy.web.session import COOKIE, COOKIE_PATH, AdminSessions


def setup_sessions(app: web.Application) -> None:
    app[ADMIN_SESSIONS] = AdminSessions(app[SECRETS].admin_token, app[SETTINGS].web.admin_session_ttl)


def login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    return render("login.html", request, {"page": "admin", "error": error}, status=status)


async def login(request: web.Request) -> web.Response:
    """Failed logins count like failed profile keys: limited per address, and auto-blocked."""
    same_origin(request)
    guard, address = request.app[GUARD], address_of(request)
    try:
        await guard.key_check_allowed(address)
    except RateLimited as exc:
        return login_page(request, f"Too many failed attempts; try again in {exc.retry_after:.0f} s.",
                          status=429)
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not same(token.strip(), request.app[SECRETS].admin_token):
        await guard.key_failed(address, counted=False)
        return login_page(request, "That is not the admin token.", status=401)
    cookie, _ = request.app[ADMIN_SESSIONS].issue()
    response = web.HTTPSeeOther("/admin")
    response.set_cookie(COOKIE, cookie, max_age=request.app[SETTINGS].web.admin_session_ttl,
                        path=COOKIE_PATH, httponly=True, samesite="Strict", secure=over_https(request))
    raise response


async def logout(request: web.Request) -> web.Response:
    await checked_form(request)
    response = web.HTTPSeeOther("/admin")
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    raise response
