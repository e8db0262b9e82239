"""GET and HEAD /prompt/{description}: the image, from the cache or made once for everyone."""

from __future__ import annotations

import asyncio
import secrets as pysecrets
from dataclasses import replace

from aiohttp import web

from proxy.cache.entry import FAILURE, HOSTED, CacheEntry
from proxy.errors import DeadlineExceeded, IrisError
from proxy.imagegen.params import ImageRequest, decode_path, parse_request
from proxy.keys import FLIGHT, HOSTING, IMAGE_CACHE, PIPELINE, SETTINGS
from proxy.security.checks import require_access_key

PREFIX = "/prompt/"
IMMUTABLE = "public, max-age=31536000, immutable"


async def prompt_image(request: web.Request) -> web.StreamResponse:
    app = request.app
    await require_access_key(request)
    raw = request.rel_url.raw_path[len(PREFIX):]
    req = parse_request(decode_path(raw), request.query, app[SETTINGS].image)
    if req.seed == -1:  # Pollinations' "random": a fresh seed, and the answer is not for keeping
        req = replace(req, seed=pysecrets.randbelow(2**31))
    key = req.key()
    cache = app[IMAGE_CACHE]
    entry = cache.peek(key) or await cache.get(key)
    cache.count(entry is not None)
    state = "HIT"
    if entry is None:
        entry = await _generate(request, req, key)
        state = "MISS"
    hosting = app[HOSTING]
    if hosting is not None and hosting.wants(entry):  # a pending upload, or proxy mode
        entry = await hosting.settle(key, entry, fresh=state == "MISS")
    return _respond(request, entry, key, state)


async def _generate(request: web.Request, req: ImageRequest, key: str) -> CacheEntry:
    app = request.app
    cache = app[IMAGE_CACHE]
    pipeline = app[PIPELINE]
    deadline = app[SETTINGS].server.request_deadline
    hosting = app[HOSTING]

    async def produce() -> CacheEntry:
        try:
            async with asyncio.timeout(deadline) as scope:
                entry = await pipeline.generate(req)
        except TimeoutError:
            raise DeadlineExceeded(f"the image was not ready within {deadline:g} s") from None
        return entry if hosting is None else await hosting.host(key, entry, until=scope.when())

    async def publish(entry: CacheEntry) -> None:
        await cache.put(key, entry if hosting is None else hosting.stored(entry))

    try:
        async with asyncio.timeout(deadline):
            return await app[FLIGHT].do(key, produce, lambda: cache.get(key), publish)
    except TimeoutError:
        raise DeadlineExceeded(f"the image was not ready within {deadline:g} s") from None


def _respond(request: web.Request, entry: CacheEntry, key: str, state: str) -> web.StreamResponse:
    if entry.kind == FAILURE:
        meta = entry.meta
        raise IrisError(meta["message"], code=meta["code"], status=meta["status"],
                        headers={"X-Cache": state})
    etag = f'"{key}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Access-Control-Allow-Origin": "*",
               "X-Cache": state}
    if entry.kind == HOSTED:
        headers["Location"] = entry.meta["url"]
        return web.Response(status=302, headers=headers)
    match = request.headers.get("If-None-Match", "")
    if etag in match or match.strip() == "*":
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = entry.content_type
    return web.Response(body=entry.body, headers=headers)
