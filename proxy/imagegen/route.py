"""GET and HEAD /prompt/{description} (and Pollinations' /image/{description}): the image, from
the cache or made once for everyone (``obtain``, which the OpenAI API shares), in the format the
request wants (``proxy.imagegen.formats``).

A request that wants the safety check (``proxy.imagegen.safety``) is answered only with an image
that passed it: a cached image not checked yet is checked first (and made again, from the safety
rewrite on, when it fails), in a single flight of its own, apart from requests that do not want it.

An image too large for the memory front, kept by the store as a file, is answered from its header
alone and sent from that file (``ImageCache.get(lean=True)``, ``StoredImageResponse``): every
decision here reads the header (kind, type, meta), and only what needs the bytes themselves
reads them (``ImageCache.whole``): a format conversion, the safety check of an image not checked
yet, a pending upload to the image host."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proxy.cache.entry import FAILURE, HOSTED, IMAGE, CacheEntry, failure_entry
from proxy.cache.images import ImageCache, variant_key
from proxy.errors import BadRequest, DeadlineExceeded, IrisError, UpstreamFailed
from proxy.hosting.stage import HostingStage, ImageLost
from proxy.imagegen.allowance import GenerateLimited
from proxy.imagegen.params import ImageRequest
from proxy.imagegen.reply import ImageResponse, StoredImageResponse
from proxy.imagegen.safety import Made, SafetyUnavailable, safe_key
from proxy.imagegen.targets import PROMPT_ROUTE, Target
from proxy.keys import (
    ADMISSION,
    ALLOWANCE,
    FLIGHT,
    HOSTING,
    IMAGE_CACHE,
    PIPELINE,
    RECENT,
    SAFETY,
    SETTINGS,
    TARGETS,
    VARIANTS,
)
from proxy.security.admission import Caller

__all__ = ["PROMPT_ROUTE", "image_headers", "image_response", "obtain", "prompt_image"]
HIT, MISS = "HIT", "MISS"
IMMUTABLE = "public, max-age=31536000, immutable"
REDIRECT = 3600  # seconds a hosting redirect is kept: the image may be made again (and hosted elsewhere)
TRIES = 3  # a waiting request whose leader hit its own limit may lead under its own, this often


async def prompt_image(request: web.Request) -> web.StreamResponse:
    app = request.app
    caller = await app[ADMISSION].admit_image(request)
    target = app[TARGETS].parse(request)  # seed=-1 draws a fresh seed every time
    if target.signed is not None and target.random_seed:
        raise BadRequest("seed=-1 makes a new image on every request, which a signed URL may not: "
                         "sign it with a seed", code="random_seed")
    req, key = target.request, target.key
    entry, state = await obtain(request, req, key, caller, lean=True)
    expires = target.signed.expires if target.signed is not None else None
    response: web.StreamResponse | None = None
    try:
        response = await _respond(request, entry, key, state, target, expires, app[ADMISSION].clock())
    finally:  # the answer sending the stored file closes it when sent; any other lets it go now
        if not (isinstance(response, StoredImageResponse) and response.body_file is entry.body_file):
            entry.release()
    if state == MISS and response.status == 200 and request.method == "GET":
        app[RECENT].note(key, req, entry.meta.get("used_prompt"))  # the dashboard's gallery of fresh images
    return response


async def obtain(request: web.Request, req: ImageRequest, key: str, caller: Caller, *,
                 lean: bool = False) -> tuple[CacheEntry, str]:
    """The entry for one image and whether the cache had it (``HIT``) or it was made now
    (``MISS``): the cache, single flight, the limits on new images, the pipeline and image hosting,
    exactly as for every image route. ``lean``: a large cached image may come with its body left in
    the store's file (``CacheEntry.body_file``), which the caller sends or releases."""
    app = request.app
    cache = app[IMAGE_CACHE]
    found = cache.peek(key) or await cache.get(key, lean=lean)
    entry = found
    try:
        state = HIT
        if app[SAFETY].required(req):
            entry, state = await _safe(request, req, key, entry, caller, lean)
            cache.count(state == HIT)
        else:
            cache.count(entry is not None)
            if entry is None:
                entry, state = await _generate(request, req, key, caller), MISS
        hosting = app[HOSTING]
        if hosting is not None and hosting.wants(entry):  # a pending upload, or proxy mode
            entry = await cache.whole(entry)  # an upload takes the bytes
            try:
                entry = await hosting.settle(key, entry, fresh=state == MISS)
            except ImageLost:  # proxy mode: the host no longer has it (the entry is gone): made again
                entry, state = await _remade(request, req, key, hosting, caller), MISS
    except BaseException:
        if entry is not None:
            entry.release()
        raise
    finally:
        if found is not None and found is not entry:
            found.release()  # answered with another entry, or with its bytes read
    return entry, state


async def _remade(request: web.Request, req: ImageRequest, key: str, hosting: HostingStage,
                  caller: Caller) -> CacheEntry:
    entry = await _generate(request, req, key, caller, checked=request.app[SAFETY].required(req))
    try:
        return await hosting.settle(key, entry, fresh=True) if hosting.wants(entry) else entry
    except ImageLost:
        raise UpstreamFailed("the image host lost the image it had just been given") from None


async def _safe(request: web.Request, req: ImageRequest, key: str, entry: CacheEntry | None,
                caller: Caller, lean: bool) -> tuple[CacheEntry, str]:
    """The answer for a request that wants the safety check: a cached image that passed it (or a
    failure), else the failure kept for such requests, else one checked (or made) now."""
    app = request.app
    safety, cache = app[SAFETY], app[IMAGE_CACHE]
    if entry is not None and safety.serves(entry):
        return entry, HIT
    kept = await cache.get(safe_key(key), lean=lean)
    if kept is not None:
        return kept, HIT
    if entry is not None:
        entry = await cache.whole(entry)  # the check reads the bytes
    made = await _generate(request, req, key, caller, checked=True, cached=entry)
    same = entry is not None and made.kind == entry.kind == IMAGE and made.body == entry.body
    return made, HIT if same else MISS


async def _generate(request: web.Request, req: ImageRequest, key: str, caller: Caller, *,
                    checked: bool = False, cached: CacheEntry | None = None) -> CacheEntry:
    """Made once for everyone asking at once; the request that leads the generation meets the
    allowance (budget, limits, a slot) under its own caller. ``checked``: for requests that want
    the safety check (a flight of their own); ``cached``: an image found for the key, not checked
    yet, which is checked first (no allowance: nothing is made) and made again only if it fails."""
    app = request.app
    cache = app[IMAGE_CACHE]
    pipeline = app[PIPELINE]
    allowance = app[ALLOWANCE]
    safety = app[SAFETY]
    deadline = app[SETTINGS].server.request_deadline
    hosting = app[HOSTING]

    async def recheck(image: CacheEntry) -> CacheEntry | None:
        """The cached image, marked as checked; a failure when there is no verdict; ``None`` when it
        failed the check (then it is made again, as after a backend's refusal)."""
        meta = image.meta
        made = Made(key, req.prompt, str(meta.get("used_prompt") or req.prompt), "cache",
                    str(meta.get("backend") or "cache"))
        try:
            return await safety.recheck(image, made)
        except SafetyUnavailable as exc:
            return failure_entry(UpstreamFailed.status, UpstreamFailed.code, exc.reason, transient=True)

    async def produce() -> CacheEntry:
        unsafe = None
        if cached is not None and safety.checkable(cached):
            passed = await recheck(cached)
            if passed is not None:
                until = asyncio.get_running_loop().time() + deadline
                return passed if hosting is None else await hosting.host(key, passed, until=until)
            unsafe = cached
        await cache.room()  # a full disk: 503 at once, before the budget or a backend is spent on it
        await allowance.admit(caller)
        try:
            async with asyncio.timeout(deadline) as scope, allowance.slot():
                entry = await pipeline.generate(req, checked=checked, unsafe=unsafe)
        except TimeoutError:
            raise DeadlineExceeded(f"the image was not ready within {deadline:g} s") from None
        await allowance.made(entry)
        return entry if hosting is None else await hosting.host(key, entry, until=scope.when())

    async def publish(entry: CacheEntry) -> None:
        if entry.kind == FAILURE and entry.meta.get("checked"):  # never in place of an image others get
            await cache.put(safe_key(key), entry)
            return
        await cache.put(key, entry if hosting is None else hosting.stored(entry))

    async def lookup() -> CacheEntry | None:
        found = await cache.get(key)
        if not checked or (found is not None and safety.serves(found)):
            return found
        return await cache.get(safe_key(key))

    tries = TRIES
    try:
        async with asyncio.timeout(deadline):
            while True:
                try:
                    return await app[FLIGHT].do(safe_key(key) if checked else key, produce, lookup, publish,
                                                recheck=False)
                except GenerateLimited as exc:  # the leader's own limit: lead under ours instead
                    tries -= 1
                    if exc.caller == caller or not tries:
                        raise
    except TimeoutError:
        raise DeadlineExceeded(f"the image was not ready within {deadline:g} s") from None


def image_headers(stored: str, state: str, expires: int | None = None, now: float = 0.0, *,
                  negotiated: bool = False) -> dict[str, str]:
    """``stored``: where the cache keeps the representation served (the entry's key, or its
    variant's: each has its own ETag); ``expires``: the ``exp`` of a signed URL, past which no
    cache may keep answering it; ``negotiated``: the format was chosen from ``Accept``."""
    caching = IMMUTABLE if expires is None else cache_for(expires - now)
    headers = {"ETag": f'"{stored}"', "Cache-Control": caching, "Access-Control-Allow-Origin": "*",
               "X-Cache": state}
    if negotiated:
        headers["Vary"] = "Accept"
    return headers


def cache_for(seconds: float) -> str:
    return f"public, max-age={max(0, int(seconds))}"


def image_response(cache: ImageCache, stored: str, entry: CacheEntry,
                   headers: dict[str, str]) -> ImageResponse | StoredImageResponse:
    headers["Content-Type"] = entry.content_type
    if entry.body_file is not None:
        return StoredImageResponse(entry.body_file, headers)
    return ImageResponse(entry.body, headers, cache.file_for(stored, entry))


async def _respond(request: web.Request, entry: CacheEntry, key: str, state: str, target: Target,
                   expires: int | None, now: float) -> web.StreamResponse:
    if entry.kind == FAILURE:
        meta = entry.meta
        raise IrisError(meta["message"], code=meta["code"], status=meta["status"],
                        headers={"X-Cache": state})
    if entry.kind == HOSTED:
        headers = image_headers(key, state, expires, now)
        headers["Location"] = entry.meta["url"]
        headers["Cache-Control"] = cache_for(REDIRECT if expires is None else min(REDIRECT, expires - now))
        return web.Response(status=302, headers=headers)
    variants = request.app[VARIANTS]
    formats = variants.formats
    negotiated = formats.negotiates(target.wanted)
    variant = formats.variant(target.wanted, request.headers.get("Accept"), entry.content_type) \
        if entry.kind == IMAGE and entry.length else None
    match = request.headers.get("If-None-Match", "")
    if match:  # known without converting anything
        stored = variant_key(key, variant.suffix) if variant is not None else key
        if f'"{stored}"' in match or match.strip() == "*":
            return web.Response(status=304, headers=image_headers(stored, state, expires, now,
                                                                   negotiated=negotiated))
    if variant is not None:
        # a conversion needs the original's bytes: an original left in the store's file is read
        # whole first (also when the variant is found made), as every original was before
        entry = await variants.obtain(key, await request.app[IMAGE_CACHE].whole(entry), variant)
    suffix = entry.meta.get("variant")  # None: the original (also when a conversion failed)
    stored = variant_key(key, suffix) if suffix else key
    headers = image_headers(stored, state, expires, now, negotiated=negotiated)
    return image_response(request.app[IMAGE_CACHE], stored, entry, headers)
