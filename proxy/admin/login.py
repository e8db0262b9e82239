"""Who may see the admin pages: the admin token in a header, or a dashboard session (a cookie,
``proxy.admin.cookie``). Logging in takes the admin token once; failed attempts count like failed
keys (limited per address, and auto-blocked). Forms posted by a logged-in admin are checked for
their CSRF token and origin."""

from __future__ import annotations

from aiohttp import web

from proxy.admin.cookie import COOKIE, COOKIE_PATH, AdminSession
from proxy.errors import Forbidden, RateLimited, Unauthorized
from proxy.keys import ADMIN_REVOCATIONS, ADMIN_SESSIONS, ADMISSION, GUARD, SECRETS, SETTINGS
from proxy.pages.views import render
from proxy.security.credentials import same
from proxy.security.gate import address_of, over_https, refuse_cross_site
from proxy.web.forms import read_form


async def session_of(request: web.Request) -> AdminSession | None:
    """The dashboard session of the request's cookie: valid, not expired and not logged out."""
    session = request.app[ADMIN_SESSIONS].read(request.cookies.get(COOKIE))
    if session is None or await request.app[ADMIN_REVOCATIONS].revoked(session.sid):
        return None
    return session


async def may_admin(request: web.Request) -> bool:
    return await session_of(request) is not None or await request.app[ADMISSION].admin_token_valid(request)


async def require_admin_page(request: web.Request) -> None:
    if not await may_admin(request):
        raise Unauthorized("log in at /admin or send the admin token", code="admin_required")


async def checked_form(request: web.Request) -> tuple[AdminSession, dict[str, str]]:
    """The posted form of a logged-in admin, after the CSRF and origin checks."""
    session = await session_of(request)
    if session is None:
        raise Unauthorized("your admin session has expired; log in again", code="admin_required")
    refuse_cross_site(request)
    form = await read_form(request)
    if not session.csrf_ok(form.get("csrf")):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page", code="bad_csrf")
    return session, {k: v for k, v in form.items() if isinstance(v, str)}


def login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    return render("login.html", request, {"page": "admin", "error": error}, status=status)


async def login(request: web.Request) -> web.Response:
    refuse_cross_site(request)
    guard, address = request.app[GUARD], address_of(request)
    try:
        await guard.key_check_allowed(address)
    except RateLimited as exc:
        return login_page(request, f"Too many failed attempts; try again in {exc.retry_after:.0f} s.",
                          status=429)
    form = await read_form(request)
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
    """Ends the session everywhere: its id is revoked, so a copy of the cookie is refused too."""
    session, _ = await checked_form(request)
    await request.app[ADMIN_REVOCATIONS].revoke(session.sid, request.app[SETTINGS].web.admin_session_ttl)
    response = web.HTTPSeeOther("/admin")
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    raise response
