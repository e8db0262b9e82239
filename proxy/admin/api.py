"""Admin cache endpoints: POST /cache/delete (the Deno proxy's shape) and DELETE /cache/{key}.
Either deletes an entry with every variant of it (the image in other formats); DELETE takes a
variant's ETag too."""

from __future__ import annotations

import re

import orjson
from aiohttp import web

from proxy.errors import BadRequest, NotFound
from proxy.imagegen.params import parse_request
from proxy.keys import ADMISSION, FLIGHT, IMAGE_CACHE, SETTINGS
from proxy.web.responses import json_response

_KEY = re.compile(r"([0-9a-f]{64})(?:~[a-z0-9-]{1,24})?")  # an entry's key, or a variant's ETag


async def cache_delete(request: web.Request) -> web.Response:
    """Body ``{description, width?, height?, model?, seed?}`` names the entry the GET would make."""
    await request.app[ADMISSION].require_admin(request)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("the body must be JSON: {\"description\": ..., \"width\"?: ...}",
                         code="bad_body") from None
    if not isinstance(body, dict) or not isinstance(body.get("description"), str):
        raise BadRequest("the body needs a string field \"description\"", code="bad_body")
    req = parse_request(body["description"], body, request.app[SETTINGS].image)
    return await _delete(request, req.key())


async def cache_delete_key(request: web.Request) -> web.Response:
    await request.app[ADMISSION].require_admin(request)
    found = _KEY.fullmatch(request.match_info["key"].lower())
    if found is None:
        raise BadRequest("a cache key is 64 hex digits (the ETag of the image)", code="bad_key")
    return await _delete(request, found.group(1))  # the entry, with every variant


async def _delete(request: web.Request, key: str) -> web.Response:
    await request.app[FLIGHT].settle(key)  # an image answered a moment ago may still be landing
    if not await request.app[IMAGE_CACHE].delete(key):
        raise NotFound("no cache entry for these parameters", code="not_in_cache")
    return json_response({"deleted": True, "key": key})
