"""GET and HEAD /prompt/{description}: the image, from the cache or made once for everyone."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proxy.cache.entry import FAILURE, HOSTED, CacheEntry
from proxy.cache.images import ImageCache
from proxy.errors import DeadlineExceeded, IrisError, UpstreamFailed
from proxy.hosting.stage import HostingStage, ImageLost
from proxy.imagegen.params import ImageRequest
from proxy.imagegen.reply import ImageResponse
from proxy.keys import ADMISSION, FLIGHT, HOSTING, IMAGE_CACHE, PIPELINE, RECENT, SETTINGS, TARGETS

PROMPT_ROUTE = "prompt_image"
IMMUTABLE = "public, max-age=31536000, immutable"


async def prompt_image(request: web.Request) -> web.StreamResponse:
    app = request.app
    await app[ADMISSION].require_access_key(request)
    req, key = app[TARGETS].parse(request)  # seed=-1 draws a fresh seed every time
    cache = app[IMAGE_CACHE]
    entry = cache.peek(key) or await cache.get(key)
    cache.count(entry is not None)
    state = "HIT"
    if entry is None:
        entry = await _generate(request, req, key)
        state = "MISS"
    hosting = app[HOSTING]
    if hosting is not None and hosting.wants(entry):  # a pending upload, or proxy mode
        try:
            entry = await hosting.settle(key, entry, fresh=state == "MISS")
        except ImageLost:  # proxy mode: the host no longer has it (the entry is gone): made again
            entry, state = await _remade(request, req, key, hosting), "MISS"
    response = _respond(request, entry, key, state)
    if state == "MISS" and response.status == 200 and request.method == "GET":
        app[RECENT].note(key, req, entry.meta.get("used_prompt"))  # the dashboard's gallery of fresh images
    return response


async def _remade(request: web.Request, req: ImageRequest, key: str, hosting: HostingStage) -> CacheEntry:
    entry = await _generate(request, req, key)
    try:
        return await hosting.settle(key, entry, fresh=True) if hosting.wants(entry) else entry
    except ImageLost:
        raise UpstreamFailed("the image host lost the image it had just been given") from None


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
            return await app[FLIGHT].do(key, produce, lambda: cache.get(key), publish, recheck=False)
    except TimeoutError:
        raise DeadlineExceeded(f"the image was not ready within {deadline:g} s") from None


def image_headers(key: str, state: str) -> dict[str, str]:
    return {"ETag": f'"{key}"', "Cache-Control": IMMUTABLE, "Access-Control-Allow-Origin": "*",
            "X-Cache": state}


def image_response(cache: ImageCache, key: str, entry: CacheEntry, headers: dict[str, str]) -> ImageResponse:
    headers["Content-Type"] = entry.content_type
    return ImageResponse(entry.body, headers, cache.file_for(key, entry))


def _respond(request: web.Request, entry: CacheEntry, key: str, state: str) -> web.StreamResponse:
    if entry.kind == FAILURE:
        meta = entry.meta
        raise IrisError(meta["message"], code=meta["code"], status=meta["status"],
                        headers={"X-Cache": state})
    headers = image_headers(key, state)
    etag = headers["ETag"]
    if entry.kind == HOSTED:
        headers["Location"] = entry.meta["url"]
        return web.Response(status=302, headers=headers)
    match = request.headers.get("If-None-Match", "")
    if etag in match or match.strip() == "*":
        return web.Response(status=304, headers=headers)
    return image_response(request.app[IMAGE_CACHE], key, entry, headers)
