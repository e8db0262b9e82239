"""Admission: the one rule that decides whether a request may go on, for the middleware, the
routes and the image fast lane alike.

1. A blacklisted address is refused (403 ``blocked``) on every route.
2. A key (the access key, the admin token) is compared in constant time. An address that sent a
   wrong one lately (a suspect, in this process) must first have a token left in its auth bucket
   (429 otherwise); a wrong key takes a token and counts toward the automatic block. The right
   key from anyone else costs no I/O.
3. On ``/prompt``, a URL that carries ``sig`` (or ``exp``) needs no key: its signature is checked instead
   (``proxy.security.signing``; 403 ``bad_signature`` or ``expired``), one HMAC and no I/O. A bad
   signature is not counted as a guess: a page may still carry URLs signed with a retired key.
   With REQUIRE_SIGNED, ``?key=`` is refused (401 ``signature_required``) and only the key in
   ``Authorization: Bearer`` (server to server) is taken instead of a signature.

The middleware that applies the first part to every route is ``proxy.security.gate``'s. The fast
lane may only answer what needs no I/O: ``admits_at_once`` is true exactly when this
rule admits the request with the access key or a valid signature without asking the limiter;
anything else goes the full way, where the rule decides (and the lane is never the place a
refusal comes from)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from proxy.errors import Unauthorized
from proxy.security.address import address_for
from proxy.security.credentials import Secrets, bearer_of, same
from proxy.security.guard import Guard
from proxy.security.signing import SignedTarget, Signer, signed_target
from proxy.web.view import RequestView

ACCESS_KEY = "access-key"  # the credential a request with the access key uses (for its limits)


def access_key_of(request: RequestView) -> str | None:
    return request.query.get("key") or bearer_of(request)


def admin_token_of(request: web.BaseRequest) -> str | None:
    return request.headers.get("X-Admin-Token") or bearer_of(request)


@dataclass(frozen=True)
class Caller:
    """Who asked for an image: the client's address and the credential it used (``ACCESS_KEY``,
    or the signing key that signed the URL), by which new images are counted."""

    address: str
    credential: str


class Admission:
    def __init__(self, guard: Guard, secrets: Secrets, *, require_signed: bool = False,
                 clock: Callable[[], float] = time.time):
        self.guard = guard
        self.secrets = secrets
        self.signer = Signer(secrets.signing_keys)
        self.require_signed = require_signed
        self.clock = clock
        self.peers = guard.peers

    def address(self, request: RequestView) -> str:
        return address_for(request, self.guard.trusted_proxies)

    def blocked(self, request: RequestView) -> bool:
        blacklist = self.guard.blacklist
        return blacklist.listed and blacklist.blocked(self.address(request))  # the address only when needed

    def _suspect(self, request: RequestView) -> str | None:
        """The address, when it sent a wrong key lately (computed only when anyone did)."""
        if not self.guard.suspects:
            return None
        address = self.address(request)
        return address if self.guard.suspect(address) else None

    def admits_at_once(self, request: RequestView, signed: SignedTarget | None = None) -> bool:
        """The rule admits this image request, and no I/O was needed to know it. ``signed`` is the
        request's ``SignedTarget`` (``signed_target`` of its target), None when it is no signed URL."""
        if self.blocked(request):
            return False
        if signed is not None:
            return self.signer.valid(signed, self.clock())
        if self.require_signed:
            given = None if "key" in request.query else bearer_of(request)
        else:
            given = access_key_of(request)
        return self._suspect(request) is None and same(given, self.secrets.access_key)

    async def matches(self, request: web.BaseRequest, given: str, expected: str) -> bool:
        suspect = self._suspect(request)
        if suspect is not None:
            await self.guard.key_check_allowed(suspect)  # 429 while the bucket is empty
        if same(given, expected):
            return True
        await self.guard.key_failed(self.address(request), counted=False)
        return False

    async def admit_image(self, request: web.BaseRequest) -> Caller:
        """The rule for ``/prompt``: a valid signature, or the access key (``?key=`` only without
        REQUIRE_SIGNED). Returns who is asking, for the limits on new images."""
        signed = signed_target(request.rel_url.raw_path, request.query)
        if signed is not None:
            return Caller(self.address(request), self.signer.check(signed, self.clock()))
        if self.require_signed:
            given = bearer_of(request)
            if given is None or "key" in request.query:
                raise Unauthorized("this server takes signed image URLs only: sign the URL (iris-proxy sign, "
                                   "or POST /sign), or send the key in Authorization: Bearer from a server",
                                   code="signature_required")
            await self._require_key(request, given)
        else:
            await self.require_access_key(request)
        return Caller(self.address(request), ACCESS_KEY)

    async def admit_api(self, request: web.BaseRequest) -> Caller:
        """The rule for the OpenAI-compatible API: the access key in ``Authorization: Bearer`` (as
        every OpenAI client sends it; with REQUIRE_SIGNED too: it is a server's call). Returns who
        is asking, for the limits on new images."""
        await self.require_access_key(request, bearer_only=True)
        return Caller(self.address(request), ACCESS_KEY)

    async def require_access_key(self, request: web.BaseRequest, *, bearer_only: bool = False) -> None:
        given = bearer_of(request) if bearer_only else access_key_of(request)
        if given is None:
            where = "Authorization: Bearer ..." if bearer_only else "?key=... or Authorization: Bearer ..."
            raise Unauthorized(f"an access key is required: add {where}", code="missing_key")
        await self._require_key(request, given)

    async def _require_key(self, request: web.BaseRequest, given: str) -> None:
        if not await self.matches(request, given, self.secrets.access_key):
            raise Unauthorized("the access key is not valid", code="invalid_key")

    async def admin_token_valid(self, request: web.BaseRequest) -> bool:
        """True for the right admin token; False when none was sent or a wrong one (which is counted)."""
        given = admin_token_of(request)
        return given is not None and await self.matches(request, given, self.secrets.admin_token)

    async def require_admin(self, request: web.BaseRequest) -> None:
        if not await self.admin_token_valid(request):
            raise Unauthorized("a valid X-Admin-Token header is required", code="admin_required")
