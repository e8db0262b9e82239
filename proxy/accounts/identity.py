"""Who is calling: a profile key (``Authorization: Bearer``, a ``key`` form field) or the session
that a successful ``POST /auth-{key}`` opened for the caller's address."""

from __future__ import annotations

from aiohttp import web

from proxy.accounts.models import Profile
from proxy.errors import Forbidden, Unauthorized
from proxy.keys import ACCOUNTS, GUARD
from proxy.security.credentials import bearer_of
from proxy.security.gate import address_of
from proxy.web.forms import read_form

_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


async def form_key(request: web.Request) -> str | None:
    """The ``key`` field of a form body."""
    if request.content_type not in _FORMS or not request.body_exists:
        return None
    value = (await read_form(request)).get("key")
    return (value.strip() or None) if isinstance(value, str) else None


async def authenticate(request: web.Request, key: str | None = None, *, body_read: bool = False) -> Profile:
    """The calling profile, or ``Unauthorized``. Pass ``key`` (and ``body_read``) when the caller
    read the body itself."""
    guard, accounts, address = request.app[GUARD], request.app[ACCOUNTS], address_of(request)
    given = bearer_of(request) or key or (None if body_read else await form_key(request))
    if given:
        await guard.key_check_allowed(address)
        profile = await accounts.profile_by_key(given)
        if profile is None:
            await guard.key_failed(address, counted=False)
            raise Unauthorized("the key is not valid", code="invalid_key")
        return profile
    session = await accounts.sessions.lookup(address)
    if session is not None:
        state = await accounts.users.state(session[0])
        if state is not None and state.profile.stamp == session[1]:
            return state.profile
    raise Unauthorized("authenticate first: POST /auth-{key} from this address, or send "
                       "Authorization: Bearer <key>", code="auth_required")


async def header_caller(request: web.Request) -> Profile | None:
    """The calling profile when its key is in a header (checked before the body is read: a wrong
    key costs no body), else None: the key may be in the body, or the session is the caller."""
    return await authenticate(request) if bearer_of(request) else None


def must_be(profile: Profile, username: str) -> Profile:
    """403 unless the caller is ``username``."""
    if profile.username != username:
        raise Forbidden("you are authenticated as another user", code="wrong_user")
    return profile


async def require_user(request: web.Request, username: str, key: str | None = None) -> Profile:
    """``authenticate``, and the caller must be ``username`` (403 otherwise)."""
    return must_be(await authenticate(request, key), username)
