"""Request targets already parsed, so a repeated URL skips decoding, validation and hashing.

The cache key is a pure function of the request target (the raw path and query) and the frozen
settings, so ``/prompt/...?...`` (or Pollinations' ``/image/...?...``) seen before maps straight
to its parsed request and key, the representation it asks for (``format=``, ``quality=``), its
route and, for a signed URL, to what was signed (``SignedTarget``). The access key or the signature is still
checked and the cache still consulted on every request; a random seed (``seed=-1``) is never
remembered. Bounded: the oldest targets are forgotten first."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from aiohttp import web

from proxy.cache.entry import CacheEntry
from proxy.config.image import ImageSettings
from proxy.imagegen.formats import ORIGINAL, Wanted, parse_wanted
from proxy.imagegen.params import ImageRequest, decode_path, parse_request
from proxy.security.signing import SignedTarget, signed_target

PREFIX = "/prompt/"
PROMPT_ROUTE = "prompt_image"
IMAGE_ROUTE = "image"  # Pollinations' newer path, the same images
ROUTES = {PREFIX: PROMPT_ROUTE, "/image/": IMAGE_ROUTE}  # path prefix: route name
REMEMBERED = 8192


def image_path(path: str) -> tuple[str, str] | None:
    """``(prefix, rest)`` for a path of the image routes, else None."""
    for prefix in ROUTES:
        if path.startswith(prefix):
            return prefix, path[len(prefix):]
    return None


@dataclass(frozen=True, slots=True)
class Target:
    request: ImageRequest
    key: str
    signed: SignedTarget | None
    """Present when the target carries ``sig``: what the admission rule checks, on every request."""
    random_seed: bool = False
    """``seed=-1``: a fresh seed was drawn for this request (such targets are never remembered)."""
    wanted: Wanted = ORIGINAL
    """The representation asked for: ``format=`` and ``quality=``."""
    route: str = PROMPT_ROUTE
    views: dict[tuple[str | None, str], tuple[str, bool]] = field(default_factory=dict, compare=False)
    """The fast lane's memo: for an ``Accept`` header and the original's type, the suffix of the
    variant's key to serve ("" for the original) and whether the format was negotiated."""
    heads: dict[tuple[str, bool], tuple[CacheEntry, tuple[bytes, bytes, bytes]]] = field(
        default_factory=dict, compare=False)
    """The fast lane's memo: the header block of the answer with a representation's key, with or
    without ``Authorization``, for the very entry it was made for (``FastLane._block``)."""


class ParsedTargets:
    def __init__(self, cfg: ImageSettings, size: int = REMEMBERED):
        self.cfg = cfg
        self.size = size
        self.seen: dict[str, Target] = {}

    def remembered(self, target: str) -> Target | None:
        """The request, key and signature for a target parsed before, without parsing anything."""
        return self.seen.get(target)

    def parse(self, request: web.Request) -> Target:
        """The request and its cache key; ``BadRequest`` for a malformed one (never remembered)."""
        target = request.raw_path
        found = self.seen.get(target)
        if found is not None:
            return found
        path = request.rel_url.raw_path
        prefix, rest = image_path(path) or (PREFIX, path[len(PREFIX):])
        req = parse_request(decode_path(rest), request.query, self.cfg)
        wanted = parse_wanted(request.query)
        signed = signed_target(path, request.query)
        route = ROUTES[prefix]
        if req.seed == -1:  # Pollinations' "random": a fresh seed, and the answer is not for keeping
            req = replace(req, seed=secrets.randbelow(2**31))
            return Target(req, req.key(), signed, random_seed=True, wanted=wanted, route=route)
        found = Target(req, req.key(), signed, wanted=wanted, route=route)
        if len(self.seen) >= self.size:
            del self.seen[next(iter(self.seen))]
        self.seen[target] = found
        return found
