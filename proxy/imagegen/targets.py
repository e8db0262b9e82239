"""Request targets already parsed, so a repeated URL skips decoding, validation and hashing.

The cache key is a pure function of the request target (the raw path and query) and the frozen
settings, so ``/prompt/...?...`` seen before maps straight to its parsed request and key. The
access key is still checked and the cache still consulted on every request; a random seed
(``seed=-1``) is never remembered. Bounded: the oldest targets are forgotten first."""

from __future__ import annotations

import secrets
from dataclasses import replace

from aiohttp import web

from proxy.config.image import ImageSettings
from proxy.imagegen.params import ImageRequest, decode_path, parse_request

PREFIX = "/prompt/"
REMEMBERED = 8192


class ParsedTargets:
    def __init__(self, cfg: ImageSettings, size: int = REMEMBERED):
        self.cfg = cfg
        self.size = size
        self.seen: dict[str, tuple[ImageRequest, str]] = {}

    def remembered(self, target: str) -> tuple[ImageRequest, str] | None:
        """The request and key for a target parsed before, without parsing anything."""
        return self.seen.get(target)

    def parse(self, request: web.Request) -> tuple[ImageRequest, str]:
        """The request and its cache key; ``BadRequest`` for a malformed one (never remembered)."""
        target = request.raw_path
        found = self.seen.get(target)
        if found is not None:
            return found
        raw = request.rel_url.raw_path[len(PREFIX):]
        req = parse_request(decode_path(raw), request.query, self.cfg)
        if req.seed == -1:  # Pollinations' "random": a fresh seed, and the answer is not for keeping
            req = replace(req, seed=secrets.randbelow(2**31))
            return req, req.key()
        found = (req, req.key())
        if len(self.seen) >= self.size:
            del self.seen[next(iter(self.seen))]
        self.seen[target] = found
        return found
