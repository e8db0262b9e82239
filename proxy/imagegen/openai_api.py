"""The APIs image tools already speak, over the image route's own machinery.

OpenAI's Images API, so the OpenAI SDKs and the tools built on them (LangChain, LiteLLM, Open
WebUI, n8n) get Iris's cache, single flight, failover and safety rewrite unchanged:

- ``POST /v1/images/generations`` with ``Authorization: Bearer <access key>`` and OpenAI's body
  (``prompt``, ``model``, ``n`` 1-4, ``size`` "WxH" or "auto", ``response_format``, ``quality``,
  ``style``, ``user``; Iris's own ``seed``, ``negative_prompt``, ``enhance``, ``image``, and
  ``output_format``/``output_compression`` for a converted format, are taken too). Each image is
  its own request of the image route: seed, seed+1, ... (default 42, as on ``/prompt``), the same
  cache key as the ``/prompt`` URL with those parameters, the same single flight, limits on new
  images, pipeline and image hosting (``route.obtain``). The answer is OpenAI's shape,
  ``{"created", "data": [{"b64_json" | "url", "revised_prompt"}]}``: ``url`` is a signed
  ``/prompt/...`` URL that renders without a key; without ``response_format`` each item carries
  both, for the tools written for DALL-E (``url``) and for gpt-image-1 (``b64_json``) alike.
  ``revised_prompt`` is the prompt that made the image (after enhancement or the safety rewrite).
- ``GET /v1/models`` and ``GET /v1/models/{model}``: the image models a request may name
  (IMAGE_MODEL and MODEL_MAP's names), in OpenAI's list shape.
- ``GET /models``: the same names as Pollinations lists its image models (a JSON array; public).

Errors on ``/v1/...`` are OpenAI's shape (``proxy.web.openai_errors``)."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from proxy.cache.entry import FAILURE, HOSTED, CacheEntry
from proxy.config.image import ImageSettings
from proxy.errors import BadRequest, IrisError, NotFound
from proxy.hosting.stage import ImageLost
from proxy.imagegen.formats import ORIGINAL, Wanted, parse_wanted
from proxy.imagegen.params import MAX_INPUT_IMAGES, SEED_MAX, ImageRequest, parse_request
from proxy.imagegen.route import MISS, obtain
from proxy.imagegen.targets import PREFIX
from proxy.keys import ADMISSION, HOSTING, RECENT, SETTINGS, VARIANTS
from proxy.security.admission import Caller
from proxy.security.gate import asked_host, over_https
from proxy.web.responses import json_response

MAX_IMAGES = 4
MAX_USER = 256
RESPONSE_FORMATS = ("b64_json", "url")
_SIZE = re.compile(r"([0-9]{1,5})x([0-9]{1,5})")
OWNER = "iris"


@dataclass(frozen=True)
class ImagesCall:
    """One ``/v1/images/generations`` call: a request of the image route per image."""

    requests: tuple[ImageRequest, ...]
    response_format: str | None
    wanted: Wanted = ORIGINAL


def parse_call(raw: bytes, cfg: ImageSettings) -> ImagesCall:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object: {"prompt": "...", ...}', code="bad_body")
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise BadRequest("prompt is required: the description of the image", code="missing_prompt",
                         param="prompt")
    n = body.get("n", 1)
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise BadRequest(f"n must be a whole number from 1 to {MAX_IMAGES}", code="bad_parameter", param="n")
    response_format = body.get("response_format")
    if response_format is not None and response_format not in RESPONSE_FORMATS:
        raise BadRequest("response_format must be b64_json or url", code="bad_parameter",
                         param="response_format")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER):
        raise BadRequest(f"user must be a string of at most {MAX_USER} characters", code="bad_parameter",
                         param="user")
    width, height = _size(body.get("size"), cfg)
    images = body.get("image")
    if isinstance(images, list) and len(images) > MAX_INPUT_IMAGES:
        raise BadRequest(f"image takes at most {MAX_INPUT_IMAGES} URLs", code="bad_parameter", param="image")
    query = {"width": width, "height": height, "model": body.get("model"), "seed": body.get("seed"),
             "enhance": body.get("enhance"), "negative_prompt": body.get("negative_prompt"),
             "image": images, "quality": body.get("quality"), "style": body.get("style")}
    first = replace(parse_request(prompt, query, cfg), user=user or None)
    wanted = parse_wanted({"output_format": body.get("output_format"),
                           "quality": _compression(body.get("output_compression"))}, param="output_format")
    return ImagesCall(tuple(_seeded(first, i) for i in range(n)), response_format, wanted)


def _size(value: Any, cfg: ImageSettings) -> tuple[int, int]:
    """OpenAI's ``size``: "WxH" within Iris's limits, or "auto" (Iris's default size)."""
    if value is None or value == "auto":
        return cfg.default_width, cfg.default_height
    found = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise BadRequest('size must be "WIDTHxHEIGHT" (such as "1024x1024") or "auto"', code="invalid_size",
                         param="size")
    width, height = int(found.group(1)), int(found.group(2))
    if not (cfg.min_side <= width <= cfg.max_side and cfg.min_side <= height <= cfg.max_side):
        raise BadRequest(f"size must be from {cfg.min_side} to {cfg.max_side} pixels a side",
                         code="invalid_size", param="size")
    return width, height


def _compression(value: Any) -> int | None:
    """gpt-image-1's ``output_compression`` (0-100) as the encoding quality of a converted format."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise BadRequest("output_compression must be a whole number from 0 to 100", code="bad_parameter",
                         param="output_compression")
    return max(1, value)


def _seeded(first: ImageRequest, index: int) -> ImageRequest:
    """The ``index``-th image: its own seed (seed + index; ``-1`` draws each at random)."""
    if first.seed == -1:
        return first  # each draws its own in ``generations``
    return first if index == 0 else replace(first, seed=(first.seed + index) % (SEED_MAX + 1))


async def generations(request: web.Request) -> web.Response:
    app = request.app
    caller = await app[ADMISSION].admit_api(request)
    call = parse_call(await request.read(), app[SETTINGS].image)
    requests = tuple(_drawn(req) for req in call.requests)
    try:
        async with asyncio.TaskGroup() as group:  # the first refusal ends the call (flights still land)
            tasks = [group.create_task(_image(request, req, caller, call)) for req in requests]
    except* IrisError as failed:
        raise failed.exceptions[0] from None
    return json_response({"created": int(time.time()), "data": [task.result() for task in tasks]},
                         headers={"Cache-Control": "no-store"})


def _drawn(req: ImageRequest) -> ImageRequest:
    """``seed: -1``: each image draws its own seed (and its URL names it)."""
    return req if req.seed != -1 else replace(req, seed=secrets.randbelow(2**31))


async def _image(request: web.Request, req: ImageRequest, caller: Caller, call: ImagesCall) -> dict[str, str]:
    """One image of the answer: made or found exactly as the image route does it."""
    app = request.app
    key = req.key()
    entry, state = await obtain(request, req, key, caller)
    if entry.kind == FAILURE:
        meta = entry.meta
        raise IrisError(meta["message"], code=meta["code"], status=meta["status"])
    if state == MISS:
        app[RECENT].note(key, req, entry.meta.get("used_prompt"))
    item: dict[str, str] = {}
    if call.response_format in (None, "b64_json"):
        image = await _image_bytes(request, req, key, entry, caller, call.wanted)
        item["b64_json"] = base64.b64encode(image.body).decode()
    if call.response_format in (None, "url"):
        item["url"] = _signed_url(request, req, call.wanted)
    item["revised_prompt"] = str(entry.meta.get("used_prompt") or req.prompt)
    return item


async def _image_bytes(request: web.Request, req: ImageRequest, key: str, entry: CacheEntry,
                       caller: Caller, wanted: Wanted) -> CacheEntry:
    """The entry with its bytes (an image host's copy fetched), in the format asked for."""
    app = request.app
    hosting = app[HOSTING]
    if hosting is not None and entry.kind == HOSTED:
        try:
            entry = await hosting.image_bytes(key, entry)
        except ImageLost:  # the host lost it and the entry is gone: made again
            entry, _ = await obtain(request, req, key, caller)
            entry = await hosting.image_bytes(key, entry)
    variants = app[VARIANTS]
    variant = variants.formats.variant(wanted, None, entry.content_type)
    return entry if variant is None else await variants.obtain(key, entry, variant)


def _signed_url(request: web.Request, req: ImageRequest, wanted: Wanted) -> str:
    """The signed ``/prompt/...`` URL of this very image: the same cache entry, no key needed."""
    params = [("width", str(req.width)), ("height", str(req.height)), ("seed", str(req.seed))]
    encoding = None if wanted.quality is None else str(wanted.quality)
    optional = [("model", req.model), ("negative_prompt", req.negative_prompt),
                ("image", ",".join(req.images)), ("quality", req.quality), ("style", req.style),
                ("format", wanted.format), ("quality", encoding)]
    if req.enhance is not None:
        optional.append(("enhance", "true" if req.enhance else "false"))
    params += [(name, value) for name, value in optional if value]
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    path = f"{PREFIX}{quote(req.prompt, safe='')}?{query}"
    scheme = "https" if over_https(request) else "http"
    return f"{scheme}://{asked_host(request)}{request.app[ADMISSION].signer.sign(path)}"


def _model_list(cfg: ImageSettings) -> list[dict[str, Any]]:
    """``created`` is 0: Iris routes the names, it does not know when their models were made."""
    return [{"id": name, "object": "model", "created": 0, "owned_by": OWNER} for name in cfg.models]


async def models(request: web.Request) -> web.Response:
    app = request.app
    await app[ADMISSION].admit_api(request)
    return json_response({"object": "list", "data": _model_list(app[SETTINGS].image)})


async def model(request: web.Request) -> web.Response:
    app = request.app
    await app[ADMISSION].admit_api(request)
    name = request.match_info["model"]
    for item in _model_list(app[SETTINGS].image):
        if item["id"] == name:
            return json_response(item)
    raise NotFound(f"no image model {name!r} here: GET /v1/models lists them", code="model_not_found",
                   param="model")


async def pollinations_models(request: web.Request) -> web.Response:
    """Pollinations' ``GET /models``: the names, as a JSON array (public, like the playground's list)."""
    return json_response(list(request.app[SETTINGS].image.models),
                         headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"})

