"""The access key and the admin token, checked with guessing charged to the caller's address.

A wrong key or token takes from the address's one auth bucket (shared with ``/auth-*`` and profile
keys) and counts toward the automatic block. The right key costs no I/O: the shared limiter is
asked first only for an address that sent a wrong one lately, so guessing stops at the limit."""

from __future__ import annotations

from aiohttp import web

from proxy.errors import Unauthorized
from proxy.keys import GUARD, SECRETS
from proxy.security.auth import bearer_of, same
from proxy.security.identity import address_of


async def secret_matches(request: web.Request, given: str, expected: str) -> bool:
    guard = request.app[GUARD]
    if guard.suspects:  # the address only when someone sent a wrong key lately
        address = address_of(request)
        if guard.suspect(address):
            await guard.key_check_allowed(address)  # 429 while the bucket is empty
    if same(given, expected):
        return True
    await guard.key_failed(address_of(request), counted=False)
    return False


async def require_access_key(request: web.Request) -> None:
    given = request.query.get("key") or bearer_of(request)
    if given is None:
        raise Unauthorized("an access key is required: add ?key=... or Authorization: Bearer ...",
                           code="missing_key")
    if not await secret_matches(request, given, request.app[SECRETS].access_key):
        raise Unauthorized("the access key is not valid", code="invalid_key")


def _admin_given(request: web.Request) -> str | None:
    return request.headers.get("X-Admin-Token") or bearer_of(request)


async def admin_token_valid(request: web.Request) -> bool:
    """True for the right admin token; False when none was sent or a wrong one (which is counted)."""
    given = _admin_given(request)
    return given is not None and await secret_matches(request, given, request.app[SECRETS].admin_token)


async def require_admin(request: web.Request) -> None:
    if not await admin_token_valid(request):
        raise Unauthorized("a valid X-Admin-Token header is required", code="admin_required")
