"""Signed image URLs: the thumbor and imgproxy idea. A page may publish
``/prompt/a%20red%20apple?width=512&sig=...`` without any key: the signature says the owner made
this very URL, so it shows that one image and cannot be turned into a generator.

``sig`` is HMAC-SHA256, under a signing key, of the canonical form of the path and every other
query parameter (``exp`` included), in base64url without padding. The canonical form::

    quote(unquote(path), safe="/") + "?" + "&".join(sorted(quote(k, safe="") + "=" + quote(v, safe="")
                                                        for k, v in parameters if k != "sig"))

where the parameters are decoded as a form would be (``+`` is a space) and ``quote``/``unquote``
are Python's ``urllib.parse`` ones: a URL a browser or a proxy re-encodes differently still
verifies, and any change to the prompt or a parameter (added, removed, repeated or altered)
does not. ``exp`` (Unix seconds) ends a URL's life. The first of the signing keys signs; all of
them verify, so keys can be rotated. A signature costs one HMAC to check; checking a known
target needs nothing else (``SignedTarget`` is what the image route's target cache remembers)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from multidict import MultiDict, MultiMapping

from proxy.errors import BadRequest, Forbidden

SIG = "sig"
EXP = "exp"
DIGEST = 32  # bytes of an HMAC-SHA256
BLOCK = 64  # bytes of a SHA-256 block
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def canonical(raw_path: str, params: Iterable[tuple[str, str]]) -> bytes:
    """What is signed: the decoded path and parameters, re-encoded one way, ``sig`` left out."""
    path = quote(unquote(raw_path), safe="/")
    pairs = sorted(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params if k != SIG)
    return f"{path}?{'&'.join(pairs)}".encode()


def encode_sig(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _decode_sig(text: str) -> bytes:
    """The signature's bytes, or b"" for anything that is not exactly one, in the one spelling
    ``encode_sig`` gives (which nothing else matches: one image, one signed URL)."""
    if len(text) != 43:  # 32 bytes in base64url without padding
        return b""
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        return b""
    return raw if encode_sig(raw) == text else b""


class HmacKey:
    """HMAC-SHA256 (RFC 2104) under one key, the key's inner and outer hash states computed once,
    as the standard library's pure-Python ``hmac`` does. ``hmac.digest`` sets OpenSSL's HMAC up
    on every call: three times the cost of the rest of a hit's admission, where this is two hash
    copies (tests/test_signed_urls.py checks both agree)."""

    def __init__(self, key: bytes):
        if len(key) > BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(BLOCK, b"\0")
        self.inner = hashlib.sha256(key.translate(_IPAD))
        self.outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@dataclass(frozen=True, slots=True)
class SignedTarget:
    """A request target that carries ``sig``: what was signed, the signature given, and ``exp``."""

    message: bytes
    given: bytes
    expires: int | None


def signed_target(raw_path: str, query: MultiMapping[str]) -> SignedTarget | None:
    """None when the target carries neither ``sig`` nor ``exp`` (it is no signed URL). A missing
    or malformed ``sig`` or ``exp`` (or two of either) gives a target no key verifies."""
    sigs = query.getall(SIG, [])
    exps = query.getall(EXP, [])
    if not sigs and not exps:
        return None
    given = _decode_sig(sigs[0]) if len(sigs) == 1 else b""  # none: a signed URL without its signature
    expires = None
    if exps:
        if len(exps) == 1 and exps[0].isascii() and exps[0].isdigit() and len(exps[0]) <= 12:
            expires = int(exps[0])
        else:
            given = b""
    return SignedTarget(canonical(raw_path, query.items()), given, expires)


class Signer:
    """The signing keys: the first signs, every one verifies. ``credential`` names a key where
    its use is counted (rate limits), by a fingerprint that reveals nothing of it."""

    def __init__(self, keys: Sequence[str]):
        self.keys = tuple(key.encode() for key in keys)
        self.hmacs = tuple(HmacKey(key) for key in self.keys)
        self.credentials = tuple("signed:" + hashlib.sha256(b"iris credential\0" + key).hexdigest()[:16]
                                 for key in self.keys)

    def signature(self, message: bytes) -> str:
        if not self.keys:
            raise RuntimeError("no signing key: set IMAGE_SIGNING_KEYS or let Iris generate one")
        return encode_sig(self.hmacs[0].digest(message))

    def signer(self, target: SignedTarget) -> int | None:
        """Which key made the signature (compared in constant time), or None."""
        if len(target.given) != DIGEST:
            return None
        for index, key in enumerate(self.hmacs):
            if hmac.compare_digest(key.digest(target.message), target.given):
                return index
        return None

    def valid(self, target: SignedTarget, now: float) -> bool:
        """Signed by one of the keys, and not expired: the fast lane's question."""
        return (target.expires is None or now < target.expires) and self.signer(target) is not None

    def check(self, target: SignedTarget, now: float) -> str:
        """The credential that signed the target; ``Forbidden`` for a bad or expired signature."""
        index = self.signer(target)
        if index is None:
            raise Forbidden("the URL's signature does not match it: it was changed after signing, "
                            "or signed with a key this server does not have", code="bad_signature")
        if target.expires is not None and now >= target.expires:
            raise Forbidden("the signed URL has expired", code="expired")
        return self.credentials[index]

    def sign(self, url: str, *, expires_in: float | None = None, now: float | None = None) -> str:
        """``url`` (a path and query, or a whole URL) with ``sig`` added, and ``exp`` when
        ``expires_in`` seconds are given; any ``sig`` it had is replaced. A URL carrying ``key``
        is refused: a signed URL needs none, and it would publish the key."""
        parts = urlsplit(url)
        # decoded as the server decodes a request's query (yarl agrees with parse_qsl)
        params = MultiDict((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != SIG)
        if "key" in params:
            raise BadRequest("the URL carries key=...: a signed URL needs no key, and would publish it; "
                             "remove it", code="key_in_url")
        if expires_in is not None:
            params.popall(EXP, None)
            params.add(EXP, str(int((time.time() if now is None else now) + expires_in)))
        path = quote(unquote(parts.path), safe="/")
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
        sig = self.signature(canonical(parts.path, params.items()))
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        return f"{origin}{path}?{query}{'&' if query else ''}{SIG}={sig}"

