"""Admission: the one rule that decides whether a request may go on, for the middleware, the
routes and the image fast lane alike.

1. A blacklisted address is refused (403 ``blocked``) on every route.
2. A key (the access key, the admin token) is compared in constant time. An address that sent a
   wrong one lately (a suspect, in this process) must first have a token left in its auth bucket
   (429 otherwise); a wrong key takes a token and counts toward the automatic block. The right
   key from anyone else costs no I/O.

The middleware that applies the first part to every route is ``proxy.security.gate``'s. The fast
lane may only answer what needs no I/O: ``admits_at_once`` is true exactly when this
rule admits the request with the access key without asking the limiter; anything else goes the
full way, where the rule decides (and the lane is never the place a refusal comes from)."""

from __future__ import annotations

from aiohttp import web

from proxy.errors import Unauthorized
from proxy.security.address import address_for
from proxy.security.credentials import Secrets, bearer_of, same
from proxy.security.guard import Guard


def access_key_of(request: web.BaseRequest) -> str | None:
    return request.query.get("key") or bearer_of(request)


def admin_token_of(request: web.BaseRequest) -> str | None:
    return request.headers.get("X-Admin-Token") or bearer_of(request)


class Admission:
    def __init__(self, guard: Guard, secrets: Secrets):
        self.guard = guard
        self.secrets = secrets

    def address(self, request: web.BaseRequest) -> str:
        return address_for(request, self.guard.trusted_proxies)

    def blocked(self, request: web.BaseRequest) -> bool:
        blacklist = self.guard.blacklist
        return blacklist.listed and blacklist.blocked(self.address(request))  # the address only when needed

    def _suspect(self, request: web.BaseRequest) -> str | None:
        """The address, when it sent a wrong key lately (computed only when anyone did)."""
        if not self.guard.suspects:
            return None
        address = self.address(request)
        return address if self.guard.suspect(address) else None

    def admits_at_once(self, request: web.BaseRequest) -> bool:
        """The rule admits this request with the access key, and no I/O was needed to know it."""
        return (not self.blocked(request) and self._suspect(request) is None
                and same(access_key_of(request), self.secrets.access_key))

    async def matches(self, request: web.BaseRequest, given: str, expected: str) -> bool:
        suspect = self._suspect(request)
        if suspect is not None:
            await self.guard.key_check_allowed(suspect)  # 429 while the bucket is empty
        if same(given, expected):
            return True
        await self.guard.key_failed(self.address(request), counted=False)
        return False

    async def require_access_key(self, request: web.BaseRequest) -> None:
        given = access_key_of(request)
        if given is None:
            raise Unauthorized("an access key is required: add ?key=... or Authorization: Bearer ...",
                               code="missing_key")
        if not await self.matches(request, given, self.secrets.access_key):
            raise Unauthorized("the access key is not valid", code="invalid_key")

    async def admin_token_valid(self, request: web.BaseRequest) -> bool:
        """True for the right admin token; False when none was sent or a wrong one (which is counted)."""
        given = admin_token_of(request)
        return given is not None and await self.matches(request, given, self.secrets.admin_token)

    async def require_admin(self, request: web.BaseRequest) -> None:
        if not await self.admin_token_valid(request):
            raise Unauthorized("a valid X-Admin-Token header is required", code="admin_required")
