"""Who may see admin pages: a dashboard session cookie, or the admin token in a header."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from proxy.errors import Forbidden, Unauthorized
from proxy.keys import ADMIN_SESSIONS
from proxy.security.checks import admin_token_valid
from proxy.web.session import COOKIE, AdminSession


def session_of(request: web.Request) -> AdminSession | None:
    return request.app[ADMIN_SESSIONS].read(request.cookies.get(COOKIE))


async def may_admin(request: web.Request) -> bool:
    return session_of(request) is not None or await admin_token_valid(request)


async def require_admin_page(request: web.Request) -> None:
    if not await may_admin(request):
        raise Unauthorized("log in at /admin or send the admin token", code="admin_required")


def same_origin(request: web.Request) -> None:
    """Browsers send Origin on form posts; one from another host is refused outright. Only the
    host and port are compared: behind a TLS-terminating proxy the scheme seen here is http."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise Forbidden("this form may only be posted from this site", code="cross_origin")


async def checked_form(request: web.Request) -> tuple[AdminSession, dict[str, str]]:
    """The posted form of a logged-in admin, after the CSRF and origin checks."""
    session = session_of(request)
    if session is None:
        raise Unauthorized("your admin session has expired; log in again", code="admin_required")
    same_origin(request)
    form = await request.post()
    if not session.csrf_ok(form.get("csrf")):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page", code="bad_csrf")
    return session, {k: v for k, v in form.items() if isinstance(v, str)}
